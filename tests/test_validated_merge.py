"""The validation gate inside the merge tree (issue 15): every merge node is scored on
the val split, a node that loses to its best input is rejected and that input carried
up. Real git, the demo suite's real sandbox and checker, simulated models over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from typing import Any

from click.testing import CliRunner

from t2s.cli import main
from t2s.config import load_config
from t2s.demo import _configure
from t2s.demo.simulation import agent_responder, analyst_responder
from t2s.demo.tasks import write_suite
from t2s.gitstore.store import GitStore
from t2s.record.notes import read_eval_note
from t2s.skill.repo import init_skill_repo
from t2s.tasks import load_suite
from t2s.testing.simulated import HARMFUL_TRIGGER, harmful_merger_responder, merger_responder
from tests._runfixtures import add_patch, start_run

RUN = "v1"


def _repo(tmp_path, scripted_server, monkeypatch, merger=merger_responder, agent=agent_responder):
    write_suite(tmp_path / "tasks")
    repo = tmp_path / "my-skills"
    init_skill_repo(repo, seed="xlsx", install_git_hooks=False)
    _configure(repo)
    scripted_server.on(agent, role="agent")
    scripted_server.on(analyst_responder, role="analyst")
    scripted_server.on(merger, role="merger")
    monkeypatch.setenv("T2S_BASE_URL", scripted_server.base_url)
    monkeypatch.setenv("T2S_API_KEY_ENV", "T2S_TEST_API_KEY")
    monkeypatch.setenv("T2S_CACHE_MODE", "off")
    store = GitStore.discover(repo)
    store.commit_paths(["t2s.toml"], "Configure the demo suite")
    return repo, store


def _t2s(*args: str, code: int = 0):
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == code, result.output
    return result


def _rolled_out(tmp_path, scripted_server, monkeypatch, merger=merger_responder, agent=agent_responder):
    repo, store = _repo(tmp_path, scripted_server, monkeypatch, merger, agent)
    _t2s("rollout", "-C", str(repo), "--split", "evolve", "--run", RUN, "--limit", "6")
    _t2s("analyze", "-C", str(repo), "--run", RUN)
    return repo, store


def _report(store: GitStore, name: str) -> dict:
    return json.loads(store.read_blob(f"refs/t2s/runs/{RUN}", f"merges/{name}.json"))


def _skill(store: GitStore, rev: str) -> str:
    return store.read_blob(rev, "skills/xlsx/SKILL.md").decode()


def test_a_harmful_merge_is_rejected_and_its_best_input_carried_up(tmp_path, scripted_server, monkeypatch):
    repo, store = _rolled_out(tmp_path, scripted_server, monkeypatch, harmful_merger_responder("L1-02"))
    result = _t2s("merge", "-C", str(repo), "--run", RUN, "--fan-in", "2", "--json")
    summary = json.loads(result.stdout)

    assert summary["validate_split"] == "val"
    assert summary["rejected"] == ["L1-02"]
    bad = _report(store, "L1-02")
    assert bad["status"] == "merged" and bad["validation"]["verdict"] == "rejected"
    assert bad["validation"]["score"] < bad["validation"]["best_input"]
    # the rejected node keeps its commit, branch and note, for review
    assert store.rev_parse(bad["branch"]) == bad["commit"]
    assert HARMFUL_TRIGGER in _skill(store, bad["commit"])
    assert read_eval_note(store, bad["commit"]) is not None
    # the level above merged the best input in its place
    level2 = [_report(store, n) for n in summary["levels"][1]]
    carried = bad["inputs"][[i["label"] for i in bad["inputs"]].index(bad["validation"]["best_input_label"])]
    assert any(carried["commit"] in [i["commit"] for i in r["inputs"]] for r in level2)
    assert all(bad["commit"] not in [i["commit"] for i in r["inputs"]] for r in level2)
    candidate = summary["candidate"]
    assert HARMFUL_TRIGGER not in _skill(store, candidate)
    # never worse on val than any node below it
    passed = {n: s for n, s in summary["val_scores"].items() if n not in summary["rejected"]}
    assert summary["val_scores"][summary["levels"][-1][0]] >= max(passed.values())

    # nothing is lost: every patch is in the candidate or accounted for in the root report
    patches = store.refs(f"refs/heads/t2s/{RUN}/patch/")
    reachable = set(store.rev_list(candidate, [store.resolve("HEAD")]))
    root = _report(store, summary["levels"][-1][0])
    message = store.commit_message(root["commit"])
    for ref, commit in patches.items():
        number = ref.rsplit("/", 1)[-1]
        if commit not in reachable:
            assert number in summary["excluded"], number
            assert "rejected by validation" in summary["excluded"][number]
            assert f"patch {number}: under merge L1-02, rejected by validation" in message
    assert any(commit not in reachable for commit in patches.values())
    # every view reads the same state: review says the left-out patches are not merged
    review = json.loads(_t2s("review", "-C", str(repo), "--run", RUN, "--json").stdout)
    states = {row["patch"]: (row["state"], row["status"]) for row in review}
    for ref, commit in patches.items():
        number = ref.rsplit("/", 1)[-1]
        if commit not in reachable:
            assert states[number][0] == "rejected" and "rejected by validation" in states[number][1], states[number]
        else:
            assert states[number][0] == "merged", states[number]

    # t2s select explains the choice; t2s log shows the scores; the report marks the rejection
    selection = json.loads(_t2s("select", "-C", str(repo), "--run", RUN, "--json").stdout)
    assert selection["candidate"] == candidate and selection["split"] == "val"
    verdicts = {node["name"]: node["verdict"] for node in selection["nodes"]}
    assert verdicts["L1-02"] == "rejected" and list(verdicts.values()).count("rejected") == 1
    root_name = summary["levels"][-1][0]
    assert selection["selected"] == root_name and "passed validation" in selection["reason"]
    log = _t2s("log", "-C", str(repo), "--run", RUN).output
    assert any(line.strip().startswith("L1-02") and "rejected by validation: val" in line for line in log.splitlines())
    html = tmp_path / "report.html"
    _t2s("report", "-C", str(repo), "--run", RUN, "-o", str(html))
    page = html.read_text()
    assert 'class="node merge state-merged val-rejected" id="node-L1-02"' in page
    assert "Validation on val" in page and "rejected by validation" in page

    # the notes on merge commits serve any later evaluation on val (t2s eval, bisect)
    cached = json.loads(_t2s("eval", "-C", str(repo), bad["commit"], "--split", "val", "--json").stdout)
    assert cached["cached"] is True

    # a second merge of the same run evaluates nothing new: no agent episode runs
    agent_calls = sum(1 for r in scripted_server.requests if r.role == "agent")
    again = json.loads(_t2s("merge", "-C", str(repo), "--run", RUN, "--fan-in", "2", "--json").stdout)
    assert sum(1 for r in scripted_server.requests if r.role == "agent") == agent_calls
    assert again["candidate"] == candidate and again["rejected"] == ["L1-02"]


def test_a_validation_split_overlapping_the_held_out_split_is_refused(tmp_path, scripted_server, monkeypatch):
    repo, store = _repo(tmp_path, scripted_server, monkeypatch)
    config = repo / "t2s.toml"
    config.write_text(
        config.read_text().replace(
            'val = { file = "splits.json", key = "val" }', 'val = { ids = ["he-line-totals-1", "va-upper-names-1"] }'
        )
    )
    record = start_run(store, RUN)
    add_patch(store, record, 1, "Write computed values, not formulas.")
    result = _t2s("merge", "-C", str(repo), "--run", RUN, code=2)
    assert "splits 'val' and 'heldout' overlap on 1 task(s): he-line-totals-1" in result.output
    assert "Traceback" not in result.output
    assert store.rev_parse(f"refs/heads/t2s/{RUN}/candidate") is None


def test_a_validation_split_carved_from_evolve_leaves_its_patches_out(tmp_path, scripted_server, monkeypatch):
    repo, store = _repo(tmp_path, scripted_server, monkeypatch)
    config = repo / "t2s.toml"
    carved = 'val = { carve = "evolve", count = 3 }'
    config.write_text(config.read_text().replace('val = { file = "splits.json", key = "val" }', carved))
    store.commit_paths(["t2s.toml"], "Carve val from evolve")
    suite = load_suite("demo", load_config(config), base_dir=repo)
    val, evolve = suite.task_ids("val"), suite.task_ids("evolve")
    assert len(val) == 3 and [i for i in evolve if i in val] == val  # a subset, in evolve order
    assert load_suite("demo", load_config(config), base_dir=repo).task_ids("val") == val  # deterministic
    others = [i for i in evolve if i not in val and "upper" not in i][:2]
    tasks = [arg for task in [*val, *others] for arg in ("--task", task)]
    _t2s("rollout", "-C", str(repo), "--split", "evolve", "--run", RUN, *tasks)
    _t2s("analyze", "-C", str(repo), "--run", RUN)
    summary = json.loads(_t2s("merge", "-C", str(repo), "--run", RUN, "--json").stdout)
    from_val = {n: r for n, r in summary["excluded"].items() if "validation split" in r}
    assert from_val and summary["val_task_patches"] == len(from_val), summary
    assert all(any(task in reason for task in val) for reason in from_val.values())


def test_killing_the_merge_mid_validation_and_resuming_gives_the_same_candidate(tmp_path, scripted_server, monkeypatch):
    victim: dict[str, Any] = {"process": None, "val_requests": 0}

    def agent(request):
        process = victim["process"]
        if process is not None and "va-" in request.text:
            victim["val_requests"] += 1
            if victim["val_requests"] == 20:  # S0 is scored; the first node is being evaluated
                os.kill(process.pid, signal.SIGKILL)
        return agent_responder(request)

    repo, store = _rolled_out(tmp_path, scripted_server, monkeypatch, harmful_merger_responder("L1-02"), agent)
    twin = tmp_path / "twin-skills"
    shutil.copytree(repo, twin, symlinks=True)
    args = ["merge", "--run", RUN, "--fan-in", "2", "--json"]
    reference = json.loads(_t2s(*args, "-C", str(twin)).stdout)

    victim["process"] = subprocess.Popen(
        [sys.executable, "-m", "t2s", *args, "-C", str(repo)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    victim["process"].communicate()
    assert victim["process"].returncode == -signal.SIGKILL
    assert store.rev_parse(f"refs/heads/t2s/{RUN}/candidate") is None  # it died before the candidate moved
    victim["process"] = None

    resumed = json.loads(_t2s(*args, "-C", str(repo)).stdout)
    twin_store = GitStore.discover(twin)
    assert store.subtree(resumed["candidate"], "skills/xlsx") == twin_store.subtree(
        reference["candidate"], "skills/xlsx"
    )
    assert resumed["rejected"] == reference["rejected"] == ["L1-02"]
    assert resumed["val_scores"] == reference["val_scores"]
    assert resumed["reused"] > 0  # the merges recorded before the kill were kept


def test_a_budget_cap_stops_validation_cleanly_and_the_merge_resumes(tmp_path, scripted_server, monkeypatch):
    repo, store = _rolled_out(tmp_path, scripted_server, monkeypatch)
    config = repo / "t2s.toml"
    uncapped = config.read_text()
    config.write_text(uncapped.replace("# max_calls = 2000", "max_calls = 5"))
    stopped = CliRunner().invoke(main, ["merge", "-C", str(repo), "--run", RUN, "--fan-in", "2"])
    assert stopped.exit_code == 1 and "budget exhausted: max_calls=5" in stopped.output, stopped.output
    assert "Traceback" not in stopped.output
    assert store.rev_parse(f"refs/heads/t2s/{RUN}/candidate") is None
    config.write_text(uncapped)
    resumed = json.loads(_t2s("merge", "-C", str(repo), "--run", RUN, "--fan-in", "2", "--json").stdout)
    assert resumed["candidate"] and resumed["reused"] > 0
    assert set(resumed["val_scores"]) == {name for names in resumed["levels"] for name in names}
