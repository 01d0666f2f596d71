"""``t2s pack``: release assets, byte for byte reproducible."""

from __future__ import annotations

from pathlib import Path

import click

from t2s.commands._common import console, json_option, load_repo_config, open_store, print_json, repo_option


@click.command()
@click.argument("tag", required=False)
@click.option(
    "-o",
    "--output",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write the files (default: dist/ in the repository).",
)
@repo_option
@json_option
def pack(tag, out_dir, repo_dir, as_json):
    """Pack the skill at TAG (default: the latest vX.Y.Z) as a zip and a tar.gz.

    Each archive holds one top-level <name>/ folder with only the skill; next to
    them go <name>-<version>.eval.json (the eval note) and SHA256SUMS. Times,
    owners, permissions and order are fixed, so packing again gives the same bytes.

    \b
    Examples:
      t2s pack                 # dist/xlsx-0.2.0.zip, .tar.gz, .eval.json, SHA256SUMS
      t2s pack v0.1.0 -o /tmp/assets
      cd dist && sha256sum -c SHA256SUMS
    """
    from t2s.releases.pack import pack as do_pack

    store = open_store(repo_dir)
    result = do_pack(store, load_repo_config(store), tag, out_dir=out_dir)
    if as_json:
        print_json(result.to_json())
        return
    for path in result.to_json()["files"]:
        console.print(path)
