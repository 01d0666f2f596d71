"""The agent harness against the real scripted HTTP server and real benchmark tasks."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from t2s.agent.actions import parse_text_actions
from t2s.agent.bundle import SkillBundle
from t2s.agent.episode import AgentOptions, run_agent
from t2s.agent.prompting import truncate
from t2s.agent.trajectory import load_trajectory
from t2s.llm.client import LLM
from t2s.testing import Reply, tool_call
from t2s.testing.pytest_plugin import scripted_role
from tests._agent_support import (
    SPREADSHEETBENCH,
    needs_benchmark,
    solution,
    text_agent,
    tools_agent,
    turn_of,
)

SEED_SKILL = Path(__file__).resolve().parent.parent / "skill-repos" / "xlsx"


@pytest.fixture(scope="module")
def suite():
    if not (SPREADSHEETBENCH / "dataset.json").is_file():
        pytest.skip("benchmark not available")
    from t2s.tasks import load_suite

    return load_suite(SPREADSHEETBENCH)


@pytest.fixture
def skill():
    return SkillBundle.from_dir(SEED_SKILL)


def episode(srv, suite, skill, tmp_path, task_id="45300", **options):
    llm = LLM(roles={"agent": scripted_role(srv, protocol=options.pop("role_protocol", "auto"))}, env={})

    async def main():
        try:
            return await run_agent(
                llm, suite, suite.task(task_id), skill, tmp_path / "work", options=AgentOptions(**options)
            )
        finally:
            await llm.aclose()

    return asyncio.run(main())


# ----------------------------------------------------------------------------- protocols
@needs_benchmark
def test_tools_protocol_correct_code_passes(scripted_server, suite, skill, tmp_path):
    scripted_server.on(tools_agent(), role="agent")
    traj = episode(scripted_server, suite, skill, tmp_path, protocol="tools")
    assert traj.verdict == "passed", traj.error or traj.check
    assert traj.stop_reason == "finished"
    assert traj.protocol == "tools" and traj.protocol_used == "tools" and traj.protocol_switch is None
    assert [s.tool for s in traj.steps] == ["run_python", "run_python", "finish"]
    assert traj.steps[0].exit_code == 0 and "Sheet1" in traj.steps[0].observation
    assert len(traj.scripts) == 2 and "openpyxl" in traj.scripts[1]
    assert traj.check["cells_checked"] == 4 and traj.check["mismatch_count"] == 0
    assert traj.outputs == ["output.xlsx"] and (tmp_path / "work" / "output.xlsx").is_file()
    assert traj.usage.calls == 3 and traj.usage.total_tokens > 0
    # the system prompt: skill body without frontmatter, the reference files listed
    system = traj.messages[0].content
    assert "# Working with Excel workbooks" in system and "description:" not in system
    assert "references/formulas.md" in system
    # the task prompt shows work-directory paths relative (stable cache keys)
    task_prompt = traj.messages[1].content
    assert "Input workbook: 1_45300_init.xlsx" in task_prompt and str(tmp_path) not in task_prompt
    # every request offered the tools; tool results went back as tool messages
    reqs = scripted_server.requests_for("agent")
    assert len(reqs) == 3 and all(r.tools for r in reqs)
    assert reqs[1].messages[-1]["role"] == "tool"
    # the record round-trips
    assert load_trajectory(traj.to_json()) == traj


@needs_benchmark
def test_tools_protocol_wrong_code_fails_with_the_mismatching_cells(scripted_server, suite, skill, tmp_path):
    scripted_server.on(tools_agent(wrong=True, inspect=False), role="agent")
    traj = episode(scripted_server, suite, skill, tmp_path, protocol="tools")
    assert traj.verdict == "failed" and traj.score == 0.0
    assert traj.check["mismatch_count"] == 4
    cells = {(m["sheet"], m["cell"]) for m in traj.check["mismatches"]}
    assert cells == {("Sheet1", f"B{r}") for r in range(1, 5)}
    first = traj.check["mismatches"][0]
    assert first["expected"] == "Transfer 27976614 KHALIL MORTEZA BAGHESTANI TAJALI "
    assert first["actual"] == "Transfer 27976614 KHALIL MORTEZA BAGHESTANI TAJALI"


@needs_benchmark
def test_text_protocol_passes_without_tools_in_the_requests(scripted_server, suite, skill, tmp_path):
    scripted_server.on(text_agent(), role="agent")
    traj = episode(scripted_server, suite, skill, tmp_path, task_id="51431", protocol="text")
    assert traj.verdict == "passed", traj.check
    assert traj.protocol_used == "text"
    assert [s.tool for s in traj.steps] == ["run_python", "run_python", "finish"]
    reqs = scripted_server.requests_for("agent")
    assert all(not r.tools for r in reqs)
    assert "READ_SKILL_FILE" in reqs[0].messages[0]["content"]  # the text protocol is explained
    assert reqs[1].messages[-1]["role"] == "user" and "exit code 0" in reqs[1].messages[-1]["content"]


@needs_benchmark
def test_text_protocol_wrong_code_fails(scripted_server, suite, skill, tmp_path):
    scripted_server.on(text_agent(wrong=True, inspect=False), role="agent")
    traj = episode(scripted_server, suite, skill, tmp_path, task_id="51431", protocol="text")
    assert traj.verdict == "failed"
    assert [(m["cell"], m["expected"], m["actual"]) for m in traj.check["mismatches"]] == [
        ("B2", "Nizghi, Righat", "NIZGHI, RIGHAT")
    ]


@needs_benchmark
def test_auto_falls_back_to_text_when_the_model_never_calls_tools(scripted_server, suite, skill, tmp_path):
    scripted_server.on(text_agent(), role="agent")
    traj = episode(scripted_server, suite, skill, tmp_path, task_id="40478")  # role protocol: auto
    assert traj.protocol == "auto" and traj.protocol_used == "text"
    assert traj.protocol_switch and traj.protocol_switch.startswith("turn 1")
    assert traj.verdict == "passed", traj.check
    reqs = scripted_server.requests_for("agent")
    assert reqs[0].tools and not reqs[1].tools and not reqs[2].tools
    # the switch is explained to the model together with the first observation
    assert "Tool calls are not available" in reqs[1].messages[-1]["content"]


@needs_benchmark
def test_auto_keeps_tools_when_the_model_uses_them(scripted_server, suite, skill, tmp_path):
    scripted_server.on(tools_agent(inspect=False), role="agent")
    traj = episode(scripted_server, suite, skill, tmp_path)
    assert traj.protocol_used == "tools" and traj.protocol_switch is None
    assert traj.verdict == "passed"


@needs_benchmark
def test_auto_tool_calls_written_as_text_are_understood(scripted_server, suite, skill, tmp_path):
    """Small models served without a tool parser write the call into the content."""

    def respond(req):
        if turn_of(req) == 0:
            call = {"name": "run_python", "arguments": {"code": solution(req)}}
            return "<tool_call>\n" + json.dumps(call) + "\n</tool_call>"
        return "<final>done</final>"

    scripted_server.on(respond, role="agent")
    traj = episode(scripted_server, suite, skill, tmp_path)
    assert traj.protocol_used == "text" and traj.verdict == "passed"
    assert traj.steps[-1].arguments == {"summary": "done"}


# ----------------------------------------------------------------------------- guards
@needs_benchmark
def test_finishing_without_output_gets_a_reminder(scripted_server, suite, skill, tmp_path):
    def respond(req):
        turn = turn_of(req)
        if turn == 0:
            return Reply(tool_calls=[tool_call("finish", {"summary": "all done"})])
        if turn == 1:
            return Reply(tool_calls=[tool_call("run_python", {"code": solution(req)})])
        return Reply(tool_calls=[tool_call("finish", {})])

    scripted_server.on(respond, role="agent")
    traj = episode(scripted_server, suite, skill, tmp_path, protocol="tools")
    assert traj.reminders == 1
    assert "does not exist yet" in traj.steps[0].observation and "output.xlsx" in traj.steps[0].observation
    assert traj.verdict == "passed" and traj.stop_reason == "finished"


@needs_benchmark
def test_reminders_are_bounded(scripted_server, suite, skill, tmp_path):
    scripted_server.on(Reply(tool_calls=[tool_call("finish", {})]), role="agent")
    traj = episode(scripted_server, suite, skill, tmp_path, protocol="tools", max_reminders=2)
    assert traj.reminders == 2 and len(scripted_server.requests) == 3
    assert traj.stop_reason == "finished" and traj.verdict == "failed"
    assert any("does not exist" in p for p in traj.check["problems"])


@needs_benchmark
def test_turn_budget_ends_the_episode(scripted_server, suite, skill, tmp_path):
    scripted_server.on(Reply(tool_calls=[tool_call("run_python", {"code": "print('looking')"})]), role="agent")
    traj = episode(scripted_server, suite, skill, tmp_path, protocol="tools", max_turns=3)
    assert traj.stop_reason == "max_turns" and traj.turns == 3
    assert len(scripted_server.requests) == 3
    assert "last reply" in scripted_server.requests[-1].messages[-1]["content"]
    assert traj.verdict == "failed" and traj.outputs == []


@needs_benchmark
def test_read_skill_file_and_bad_calls(scripted_server, suite, skill, tmp_path):
    replies = [
        Reply(
            tool_calls=[
                tool_call("read_skill_file", {"path": "references/formulas.md"}),
                tool_call("read_skill_file", {"path": "../../etc/passwd"}),
            ]
        ),
        Reply(tool_calls=[tool_call("run_python", "{not json"), tool_call("delete_everything", {})]),
        Reply(tool_calls=[tool_call("finish", {})]),
    ]
    scripted_server.script(replies, role="agent")
    traj = episode(scripted_server, suite, skill, tmp_path, protocol="tools", max_reminders=0)
    formulas = (SEED_SKILL / "references" / "formulas.md").read_text()
    assert traj.steps[0].observation.startswith("[references/formulas.md]")
    assert formulas.splitlines()[0] in traj.steps[0].observation
    assert "has no file" in traj.steps[1].observation and "references/formulas.md" in traj.steps[1].observation
    assert traj.steps[2].tool == "invalid" and "not valid JSON" in traj.steps[2].observation
    assert "unknown tool 'delete_everything'" in traj.steps[3].observation
    assert traj.verdict == "failed"  # no output, but the harness itself did not error


@needs_benchmark
def test_long_observations_are_cut_to_head_and_tail(scripted_server, suite, skill, tmp_path):
    code = "print('HEAD-MARK'); print('x' * 200000); print('TAIL-MARK')"
    scripted_server.script(
        [Reply(tool_calls=[tool_call("run_python", {"code": code})]), Reply(tool_calls=[tool_call("finish", {})])],
        role="agent",
    )
    traj = episode(scripted_server, suite, skill, tmp_path, protocol="tools", observation_limit=2000, max_reminders=0)
    obs = traj.steps[0].observation
    assert traj.steps[0].truncated and len(obs) < 2200
    assert "HEAD-MARK" in obs and "TAIL-MARK" in obs and "cut" in obs
    sent = scripted_server.requests[1].messages[-1]["content"]
    assert sent == obs


@needs_benchmark
def test_model_errors_give_an_errored_trajectory(scripted_server, suite, skill, tmp_path):
    scripted_server.fault("500", times=None)
    traj = episode(scripted_server, suite, skill, tmp_path, protocol="tools")
    assert traj.verdict == "errored" and traj.stop_reason == "error"
    assert "HTTP 500" in traj.error


@needs_benchmark
def test_text_protocol_nudges_when_no_action(scripted_server, suite, skill, tmp_path):
    def respond(req):
        turn = turn_of(req)
        if turn == 0:
            return "I would open the file with openpyxl."
        if turn == 1:
            return "```python\n" + solution(req) + "```"
        return "FINISH"

    scripted_server.on(respond, role="agent")
    traj = episode(scripted_server, suite, skill, tmp_path, protocol="text", task_id="51431")
    assert traj.steps[0].tool == "invalid" and traj.steps[0].error == "no action in the reply"
    assert "found no action" in scripted_server.requests[1].messages[-1]["content"]
    assert traj.verdict == "passed"


# ----------------------------------------------------------------------------- units
def test_parse_text_actions_is_lenient():
    acts = parse_text_actions(
        "Look:\n```python\nprint(1)\n```\n```bash\nls\n```\nREAD_SKILL_FILE: references/a.md\nFINISH"
    )
    assert [a.tool for a in acts] == ["run_python", "run_shell", "read_skill_file", "finish"]
    assert acts[0].arguments == {"code": "print(1)\n"} and acts[2].arguments == {"path": "references/a.md"}
    assert [a.tool for a in parse_text_actions("```\nx = 1\n```")] == ["run_python"]  # untagged fence
    assert parse_text_actions("```python\nprint('cut off')")[0].arguments["code"].startswith("print")
    assert [a.tool for a in parse_text_actions("read_skill_file: `references/b.md`.")] == ["read_skill_file"]
    assert parse_text_actions("I will FINISH later") == []  # only a FINISH line counts
    assert parse_text_actions("```text\nsome output\n```") == []
    assert parse_text_actions("<think>FINISH</think>thinking aloud") == []
    fin = parse_text_actions("<final>the answer is in B2</final>")
    assert fin[0].tool == "finish" and fin[0].arguments["summary"] == "the answer is in B2"
    # a FINISH inside code is code, not an action
    assert [a.tool for a in parse_text_actions("```python\n# FINISH\nprint(2)\n```")] == ["run_python"]


def test_truncate_keeps_head_and_tail():
    text, cut = truncate("a" * 50 + "b" * 50, 40)
    assert cut and text.startswith("a") and text.endswith("b") and "60 characters cut" in text
    assert truncate("short", 40) == ("short", False)


def test_skill_bundle_resolves_paths_leniently(skill):
    assert skill.resolve("references/formulas.md") == "references/formulas.md"
    assert skill.resolve("formulas.md") == "references/formulas.md"
    assert skill.resolve("skills/xlsx/references/formulas.md") == "references/formulas.md"
    assert skill.resolve("`./references/formulas`") == "references/formulas.md"
    assert skill.resolve("../secrets") is None
    assert skill.resolve("SKILL.md") == "SKILL.md"
