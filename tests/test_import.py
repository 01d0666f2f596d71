"""``t2s import``: OpenAI chat logs, Claude Code sessions and t2s trajectories, bad lines included."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from t2s.agent.trajectory import Trajectory, read_trajectories
from t2s.cli import main
from t2s.gitstore.store import GitStore
from t2s.record.runs import RunRecord
from t2s.rollouts.importers import parse_claude_code, parse_openai_jsonl, parse_t2s
from t2s.skill.repo import init_skill_repo

TOOL_CONVERSATION = {
    "id": "conv-1",
    "task_id": "45300",
    "verdict": "failed",
    "model": "gpt-4o-mini",
    "usage": {"prompt_tokens": 120, "completion_tokens": 30},
    "messages": [
        {"role": "system", "content": "You are a spreadsheet agent."},
        {"role": "user", "content": "Cut the text before FT into column B."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "run_python", "arguments": json.dumps({"code": "print('hi')"})},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "hi"},
        {"role": "assistant", "content": [{"type": "text", "text": "Done."}]},
    ],
}
TEXT_CONVERSATION = [
    {"role": "user", "content": "Fill B2."},
    {"role": "assistant", "content": "```python\nimport openpyxl\n```"},
    {"role": "user", "content": "[run_python] ok (exit code 0)"},
    {"role": "assistant", "content": "FINISH"},
]


@pytest.fixture
def repo(tmp_path):
    init_skill_repo(tmp_path / "skills", seed="xlsx", install_git_hooks=False)
    return tmp_path / "skills"


def write_lines(path, lines):
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


# ----------------------------------------------------------------------------- openai-jsonl
def test_openai_jsonl_imports_good_lines_and_names_bad_ones(tmp_path):
    path = write_lines(
        tmp_path / "chats.jsonl",
        [
            TOOL_CONVERSATION,
            '{"messages": [ {"role": "user", "content": "hi"}',  # line 2: broken JSON
            {"messages": [{"role": "bot", "content": "hi"}]},  # line 3: unknown role
            "",  # blank lines are fine
            TEXT_CONVERSATION,  # line 5: a bare list of messages
            {"messages": [{"role": "user", "content": "hi"}], "verdict": "ok"},  # line 6
            {"messages": "not a list"},  # line 7
        ],
    )
    parsed = parse_openai_jsonl(path)
    assert [t.id for t in parsed.trajectories] == ["conv-1", "chats-L5"]
    problems = [str(p) for p in parsed.problems]
    assert problems[0].startswith(f"{path}:2: not valid JSON")
    assert (
        problems[1]
        == f"{path}:3: messages[0]: unknown role 'bot' (roles: system, developer, user, assistant, tool, function)"
    )
    assert problems[2].startswith(f"{path}:6: ")  # no assistant message (checked before the verdict)
    assert problems[3] == f"{path}:7: 'messages' must be a non-empty list of chat messages"
    tool, text = parsed.trajectories
    assert tool.task_id == "45300" and tool.verdict == "failed" and tool.model == "gpt-4o-mini"
    assert tool.source == "import:openai-jsonl" and tool.protocol_used == "tools"
    assert [s.tool for s in tool.steps] == ["run_python"] and tool.steps[0].observation == "hi"
    assert tool.scripts == ["print('hi')"] and tool.usage.total_tokens == 150
    assert tool.messages[-1].content == "Done."  # content parts joined
    assert text.verdict == "unlabelled" and text.protocol_used == "text"
    assert [s.tool for s in text.steps] == ["run_python", "finish"]
    assert text.steps[0].observation == "[run_python] ok (exit code 0)"


def test_openai_jsonl_verdict_option_overrides_and_bad_verdicts_are_reported(tmp_path):
    path = write_lines(
        tmp_path / "c.jsonl",
        [
            TOOL_CONVERSATION,
            {"messages": TEXT_CONVERSATION, "verdict": "great"},
        ],
    )
    assert [t.verdict for t in parse_openai_jsonl(path, verdict="passed").trajectories] == ["passed", "passed"]
    parsed = parse_openai_jsonl(path)
    assert str(parsed.problems[0]) == f"{path}:2: verdict 'great' is not one of passed, failed, unlabelled"


# ----------------------------------------------------------------------------- claude-code
def _cc(kind, content, **extra):
    line = {
        "type": kind,
        "sessionId": "sess-1",
        "uuid": f"u{len(extra)}",
        "timestamp": "2025-01-01T10:00:00Z",
        "cwd": "/work/task",
        "message": {"role": kind, "content": content},
    }
    line["message"].update(extra.pop("message", {}))
    line.update(extra)
    return line


CLAUDE_SESSION = [
    {"type": "summary", "summary": "Spreadsheet fix", "leafUuid": "x"},
    _cc("user", "Cut the text before FT into column B of input.xlsx."),
    _cc(
        "assistant",
        [{"type": "thinking", "thinking": "Let me look."}, {"type": "text", "text": "I'll inspect it."}],
        message={
            "id": "msg_1",
            "model": "claude-sonnet-4-5",
            "usage": {"input_tokens": 100, "output_tokens": 20, "cache_read_input_tokens": 50},
        },
    ),
    _cc(
        "assistant",
        [
            {
                "type": "tool_use",
                "id": "toolu_1",
                "name": "Bash",
                "input": {"command": "python fix.py", "description": "run it"},
            }
        ],
        message={
            "id": "msg_1",
            "model": "claude-sonnet-4-5",
            "usage": {"input_tokens": 100, "output_tokens": 20, "cache_read_input_tokens": 50},
        },
    ),
    '{"type": "assistant", "message": ',  # line 5: cut off
    _cc("user", [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "Traceback: boom", "is_error": True}]),
    _cc("assistant", "a sub-agent line", isSidechain=True),
    {"type": "file-history-snapshot", "messageId": "m", "snapshot": {}},
    _cc(
        "assistant",
        [
            {
                "type": "tool_use",
                "id": "toolu_2",
                "name": "Write",
                "input": {"file_path": "/work/task/fix.py", "content": "print(1)"},
            }
        ],
        message={"id": "msg_2", "model": "claude-sonnet-4-5", "usage": {"input_tokens": 10, "output_tokens": 5}},
    ),
    _cc(
        "user",
        [{"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "File written"}]}],
    ),
    _cc("assistant", [{"type": "text", "text": "Done: column B is filled."}], message={"id": "msg_3"}),
    {"type": "user", "message": {"role": "user", "content": 42}},  # line 12: content of the wrong type
]


def test_claude_code_session_becomes_one_trajectory(tmp_path):
    path = write_lines(tmp_path / "sess-1.jsonl", CLAUDE_SESSION)
    parsed = parse_claude_code(path, verdict="failed", task_id="45300")
    assert [str(p) for p in parsed.problems] == [
        f"{path}:5: not valid JSON: Expecting value: line 1 column 34 (char 33)",
        f"{path}:12: message.content is a int, not a string or a list of blocks",
    ]
    (traj,) = parsed.trajectories
    assert isinstance(traj, Trajectory)
    assert traj.id == "sess-1" and traj.task_id == "45300" and traj.verdict == "failed"
    assert traj.model == "claude-sonnet-4-5" and traj.source == "import:claude-code"
    roles = [m.role for m in traj.messages]
    assert roles == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    first = traj.messages[1]  # the two lines of msg_1 merged; thinking left out
    assert first.content == "I'll inspect it." and [c.name for c in first.tool_calls] == ["Bash"]
    assert [s.tool for s in traj.steps] == ["Bash", "Write"]
    assert traj.steps[0].observation == "Traceback: boom" and traj.steps[0].exit_code == 1
    assert traj.steps[1].observation == "File written"
    assert traj.scripts == ["# shell\npython fix.py"]
    assert traj.usage.prompt_tokens == 150 + 10 and traj.usage.completion_tokens == 25  # msg_1 counted once
    assert traj.timings.started_at == "2025-01-01T10:00:00Z"
    assert all("sub-agent" not in (m.content or "") for m in traj.messages)


# ----------------------------------------------------------------------------- t2s
def test_t2s_format_json_list_and_jsonl(tmp_path):
    traj = Trajectory(id="a", task_id="45300", verdict="passed")
    one = tmp_path / "one.json"
    one.write_text(traj.to_json())
    assert [t.id for t in parse_t2s(one).trajectories] == ["a"]
    lines = write_lines(
        tmp_path / "many.jsonl",
        [
            json.loads(traj.to_json()),
            {"id": "b", "task_id": "1", "schema_version": 99},
            {"id": "c"},
            "{oops",
            {**json.loads(traj.to_json()), "id": "d"},
        ],
    )
    parsed = parse_t2s(lines, verdict="failed")
    assert [t.id for t in parsed.trajectories] == ["a", "d"]
    assert all(t.verdict == "failed" and t.source == "import:t2s" for t in parsed.trajectories)
    assert parsed.trajectories[0].meta["import"]["original_source"] == "rollout"
    problems = [str(p) for p in parsed.problems]
    assert problems[0].startswith(f"{lines}:4: not valid JSON")
    assert problems[1].startswith(f"{lines}:2: trajectory schema_version 99 is newer")
    assert problems[2] == f"{lines}:3: not a valid trajectory: task_id: Field required"


# ----------------------------------------------------------------------------- CLI
def test_cli_import_into_a_run(repo, tmp_path):
    chats = write_lines(tmp_path / "chats.jsonl", [TOOL_CONVERSATION, "not json", TEXT_CONVERSATION])
    runner = CliRunner()
    result = runner.invoke(
        main, ["import", "-C", str(repo), "--format", "openai-jsonl", str(chats), "--run", "ext", "--verdict", "failed"]
    )
    assert result.exit_code == 0, result.output
    assert f"{chats}:2: not valid JSON" in result.stderr
    assert "imported" in result.stdout
    store = GitStore.discover(repo)
    record = RunRecord(store, "ext")
    manifest = record.manifest()
    assert manifest.s0 == store.resolve("HEAD") and manifest.skill_dir == "skills/xlsx"
    assert manifest.stages["import"].summary["imported"] == 2
    trajs = read_trajectories(record)
    assert sorted(t.id for t in trajs) == ["chats-L3", "conv-1"]
    assert all(t.verdict == "failed" and t.skill_dir == "skills/xlsx" for t in trajs)

    # importing the same file again adds nothing and says so
    result = runner.invoke(
        main, ["import", "-C", str(repo), "--format", "openai-jsonl", str(chats), "--run", "ext", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["imported"] == [] and sorted(data["existing"]) == ["chats-L3", "conv-1"]

    session = write_lines(tmp_path / "sess-1.jsonl", CLAUDE_SESSION)
    result = runner.invoke(
        main,
        [
            "import",
            "-C",
            str(repo),
            "--format",
            "claude-code",
            str(session),
            "--run",
            "ext",
            "--task-id",
            "45300",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["imported"] == ["sess-1"]
    assert len(read_trajectories(record)) == 3


def test_cli_import_of_only_bad_lines_fails(repo, tmp_path):
    bad = write_lines(tmp_path / "bad.jsonl", ["{", "[]"])
    result = CliRunner().invoke(main, ["import", "-C", str(repo), "--format", "openai-jsonl", str(bad), "--run", "ext"])
    assert result.exit_code == 1
    assert f"{bad}:1: not valid JSON" in result.stderr
    assert f"{bad}:2: 'messages' must be a non-empty list" in result.stderr
    assert "nothing imported" in result.stderr
    assert not RunRecord(GitStore.discover(repo), "ext").exists()


def test_cli_import_missing_file(repo, tmp_path):
    result = CliRunner().invoke(
        main, ["import", "-C", str(repo), "--format", "t2s", str(tmp_path / "nope.json"), "--run", "ext"]
    )
    assert result.exit_code == 2 and "no such file" in result.output
