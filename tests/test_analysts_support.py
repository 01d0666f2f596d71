"""Builders for the analyst tests: a small SpreadsheetBench-layout suite, a skill repo
pointed at it, and trajectories (with their output workbooks) written into a run record.

Tasks:

- ``txt-1``: copy A1:A3 into B1:B3 exactly (the texts end in a space). The wrong agent
  strips them, so every cell differs by whitespace.
- ``mul-2``: quantity times price into C2 (123 * 392 = 48216, a value the input does
  not show: a leak if a patch carries it). The wrong agent adds instead.
- ``h-901``: a held-out task (its id must never appear in a patch).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import openpyxl

from t2s.agent.trajectory import Message, Step, ToolCallRecord, Trajectory, artifacts_prefix, trajectory_path
from t2s.gitstore.store import GitStore
from t2s.record.runs import RunManifest, RunRecord

SKILL_DIR = "skills/xlsx"
NAMES = ["Kestrel Ridge ", "Otter Bay ", "Pine Hollow "]
TASKS = {
    "txt-1": {
        "instruction": "Copy each name in A1:A3 into column B exactly as written.",
        "answer_position": "B1:B3",
        "input": {"Sheet1": {f"A{i}": n for i, n in enumerate(NAMES, start=1)}},
        "golden": {
            "Sheet1": {
                **{f"A{i}": n for i, n in enumerate(NAMES, start=1)},
                **{f"B{i}": n for i, n in enumerate(NAMES, start=1)},
            }
        },
        "right": "for r in range(1, 4):\n    ws.cell(r, 2).value = ws.cell(r, 1).value\n",
        "wrong": "for r in range(1, 4):\n    ws.cell(r, 2).value = ws.cell(r, 1).value.strip()\n",
    },
    "mul-2": {
        "instruction": "Put quantity times price into C2.",
        "answer_position": "C2",
        "input": {"Sheet1": {"A1": "qty", "B1": "price", "C1": "total", "A2": 123, "B2": 392}},
        "golden": {"Sheet1": {"A1": "qty", "B1": "price", "C1": "total", "A2": 123, "B2": 392, "C2": 48216}},
        "right": "ws['C2'] = ws['A2'].value * ws['B2'].value\n",
        "wrong": "ws['C2'] = ws['A2'].value + ws['B2'].value\n",
    },
    "h-901": {
        "instruction": "Copy A1 into B1.",
        "answer_position": "B1",
        "input": {"Sheet1": {"A1": "x"}},
        "golden": {"Sheet1": {"A1": "x", "B1": "x"}},
        "right": "ws['B1'] = ws['A1'].value\n",
        "wrong": "ws['B1'] = 'y'\n",
    },
}
EVOLVE = ["txt-1", "mul-2"]
HELDOUT = ["h-901"]


def _book(sheets: dict[str, dict[str, object]]) -> openpyxl.Workbook:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, cells in sheets.items():
        ws = wb.create_sheet(name)
        for coord, value in cells.items():
            ws[coord] = value
    return wb


def make_suite(root: Path) -> Path:
    rows = []
    for tid, spec in TASKS.items():
        rows.append(
            {
                "id": tid,
                "instruction": spec["instruction"],
                "spreadsheet_path": f"spreadsheet/{tid}",
                "instruction_type": "Cell-Level Manipulation",
                "answer_position": spec["answer_position"],
            }
        )
        folder = root / "spreadsheet" / tid
        folder.mkdir(parents=True, exist_ok=True)
        _book(spec["input"]).save(folder / f"1_{tid}_init.xlsx")
        _book(spec["golden"]).save(folder / f"1_{tid}_golden.xlsx")
    (root / "dataset.json").write_text(json.dumps(rows))
    (root / "splits.json").write_text(json.dumps({"evolve": EVOLVE, "heldout": HELDOUT}))
    return root


def make_repo(tmp_path: Path) -> GitStore:
    """A skill repo (xlsx seed) whose t2s.toml configures the suite 'sheets'."""
    from t2s.skill.repo import init_skill_repo

    suite = make_suite(tmp_path / "suite")
    root = tmp_path / "skills-repo"
    init_skill_repo(root, seed="xlsx", install_git_hooks=False)
    toml = root / "t2s.toml"
    text = toml.read_text().replace('# suite = "sheets"', 'suite = "sheets"')
    text = text.replace('mode = "read-write"', 'mode = "off"')
    text += (
        f'\n[suites.sheets]\ntype = "spreadsheetbench"\npath = "{suite}"\n'
        '[suites.sheets.splits]\nevolve = { ids = ["txt-1", "mul-2"] }\nheldout = { ids = ["h-901"] }\n'
    )
    toml.write_text(text)
    return GitStore.discover(root)


def load_config_and_suite(store: GitStore):
    from t2s.config import load_config
    from t2s.rollouts.rollout import load_rollout_suite

    config = load_config(store.root / "t2s.toml")
    return config, load_rollout_suite(config, store, None)


def start_run(store: GitStore, run: str = "r1", suite: str = "sheets") -> RunRecord:
    record = RunRecord(store, run)
    record.create(RunManifest(run=run, s0=store.resolve("HEAD"), skill_dir=SKILL_DIR, suite=suite, split="evolve"))
    return record


def agent_code(task_id: str, wrong: bool) -> str:
    spec = TASKS[task_id]
    body = spec["wrong" if wrong else "right"]
    return (
        f"import openpyxl\nwb = openpyxl.load_workbook('1_{task_id}_init.xlsx')\nws = wb.worksheets[0]\n"
        f"{body}wb.save('output.xlsx')\n"
    )


def output_workbook(suite, task_id: str, wrong: bool) -> bytes:
    """What the agent's script writes (computed here, in-process)."""
    task = suite.task(task_id)
    wb = openpyxl.load_workbook(task.cases[0].input_path)
    ws = wb.worksheets[0]
    exec(TASKS[task_id]["wrong" if wrong else "right"], {"ws": ws})
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def add_trajectory(
    record: RunRecord,
    suite,
    task_id: str,
    *,
    wrong: bool,
    traj_id: str | None = None,
    tmp: Path | None = None,
    check: bool = True,
) -> Trajectory:
    """A finished agent episode on ``task_id`` (passed or failed by the real checker)."""
    traj_id = traj_id or task_id
    task = suite.task(task_id)
    code = agent_code(task_id, wrong)
    output = output_workbook(suite, task_id, wrong)
    report, verdict, score = None, "passed" if not wrong else "failed", 1.0 if not wrong else 0.0
    if check:
        path = (tmp or Path(record.store.root).parent) / f"out-{traj_id}.xlsx"
        path.write_bytes(output)
        result = suite.check(task, path, 1)
        report = result.report.model_dump(mode="json")
        report["output_path"] = "output.xlsx"
        verdict, score = ("passed" if result.passed else "failed"), result.score
    messages = [
        Message(role="system", content="You are an agent with the xlsx skill."),
        Message(role="user", content=task.instruction),
        Message(
            role="assistant",
            content=None,
            tool_calls=[ToolCallRecord(id="c1", name="run_python", arguments=json.dumps({"code": code}))],
        ),
        Message(role="tool", content="[run_python] ok (exit code 0) in 0.2 s\n(no output)", tool_call_id="c1"),
        Message(role="assistant", content=None, tool_calls=[ToolCallRecord(id="c2", name="finish", arguments="{}")]),
        Message(role="tool", content="Finished.", tool_call_id="c2"),
    ]
    traj = Trajectory(
        id=traj_id,
        task_id=task_id,
        suite="sheets",
        split="evolve",
        instruction=task.instruction,
        answer_position=task.answer_position,
        skill_dir=SKILL_DIR,
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
                arguments={"code": code},
                observation="[run_python] ok (exit code 0)",
                exit_code=0,
            ),
            Step(index=2, turn=2, tool="finish", observation="Finished."),
        ],
        outputs=["output.xlsx"],
        scripts=[code],
        check=report,
        verdict=verdict,
        score=score,
        stop_reason="finished",
        turns=2,
    )
    prefix = artifacts_prefix(traj_id)
    record.write(
        {
            trajectory_path(traj_id): traj.to_json(),
            prefix + "output.xlsx": output,
            prefix + "scripts/001.py": code.encode(),
        },
        f"rollout {traj_id}",
    )
    return traj


def add_trajectories(record: RunRecord, trajs: list[Trajectory]) -> None:
    """Many trajectories in one commit (fast), without artifacts."""
    record.write({trajectory_path(t.id): t.to_json() for t in trajs}, f"rollout {len(trajs)} trajectories")
