"""`t2s eval`: notes, the cache keyed on the skill subtree, --exit-code-below."""

from __future__ import annotations

import json

from click.testing import CliRunner

from t2s.cli import main
from t2s.record.notes import read_eval_note
from tests.conftest import git
from tests.test_eval_support import HELDOUT, agent_calls, commit_skill, make_repo


def test_eval_writes_a_note_and_the_same_tree_costs_no_model_call(tmp_path, scripted_server):
    store = make_repo(tmp_path, scripted_server)
    runner = CliRunner()
    first = runner.invoke(main, ["eval", "HEAD", "-C", str(store.root), "--json"])
    assert first.exit_code == 0, first.output
    data = json.loads(first.output)
    assert data["cached"] is False
    record = data["record"]
    assert [t["task"] for t in record["tasks"]] == HELDOUT
    assert record["passed"] == 2 and record["score"] == 0.5  # the hard tasks fail without lessons
    assert record["model_calls"] == agent_calls(scripted_server) == 8
    assert record["agent"]["model"] == "agent-model" and "base_url" not in record["agent"]
    note = json.loads(git(store.root, "notes", "--ref", "t2s/eval", "show", "HEAD"))
    assert note["evals"][0]["skill_tree"] == store.subtree("HEAD", "skills/sheet-sums")
    assert note["evals"][0]["suite_hash"] and note["evals"][0]["t2s_version"]

    # A commit that changes nothing in the skill: served from the notes, no model call.
    tree = store.build_tree("HEAD", {"README.md": "changed\n"})
    other = store.commit(tree, [store.resolve("HEAD")], "docs only")
    again = runner.invoke(main, ["eval", other, "-C", str(store.root), "--json"])
    assert again.exit_code == 0, again.output
    data = json.loads(again.output)
    assert data["cached"] is True and data["source"] == store.resolve("HEAD")
    assert agent_calls(scripted_server) == 8
    copied = read_eval_note(store, other)
    assert copied.evals[0].cached_from == store.resolve("HEAD") and copied.evals[0].score == 0.5

    # --no-cache forces a run.
    forced = runner.invoke(main, ["eval", other, "-C", str(store.root), "--no-cache", "--quiet"])
    assert forced.exit_code == 0, forced.output
    assert agent_calls(scripted_server) == 16
    assert read_eval_note(store, other).evals[0].cached_from is None


def test_a_changed_skill_is_evaluated_again(tmp_path, scripted_server):
    store = make_repo(tmp_path, scripted_server)
    head = store.resolve("HEAD")
    better = commit_skill(store, [head], ["LESSON hard1", "LESSON hard2"], "lessons")
    runner = CliRunner()
    assert runner.invoke(main, ["eval", head, "-C", str(store.root), "-q"]).exit_code == 0
    out = runner.invoke(main, ["eval", better, "-C", str(store.root), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["record"]["score"] == 1.0
    assert agent_calls(scripted_server) == 16


def test_exit_code_below_for_git_bisect_run(tmp_path, scripted_server):
    store = make_repo(tmp_path, scripted_server)
    head = store.resolve("HEAD")
    runner = CliRunner()
    assert runner.invoke(main, ["eval", head, "-C", str(store.root), "--exit-code-below", "0.5", "-q"]).exit_code == 0
    assert runner.invoke(main, ["eval", head, "-C", str(store.root), "--exit-code-below", "0.75", "-q"]).exit_code == 1
    # A skill that does not lint cannot be evaluated: 125 tells git bisect to skip it.
    tree = store.build_tree(head, {"skills/sheet-sums/SKILL.md": "---\nname: Bad_Name\n---\nbody\n"})
    broken = store.commit(tree, [head], "break the frontmatter")
    skipped = runner.invoke(main, ["eval", broken, "-C", str(store.root), "--exit-code-below", "0.5"])
    assert skipped.exit_code == 125, skipped.output
    plain = runner.invoke(main, ["eval", broken, "-C", str(store.root)])
    assert plain.exit_code == 2 and "does not lint" in plain.output
    assert agent_calls(scripted_server) == 8
