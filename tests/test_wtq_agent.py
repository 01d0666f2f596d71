"""The agent harness on real WikiTableQuestions questions, with the real scripted
server: an agent that writes the right answer passes, a wrong one fails with a report
naming the missing and extra values; the final-answer action (tools and text); a
rollout records WTQ trajectories like any other."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from t2s.agent.actions import parse_final_answer, tool_specs
from t2s.agent.bundle import SkillBundle
from t2s.agent.episode import AgentOptions, run_agent
from t2s.llm.client import LLM
from t2s.testing import Reply, tool_call
from t2s.testing.pytest_plugin import scripted_role
from tests._wtq_support import needs_wtq
from tests.conftest import WIKITABLEQUESTIONS

pytestmark = needs_wtq

SEED = Path(__file__).resolve().parent.parent / "skill-repos" / "table-qa"

# nt-1: "in what city did piotr's last 1st place finish occur?" -> Bangkok, Thailand
# nt-9: "which players played the same position as ardo kreek?" -> Siim Ennemuist | Andri Aganits
WRITE = """import openpyxl
table = openpyxl.load_workbook("table.xlsx")["table"]
print(table.max_row, [c.value for c in table[1]])
wb = openpyxl.Workbook()
ws = wb.active
ws.title = "answer"
for r, v in enumerate({values!r}, start=1):
    ws.cell(r, 1, v)
wb.save("output.xlsx")
print("saved")
"""


@pytest.fixture(scope="module")
def suite():
    from t2s.tasks import load_suite

    return load_suite(WIKITABLEQUESTIONS)


@pytest.fixture
def skill():
    return SkillBundle.from_dir(SEED)


def turn_of(req) -> int:
    return sum(1 for m in req.messages if m["role"] == "assistant")


def episode(srv, suite, skill, tmp_path, task_id, protocol="tools"):
    llm = LLM(roles={"agent": scripted_role(srv, protocol=protocol)}, env={})

    async def main():
        try:
            return await run_agent(
                llm, suite, suite.task(task_id), skill, tmp_path / "work", options=AgentOptions(max_turns=4)
            )
        finally:
            await llm.aclose()

    return asyncio.run(main())


def plan_agent(plan):
    def respond(req):
        item = plan[min(turn_of(req), len(plan) - 1)]
        if isinstance(item, str):
            return item
        name, args = item
        return Reply(content=None, tool_calls=[tool_call(name, args)])

    return respond


def test_right_answer_written_by_code_passes(scripted_server, suite, skill, tmp_path):
    scripted_server.on(
        plan_agent(
            [("run_python", {"code": WRITE.format(values=["Bangkok, Thailand"])}), ("finish", {"summary": "done"})]
        ),
        role="agent",
    )
    traj = episode(scripted_server, suite, skill, tmp_path, "nt-1")
    assert traj.verdict == "passed", traj.error or traj.check
    assert traj.check["answers"]["gold"] == ["Bangkok, Thailand"] and traj.check["problems"] == []
    assert traj.outputs == ["output.xlsx"] and traj.answer_position == "'answer'!A:A"
    assert "saved" in traj.steps[0].observation
    task_prompt = traj.messages[1].content
    assert "in what city did piotr's last 1st place finish occur?" in task_prompt
    assert "The table: table.xlsx" in task_prompt and str(tmp_path) not in task_prompt
    assert "Bangkok" in task_prompt  # the table preview shows the data
    assert "# Answering questions about a table" in traj.messages[0].content
    finish = next(t for t in scripted_server.requests_for("agent")[0].tools if t["function"]["name"] == "finish")
    assert "answer" in finish["function"]["parameters"]["properties"]


def test_wrong_answer_fails_naming_missing_and_extra_values(scripted_server, suite, skill, tmp_path):
    scripted_server.on(
        plan_agent([("run_python", {"code": WRITE.format(values=["Siim Ennemuist", "Kert Toobal"])}), ("finish", {})]),
        role="agent",
    )
    traj = episode(scripted_server, suite, skill, tmp_path, "nt-9")
    assert traj.verdict == "failed" and traj.score == 0.0
    answers = traj.check["answers"]
    assert answers["missing"] == ["Andri Aganits"] and answers["extra"] == ["Kert Toobal"]
    assert any("'Andri Aganits'" in p for p in traj.check["problems"])
    assert any("'Kert Toobal'" in p for p in traj.check["problems"])
    # the recorded report, re-read as the analysts do (t2s.analysis.analysts.check_block), names them too
    from t2s.tasks import CheckReport

    text = CheckReport.model_validate(traj.check).render()
    assert "missing gold value(s): 'Andri Aganits'" in text and "extra predicted value(s): 'Kert Toobal'" in text


def test_finish_with_an_answer_argument(scripted_server, suite, skill, tmp_path):
    scripted_server.on(plan_agent([("finish", {"answer": "Andri Aganits | Siim Ennemuist"})]), role="agent")
    traj = episode(scripted_server, suite, skill, tmp_path, "nt-9")
    assert traj.verdict == "passed", traj.check
    assert traj.steps[0].tool == "finish" and traj.steps[0].arguments["answer"] == "Andri Aganits | Siim Ennemuist"
    assert "Answer recorded in output.xlsx" in traj.steps[0].observation
    assert traj.outputs == ["output.xlsx"] and (tmp_path / "work" / "output.xlsx").is_file()


def test_text_protocol_final_answer_line(scripted_server, suite, skill, tmp_path):
    scripted_server.on(
        plan_agent(
            [
                "Let me look.\n```python\nimport openpyxl\nprint(openpyxl.load_workbook('table.xlsx')['table'].max_row)\n```",
                "The last 1st place was in Bangkok.\n\nFINAL ANSWER: Bangkok, Thailand",
            ]
        ),
        role="agent",
    )
    traj = episode(scripted_server, suite, skill, tmp_path, "nt-1", protocol="text")
    assert traj.verdict == "passed", traj.check
    assert [s.tool for s in traj.steps] == ["run_python", "finish"]
    assert traj.steps[1].arguments == {"answer": "Bangkok, Thailand"}
    assert all(not r.tools for r in scripted_server.requests_for("agent"))


def test_auto_protocol_final_answer_without_tool_call(scripted_server, suite, skill, tmp_path):
    # a small model that answers directly on its first reply: auto switches to text and
    # the answer is recorded
    scripted_server.on(plan_agent(["**Final answer:** Warsaw"]), role="agent")
    traj = episode(scripted_server, suite, skill, tmp_path, "nt-1", protocol="auto")
    assert traj.verdict == "failed" and traj.protocol_used == "text"
    assert traj.check["answers"]["extra"] == ["Warsaw"]
    assert traj.check["answers"]["missing"] == ["Bangkok, Thailand"]


def test_tools_protocol_text_final_answer_after_tools(scripted_server, suite, skill, tmp_path):
    scripted_server.on(
        plan_agent([("run_python", {"code": "print(1)"}), "FINAL ANSWER: Bangkok, Thailand"]), role="agent"
    )
    traj = episode(scripted_server, suite, skill, tmp_path, "nt-1", protocol="tools")
    assert traj.verdict == "passed" and traj.stop_reason == "finished"


def test_parse_final_answer():
    assert parse_final_answer("x\nFINAL ANSWER: 12 | 13\n") == "12 | 13"
    assert parse_final_answer("Final Answer:\n- a\n- b\n\nthanks") == "- a\n- b"
    assert parse_final_answer("```python\nprint('FINAL ANSWER: no')\n```") is None
    assert parse_final_answer("FINISH") is None


def test_spreadsheet_suites_keep_the_plain_finish_tool():
    from t2s.tasks.spreadsheetbench import SpreadsheetBenchSuite

    assert SpreadsheetBenchSuite.final_answer_parameter is None
    finish = next(t for t in tool_specs() if t["function"]["name"] == "finish")
    assert "answer" not in finish["function"]["parameters"]["properties"]


def test_rollout_records_wtq_trajectories(scripted_server, tmp_path):
    from t2s.agent.trajectory import read_trajectories
    from t2s.config import load_config
    from t2s.gitstore.store import GitStore
    from t2s.record.runs import RunRecord
    from t2s.rollouts.rollout import rollout
    from t2s.skill.repo import init_skill_repo
    from t2s.tasks import load_suite

    repo = tmp_path / "skills"
    init_skill_repo(
        repo, seed="table-qa", install_git_hooks=False, suite=("wikitablequestions", str(WIKITABLEQUESTIONS))
    )
    toml = repo / "t2s.toml"
    toml.write_text(toml.read_text().replace('mode = "read-write"', 'mode = "off"'))
    config = load_config(toml)
    wtq = load_suite("wtq", config, base_dir=repo)
    golds = {wtq.task(i).instruction: wtq.task(i).meta["target"] for i in wtq.task_ids("evolve")[:2]}

    def respond(req):
        question = re.search(r"## Question\n(.+)\n", req.messages[1]["content"]).group(1)
        return Reply(content=None, tool_calls=[tool_call("finish", {"answer": " | ".join(golds[question])})])

    scripted_server.on(respond, role="agent")
    llm = LLM(config, roles={"agent": scripted_role(scripted_server, protocol="tools")}, env={})
    store = GitStore.discover(repo)
    summary = rollout(store, config, run="w1", llm=llm, limit=2)
    assert (summary.passed, summary.failed, summary.errored) == (2, 0, 0)
    record = RunRecord(store, "w1")
    assert record.manifest().suite == "wtq"
    for traj in read_trajectories(record):
        assert traj.verdict == "passed" and traj.suite == "wtq" and traj.split == "evolve"
        assert record.read(f"artifacts/{traj.id}/output.xlsx")[:2] == b"PK"


def test_finishing_without_an_answer_is_reminded_to_give_one(scripted_server, suite, skill, tmp_path):
    """Small models often finish with the answer only in a summary: the reminder must
    ask for the final answer, not for a workbook."""
    scripted_server.on(
        plan_agent(
            [
                ("finish", {"summary": "The city is Bangkok."}),
                ("finish", {"answer": "Bangkok, Thailand"}),
            ]
        )
    )
    traj = episode(scripted_server, suite, skill, tmp_path, "nt-1")
    assert traj.reminders == 1
    reminder = scripted_server.requests[1].messages[-1]["content"]
    assert "FINAL ANSWER" in reminder and "answer" in reminder
    assert "saves the finished workbook" not in reminder
    assert traj.verdict == "passed", traj.check
