"""``t2s import``: trajectories other agents produced, into a run record."""

from __future__ import annotations

from pathlib import Path

import click

from t2s.commands._common import console, json_option, load_repo_config, open_store, print_json, repo_option


@click.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice(["openai-jsonl", "claude-code", "t2s"]),
    help="openai-jsonl: one chat conversation per line; claude-code: a Claude Code "
    "session file; t2s: t2s trajectory JSON or JSONL.",
)
@click.option("--run", "run_name", required=True, help="The run to import into (created if needed).")
@click.option(
    "--verdict",
    type=click.Choice(["passed", "failed", "unlabelled"]),
    default=None,
    help="Label every imported trajectory (default: each line's own verdict, else unlabelled).",
)
@click.option("--task-id", default=None, help="The task id of every imported trajectory.")
@click.option("--rev", default=None, help="S0 of a new run (default: HEAD).")
@click.option("--replace", is_flag=True, help="Overwrite trajectories whose id is already in the run.")
@json_option
@repo_option
def import_cmd(paths, fmt, run_name, verdict, task_id, rev, replace, as_json, repo_dir):
    """Import trajectories from files into the run record refs/t2s/runs/RUN.

    Bad lines are reported as PATH:LINE: reason and skipped; the rest is imported.
    Exits 0 when anything was imported (or everything was already there), 1 otherwise.

    \b
    Examples:
      t2s import --format openai-jsonl chats.jsonl --run ext1 --verdict failed
      t2s import --format claude-code ~/.claude/projects/x/SESSION.jsonl --run ext1 --task-id 45300
      t2s import --format t2s exported.jsonl --run r2
    """
    from t2s.errors import T2SError
    from t2s.rollouts.importers import import_trajectories

    store = open_store(repo_dir)
    config = load_repo_config(store)
    summary = import_trajectories(
        store,
        config,
        run=run_name,
        paths=list(paths),
        fmt=fmt,
        verdict=verdict,
        task_id=task_id,
        rev=rev,
        replace=replace,
    )
    for problem in summary.problems:
        click.echo(f"skipped {problem}", err=True)  # one unwrapped line: PATH:LINE: reason
    if as_json:
        print_json(summary.to_dict())
    else:
        from rich.table import Table

        table = Table(title=f"import into run {run_name} ({fmt})")
        for name in ("file", "imported", "skipped", "already there"):
            table.add_column(name, justify="left" if name == "file" else "right")
        for f in summary.files:
            table.add_row(f["path"], str(f["imported"]), str(f["skipped"]), str(f["existing"]))
        console.print(table)
    if not summary.imported and not summary.existing:
        raise T2SError(
            f"nothing imported into run {run_name!r}"
            + (f": {len(summary.problems)} bad line(s)" if summary.problems else ": no trajectories found")
        )
