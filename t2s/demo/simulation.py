"""A simulated agent whose behaviour depends on the skill text, for the offline demo.

This is not a language model. It is a scripted responder on the project's
OpenAI-compatible test server that reads the same prompts a model would. For each task
family of :mod:`t2s.demo.tasks` it knows a correct solution and the typical mistake,
and it makes the mistake unless the skill it was given (SKILL.md in the system prompt,
or a reference file it chose to read) states the matching lesson. Everything around
it is real: the sandbox runs its openpyxl code, the checker scores the workbooks,
analysts' patches are rendered, validated and committed, merges are octopus commits.

So the demo shows the *workflow*, not a model's learning: the simulated analysts
state the lesson of the mistake they were shown, and the simulated agent obeys
lessons once they are in the skill.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from t2s.testing.server import ChatRequest, Reply, tool_call
from t2s.testing.simulated import (
    _EVAL_JSON,
    _lesson_edits,
    _observations,
    analyst_facts,
)


@dataclass(frozen=True)
class DemoLesson:
    family: str
    topic: str
    text: str
    #: A phrase of the lesson whose presence in the skill makes the agent get it right.
    trigger: str
    #: Words in a reference file's name that make the agent read it for this family.
    reference_words: tuple[str, ...] = ()


LESSONS = {
    "line-totals": DemoLesson(
        "line-totals",
        "formulas",
        "Formulas written by openpyxl have no cached value until a spreadsheet program recalculates them: "
        "write the computed numbers into the answer cells, or recalculate before saving.",
        "computed numbers into the answer cells",
        ("formula",),
    ),
    "percent-share": DemoLesson(
        "percent-share",
        "percentages",
        "Percentages are fractions: store 0.25 for 25% and set a percent number format; never multiply by 100.",
        "never multiply by 100",
        ("percent",),
    ),
    "padded-lookup": DemoLesson(
        "padded-lookup",
        "lookups",
        "Normalise lookup keys on both sides (strip surrounding spaces) before matching; exported tables often pad text.",
        "lookup keys on both sides",
        ("lookup",),
    ),
    "due-dates": DemoLesson(
        "due-dates",
        "dates",
        "Write dates as datetime values, never as formatted strings; keep the column's date number format.",
        "never as formatted strings",
        ("date",),
    ),
}

SUCCESS_LESSON = DemoLesson(
    "upper-names",
    "verification",
    "Before finishing, reopen the saved output with data_only=True and print every answer cell.",
    "print every answer cell",
)

_FAMILY_PATTERNS = {
    "line-totals": "Line total column",
    "percent-share": "share of total sales",
    "padded-lookup": "price of the item named",
    "due-dates": "30 days after the Issued date",
    "upper-names": "in upper case",
    "merged-header": "Reorder column",
}

INSPECT = """import openpyxl
wb = openpyxl.load_workbook("{inp}")
for ws in wb.worksheets:
    print(ws.title, ws.max_row, ws.max_column)
    for row in ws.iter_rows(min_row=1, max_row=4, values_only=True):
        print(row)
"""

_HEAD = 'import datetime, openpyxl\nwb = openpyxl.load_workbook("{inp}")\n'
_TAIL = 'wb.save("{out}")\nprint("saved")\n'

#: family -> (correct code, mistaken code); {inp}/{out} are filled in.
SOLUTIONS = {
    "line-totals": (
        'ws = wb["Orders"]\nfor r in range(2, ws.max_row + 1):\n    ws.cell(r, 4).value = round(ws.cell(r, 2).value * ws.cell(r, 3).value, 2)\n',
        'ws = wb["Orders"]\nfor r in range(2, ws.max_row + 1):\n    ws.cell(r, 4).value = f"=B{{r}}*C{{r}}"\n',
    ),
    "percent-share": (
        'ws = wb["Regions"]\ntotal = sum(ws.cell(r, 2).value for r in range(2, ws.max_row + 1))\n'
        'for r in range(2, ws.max_row + 1):\n    ws.cell(r, 3).value = round(ws.cell(r, 2).value / total, 4)\n    ws.cell(r, 3).number_format = "0.0%"\n',
        'ws = wb["Regions"]\ntotal = sum(ws.cell(r, 2).value for r in range(2, ws.max_row + 1))\n'
        "for r in range(2, ws.max_row + 1):\n    ws.cell(r, 3).value = round(ws.cell(r, 2).value / total * 100, 2)\n",
    ),
    "padded-lookup": (
        'ws = wb["Lookup"]\nprices = {{str(ws.cell(r, 1).value).strip(): ws.cell(r, 2).value for r in range(2, 7)}}\n'
        "for r in range(2, 6):\n    ws.cell(r, 6).value = prices.get(str(ws.cell(r, 5).value).strip())\n",
        'ws = wb["Lookup"]\nprices = {{ws.cell(r, 1).value: ws.cell(r, 2).value for r in range(2, 7)}}\n'
        "for r in range(2, 6):\n    ws.cell(r, 6).value = prices.get(ws.cell(r, 5).value)\n",
    ),
    "due-dates": (
        'ws = wb["Invoices"]\nfor r in range(2, ws.max_row + 1):\n    ws.cell(r, 3).value = ws.cell(r, 2).value + datetime.timedelta(days=30)\n    ws.cell(r, 3).number_format = "yyyy-mm-dd"\n',
        'ws = wb["Invoices"]\nfor r in range(2, ws.max_row + 1):\n    ws.cell(r, 3).value = (ws.cell(r, 2).value + datetime.timedelta(days=30)).strftime("%Y-%m-%d")\n',
    ),
    "upper-names": (
        'ws = wb["People"]\nfor r in range(2, ws.max_row + 1):\n    ws.cell(r, 3).value = ws.cell(r, 1).value.upper()\n',
        None,
    ),
    "merged-header": (
        None,
        # Takes row 1 for the header, so every answer lands one row too high.
        'ws = wb["Stock"]\nfor r in range(2, ws.max_row):\n    ws.cell(r, 3).value = "yes" if ws.cell(r + 1, 2).value < 10 else "no"\n',
    ),
}


def family_of(text: str) -> str | None:
    for family, pattern in _FAMILY_PATTERNS.items():
        if pattern in text:
            return family
    return None


def paths_of(text: str) -> tuple[str, str]:
    inp = re.search(r"Input workbook: (\S+)", text)
    out = re.search(r"Write the finished workbook to: (\S+)", text)
    if inp is None or out is None:
        raise ValueError("not a demo task prompt: it names no input or output workbook")
    return inp.group(1), out.group(1)


def solution_code(family: str, inp: str, out: str, knows_lesson: bool) -> str:
    correct, wrong = SOLUTIONS[family]
    body = correct if (knows_lesson and correct) or wrong is None else wrong
    if body is None:
        raise ValueError(f"the demo has no solution for {family!r}")
    return (_HEAD + body + _TAIL).format(inp=inp, out=out)


def _conversation(request: ChatRequest) -> str:
    return "\n".join(str(m.get("content") or "") for m in request.messages)


def _skill_references(system: str) -> list[str]:
    return re.findall(r"references/[a-z0-9_-]+\.md", system)


def agent_responder(request: ChatRequest) -> Reply:
    """Plays the agent: inspect, maybe read a relevant reference, solve, finish."""
    system = str(request.messages[0].get("content") or "")
    task_text = next(str(m.get("content") or "") for m in request.messages if m.get("role") == "user")
    family = family_of(task_text)
    inp, out = paths_of(task_text)
    lesson = LESSONS.get(family) if family else None
    plan: list[tuple[str, dict]] = [("run_python", {"code": INSPECT.format(inp=inp)})]
    if lesson:
        wanted = [ref for ref in _skill_references(system) if any(w in ref for w in lesson.reference_words)]
        plan += [("read_skill_file", {"path": ref}) for ref in sorted(set(wanted))]
    turn = sum(1 for m in request.messages if m.get("role") == "assistant")
    if turn < len(plan):
        name, args = plan[turn]
        return Reply(tool_calls=[tool_call(name, args)])
    knows = lesson is not None and lesson.trigger in _conversation(request)
    if family == "upper-names":
        knows = True
    if turn == len(plan):
        if family is None:
            raise ValueError("not a demo task: its instruction matches no demo family")
        code = solution_code(family, inp, out, knows)
        return Reply(tool_calls=[tool_call("run_python", {"code": code})])
    return Reply(tool_calls=[tool_call("finish", {"summary": f"Solved the {family} task."})])


# ---------------------------------------------------------------------- analysts
def _family_of_task(task_id: str) -> str | None:
    match = re.match(r"^(?:ev|he)-(.+)-\d+$", task_id or "")
    return match.group(1) if match else None


def _lesson_report(request: ChatRequest, lesson: DemoLesson, causes: list[str]) -> dict:

    return {
        "failure_causes": causes,
        "lessons": [{"text": lesson.text, "topic": lesson.topic}],
        "edits": _lesson_edits(request, [lesson.text]),
    }


def analyst_responder(request: ChatRequest) -> Reply:
    """Plays the analysts: the agentic error analyst reproduces a passing fix with the
    family's correct code before it submits the family's lesson; the success analyst
    names the habit that made the run work."""

    system = str(request.messages[0].get("content") or "")
    facts = analyst_facts(request)
    family = _family_of_task(facts.get("task", ""))
    if "success analyst" in system:
        return Reply(content=_json(_lesson_report(request, SUCCESS_LESSON, [])))
    lesson = LESSONS.get(family) if family else None
    cause = f"the agent made the typical {family} mistake" if lesson else "the agent misread the sheet layout"
    if lesson is None or "## Your workspace" not in system:
        report = (
            _lesson_report(request, lesson, [cause])
            if lesson
            else {"failure_causes": [cause], "lessons": [], "edits": []}
        )
        return Reply(content=_json(report))
    observations = "\n".join(_observations(request))
    evaluations = _EVAL_JSON.findall(observations)
    if not evaluations:
        action = ("evaluate_output", {"path": facts.get("output_file") or "input.xlsx"})
    elif not any(path == "fixed.xlsx" for _, path, _ in evaluations):
        if "saved" not in observations:
            action = ("run_python", {"code": solution_code(lesson.family, "input.xlsx", "fixed.xlsx", True)})
        else:
            action = ("evaluate_output", {"path": "fixed.xlsx"})
    else:
        action = ("submit", _lesson_report(request, lesson, [cause]))
    return Reply(tool_calls=[tool_call(*action)])


def _json(data) -> str:
    import json

    return json.dumps(data)
