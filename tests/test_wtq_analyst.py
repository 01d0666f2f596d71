"""The agentic error analyst on WikiTableQuestions failures, through the suite hook
``Suite.analyst_workspace``: the scripted server over real HTTP, a real git repository,
the real sandbox and WTQ's own checker in a separate ``t2s check`` process, on the mini
WTQ suite of tests/_wtq_support.py (real format, invented tables)."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from t2s.agent.trajectory import Message, Step, ToolCallRecord, Trajectory, artifacts_prefix, trajectory_path
from t2s.analysis.analyze import AnalyzeSettings, analyze_run
from t2s.cli import main
from t2s.gitstore.store import GitStore, parse_trailers
from t2s.llm.client import LLM
from t2s.record.lessons import PatchRecord
from t2s.record.refs import patch_branch
from t2s.record.runs import RunManifest, RunRecord
from t2s.tasks import AnalystWorkspace, FixCheck, Suite, Task, load_suite
from t2s.tasks.wikitablequestions import GOLD_NAME, WikiTableQuestionsSuite
from t2s.testing import Reply, tool_call
from t2s.testing.pytest_plugin import scripted_role
from t2s.testing.simulated import agentic_analyst_responder, analyst_responder
from tests._wtq_support import make_wtq, write_answer

# nt-2 "which cities hosted before 2004?" -> Sydney | Atlanta; the agent also took 2004.
WRONG = ["Sydney", "Athens"]
AGENT_CODE = """import openpyxl
table = openpyxl.load_workbook("table.xlsx")["table"]
values = [row[1] for row in table.iter_rows(min_row=2, values_only=True) if row[0] >= 2000]
wb = openpyxl.Workbook()
ws = wb.active
ws.title = "answer"
for r, v in enumerate(values, start=1):
    ws.cell(r, 1, v)
wb.save("output.xlsx")
"""


def make_repo(tmp_path: Path) -> tuple[GitStore, str]:
    """A table-qa skill repo whose t2s.toml configures the mini suite as ``wtq``; and its skill dir."""
    from t2s.skill.repo import init_skill_repo

    suite_root = make_wtq(tmp_path / "wtq")
    repo = tmp_path / "skills"
    init = init_skill_repo(
        repo, seed="table-qa", install_git_hooks=False, suite=("wikitablequestions", str(suite_root))
    )
    toml = repo / "t2s.toml"
    toml.write_text(toml.read_text().replace('mode = "read-write"', 'mode = "off"'))
    return GitStore.discover(repo), init.skill_dir


def setup_run(tmp_path: Path, run: str = "w1", traj_id: str = "nt-2-a"):
    """A run with one failed WTQ trajectory (judged by the real checker), its output
    workbook and script in the run record."""
    from t2s.config import load_config

    store, skill_dir = make_repo(tmp_path)
    config = load_config(store.root / "t2s.toml")
    suite = load_suite("wtq", config, base_dir=store.root)
    record = RunRecord(store, run)
    record.create(RunManifest(run=run, s0=store.resolve("HEAD"), skill_dir=skill_dir, suite="wtq", split="evolve"))
    task = suite.task("nt-2")
    (tmp_path / "agent").mkdir()
    output = write_answer(tmp_path / "agent" / "output.xlsx", WRONG)
    verdict = suite.check(task, output)
    assert not verdict.passed
    report = verdict.report.model_dump(mode="json")
    report["output_path"] = "output.xlsx"
    messages = [
        Message(role="system", content="You are an agent with the table-qa skill."),
        Message(role="user", content=task.instruction),
        Message(
            role="assistant",
            content=None,
            tool_calls=[ToolCallRecord(id="c1", name="run_python", arguments=json.dumps({"code": AGENT_CODE}))],
        ),
        Message(role="tool", content="[run_python] ok (exit code 0) in 0.2 s\n(no output)", tool_call_id="c1"),
        Message(role="assistant", content=None, tool_calls=[ToolCallRecord(id="c2", name="finish", arguments="{}")]),
        Message(role="tool", content="Finished.", tool_call_id="c2"),
    ]
    traj = Trajectory(
        id=traj_id,
        task_id="nt-2",
        suite="wtq",
        split="evolve",
        instruction=task.instruction,
        answer_position=task.answer_position,
        skill_dir=skill_dir,
        s0=record.manifest().s0,
        model="agent-model",
        protocol="tools",
        protocol_used="tools",
        messages=messages,
        steps=[
            Step(
                index=1,
                turn=1,
                tool="run_python",
                arguments={"code": AGENT_CODE},
                observation="[run_python] ok (exit code 0)",
                exit_code=0,
            ),
            Step(index=2, turn=2, tool="finish", observation="Finished."),
        ],
        outputs=["output.xlsx"],
        scripts=[AGENT_CODE],
        check=report,
        verdict="failed",
        score=0.0,
        stop_reason="finished",
        turns=2,
    )
    prefix = artifacts_prefix(traj_id)
    record.write(
        {
            trajectory_path(traj_id): traj.to_json(),
            prefix + "output.xlsx": output.read_bytes(),
            prefix + "scripts/001.py": AGENT_CODE.encode(),
        },
        f"rollout {traj_id}",
    )
    return store, config, record


def analyze(store, config, srv, run="w1", **settings):
    llm = LLM(roles={"analyst": scripted_role(srv, model="analyst-model")}, env={})
    return analyze_run(store, config, run=run, settings=AnalyzeSettings.from_config(config, **settings), llm=llm)


# ---------------------------------------------------------------------- the suite hook
def test_the_wtq_analyst_workspace_holds_table_question_and_gold(tmp_path):
    suite = WikiTableQuestionsSuite("w", make_wtq(tmp_path / "wtq"))
    task = suite.task("nt-2")
    assert suite.has_analyst_workspace(task)
    space = suite.analyst_workspace(task, 1, tmp_path / "ws")
    assert isinstance(space, AnalystWorkspace)
    assert (space.inputs, space.gold, space.output_name) == (["table.xlsx", "question.txt"], [GOLD_NAME], "output.xlsx")
    # the inputs as the agent had them, the gold as the benchmark writes it
    table = openpyxl.load_workbook(tmp_path / "ws" / "table.xlsx")["table"]
    assert [c.value for c in table[1]] == ["Year", "City", "Attendance", "Code"] and table["B3"].value == "Sydney"
    assert (tmp_path / "ws" / "question.txt").read_text() == "which cities hosted before 2004?\n"
    assert json.loads((tmp_path / "ws" / GOLD_NAME).read_text()) == ["Sydney", "Atlanta"]
    assert space.check == FixCheck(suite=str((tmp_path / "wtq").resolve()), task_id="nt-2", case=1)
    assert "`gold_answer.json`" in space.guide.gold and "sheet `answer`" in space.guide.fix
    assert "golden" not in space.guide.model_dump_json()


class _WordsSuite(Suite):
    """A third-party suite written against the old contract: no gold file."""

    type = "words-test"

    @classmethod
    def detect(cls, path):
        return False

    def all_task_ids(self):
        return ["abc"]

    def task(self, task_id):
        return Task(id=task_id, instruction="Reverse it.", cases=[{"index": 1}])

    def render_prompt(self, task, workspace):
        return task.instruction

    def check(self, task, output_path, case=1, *, recalculate=None, lenient=None):
        raise AssertionError("not called")


def test_the_default_hook_needs_a_gold_file(tmp_path):
    from t2s.errors import T2SError

    suite = _WordsSuite("words", tmp_path)
    task = suite.task("abc")
    assert not suite.has_analyst_workspace(task)  # its failures get the single-call analyst
    with pytest.raises(T2SError, match="no gold for the analyst"):
        suite.analyst_workspace(task, 1, tmp_path / "ws")


def test_the_default_hook_lays_out_the_spreadsheetbench_workspace(tmp_path):
    from tests.test_analysts_support import make_suite

    suite = load_suite(make_suite(tmp_path / "suite"))
    task = suite.task("txt-1")
    assert suite.has_analyst_workspace(task)
    space = suite.analyst_workspace(task, 1, tmp_path / "ws")
    assert (space.inputs, space.gold, space.output_name) == (
        ["input.xlsx", "1_txt-1_init.xlsx"],
        ["golden.xlsx"],
        "output.xlsx",
    )
    assert (tmp_path / "ws" / "golden.xlsx").read_bytes() == task.cases[0].answer_path.read_bytes()
    assert (tmp_path / "ws" / "input.xlsx").read_bytes() == task.cases[0].input_path.read_bytes()
    assert space.check.lenient == suite.lenient and space.check.recalculate == suite.recalculate
    task.cases[0].answer_path.unlink()  # the suite's files vanished: a clear error, not a traceback
    from t2s.errors import T2SError

    with pytest.raises(T2SError, match=r"answer file .* is missing"):
        suite.analyst_workspace(task, 1, tmp_path / "ws2")


# ---------------------------------------------------------------------- the agentic analyst on WTQ
@pytest.mark.parametrize("protocol", ["tools", "text"])
def test_a_wtq_fix_that_passes_the_checker_is_validated_and_branched(tmp_path, scripted_server, protocol):
    store, config, record = setup_run(tmp_path)
    s0 = record.manifest().s0
    scripted_server.on(agentic_analyst_responder, role="analyst")
    summary = analyze(store, config, scripted_server, mode="error", analyst="agentic", protocol=protocol)
    assert (summary.analyzed, summary.accepted, summary.validated, summary.rejected) == (1, 1, 1, 0)

    patch = PatchRecord.model_validate(record.read_json("patches/0001.json"))
    assert patch.status == "accepted" and patch.validated and patch.analyst == "agentic"
    commit = store.rev_parse(patch_branch("w1", "0001"))
    assert commit == patch.commit and store.parents(commit) == [s0]
    trailers = dict(parse_trailers(store.commit_message(commit)))
    assert trailers["T2S-Validated"] == "yes" and trailers["T2S-Analyst"] == "agentic"
    assert trailers["T2S-Task"] == "nt-2" and trailers["T2S-Trajectory"] == "nt-2-a"
    # missing Atlanta and extra Athens: the lesson is about the question's condition, with no values
    assert patch.lessons[0].topic == "filtering" and "Atlanta" not in patch.diff

    data = record.read_json("analyses/nt-2-a.json")
    assert [(e["path"], e["passed"]) for e in data["evaluations"]] == [("output.xlsx", False), ("fixed.xlsx", True)]
    assert not any("single-call" in n for n in data["notes"]) and data["protocol"] == protocol
    first = scripted_server.requests_for("analyst")[0]
    system, user = first.messages[0]["content"], first.messages[1]["content"]
    assert "`table.xlsx`: the table the question is about" in system and "`question.txt`" in system
    assert "Compare the agent's output with the values in `gold_answer.json`" in system
    assert "golden" not in system and "input.xlsx" not in system
    for name in ("table.xlsx", "question.txt", "output.xlsx", "scripts/001.py", GOLD_NAME, "trajectory.json"):
        assert f"- `{name}`" in user
    # WTQ's checker, in its own process, judged both workbooks: the observation names the values
    observation = next(
        m["content"]
        for m in scripted_server.requests_for("analyst")[1].messages[2:]
        if "[evaluate_output]" in (m.get("content") or "")
    )
    assert "[evaluate_output] FAIL output.xlsx" in observation
    assert "missing gold value(s): 'Atlanta'" in observation and '"extra": ["Athens"]' in observation


def test_a_wrong_wtq_fix_is_refused_at_submit(tmp_path, scripted_server):
    store, config, record = setup_run(tmp_path)
    report = {
        "failure_causes": ["the condition was wrong"],
        "lessons": [{"text": "Apply every condition of the question to each row.", "topic": "filtering"}],
        "edits": [
            {
                "op": "add_section",
                "file": "SKILL.md",
                "heading": "## Lessons from trajectories",
                "body": "- Apply every condition of the question to each row.",
            }
        ],
    }
    wrong_fix = (
        'import openpyxl\nwb = openpyxl.Workbook()\nwb.active.title = "answer"\n'
        'wb.active["A1"] = "Sydney"\nwb.save("fixed.xlsx")\nprint("wrote fixed.xlsx")\n'
    )
    plan = [
        ("evaluate_output", {"path": "output.xlsx"}),
        ("run_python", {"code": wrong_fix}),
        ("evaluate_output", {"path": "fixed.xlsx"}),
        ("submit", report),
    ]

    def sloppy(request):  # a fix that only drops the extra value, then a submit, again and again
        turn = sum(1 for m in request.messages if m["role"] == "assistant")
        name, args = plan[min(turn, len(plan) - 1)]
        return Reply(tool_calls=[tool_call(name, args)])

    scripted_server.on(sloppy, role="analyst")
    summary = analyze(store, config, scripted_server, mode="error", analyst="agentic", max_turns=5)
    assert (summary.unvalidated, summary.accepted, summary.validated, summary.branches) == (1, 0, 0, 0)
    patch = PatchRecord.model_validate(record.read_json("patches/0001.json"))
    assert patch.status == "unvalidated" and not patch.validated and patch.branch is None
    assert store.rev_parse(patch_branch("w1", "0001")) is None
    data = record.read_json("analyses/nt-2-a.json")
    assert [(e["path"], e["passed"]) for e in data["evaluations"]] == [("output.xlsx", False), ("fixed.xlsx", False)]
    requests = scripted_server.requests_for("analyst")
    refused = requests[4].messages[-2]["content"]  # the answer to the first submit
    assert refused.startswith("[submit] refused: no `evaluate_output` call has passed yet")
    assert "missing gold value(s): 'Atlanta'" in requests[3].messages[-1]["content"]


def test_t2s_analyze_agentic_on_a_wtq_run_no_longer_falls_back(tmp_path, scripted_server):
    from tests.test_analyze_cli import model_flags

    store, _config, record = setup_run(tmp_path)
    scripted_server.on(analyst_responder, role="analyst")
    result = CliRunner().invoke(
        main,
        [
            "analyze",
            "-C",
            str(store.root),
            "--run",
            "w1",
            "--analyst",
            "agentic",
            "--json",
            *model_flags(scripted_server),
        ],
    )
    assert result.exit_code == 0, result.output + str(scripted_server.errors)
    data = json.loads(result.stdout)
    assert (data["analyzed"], data["accepted"], data["validated"]) == (1, 1, 1)
    assert [p["analyst"] for p in data["patches"]] == ["agentic"]
    assert not any("single-call" in n for n in record.read_json("analyses/nt-2-a.json")["notes"])
    log = store.commit_message(store.rev_parse("t2s/w1/patch/0001"))
    assert dict(parse_trailers(log))["T2S-Validated"] == "yes"
