"""The offline demo end to end (run it alone with `pytest -m demo`)."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from rich.console import Console

from t2s.demo import run_demo
from t2s.gitstore.store import GitStore
from t2s.record.notes import read_eval_note

pytestmark = pytest.mark.demo


def test_demo_runs_the_whole_loop_and_releases_a_better_skill(tmp_path):
    out = io.StringIO()
    result = run_demo(tmp_path / "demo", Console(file=out, width=120))
    text = out.getvalue()
    assert "shows the workflow, not a model's learning" in text
    assert all(code == 0 for _, code, _ in result.steps), result.steps
    store = GitStore.discover(result.repo)

    # the merge tree: octopus merges whose parents are patch branches
    candidate = store.resolve("t2s/demo/candidate")
    patches = store.refs("refs/heads/t2s/demo/patch/")
    assert len(patches) == 10
    level1 = [c for ref, c in store.refs("refs/heads/t2s/demo/merge/").items() if "/L1-" in ref]
    assert len(level1) == 2 and all(len(store.parents(c)) == 5 for c in level1)
    assert store.parents(candidate) == level1

    # the release: a tag on main whose commit has a passing gate note; main moved
    assert result.tag == "v0.1.0"
    tagged = store.resolve("v0.1.0")
    # main is checked out in the demo repo, so release leaves the ref for the user to
    # fast-forward (t2s never touches a working tree); the demo does that step itself.
    assert store.resolve("main") == tagged
    assert store.parents(tagged)[1] == candidate
    note = read_eval_note(store, tagged)
    assert note is not None and note.has_passing_gate()
    assert note.gate.candidate_score > note.gate.baseline_score

    # the recurring lessons are in SKILL.md, the one-off in a linked reference
    skill = store.read_blob(tagged, "skills/xlsx/SKILL.md").decode()
    assert "never multiply by 100" in skill
    assert "never as formatted strings" not in skill
    assert "never as formatted strings" in store.read_blob(tagged, "skills/xlsx/references/dates.md").decode()

    # pack and report
    dist = result.repo / "dist"
    with zipfile.ZipFile(dist / "xlsx-0.1.0.zip") as archive:
        assert "xlsx/SKILL.md" in archive.namelist()
    assert json.loads((dist / "xlsx-0.1.0.eval.json").read_text())
    html = result.report.read_text()
    assert "<svg" in html and "L2-01" in html
