"""Analysts with the scripted server over real HTTP, a real git repo, the real sandbox and
the real checker (as a separate ``t2s check`` process) on a small generated suite."""

from __future__ import annotations

import json

import pytest

from t2s.agent.trajectory import Trajectory
from t2s.analysis.analyze import AnalyzeSettings, analyze_run
from t2s.gitstore.store import parse_trailers
from t2s.llm.client import LLM
from t2s.patches.diff import added_text
from t2s.record.lessons import PatchRecord
from t2s.record.refs import patch_branch
from t2s.testing import Reply, tool_call
from t2s.testing.pytest_plugin import scripted_role
from t2s.testing.simulated import (
    agentic_analyst_responder,
    analyst_facts,
    analyst_responder,
    success_analyst_responder,
)
from tests.test_analysts_support import (
    SKILL_DIR,
    add_trajectories,
    add_trajectory,
    load_config_and_suite,
    make_repo,
    start_run,
)

TRAILERS = (
    "T2S-Run",
    "T2S-Patch",
    "T2S-Task",
    "T2S-Trajectory",
    "T2S-Outcome",
    "T2S-Analyst",
    "T2S-Validated",
    "T2S-Model",
)


@pytest.fixture
def env(tmp_path):
    store = make_repo(tmp_path)
    config, suite = load_config_and_suite(store)
    return store, config, suite


def llm_for(srv, **settings):
    return LLM(roles={"analyst": scripted_role(srv, model="analyst-model", **settings)}, env={})


def run(store, config, srv, run_name="r1", llm=None, **settings):
    return analyze_run(
        store, config, run=run_name, settings=AnalyzeSettings.from_config(config, **settings), llm=llm or llm_for(srv)
    )


def patch_record(store, run_name, number) -> PatchRecord:
    from t2s.record.runs import RunRecord

    return PatchRecord.model_validate(RunRecord(store, run_name).read_json(f"patches/{number}.json"))


def analysis(store, run_name, traj_id) -> dict:
    from t2s.record.runs import RunRecord

    return RunRecord(store, run_name).read_json(f"analyses/{traj_id}.json")


# ---------------------------------------------------------------------- agentic error analyst
@pytest.mark.parametrize("protocol", ["tools", "text"])
def test_agentic_analyst_with_a_passing_fix_yields_an_accepted_branch(env, scripted_server, tmp_path, protocol):
    store, config, suite = env
    scripted_server.on(agentic_analyst_responder, role="analyst")
    record = start_run(store)
    add_trajectory(record, suite, "txt-1", wrong=True, tmp=tmp_path)
    s0 = record.manifest().s0

    summary = run(store, config, scripted_server, mode="error", analyst="agentic", protocol=protocol)
    assert (summary.analyzed, summary.accepted, summary.validated, summary.rejected) == (1, 1, 1, 0)

    patch = patch_record(store, "r1", "0001")
    assert patch.status == "accepted" and patch.validated and patch.analyst == "agentic"
    assert patch.branch == patch_branch("r1", "0001")
    commit = store.rev_parse(patch.branch)
    assert commit == patch.commit and store.parents(commit) == [s0]
    # `git diff S0 t2s/r1/patch/0001` shows exactly the patch
    assert store.apply_to_tree(s0, patch.diff) == store.tree_of(commit)
    assert added_text(store.diff(s0, commit)) == added_text(patch.diff)
    assert "spaces" in patch.diff
    trailers = dict(parse_trailers(store.commit_message(commit)))
    assert set(TRAILERS) <= set(trailers)
    assert trailers["T2S-Validated"] == "yes" and trailers["T2S-Trajectory"] == "txt-1"
    assert trailers["T2S-Outcome"] == "failed" and trailers["T2S-Model"] == "analyst-model"
    assert store.commit_message(commit).splitlines()[0] == patch.lessons[0].text
    assert patch.lessons[0].id == "p0001.1" and patch.lessons[0].support == ["txt-1"]
    assert patch.lessons[0].topic == "text-whitespace"

    # the evidence: the checker (a separate process) failed the agent's output, passed the fix
    data = analysis(store, "r1", "txt-1")
    assert [(e["path"], e["passed"]) for e in data["evaluations"]] == [("output.xlsx", False), ("fixed.xlsx", True)]
    assert data["protocol"] == protocol and data["status"] == "accepted"
    roles = [m["role"] for m in data["transcript"]]
    assert roles[:2] == ["system", "user"] and ("tool" in roles) == (protocol == "tools")
    assert data["report"]["lessons"][0]["topic"] == "text-whitespace"
    # the analyst never sees the gold value through the record or another patch, only its workspace
    first = scripted_server.requests_for("analyst")[0]
    assert "golden.xlsx" in first.text and "`scripts/001.py`" in first.text


def test_submit_is_refused_until_a_fix_passes_and_never_passing_is_unvalidated(env, scripted_server, tmp_path):
    store, config, suite = env
    record = start_run(store)
    add_trajectory(record, suite, "txt-1", wrong=True, tmp=tmp_path)
    report = {
        "failure_causes": ["stripped"],
        "lessons": [{"text": "Never strip text the task copies.", "topic": "text"}],
        "edits": [
            {"op": "append_to_section", "heading": "## Safe edits", "text": "- Never strip text the task copies."}
        ],
    }

    def stubborn(request):  # looks at the output once, then only submits
        if not any(m.get("role") == "tool" for m in request.messages):
            return Reply(tool_calls=[tool_call("evaluate_output", {"path": "output.xlsx"})])
        return Reply(tool_calls=[tool_call("submit", report)])

    scripted_server.on(stubborn, role="analyst")
    summary = run(store, config, scripted_server, mode="error", max_turns=3)
    assert (summary.unvalidated, summary.accepted, summary.branches, summary.validated) == (1, 0, 0, 0)
    patch = patch_record(store, "r1", "0001")
    assert patch.status == "unvalidated" and not patch.validated and patch.branch is None
    assert patch.diff  # the edits did render: only the evidence is missing
    assert store.rev_parse(patch_branch("r1", "0001")) is None
    second = scripted_server.requests_for("analyst")[2]
    assert "[submit] refused: no `evaluate_output` call has passed yet" in second.messages[-2]["content"]
    assert "This is your last reply" in second.messages[-1]["content"]

    # with include_unvalidated the branch is made, marked T2S-Validated: no
    start_run(store, "r2")
    from t2s.record.runs import RunRecord

    add_trajectory(RunRecord(store, "r2"), suite, "txt-1", wrong=True, tmp=tmp_path)
    summary = run(store, config, scripted_server, run_name="r2", mode="error", max_turns=3, include_unvalidated=True)
    assert (summary.unvalidated, summary.branches) == (1, 1)
    commit = store.rev_parse(patch_branch("r2", "0001"))
    assert dict(store.trailers(commit))["T2S-Validated"] == "no"


def test_the_turn_budget_forces_a_final_report(env, scripted_server, tmp_path):
    store, config, suite = env
    record = start_run(store)
    add_trajectory(record, suite, "txt-1", wrong=True, tmp=tmp_path)

    def dawdler(request):
        if "Your turn budget is used up" in request.last_user_text:
            data = analyst_facts(request)
            assert data["trajectory"] == "txt-1"
            return json.dumps(
                {
                    "failure_causes": ["?"],
                    "lessons": ["Read the references before coding."],
                    "edits": [
                        {
                            "op": "append_to_section",
                            "heading": "## Workflow",
                            "text": "6. Read the references before coding.",
                        }
                    ],
                }
            )
        return Reply(tool_calls=[tool_call("read_skill_file", {"path": "references/formulas.md"})])

    scripted_server.on(dawdler, role="analyst")
    run(store, config, scripted_server, mode="error", max_turns=2)
    patch = patch_record(store, "r1", "0001")
    assert patch.status == "unvalidated" and patch.lessons[0].text == "Read the references before coding."
    data = analysis(store, "r1", "txt-1")
    assert "turn budget used up: report forced" in data["notes"]
    assert data["turns"] == 2 and len(scripted_server.requests) == 3
    assert "[read_skill_file] references/formulas.md" in json.dumps(data["transcript"])


# ---------------------------------------------------------------------- edits: retries and guardrails
def test_malformed_edits_are_retried_with_the_reason_then_rejected(env, scripted_server, tmp_path):
    store, config, suite = env
    record = start_run(store)
    add_trajectory(record, suite, "txt-1", wrong=True, tmp=tmp_path, traj_id="a")
    bad = {
        "failure_causes": ["x"],
        "lessons": [{"text": "Keep text as written.", "topic": "text"}],
        "edits": [{"op": "frobnicate", "text": "x"}, {"op": "replace", "old": "no such text", "new": "y"}],
    }
    scripted_server.script(
        [
            json.dumps(bad),
            '{"edits": [{"op": "insert", "text": "no anchor"}]}',
            '{"edits": [{"op": "replace", "old": "no such text either", "new": "z"}]}',
        ],
        role="analyst",
    )
    summary = run(store, config, scripted_server, mode="error", analyst="single-call", edit_retries=2)
    assert summary.rejected == 1 and summary.rejected_by_reason == {"edits never applied": 1}
    patch = patch_record(store, "r1", "0001")
    assert patch.status == "rejected" and patch.attempts == 3 and patch.branch is None
    assert patch.reason.startswith("no valid patch after 3 attempts")
    assert "the text to replace occurs 0 times in SKILL.md" in patch.reason
    requests = scripted_server.requests_for("analyst")
    assert len(requests) == 3
    first_retry = requests[1].last_user_text
    assert "edit 1 (frobnicate)" in first_retry and "not a valid edit" in first_retry
    assert "edit 2 (replace) on SKILL.md: the text to replace occurs 0 times" in first_retry
    assert "anchor" in requests[2].last_user_text
    assert analysis(store, "r1", "a")["edit_failures"]


def test_a_retry_that_fixes_the_edits_is_accepted(env, scripted_server, tmp_path):
    store, config, suite = env
    record = start_run(store)
    add_trajectory(record, suite, "txt-1", wrong=True, tmp=tmp_path)
    bad = {
        "failure_causes": ["x"],
        "lessons": [{"text": "Keep text as written.", "topic": "text"}],
        "edits": [{"op": "append_to_section", "heading": "## Pitfall list", "text": "- Keep text as written."}],
    }
    good = {"edits": [{"op": "append_to_section", "heading": "## Safe edits", "text": "- Keep text as written."}]}
    scripted_server.script([json.dumps(bad), json.dumps(good)], role="analyst")
    summary = run(store, config, scripted_server, mode="error", analyst="single-call")
    assert summary.accepted == 1
    patch = patch_record(store, "r1", "0001")
    assert patch.attempts == 2 and patch.edits[0]["heading"] == "## Safe edits"
    assert dict(store.trailers(patch.commit))["T2S-Validated"] == "n/a"
    assert "no heading 'Pitfall list'" in scripted_server.requests[1].last_user_text


def test_an_edit_retry_answered_verbatim_again_is_asked_as_a_new_sample(env, scripted_server, tmp_path):
    """A greedy small model repeats its failed edits word for word: after the repeat the
    analyst's next request is a new sample (another seed, temperature above 0)."""
    store, config, suite = env
    record = start_run(store)
    add_trajectory(record, suite, "txt-1", wrong=True, tmp=tmp_path)
    same = {"edits": [{"op": "append_to_section", "heading": "## Pitfall list", "text": "- Keep text as written."}]}
    first = {"failure_causes": ["x"], "lessons": [{"text": "Keep text as written.", "topic": "text"}], **same}
    good = {"edits": [{"op": "append_to_section", "heading": "## Safe edits", "text": "- Keep text as written."}]}
    scripted_server.script([json.dumps(first), json.dumps(same), json.dumps(same), json.dumps(good)], role="analyst")
    summary = run(store, config, scripted_server, mode="error", analyst="single-call", edit_retries=3)
    assert summary.accepted == 1
    bodies = [r.body for r in scripted_server.requests_for("analyst")]
    assert [b["temperature"] for b in bodies] == [0.0, 0.0, 0.0, 0.7]
    assert bodies[3]["seed"] == bodies[0].get("seed", 0) + 1


@pytest.mark.parametrize("path", ["../x.md", "scripts/run.py", "/etc/passwd", "references/../../x.md"])
def test_edits_outside_the_skill_are_rejected(env, scripted_server, tmp_path, path):
    store, config, suite = env
    record = start_run(store)
    add_trajectory(record, suite, "txt-1", wrong=False, tmp=tmp_path)
    report = {
        "lessons": [{"text": "Inspect first.", "topic": "workflow"}],
        "edits": [{"op": "create_reference", "file": path, "content": "# x\n"}],
    }
    scripted_server.script([json.dumps(report)], role="analyst")
    summary = run(store, config, scripted_server, mode="success", edit_retries=0)
    assert summary.rejected_by_reason == {"unsafe path": 1}
    patch = patch_record(store, "r1", "0001")
    assert patch.status == "rejected" and "refusing path" in patch.reason and patch.branch is None
    assert store.refs("refs/heads/t2s/") == {}


def test_leaking_patches_are_rejected_with_the_reason(env, scripted_server, tmp_path):
    store, config, suite = env
    record = start_run(store)
    add_trajectory(record, suite, "mul-2", wrong=False, tmp=tmp_path, traj_id="gold")
    add_trajectory(record, suite, "mul-2", wrong=False, tmp=tmp_path, traj_id="heldout")
    add_trajectory(record, suite, "mul-2", wrong=False, tmp=tmp_path, traj_id="lesson")
    add_trajectory(record, suite, "mul-2", wrong=False, tmp=tmp_path, traj_id="visible")

    def leaky(request):
        traj = analyst_facts(request)["trajectory"]
        text = {
            "gold": "- The total for these orders is 48,216.",
            "heldout": "- Task h-901 copies A1 into B1.",
            "lesson": "- Multiply quantity by price.",
            "visible": "- Quantities such as 123 sit in column A.",
        }[traj]
        lesson = "The answer is 48216." if traj == "lesson" else "Multiply quantity by price."
        return json.dumps(
            {
                "lessons": [{"text": lesson, "topic": "formulas"}],
                "edits": [{"op": "append_to_section", "heading": "## Safe edits", "text": text}],
            }
        )

    scripted_server.on(leaky, role="analyst")
    summary = run(store, config, scripted_server, mode="success", edit_retries=0)
    assert summary.rejected_by_reason == {"leak": 3} and summary.accepted == 1
    by_traj = {p["trajectory"]: p for p in summary.patches}
    assert "task-specific value '48216'" in by_traj["gold"]["reason"]
    assert "held-out task id 'h-901'" in by_traj["heldout"]["reason"]
    assert by_traj["lesson"]["reason"].startswith("a lesson leaks")
    assert by_traj["visible"]["status"] == "accepted"  # 123 is in the input: not a leak


# ---------------------------------------------------------------------- many trajectories
def test_fifty_trajectories_give_fifty_branches_with_bounded_concurrency(env, scripted_server):
    store, config, _suite = env
    record = start_run(store)
    s0 = record.manifest().s0
    trajs = [
        Trajectory(
            id=f"t{i:03d}",
            task_id="txt-1",
            verdict="passed",
            instruction="Copy names.",
            skill_dir=SKILL_DIR,
            s0=s0,
            source="rollout",
        )
        for i in range(50)
    ]
    add_trajectories(record, list(reversed(trajs)))
    scripted_server.on(success_analyst_responder, role="analyst")
    scripted_server.latency = 0.02  # so that analyses overlap and the bound is really tested

    summary = run(store, config, scripted_server, mode="combined", concurrency=4)
    assert (summary.analyzed, summary.accepted, summary.branches, summary.rejected) == (50, 50, 50, 0)
    assert 2 <= scripted_server.peak_in_flight <= 4
    refs = store.refs("refs/heads/t2s/r1/patch/")
    assert sorted(refs) == [patch_branch("r1", f"{n:04d}") for n in range(1, 51)]
    for n, traj in enumerate(sorted(trajs, key=lambda t: t.id), start=1):
        commit = refs[patch_branch("r1", f"{n:04d}")]
        assert store.parents(commit) == [s0]
        assert store.apply_check(s0, store.diff(s0, commit)) is None  # applies cleanly to S0
        trailers = dict(parse_trailers(store.commit_message(commit)))
        assert set(TRAILERS) <= set(trailers)
        assert trailers["T2S-Patch"] == f"{n:04d}" and trailers["T2S-Trajectory"] == traj.id
        assert trailers["T2S-Analyst"] == "success" and trailers["T2S-Outcome"] == "passed"
    from t2s.record.runs import RunRecord

    manifest = RunRecord(store, "r1").manifest()
    assert manifest.stages["analyze"].status == "done" and manifest.stages["analyze"].summary["accepted"] == 50
    assert RunRecord(store, "r1").read_json("ledger/analyze.json")["totals"]["calls"] == 50

    # resumable: nothing left to do, no new model calls
    calls = len(scripted_server.requests)
    again = run(store, config, scripted_server, mode="combined", concurrency=4)
    assert (again.new, again.skipped, again.accepted) == (0, 50, 50) and len(scripted_server.requests) == calls


def test_a_budget_cap_stops_new_work_and_the_next_run_resumes(env, scripted_server):
    store, config, _suite = env
    record = start_run(store)
    s0 = record.manifest().s0
    add_trajectories(
        record,
        [Trajectory(id=f"t{i}", task_id="txt-1", verdict="passed", skill_dir=SKILL_DIR, s0=s0) for i in range(5)],
    )
    scripted_server.on(analyst_responder, role="analyst")
    capped = LLM(
        roles={"analyst": scripted_role(scripted_server, model="analyst-model")}, env={}, budget={"max_calls": 2}
    )
    first = run(store, config, scripted_server, llm=capped, concurrency=1)
    assert first.stopped and "max_calls=2" in first.stopped
    assert (first.analyzed, first.remaining) == (2, 3)
    from t2s.record.runs import RunRecord

    assert RunRecord(store, "r1").manifest().stages["analyze"].status == "failed"
    second = run(store, config, scripted_server, concurrency=2)
    assert (second.new, second.skipped, second.accepted, second.remaining) == (3, 2, 5, 0)
    assert sorted(store.refs("refs/heads/t2s/r1/patch/")) == [patch_branch("r1", f"{n:04d}") for n in range(1, 6)]
