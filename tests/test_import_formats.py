"""The importers for other harnesses' traces: Trace2Skill run folders and labelled rows,
Codex CLI sessions, inspect_ai logs, OpenTelemetry GenAI spans and ATIF; ``--outputs``,
``--skill`` and the importer plug-in seam. Fixtures follow each format's documentation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from t2s.agent.trajectory import read_trajectories
from t2s.cli import main
from t2s.record import refs
from t2s.record.runs import RunRecord
from t2s.rollouts import importing
from t2s.rollouts.import_formats import (
    parse_atif,
    parse_codex,
    parse_otel,
    parse_trace2skill_dir,
    parse_trace2skill_jsonl,
)
from t2s.testing.simulated import analyst_responder, merger_responder
from tests.test_analysts_support import TASKS, _book, make_repo
from tests.test_analyze_cli import model_flags


def write_lines(path: Path, lines) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


def output_book(task: str, wrong: bool):
    """The output workbook a Trace2Skill agent wrote: right or wrong (stripped texts)."""
    spec = TASKS[task]
    cells = dict(spec["golden"]["Sheet1"])
    if wrong:
        cells = {
            k: (v.strip() + "!" if isinstance(v, str) and k.startswith(("B", "C")) else v) for k, v in cells.items()
        }
        if task == "mul-2":
            cells["C2"] = 515
    return _book({"Sheet1": cells})


CODE = "import openpyxl\nwb = openpyxl.load_workbook('in.xlsx')\nwb.save('out.xlsx')\n"


def chat_log_md(task_prompt: str, success: bool) -> str:
    """What ChatHistoryLogger writes in markdown (header, ## [n] ROLE sections, ## RESULT)."""
    messages = [
        ("SYSTEM", "You are a spreadsheet agent."),
        ("USER", f"Task: {task_prompt}"),
        ("ASSISTANT", f"Thought: I copy the names.\n```python\n{CODE}```"),
        ("USER", "Observation:\n```\nsaved\n```"),
        ("ASSISTANT", "ACTION: TASK_COMPLETE"),
    ]
    text = "# Chat History: cli_skill_preloaded_agent\n\n**Timestamp**: 2026-01-01T00:00:00\n\n---\n\n"
    for i, (role, content) in enumerate(messages, start=1):
        text += f"## [{i}] {role}\n\n{content}\n\n---\n\n"
    return text + f"## RESULT\n\n- Success: {success}\n- Total Turns: 2\n"


def make_trace2skill_run(root: Path, *, seeds=(None,)) -> Path:
    """An official run folder: results.json, logs/<agent>_<id>-<k>.md, <id>/<k>_<id>_output.xlsx."""
    verdicts = {"txt-1": False, "mul-2": True}
    for seed in seeds:
        base = root / f"seed_{seed}" if seed is not None else root
        results = []
        for task, success in verdicts.items():
            (base / task).mkdir(parents=True, exist_ok=True)
            output_book(task, wrong=not success).save(base / task / f"1_{task}_output.xlsx")
            (base / "logs").mkdir(parents=True, exist_ok=True)
            log = chat_log_md(TASKS[task]["instruction"], success)
            (base / "logs" / f"cli_skill_preloaded_agent_{task}-1.md").write_text(log)
            results.append(
                {
                    "id": task,
                    "instruction": TASKS[task]["instruction"],
                    "success": success,
                    "error": None,
                    "test_cases": [
                        {
                            "input_file": f"/data/spreadsheet/{task}/1_{task}_init.xlsx",
                            "output_file": f"/out/{task}/1_{task}_output.xlsx",
                            "success": success,
                            "agent_answer": "",
                            "turns": 2,
                            "error": None,
                        }
                    ],
                }
            )
        payload = {
            "agent_name": "cli_skill_preloaded_agent",
            "model": "qwen3.5-122b",
            "seed": seed,
            "total_instances": 2,
            "successful_instances": 1,
            "results": results,
        }
        (base / "results.json").write_text(json.dumps(payload))
    return root


# ----------------------------------------------------------------------------- trace2skill
def test_trace2skill_run_folder_gives_one_trajectory_per_case_with_outputs_and_verdicts(tmp_path):
    run = make_trace2skill_run(tmp_path / "run")
    parsed = parse_trace2skill_dir(run)
    assert parsed.problems == []
    by_task = {t.task_id: t for t in parsed.trajectories}
    assert by_task["txt-1"].verdict == "failed" and by_task["mul-2"].verdict == "passed"
    txt = by_task["txt-1"]
    assert txt.id == "txt-1-1" and txt.case == 1 and txt.model == "qwen3.5-122b"
    assert [m.role for m in txt.messages] == ["system", "user", "assistant", "user", "assistant"]
    assert txt.messages[2].content.endswith("```")  # the logger's '---' separator is not content
    assert txt.scripts == [CODE] and txt.steps[0].observation.startswith("Observation:")
    assert parsed.outputs[txt.id] == run / "txt-1" / "1_txt-1_output.xlsx"


def test_trace2skill_seed_folders_and_missing_or_bad_logs(tmp_path):
    run = make_trace2skill_run(tmp_path / "run", seeds=(7, 8))
    (run / "seed_8" / "logs" / "cli_skill_preloaded_agent_mul-2-1.md").write_text("just text, no sections\n")
    (run / "seed_7" / "logs" / "cli_skill_preloaded_agent_txt-1-1.md").unlink()
    parsed = parse_trace2skill_dir(run)
    assert sorted(t.id for t in parsed.trajectories) == ["mul-2-1-seed7", "txt-1-1-seed8"]
    problems = [str(p) for p in parsed.problems]
    assert any("task txt-1 case 1: no chat log found" in p and "seed_7" in p for p in problems)
    assert any(p.startswith(str(run / "seed_8" / "logs")) and "not a Trace2Skill chat log" in p for p in problems)


def test_trace2skill_folder_without_results_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception, match=r"no results\.json"):
        parse_trace2skill_dir(tmp_path / "empty")


# ----------------------------------------------------------------------------- trace2skill-jsonl
ROW = {
    "id": "txt-1",
    "label": "T-",
    "metadata": {"id": "txt-1", "instruction": TASKS["txt-1"]["instruction"], "answer_position": "B1:B3"},
    "trajectory": {
        "conversation": [
            "Copy each name in A1:A3 into column B exactly as written.",
            f"I will copy them.\n```python\n{CODE}```",
            "Execution result: saved",
            "Done. TASK_COMPLETE",
        ],
        "solution": "copied",
        "status": "completed",
        "test_cases": [{"input": "1_txt-1_init.xlsx", "passed": False}],
    },
    "eval": {"soft": 0.0, "hard": 0},
}


def test_trace2skill_jsonl_roles_by_position_label_and_test_cases(tmp_path):
    rows = write_lines(
        tmp_path / "rows.jsonl",
        [
            ROW,
            {**ROW, "id": "mul-2", "label": "T+", "metadata": {"id": "mul-2"}},
            "{broken",
            {**ROW, "id": "x", "label": "maybe"},
            {**ROW, "id": "y", "trajectory": {"conversation": ["only the task"]}},
            {**ROW, "id": "z", "trajectory": {"conversation": ["task", {"role": "assistant"}]}},
        ],
    )
    parsed = parse_trace2skill_jsonl(rows)
    assert [(t.id, t.verdict) for t in parsed.trajectories] == [("txt-1", "failed"), ("mul-2", "passed")]
    first = parsed.trajectories[0]
    assert [m.role for m in first.messages] == ["user", "assistant", "user", "assistant"]
    assert first.steps[0].observation == "Execution result: saved" and first.scripts == [CODE]
    assert first.meta["import"]["test_cases"] == ROW["trajectory"]["test_cases"]
    assert first.meta["import"]["eval"] == ROW["eval"] and first.meta["import"]["label"] == "T-"
    problems = [str(p) for p in parsed.problems]
    assert problems[0].startswith(f"{rows}:3: not valid JSON")
    assert problems[1] == f"{rows}:4: label 'maybe' is not T+ or T-"
    assert problems[2].startswith(f"{rows}:5: 'trajectory.conversation' must be a list of at least 2")
    assert problems[3] == f"{rows}:6: trajectory.conversation[1] is a dict, not a string"


# ----------------------------------------------------------------------------- codex
def test_codex_session_file(tmp_path):
    def line(kind, payload):
        return {"timestamp": "2025-10-29T00:59:38.317Z", "type": kind, "payload": payload}

    session = write_lines(
        tmp_path / "rollout-2025-10-29T00-59-38-abc.jsonl",
        [
            line("session_meta", {"id": "019a2d7a", "cwd": "/work/task", "cli_version": "0.46.0"}),
            line(
                "response_item",
                {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "<environment_context>cwd</environment_context>"}],
                },
            ),
            line(
                "response_item",
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Fill column B."}]},
            ),
            line("turn_context", {"cwd": "/work/task", "model": "gpt-5-codex"}),
            line("response_item", {"type": "reasoning", "summary": [], "encrypted_content": "x"}),
            line(
                "response_item",
                {
                    "type": "function_call",
                    "name": "shell",
                    "arguments": json.dumps({"command": ["bash", "-lc", "python fix.py"]}),
                    "call_id": "call_1",
                },
            ),
            line(
                "response_item",
                {
                    "type": "function_call_output",
                    "call_id": "call_1",
                    "output": json.dumps({"output": "Traceback", "metadata": {"exit_code": 1}}),
                },
            ),
            line(
                "response_item",
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Fixed."}]},
            ),
            line(
                "event_msg",
                {"type": "token_count", "info": {"total_token_usage": {"input_tokens": 900, "output_tokens": 40}}},
            ),
            {"type": "response_item"},
            line("response_item", {"type": "function_call_output", "output": "x"}),
        ],
    )
    parsed = parse_codex(session)
    (traj,) = parsed.trajectories
    assert traj.id == "019a2d7a" and traj.model == "gpt-5-codex" and traj.source == "import:codex"
    assert traj.instruction == "Fill column B."  # the environment boilerplate is left out
    assert [s.tool for s in traj.steps] == ["shell"] and traj.steps[0].exit_code == 1
    assert traj.scripts == ["# shell\npython fix.py"] and traj.steps[0].observation == "Traceback"
    assert traj.usage.prompt_tokens == 900 and traj.usage.completion_tokens == 40
    assert [str(p) for p in parsed.problems] == [
        f"{session}:10: a 'response_item' line needs a 'payload' object",
        f"{session}:11: a function_call_output item needs a 'call_id'",
    ]


# ----------------------------------------------------------------------------- ATIF
def test_atif_trajectory(tmp_path):
    doc = {
        "schema_version": "ATIF-v1.4",
        "session_id": "sess-42",
        "agent": {"name": "openhands", "version": "1.0.0", "model_name": "claude-sonnet-4-5"},
        "steps": [
            {"step_id": 1, "source": "system", "message": "You edit spreadsheets."},
            {"step_id": 2, "source": "user", "message": "Fill B2."},
            {
                "step_id": 3,
                "source": "agent",
                "message": "Running code.",
                "tool_calls": [{"tool_call_id": "c1", "function_name": "run_python", "arguments": {"code": CODE}}],
                "observation": {"results": [{"source_call_id": "c1", "content": "ok"}]},
                "metrics": {"prompt_tokens": 500, "completion_tokens": 30, "cached_tokens": 100},
            },
            {"step_id": 4, "source": "agent", "message": "Done."},
        ],
        "extra": {"task_id": "txt-1", "verdict": "failed"},
    }
    path = write_lines(
        tmp_path / "a.jsonl", [doc, {"schema_version": "v9", "steps": []}, {**doc, "steps": [{"source": "robot"}]}]
    )
    parsed = parse_atif(path)
    (traj,) = parsed.trajectories
    assert (traj.id, traj.task_id, traj.verdict, traj.model) == ("sess-42", "txt-1", "failed", "claude-sonnet-4-5")
    assert [s.tool for s in traj.steps] == ["run_python"] and traj.steps[0].observation == "ok"
    assert traj.usage.prompt_tokens == 500 and traj.scripts == [CODE]
    assert [str(p) for p in parsed.problems] == [
        f"{path}:2: not an ATIF trajectory (no 'schema_version' \"ATIF-v1.x\")",
        f"{path}:3: steps[0] needs a 'source' of system, user or agent",
    ]


# ----------------------------------------------------------------------------- OpenTelemetry
def _attr(key, value):
    kind = "intValue" if isinstance(value, int) else "stringValue"
    return {"key": key, "value": {kind: str(value) if kind == "intValue" else value}}


def _chat_span(trace, span, start, inputs, outputs, usage=(100, 10)):
    return {
        "traceId": trace,
        "spanId": span,
        "name": "chat gpt-4o",
        "startTimeUnixNano": str(start),
        "attributes": [
            _attr("gen_ai.operation.name", "chat"),
            _attr("gen_ai.request.model", "gpt-4o"),
            _attr("gen_ai.input.messages", json.dumps(inputs)),
            _attr("gen_ai.output.messages", json.dumps(outputs)),
            _attr("gen_ai.usage.input_tokens", usage[0]),
            _attr("gen_ai.usage.output_tokens", usage[1]),
        ],
    }


def test_otel_genai_spans_make_one_trajectory_per_trace(tmp_path):
    user = {"role": "user", "parts": [{"type": "text", "content": "Fill B2."}]}
    call = {
        "role": "assistant",
        "parts": [{"type": "tool_call", "id": "c1", "name": "run_python", "arguments": {"code": CODE}}],
        "finish_reason": "tool_call",
    }
    result = {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "ok"}]}
    done = {"role": "assistant", "parts": [{"type": "text", "content": "Done."}], "finish_reason": "stop"}
    export = {
        "resourceSpans": [
            {
                "resource": {"attributes": [_attr("service.name", "agent")]},
                "scopeSpans": [
                    {
                        "spans": [
                            _chat_span("t1", "s1", 1, [user], [call]),
                            _chat_span("t1", "s2", 2, [user, call, result], [done], usage=(200, 5)),
                            {"traceId": "t1", "spanId": "s3", "name": "http", "attributes": []},
                        ]
                    }
                ],
            }
        ]
    }
    path = write_lines(tmp_path / "spans.jsonl", [export, {"something": "else"}])
    parsed = parse_otel(path)
    (traj,) = parsed.trajectories
    assert traj.id == "t1" and traj.model == "gpt-4o" and traj.usage.prompt_tokens == 300 and traj.usage.calls == 2
    assert [m.role for m in traj.messages] == ["user", "assistant", "tool", "assistant"]
    assert traj.steps[0].tool == "run_python" and traj.steps[0].observation == "ok"
    assert [str(p) for p in parsed.problems] == [f"{path}:2: no 'resourceSpans': not an OTLP JSON trace export"]


# ----------------------------------------------------------------------------- inspect_ai
def test_inspect_eval_log_read_with_inspect_ais_reader(tmp_path):
    pytest.importorskip("inspect_ai", reason="the inspect extra (pip install 't2s[inspect]')")
    from inspect_ai.log import EvalConfig, EvalDataset, EvalLog, EvalSample, EvalSpec, write_eval_log
    from inspect_ai.model import ChatMessageAssistant, ChatMessageTool, ChatMessageUser
    from inspect_ai.scorer import Score
    from inspect_ai.tool import ToolCall

    messages = [
        ChatMessageUser(content="Fill B2."),
        ChatMessageAssistant(content="", tool_calls=[ToolCall(id="c1", function="python", arguments={"code": CODE})]),
        ChatMessageTool(content="ok", tool_call_id="c1"),
        ChatMessageAssistant(content="Done."),
    ]
    samples = [
        EvalSample(
            id="txt-1", epoch=1, input="Fill B2.", target="x", messages=messages, scores={"match": Score(value="I")}
        ),
        EvalSample(
            id="mul-2", epoch=1, input="Fill C2.", target="x", messages=messages, scores={"match": Score(value="C")}
        ),
        EvalSample(id="bare", epoch=1, input="Hi", target="x", messages=[ChatMessageUser(content="Hi")]),
    ]
    spec = EvalSpec(
        created="2026-01-01T00:00:00+00:00",
        task="sheets",
        dataset=EvalDataset(),
        model="openai/gpt-4o",
        config=EvalConfig(),
    )
    path = tmp_path / "log.eval"
    write_eval_log(EvalLog(eval=spec, samples=samples), str(path))
    parsed = importing.parse_file(path, "inspect")
    assert sorted((t.id, t.task_id, t.verdict) for t in parsed.trajectories) == [
        ("mul-2-e1", "mul-2", "passed"),
        ("txt-1-e1", "txt-1", "failed"),
    ]
    assert parsed.trajectories[0].steps[0].tool == "python" and parsed.trajectories[0].scripts == [CODE]
    (problem,) = [str(p) for p in parsed.problems]  # inspect_ai orders the samples; the number is its
    assert problem.startswith(f"{path}:") and problem.endswith(": the sample has no assistant message")
    bad = tmp_path / "bad.eval"
    bad.write_bytes(b"not a zip")
    assert "inspect_ai cannot read it" in str(importing.parse_file(bad, "inspect").problems[0])


# ----------------------------------------------------------------------------- the plug-in seam
def test_import_traces_from_python(tmp_path):
    import t2s

    store = make_repo(tmp_path)
    rows = write_lines(tmp_path / "rows.jsonl", [ROW])
    summary = t2s.import_traces(t2s.open_repo(store.root), [rows], fmt="trace2skill-jsonl", run="py")
    assert summary.imported == ["txt-1"] and summary.s0 == store.resolve("HEAD")


def test_importers_are_a_registry_plug_ins_can_join(tmp_path):
    assert {"trace2skill", "trace2skill-jsonl", "codex", "inspect", "otel", "atif", "claude-code"} <= set(
        importing.importers()
    )

    def parse_lines(path, *, verdict=None):
        return parse_trace2skill_jsonl(path, verdict=verdict)

    importing.register_importer(importing.Importer("my-rows", parse_lines))
    try:
        rows = write_lines(tmp_path / "r.jsonl", [ROW])
        assert [t.id for t in importing.parse_file(rows, "my-rows").trajectories] == ["txt-1"]
    finally:
        importing._IMPORTERS.pop("my-rows")
    with pytest.raises(Exception, match="unknown import format 'nope'"):
        importing.parse_file(rows, "nope")
    with pytest.raises(Exception, match="reads a run directory"):
        importing.parse_file(rows, "trace2skill")


# ----------------------------------------------------------------------------- into a run, end to end
def test_official_run_folder_to_a_candidate_without_a_script(tmp_path, scripted_server):
    """import (outputs attached and re-checked, S0 = the agent's skill) -> analyze -> merge."""
    scripted_server.on(analyst_responder, role="analyst")
    scripted_server.on(merger_responder, role="merger")
    store = make_repo(tmp_path)
    run = make_trace2skill_run(tmp_path / "official")
    # the source's label says mul-2 passed, but its workbook is wrong: t2s says so
    output_book("mul-2", wrong=True).save(run / "mul-2" / "1_mul-2_output.xlsx")
    agent_skill = tmp_path / "agent-skill"
    (agent_skill / "references").mkdir(parents=True)
    (agent_skill / "SKILL.md").write_text(
        "---\nname: xlsx\ndescription: The skill the agent saw.\n---\n# xlsx\n\nKeep cell text exactly as it is. See [notes](references/notes.md).\n"
    )
    (agent_skill / "references" / "notes.md").write_text("# Notes\n")
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "import",
            "-C",
            str(store.root),
            "--format",
            "trace2skill",
            str(run),
            "--run",
            "t2s-off",
            "--skill",
            str(agent_skill),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert sorted(data["imported"]) == ["mul-2-1", "txt-1-1"] and sorted(data["outputs"]) == ["mul-2-1", "txt-1-1"]
    assert [(d["trajectory"], d["source"], d["t2s"]) for d in data["disagreements"]] == [
        ("mul-2-1", "passed", "failed")
    ]
    record = RunRecord(store, "t2s-off")
    s0 = record.manifest().s0
    assert store.rev_parse(refs.imported_skill("t2s-off")) == s0 and store.parents(s0) == [store.resolve("HEAD")]
    assert b"Keep cell text exactly" in store.read_blob(s0, "skills/xlsx/SKILL.md")
    assert store.read_blob(s0, "skills/xlsx/references/notes.md") == b"# Notes\n"
    trajs = {t.id: t for t in read_trajectories(record)}
    assert trajs["txt-1-1"].outputs == ["output.xlsx"] and trajs["txt-1-1"].meta["t2s_check"] == {"verdict": "failed"}
    assert record.read("artifacts/txt-1-1/output.xlsx")[:2] == b"PK"

    result = runner.invoke(
        main,
        [
            "analyze",
            "-C",
            str(store.root),
            "--run",
            "t2s-off",
            "--mode",
            "error",
            "--json",
            *model_flags(scripted_server),
        ],
    )
    assert result.exit_code == 0, result.output + str(scripted_server.errors)
    patches = json.loads(result.stdout)["patches"]
    assert [p["trajectory"] for p in patches] == ["txt-1-1"] and patches[0]["status"] == "accepted"
    assert store.merge_base(f"t2s/t2s-off/patch/{patches[0]['patch']}", s0) == s0  # diffs against the agent's skill

    result = runner.invoke(main, ["merge", "-C", str(store.root), "--run", "t2s-off", *model_flags(scripted_server)])
    assert result.exit_code == 0, result.output + str(scripted_server.errors)
    assert store.rev_parse(refs.candidate_branch("t2s-off")) is not None


def test_labelled_rows_with_outputs_folder_and_a_revision_as_skill(tmp_path):
    store = make_repo(tmp_path)
    rows = write_lines(
        tmp_path / "rows.jsonl", [ROW, {**ROW, "id": "mul-2", "label": "T+", "metadata": {"id": "mul-2"}}]
    )
    outs = tmp_path / "outs"
    (outs / "txt-1").mkdir(parents=True)
    output_book("txt-1", wrong=False).save(outs / "txt-1" / "1_txt-1_output.xlsx")  # official naming
    output_book("mul-2", wrong=False).save(outs / "mul-2.xlsx")  # <id>.xlsx
    result = CliRunner().invoke(
        main,
        [
            "import",
            "-C",
            str(store.root),
            "--format",
            "trace2skill-jsonl",
            str(rows),
            "--run",
            "q",
            "--outputs",
            str(outs),
            "--skill",
            "HEAD",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "2 output workbook(s) attached" in result.output
    assert "disagree: txt-1 (task txt-1): source failed, t2s passed" in " ".join(result.output.split())
    record = RunRecord(store, "q")
    assert record.manifest().s0 == store.resolve("HEAD") and record.manifest().suite == "sheets"

    again = CliRunner().invoke(
        main,
        ["import", "-C", str(store.root), "--format", "trace2skill-jsonl", str(rows), "--run", "q", "--skill", "HEAD"],
    )
    assert again.exit_code == 2 and "--skill sets the S0 of a new run" in again.output
    bad = CliRunner().invoke(
        main,
        [
            "import",
            "-C",
            str(store.root),
            "--format",
            "trace2skill-jsonl",
            str(rows),
            "--run",
            "q2",
            "--skill",
            "no-such-rev",
        ],
    )
    assert bad.exit_code == 2 and "neither a folder nor a revision" in bad.output
    assert not RunRecord(store, "q2").exists()


# ----------------------------------------------------------------------------- seeing a run before analysis
def test_listing_show_report_log_and_review_of_an_imported_run(tmp_path):
    store = make_repo(tmp_path)
    run = make_trace2skill_run(tmp_path / "official")
    runner = CliRunner()
    result = runner.invoke(main, ["import", "-C", str(store.root), "--format", "trace2skill", str(run), "--run", "imp"])
    assert result.exit_code == 0, result.output

    listed = runner.invoke(main, ["trajectories", "-C", str(store.root), "--run", "imp", "--json"])
    assert listed.exit_code == 0, listed.output
    data = json.loads(listed.stdout)
    assert data["counts"] == {"total": 2, "passed": 1, "failed": 1, "errored": 0, "unlabelled": 0}
    rows = {r["id"]: r for r in data["trajectories"]}
    assert rows["txt-1-1"]["task"] == "txt-1" and rows["txt-1-1"]["verdict"] == "failed"
    assert rows["txt-1-1"]["turns"] == 2 and rows["txt-1-1"]["source"] == "import:trace2skill"
    assert rows["txt-1-1"]["outputs"] == ["output.xlsx"] and rows["txt-1-1"]["t2s_check"] == "failed"
    failed = runner.invoke(
        main, ["trajectories", "-C", str(store.root), "--run", "imp", "--verdict", "failed", "--json"]
    )
    assert [r["id"] for r in json.loads(failed.stdout)["trajectories"]] == ["txt-1-1"]
    table = runner.invoke(main, ["trajectories", "-C", str(store.root), "--run", "imp"])
    assert table.exit_code == 0 and "2 trajectories, 1 passed, 1 failed" in " ".join(table.output.split())

    shown = runner.invoke(main, ["show", "-C", str(store.root), "txt-1-1", "--run", "imp"])
    assert shown.exit_code == 0, shown.output
    assert "trajectory txt-1-1 of run imp: task txt-1 case 1, failed" in shown.output
    assert "# Trajectory txt-1-1" in shown.output
    missing = runner.invoke(main, ["show", "-C", str(store.root), "nope", "--run", "imp"])
    assert missing.exit_code != 0

    report = tmp_path / "report.html"
    result = runner.invoke(main, ["report", "-C", str(store.root), "--run", "imp", "-o", str(report)])
    assert result.exit_code == 0, result.output
    html = report.read_text()
    assert "2 trajectories: 1 passed, 1 failed" in html and "<td>txt-1-1</td>" in html

    log = runner.invoke(main, ["log", "-C", str(store.root), "--run", "imp"])
    assert log.exit_code == 0 and "t2s trajectories --run imp" in log.stderr
    assert store.resolve("HEAD")[:7] in log.stdout
    review = runner.invoke(main, ["review", "-C", str(store.root), "--run", "imp"])
    assert "t2s trajectories --run imp" in review.output
