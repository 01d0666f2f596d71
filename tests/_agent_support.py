"""Scripted agents for the harness, rollout and import tests.

Three small cell-level tasks of SpreadsheetBench Verified (evolve split), each with the
openpyxl code that solves it (written by reading the task's input and golden files)
and a subtly wrong variant:

- 45300: cut each A-cell text before "FT" into column B (B1:B4). The golden values keep
  the trailing space, so the wrong variant (``.strip()``) fails on all four cells.
- 51431: the first "name, name" before ";" of A2 into B2.
- 40478: the text between the second space and " - " of A3 into B3 (B1:B3 checked).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from t2s.testing import Reply, tool_call
from tests.conftest import SPREADSHEETBENCH

needs_benchmark = pytest.mark.skipif(
    not (SPREADSHEETBENCH / "dataset.json").is_file(), reason=f"{SPREADSHEETBENCH} not available"
)

EVOLVE = ["45300", "51431", "40478"]
HELDOUT = ["49801"]

# A cheap look (stdlib only: starting openpyxl costs a few hundred ms per run).
INSPECT = """import re, zipfile
with zipfile.ZipFile("{inp}") as z:
    print(re.findall(r'<sheet [^>]*name="([^"]+)"', z.read("xl/workbook.xml").decode()))
"""

SOLUTIONS = {
    "45300": """import openpyxl
wb = openpyxl.load_workbook("{inp}")
ws = wb.worksheets[0]
for r in range(1, 5):
    text = ws.cell(r, 1).value
    ws.cell(r, 2).value = text[:text.find("FT")]{wrong}
wb.save("{out}")
print("saved", [ws.cell(r, 2).value for r in range(1, 5)])
""",
    "51431": """import openpyxl
wb = openpyxl.load_workbook("{inp}")
ws = wb.worksheets[0]
ws["B2"] = ws["A2"].value.split(";")[0]{wrong}
wb.save("{out}")
print("saved", ws["B2"].value)
""",
    "40478": """import openpyxl
wb = openpyxl.load_workbook("{inp}")
ws = wb.worksheets[0]
for r in range(1, 4):
    text = ws.cell(r, 1).value
    ws.cell(r, 2).value = text.split(" ", 2)[2].split(" - ")[0]{wrong}
wb.save("{out}")
print("saved")
""",
}
WRONG = {"45300": ".strip()", "51431": ".upper()", "40478": ".lower()"}


def task_of(req) -> tuple[str, str, str]:
    """(task id, input path, output path) from the task prompt of a request."""
    text = next(m["content"] for m in req.messages if m["role"] == "user")
    inp = re.search(r"Input workbook: (\S+)", text).group(1)
    out = re.search(r"Write the finished workbook to: (\S+)", text).group(1)
    task = re.search(r"\d+_(.+?)_init\.xlsx", inp).group(1)
    return task, inp, out


def turn_of(req) -> int:
    """0-based index of the reply being asked for."""
    return sum(1 for m in req.messages if m["role"] == "assistant")


def solution(req, wrong: bool = False) -> str:
    task, inp, out = task_of(req)
    return SOLUTIONS[task].format(inp=inp, out=out, wrong=WRONG[task] if wrong else "")


def tools_agent(wrong: bool = False, *, inspect: bool = True):
    """A responder: native tool calls (inspect, solve, finish)."""

    def respond(req):
        _task, inp, _ = task_of(req)
        plan = ([("run_python", {"code": INSPECT.format(inp=inp)})] if inspect else []) + [
            ("run_python", {"code": solution(req, wrong)}),
            ("finish", {"summary": "wrote the answer"}),
        ]
        name, args = plan[min(turn_of(req), len(plan) - 1)]
        return Reply(content=None, tool_calls=[tool_call(name, args)])

    return respond


def text_agent(wrong: bool = False, *, inspect: bool = True):
    """A responder: the plain-text protocol, as a small model writes it."""

    def respond(req):
        _, inp, _ = task_of(req)
        plan = ([f"Let me look at the workbook first.\n```python\n{INSPECT.format(inp=inp)}```"] if inspect else []) + [
            "Now I write the answer.\n\n```python\n" + solution(req, wrong) + "```\n",
            "The output is saved and checked.\n\nFINISH",
        ]
        return plan[min(turn_of(req), len(plan) - 1)]

    return respond


def make_skill_repo(root: Path, *, evolve=EVOLVE, heldout=HELDOUT, extra: str = "") -> Path:
    """A skill repository (xlsx seed) whose t2s.toml points at the benchmark."""
    from t2s.skill.repo import init_skill_repo

    init_skill_repo(root, seed="xlsx", install_git_hooks=False)
    toml = root / "t2s.toml"
    text = toml.read_text().replace('# suite = "sheets"', 'suite = "sheets"')
    text += (
        f'\n[suites.sheets]\ntype = "spreadsheetbench"\npath = "{SPREADSHEETBENCH}"\n'
        f"[suites.sheets.splits]\nevolve = {{ ids = {list(evolve)!r} }}\n"
        f"heldout = {{ ids = {list(heldout)!r} }}\n"
    ).replace("'", '"')
    text = text.replace('mode = "read-write"', 'mode = "off"')
    toml.write_text(text + extra)
    return root
