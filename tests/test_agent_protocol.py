"""The plain-text protocol through real episodes (the real scripted HTTP server, real
benchmark tasks, real code runs): the replies of issue 21 end, run and prompt as meant.

- a ``FINAL ANSWER:`` line inside an unclosed fence ends the episode with the answer;
- only a reply's first action runs, and the model is told the rest was ignored;
- an indented fence in a list runs, a fence that only shows output does not;
- prompts for final-answer suites ask for ``FINAL ANSWER:``, not a workbook;
- ``auto`` remembers a switch to text per endpoint and model for the rest of the run.
"""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest

from t2s.agent.bundle import SkillBundle
from t2s.agent.episode import AgentOptions, run_agent
from t2s.agent.protocol_memory import remembered_switch
from t2s.llm.client import LLM
from t2s.testing import Reply, tool_call
from t2s.testing.pytest_plugin import scripted_role
from tests._agent_support import needs_benchmark, solution, text_agent, turn_of
from tests._wtq_support import needs_wtq
from tests.conftest import SPREADSHEETBENCH, WIKITABLEQUESTIONS

SKILLS = Path(__file__).resolve().parent.parent / "skill-repos"

# nt-1: "in what city did piotr's last 1st place finish occur?" -> Bangkok, Thailand
WRITE_ANSWER = """import openpyxl
wb = openpyxl.Workbook()
ws = wb.active
ws.title = "answer"
for r, v in enumerate(["Bangkok, Thailand"], start=1):
    ws.cell(r, 1, v)
wb.save("output.xlsx")
print("saved")
"""


@pytest.fixture(scope="module")
def wtq():
    from t2s.tasks import load_suite

    return load_suite(WIKITABLEQUESTIONS)


@pytest.fixture(scope="module")
def sheets():
    from t2s.tasks import load_suite

    return load_suite(SPREADSHEETBENCH)


def run_episodes(srv, suite, skill_dir, tmp_path, task_ids, *, protocol="auto", model="scripted-model", **options):
    """Episodes on ``task_ids``, one after the other, with one client (as a run does)."""
    llm = LLM(roles={"agent": scripted_role(srv, model=model, protocol=protocol)}, env={})
    skill = SkillBundle.from_dir(SKILLS / skill_dir)

    async def main():
        try:
            return [
                await run_agent(
                    llm,
                    suite,
                    suite.task(t),
                    skill,
                    tmp_path / f"work{i}",
                    options=AgentOptions(max_turns=4, **options),
                )
                for i, t in enumerate(task_ids)
            ]
        finally:
            await llm.aclose()

    return asyncio.run(main())


def plan(replies):
    def respond(req):
        return replies[min(turn_of(req), len(replies) - 1)]

    return respond


# ----------------------------------------------------------------------------- final answers
@needs_wtq
def test_a_final_answer_inside_an_unclosed_fence_ends_the_episode(scripted_server, wtq, tmp_path):
    reply = "Let me check the question once more.\n\n```bash\ncat question.txt\nFINAL ANSWER: Bangkok, Thailand\n"
    scripted_server.on(plan([reply]), role="agent")
    (traj,) = run_episodes(scripted_server, wtq, "table-qa", tmp_path, ["nt-1"], protocol="text")
    assert traj.stop_reason == "finished" and traj.turns == 1
    assert [s.tool for s in traj.steps] == ["finish"]
    assert traj.steps[0].arguments == {"answer": "Bangkok, Thailand"}
    assert traj.verdict == "passed", traj.check
    assert traj.scripts == []  # the answer line never reached a shell
    assert traj.meta.get("ignored_actions") is None  # the episode ended: nothing to tell


@needs_wtq
def test_final_answer_suites_are_prompted_for_the_answer(scripted_server, wtq, tmp_path):
    scripted_server.on(plan(["I am not sure yet.", "FINAL ANSWER: Bangkok, Thailand"]), role="agent")
    (traj,) = run_episodes(scripted_server, wtq, "table-qa", tmp_path, ["nt-1"], protocol="text")
    assert traj.verdict == "passed", traj.check
    first, second = scripted_server.requests_for("agent")
    system, task = first.messages[0]["content"], first.messages[1]["content"]
    assert "FINAL ANSWER: <value>" in system and "FINISH" not in system
    assert "Save the finished workbook" not in task and "When you know the answer" in task
    reminder = second.messages[-1]["content"]
    assert "found no action" in reminder and "FINAL ANSWER: <value>" in reminder and "FINISH" not in reminder


@needs_benchmark
def test_workbook_suites_are_still_prompted_to_save_and_finish(scripted_server, sheets, tmp_path):
    scripted_server.on(plan(["I would open the file.", "FINISH"]), role="agent")
    run_episodes(scripted_server, sheets, "xlsx", tmp_path, ["51431"], protocol="text", max_reminders=0)
    first, second = scripted_server.requests_for("agent")
    assert "write this line:\n\nFINISH" in first.messages[0]["content"]
    assert "FINAL ANSWER" not in first.messages[0]["content"]
    assert "Save the finished workbook to output.xlsx." in first.messages[1]["content"]
    assert "a line `FINISH` when the output file is written and checked." in second.messages[-1]["content"]


# ----------------------------------------------------------------------------- one action per reply
@needs_benchmark
def test_only_the_first_action_of_a_reply_runs(scripted_server, sheets, tmp_path):
    def respond(req):
        if turn_of(req) == 0:
            return (
                "```python\n" + solution(req) + "```\n\n```bash\necho second > second.txt\n```\n\n"
                "READ_SKILL_FILE: references/formulas.md\n\nFINISH"
            )
        return "FINISH"

    scripted_server.on(respond, role="agent")
    (traj,) = run_episodes(scripted_server, sheets, "xlsx", tmp_path, ["51431"], protocol="text")
    assert [s.tool for s in traj.steps] == ["run_python", "finish"]
    assert not (tmp_path / "work0" / "second.txt").exists()  # the bash block never ran
    assert traj.meta["ignored_actions"] == 3 and traj.verdict == "passed", traj.check
    told = scripted_server.requests_for("agent")[1].messages[-1]["content"]
    assert "exit code 0" in told
    assert "Only the first action of a reply runs (run_python)" in told
    assert "the other 3 were ignored (run_shell, read_skill_file, finish)" in told


@needs_wtq
def test_an_indented_fence_runs_and_shown_output_does_not(scripted_server, wtq, tmp_path):
    reply = (
        "1. Write the answer sheet:\n\n"
        + textwrap.indent("```python\n" + WRITE_ANSWER + "```", "   ")
        + "\n\n2. It prints:\n\n```\nsaved\n```\n"
    )
    scripted_server.on(plan([reply, "The answer is written.\n\nFINISH"]), role="agent")
    (traj,) = run_episodes(scripted_server, wtq, "table-qa", tmp_path, ["nt-1"], protocol="text")
    assert [s.tool for s in traj.steps] == ["run_python", "finish"]
    assert traj.steps[0].exit_code == 0 and "saved" in traj.steps[0].observation
    assert traj.meta.get("ignored_actions") is None  # the output fence is not an action
    assert traj.verdict == "passed", traj.check


# ----------------------------------------------------------------------------- auto remembers
@needs_benchmark
def test_auto_remembers_the_switch_to_text_for_the_endpoint_and_model(scripted_server, sheets, tmp_path):
    scripted_server.on(text_agent(inspect=False), role="agent")
    first, second = run_episodes(scripted_server, sheets, "xlsx", tmp_path, ["40478", "51431"])
    assert first.protocol_switch and first.protocol_switch.startswith("turn 1:")
    assert second.protocol == "auto" and second.protocol_used == "text"
    assert second.protocol_switch.startswith("remembered from an earlier episode of this run (turn 1:")
    assert first.verdict == second.verdict == "passed"
    requests = scripted_server.requests_for("agent")
    assert len(requests) == 4
    assert requests[0].tools and not any(r.tools for r in requests[1:])
    # the second episode is told the text protocol from its system prompt, not by a switch note
    assert "READ_SKILL_FILE" in requests[2].messages[0]["content"]
    assert not any("Tool calls are not available" in m["content"] for m in requests[3].messages if m["content"])
    assert remembered_switch(scripted_server.base_url + "/", "scripted-model") is not None
    assert remembered_switch(scripted_server.base_url, "another-model") is None


@needs_benchmark
def test_a_model_that_calls_tools_keeps_them_in_later_episodes(scripted_server, sheets, tmp_path):
    def respond(req):
        if turn_of(req) == 0:
            return Reply(content=None, tool_calls=[tool_call("run_python", {"code": solution(req)})])
        return Reply(content=None, tool_calls=[tool_call("finish", {})])

    scripted_server.on(respond, role="agent")
    episodes = run_episodes(scripted_server, sheets, "xlsx", tmp_path, ["40478", "51431"])
    assert [t.protocol_used for t in episodes] == ["tools", "tools"]
    assert all(r.tools for r in scripted_server.requests_for("agent"))
    assert remembered_switch(scripted_server.base_url, "scripted-model") is None
