"""`t2s pack` (reproducible assets) and `t2s install` (from a repo, a tag or a zip)."""

from __future__ import annotations

import hashlib
import json
import tarfile
import time
import zipfile

import pytest
from click.testing import CliRunner

from t2s.cli import main
from t2s.releases.install import set_metadata, split_source
from t2s.skill.format import lint_dir, parse_skill_md
from tests.conftest import git
from tests.test_eval_support import make_repo
from tests.test_release import fake_gate


@pytest.fixture
def released(tmp_path, scripted_server):
    """A skill repository with release v0.1.0 (a references/ file included)."""
    from t2s.config import load_config
    from t2s.releases.release import release

    store = make_repo(tmp_path, scripted_server)
    git(store.root, "checkout", "-q", "--detach")
    s0 = store.resolve("main")
    tree = store.build_tree(
        s0,
        {
            "skills/sheet-sums/SKILL.md": '---\nname: sheet-sums\ndescription: Sum cells. Use for totals.\nmetadata:\n  author: "me"\n---\n\n# Sums\n\nSee [tips](references/tips.md).\n',
            "skills/sheet-sums/references/tips.md": "# Tips\n\nUse sum().\n",
        },
    )
    cand = store.commit(tree, [s0], "add tips")
    fake_gate(store, cand, s0)
    release(store, load_config(store.root / "t2s.toml"), cand)
    return store


def test_pack_is_reproducible_and_holds_only_the_skill(released, tmp_path):
    store = released
    out1, out2 = tmp_path / "a", tmp_path / "b"
    r1 = CliRunner().invoke(main, ["pack", "-C", str(store.root), "-o", str(out1), "--json"])
    assert r1.exit_code == 0, r1.output
    files = [p.split("/")[-1] for p in json.loads(r1.output)["files"]]
    assert files == ["sheet-sums-0.1.0.zip", "sheet-sums-0.1.0.tar.gz", "sheet-sums-0.1.0.eval.json", "SHA256SUMS"]
    time.sleep(1.1)  # a different wall clock must not change a byte
    r2 = CliRunner().invoke(main, ["pack", "v0.1.0", "-C", str(store.root), "-o", str(out2)])
    assert r2.exit_code == 0, r2.output
    for name in files:
        assert (out1 / name).read_bytes() == (out2 / name).read_bytes(), name
    with zipfile.ZipFile(out1 / "sheet-sums-0.1.0.zip") as zf:
        names = zf.namelist()
    assert all(n.startswith("sheet-sums/") for n in names)
    assert {"sheet-sums/SKILL.md", "sheet-sums/references/tips.md"} <= set(names)
    assert not any("t2s.toml" in n or "README" in n for n in names)
    with tarfile.open(out1 / "sheet-sums-0.1.0.tar.gz") as tf:
        members = tf.getmembers()
    assert {m.name for m in members if m.isfile()} == {"sheet-sums/SKILL.md", "sheet-sums/references/tips.md"}
    assert {m.mtime for m in members} == {store.commit_time("v0.1.0")} and {m.uid for m in members} == {0}
    sums = (out1 / "SHA256SUMS").read_text().splitlines()
    assert len(sums) == 3
    for line in sums:
        digest, name = line.split("  ")
        assert hashlib.sha256((out1 / name).read_bytes()).hexdigest() == digest
    assert json.loads((out1 / "sheet-sums-0.1.0.eval.json").read_text())["gate"]["passed"] is True
    assert (store.root / "dist").exists() is False  # -o was honoured


def test_install_from_the_zip_and_from_the_repository(released, tmp_path, monkeypatch):
    store = released
    CliRunner().invoke(main, ["pack", "-C", str(store.root), "-o", str(tmp_path / "dist")])
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    zipped = tmp_path / "dist" / "sheet-sums-0.1.0.zip"
    out = CliRunner().invoke(main, ["install", str(zipped), "--json"])
    assert out.exit_code == 0, out.output
    target = project / ".claude" / "skills" / "sheet-sums"
    assert json.loads(out.output)["dest"] == str(target)
    meta = parse_skill_md((target / "SKILL.md").read_text()).meta["metadata"]
    assert meta == {"author": "me", "source": str(zipped.resolve()), "version": "0.1.0"}
    assert (target / "references" / "tips.md").read_text() == "# Tips\n\nUse sum().\n"
    assert lint_dir(target) == []

    # Same source again: an update. Another source: refused without --force.
    assert CliRunner().invoke(main, ["install", str(zipped)]).exit_code == 0
    other = CliRunner().invoke(main, ["install", f"{store.root}@v0.1.0"])
    assert other.exit_code == 2 and "different skill" in other.output
    forced = CliRunner().invoke(main, ["install", f"{store.root}@v0.1.0", "--force"])
    assert forced.exit_code == 0, forced.output
    meta = parse_skill_md((target / "SKILL.md").read_text()).meta["metadata"]
    assert meta["source"] == str(store.root) and meta["version"] == "0.1.0"

    # From the repository without a tag: the latest release; into .agents/skills.
    agents = CliRunner().invoke(main, ["install", str(store.root), "--agents"])
    assert agents.exit_code == 0, agents.output
    assert (project / ".agents" / "skills" / "sheet-sums" / "SKILL.md").is_file()
    dest = CliRunner().invoke(main, ["install", str(store.root), "--dest", str(tmp_path / "elsewhere")])
    assert dest.exit_code == 0 and (tmp_path / "elsewhere" / "sheet-sums" / "SKILL.md").is_file()
    missing = CliRunner().invoke(main, ["install", f"{store.root}@v9.9.9", "--dest", str(tmp_path / "x")])
    assert missing.exit_code == 2 and "v9.9.9" in missing.output


def test_set_metadata_edits_the_frontmatter_text_minimally():
    text = "---\nname: a\n# a comment\ndisable-model-invocation: true\nmetadata:\n  author: 'x'   # keep\n  notes: |\n    two\n    lines\ndescription: d\n---\nbody\n"
    out = set_metadata(text, {"source": "https://h/r.git", "version": "1.2.0"})
    assert out == text.replace("    lines\n", '    lines\n  source: "https://h/r.git"\n  version: "1.2.0"\n')
    again = set_metadata(out, {"version": "1.3.0"})
    assert again == out.replace('"1.2.0"', '"1.3.0"')
    bare = set_metadata("---\nname: a\ndescription: d\n---\nbody\n", {"source": "s"})
    assert bare == '---\nname: a\ndescription: d\nmetadata:\n  source: "s"\n---\nbody\n'
    flow = set_metadata("---\nname: a\nmetadata: {k: v}\n---\nb\n", {"source": "s"})
    assert parse_skill_md(flow).meta["metadata"] == {"k": "v", "source": "s"}


def test_split_source_keeps_scp_style_urls():
    assert split_source("git@github.com:me/skills.git") == ("git@github.com:me/skills.git", None)
    assert split_source("git@github.com:me/skills.git@v1.0.0") == ("git@github.com:me/skills.git", "v1.0.0")
    assert split_source("../skills@v0.2.0") == ("../skills", "v0.2.0")
    assert split_source("https://h/x.git") == ("https://h/x.git", None)


@pytest.mark.parametrize(
    "tag, why",
    [
        ("vbanana", "its name is not vX.Y.Z"),
        ("v01.02.03", "its name is not vX.Y.Z"),
        ("v0.9.0", "it is a lightweight tag"),
        ("v0.8.0", "is not a release merge made by `t2s release`"),
        ("v7.0.0", "there is no such tag"),
        ("HEAD", "its name is not vX.Y.Z"),
    ],
)
def test_pack_and_install_take_only_t2s_release_tags(released, tmp_path, monkeypatch, tag, why):
    store = released
    patch = store.commit(store.tree_of("v0.1.0"), [store.resolve("v0.1.0")], "a patch", "", [("T2S-Patch", "0001")])
    git(store.root, "tag", "v0.9.0", patch)
    git(store.root, "tag", "-a", "v0.8.0", "-m", "hand-made", patch)
    git(store.root, "tag", "-a", "v01.02.03", "-m", "leading zeros", "v0.1.0^{commit}")
    git(store.root, "tag", "-a", "vbanana", "-m", "not a version", "v0.1.0^{commit}")
    out_dir = tmp_path / "assets"
    packed = CliRunner().invoke(main, ["pack", tag, "-C", str(store.root), "-o", str(out_dir)], catch_exceptions=False)
    assert packed.exit_code == 2, packed.output
    assert f"'{tag}' is not a t2s release: " in packed.output and why in packed.output
    assert not out_dir.exists() and not (store.root / "dist").exists()

    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    installed = CliRunner().invoke(main, ["install", f"{store.root}@{tag}"], catch_exceptions=False)
    assert installed.exit_code == 2, installed.output
    assert f"'{tag}' in {store.root} is not a t2s release: " in installed.output and why in installed.output
    assert list(project.iterdir()) == []

    # The latest release is still the default for both.
    assert CliRunner().invoke(main, ["pack", "-C", str(store.root), "-o", str(out_dir)]).exit_code == 0
    assert sorted(p.name for p in out_dir.iterdir())[0] == "SHA256SUMS" and (out_dir / "sheet-sums-0.1.0.zip").exists()
    assert CliRunner().invoke(main, ["install", str(store.root)]).exit_code == 0
