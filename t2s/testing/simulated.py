"""Simulated model roles for the scripted server: deterministic, and honest about it.

These responders stand in for real models in tests, benchmarks and the offline demo.
They read the same prompts a real model reads and answer in the same formats, so
everything around them (rendering, validation, git, records) runs for real. They show
the workflow, not a model's learning.
"""

from __future__ import annotations

import json
import re
from typing import Any

from t2s.tasks.wikitablequestions import GOLD_NAME
from t2s.testing.server import ChatRequest, Reply, tool_call

_LESSONS_BLOCK = re.compile(r"## Lessons to account for \(machine-readable\)\s*```json\n(.*?)```", re.S)
_MIN_SUPPORT = re.compile(r"Minimum support for SKILL\.md: (\d+)")
LESSONS_HEADING = "## Lessons from trajectories"
MORE_HEADING = "## More lessons"


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]+", " ", text.lower()).split())


def merger_inputs(request: ChatRequest) -> tuple[list[dict[str, Any]], int]:
    """The lessons (id, support, topic, text) and min_support a merge prompt carries."""
    text = request.text
    match = _LESSONS_BLOCK.search(text)
    if not match:
        raise ValueError("not a t2s merge prompt")
    support = _MIN_SUPPORT.search(text)
    return json.loads(match.group(1)), int(support.group(1)) if support else 2


_FILE_BLOCK = re.compile(r"^### (\S+\.md)\n\n````markdown\n(.*?)````", re.S | re.M)


def base_files(request: ChatRequest) -> dict[str, str]:
    """The skill files (path -> text) a merge prompt shows as its base."""
    base = request.text.split("## Inputs", 1)[0]
    return {path: text for path, text in _FILE_BLOCK.findall(base)}


def consolidate(lessons: list[dict[str, Any]], min_support: int, base: dict[str, str] | None = None) -> dict[str, Any]:
    """A correct merger answer: identical lessons folded, rare ones sent to references.

    Only lines the base files do not already hold are added, so the same answer works
    against S0 (parallel merges) and against the current skill (sequential baseline).
    """
    base = base or {}
    groups: dict[str, list[dict[str, Any]]] = {}
    for lesson in lessons:
        groups.setdefault(_norm(lesson["text"]), []).append(lesson)
    out_lessons: list[dict[str, Any]] = []
    skill_lines: list[str] = []
    references: dict[str, list[str]] = {}
    for members in groups.values():
        support = sorted({t for m in members for t in m["support"]})
        text = members[0]["text"].strip()
        topic = re.sub(r"[^a-z0-9-]+", "-", (members[0].get("topic") or "notes").lower()).strip("-") or "notes"
        placement = "skill" if len(support) >= min_support else "reference"
        out_lessons.append(
            {"text": text, "sources": [m["id"] for m in members], "placement": placement, "topic": topic}
        )
        if placement == "skill":
            skill_lines.append(f"- {text}")
        else:
            references.setdefault(topic, []).append(f"- {text}")
    skill_md = base.get("SKILL.md", "")
    edits: list[dict[str, Any]] = []
    new_skill_lines = [line for line in skill_lines if line not in skill_md]
    if new_skill_lines:
        op = "append_to_section" if LESSONS_HEADING in skill_md else "add_section"
        key = "text" if op == "append_to_section" else "body"
        edits.append({"op": op, "heading": LESSONS_HEADING, key: "\n".join(new_skill_lines) + "\n"})
    links = []
    for topic, lines in sorted(references.items()):
        path = f"references/{topic}.md"
        title = topic.replace("-", " ").capitalize()
        if path in base:
            fresh = [line for line in lines if line not in base[path]]
            if fresh:
                edits.append({"op": "append_to_reference", "file": path, "text": "\n".join(fresh) + "\n"})
            continue
        edits.append({"op": "create_reference", "file": path, "content": f"# {title}\n\n" + "\n".join(lines) + "\n"})
        links.append(f"- [{title}]({path}): rarer lessons about {topic.replace('-', ' ')}.")
    if links:
        op = "append_to_section" if MORE_HEADING in skill_md else "add_section"
        key = "text" if op == "append_to_section" else "body"
        edits.append({"op": op, "heading": MORE_HEADING, key: "\n".join(links) + "\n"})
    return {"lessons": out_lessons, "conflicts": [], "dropped": [], "edits": edits}


def merger_responder(request: ChatRequest) -> Reply:
    """Scripted-server responder playing a careful merger."""
    lessons, min_support = merger_inputs(request)
    return Reply(content=json.dumps(consolidate(lessons, min_support, base_files(request))))


# ---------------------------------------------------------------------------- analysts
# Simulated analysts (t2s.analysis.analysts): they read the "Facts (machine-readable)" block and
# the tool observations of the analyst prompts, and answer in the same formats a real
# model must use. The agentic one really works: it runs the checker on the agent's
# output, writes a fixed workbook with code in the sandbox, checks it, and submits (for
# a value-list suite such as WikiTableQuestions, whose checker report carries
# ``answers``, the fixed workbook is an answer sheet).

_FACTS_BLOCK = re.compile(r"## Facts \(machine-readable\)\s*```json\n(.*?)```", re.S)
_EVAL_JSON = re.compile(r"\[evaluate_output\] (PASS|FAIL) (\S+).*?```json\n(.*?)\n```", re.S)
_SKILL_MD_BLOCK = re.compile(r"^### SKILL\.md\n\n````markdown\n(.*?)````", re.S | re.M)


def analyst_facts(request: ChatRequest) -> dict[str, Any]:
    """The machine-readable facts an analyst prompt carries."""
    match = _FACTS_BLOCK.search(request.text)
    if not match:
        raise ValueError("not a t2s analyst prompt")
    return json.loads(match.group(1))


def _lesson_for(mismatches: list[dict[str, Any]], problems: list[str]) -> tuple[str, str, str]:
    """(lesson, topic, cause) from the first mismatch: general advice, no task values."""
    if problems and not mismatches:
        return (
            "Write the output workbook at the requested path with every sheet the task names, "
            "and reopen it to confirm it loads.",
            "output-file",
            "the output workbook was missing or unreadable",
        )
    first = mismatches[0] if mismatches else {}
    expected, actual = first.get("expected"), first.get("actual")
    if actual is None and expected is not None:
        return (
            "Write a value into every cell of the answer range and read the saved file back to confirm none is empty.",
            "verification",
            "cells of the answer range were left empty",
        )
    if isinstance(expected, str) and isinstance(actual, str):
        if expected.strip() == actual.strip():
            return (
                "Keep text exactly as the source has it, including leading and trailing spaces; do not "
                "strip text unless the task asks for it.",
                "text-whitespace",
                "the agent stripped spaces the expected text keeps",
            )
        if expected.lower() == actual.lower():
            return (
                "Keep the letter case of source text unless the task asks to change it.",
                "text-case",
                "the agent changed the letter case of the text",
            )
    if isinstance(expected, (int, float)) and isinstance(actual, str):
        return ("Write numbers as numbers, not as text.", "types", "numbers were written as text")
    return (
        "Check each computed value against the task's rule on a few rows before saving the workbook.",
        "verification",
        "computed values differ from the expected ones",
    )


def _lesson_edits(request: ChatRequest, lines: list[str]) -> list[dict[str, Any]]:
    match = _SKILL_MD_BLOCK.search(request.text)
    skill_md = match.group(1) if match else ""
    text = "\n".join(f"- {line}" for line in lines)
    if LESSONS_HEADING in skill_md:
        return [{"op": "append_to_section", "file": "SKILL.md", "heading": LESSONS_HEADING, "text": text}]
    return [{"op": "add_section", "file": "SKILL.md", "heading": LESSONS_HEADING, "body": text}]


def _report(request: ChatRequest, mismatches: list[dict[str, Any]], problems: list[str]) -> dict[str, Any]:
    lesson, topic, cause = _lesson_for(mismatches, problems)
    count = len(mismatches)
    causes = [f"{cause} ({count} cell{'s' if count != 1 else ''} of the answer range differed)"] if count else [cause]
    return {
        "failure_causes": causes,
        "lessons": [{"text": lesson, "topic": topic}],
        "edits": _lesson_edits(request, [lesson]),
    }


def single_call_analyst_responder(request: ChatRequest) -> Reply:
    """Plays the single-call error analyst: diagnosis from the trajectory's checker report."""
    data = analyst_facts(request)
    return Reply(content=json.dumps(_report(request, data.get("mismatches") or [], data.get("problems") or [])))


def success_analyst_responder(request: ChatRequest) -> Reply:
    """Plays the success analyst: the habit that made the run work, as one lesson."""
    analyst_facts(request)
    transcript = request.text.split("## The agent's trajectory", 1)[-1]
    if "data_only=True" in transcript:
        lesson, topic = (
            "Reopen the saved workbook with data_only=True and print the answer cells before finishing.",
            "verification",
        )
    elif "openpyxl" in transcript:
        lesson, topic = (
            "Load the input with openpyxl, change only the answer cells, and save to the output "
            "path so the other sheets stay intact.",
            "workflow",
        )
    else:
        lesson, topic = ("Inspect the input workbook's sheets and first rows before writing any code.", "workflow")
    report = {
        "failure_causes": [],
        "lessons": [{"text": lesson, "topic": topic}],
        "edits": _lesson_edits(request, [lesson]),
    }
    return Reply(content=json.dumps(report))


_FIX_CODE = """import shutil
import openpyxl
base = {base!r}
cells = {cells!r}
if cells:
    gold = openpyxl.load_workbook("golden.xlsx")
    wb = openpyxl.load_workbook(base)
    for sheet, cell in cells:
        if sheet not in wb.sheetnames:
            wb.create_sheet(sheet)
        wb[sheet][cell].value = gold[sheet][cell].value
    wb.save("fixed.xlsx")
else:
    shutil.copyfile("golden.xlsx", "fixed.xlsx")
print("wrote fixed.xlsx")
"""


# A value-list suite (WikiTableQuestions): the fix is an answer workbook written with code
# from the gold answer the workspace holds (the simulation shows the workflow only).
_ANSWER_FIX_CODE = """import json
import openpyxl
values = json.load(open({gold!r}, encoding="utf-8"))
wb = openpyxl.Workbook()
ws = wb.active
ws.title = "answer"
for row, value in enumerate(values, start=1):
    ws.cell(row, 1, value)
wb.save("fixed.xlsx")
print("wrote fixed.xlsx")
"""


def _answer_lesson(answers: dict[str, Any]) -> tuple[str, str, str]:
    """(lesson, topic, cause) from how a value-list answer differed: general advice, no values."""
    missing, extra = answers.get("missing") or [], answers.get("extra") or []
    if not answers.get("predicted"):
        return (
            "Write every answer value into column A of the answer sheet, one per row, and read the "
            "sheet back before finishing.",
            "answer-format",
            "the answer sheet held no values",
        )
    if extra and not missing:
        return (
            "Answer with exactly the values the question asks for: drop rows that fail any condition of the question.",
            "filtering",
            "the answer held values the question does not ask for",
        )
    if missing and not extra:
        return (
            "Collect every row that meets the question's condition: a question can have several answers.",
            "filtering",
            "the answer missed some of the values",
        )
    return (
        "Apply the question's condition to every row of the table in code, and print the matching "
        "rows before answering.",
        "filtering",
        "the answer gave other values than the question asks for",
    )


def _observations(request: ChatRequest) -> list[str]:
    """Tool results (native) or observation messages (text protocol), oldest first."""
    out = []
    for message in request.messages[2:]:
        if message.get("role") in ("tool", "user"):
            content = message.get("content") or ""
            out.append(content if isinstance(content, str) else json.dumps(content))
    return out


def agentic_analyst_action(request: ChatRequest) -> tuple[str, dict[str, Any]]:
    """The next (tool, arguments) of a careful agentic error analyst, from the conversation."""
    data = analyst_facts(request)
    obs = "\n".join(_observations(request))
    evaluations = _EVAL_JSON.findall(obs)
    base = data.get("output_file") or "input.xlsx"
    if not evaluations:
        return "evaluate_output", {"path": base}
    _status, _path, first_json = evaluations[0]
    first = json.loads(first_json)
    answers = first.get("answers")
    if not any(path == "fixed.xlsx" for _, path, _ in evaluations):
        if "wrote fixed.xlsx" not in obs:
            if answers is not None:
                return "run_python", {"code": _ANSWER_FIX_CODE.format(gold=_gold_file(data))}
            cells = [[m["sheet"], m["cell"]] for m in first.get("mismatches") or []]
            return "run_python", {"code": _FIX_CODE.format(base=base, cells=cells)}
        return "evaluate_output", {"path": "fixed.xlsx"}
    if answers is not None:
        return "submit", _answer_report(request, answers)
    return "submit", _report(request, first.get("mismatches") or [], first.get("problems") or [])


def _gold_file(facts: dict[str, Any]) -> str:
    """The gold answer file of a value-list workspace (WikiTableQuestions' name)."""

    if GOLD_NAME not in (facts.get("workspace") or []):
        raise ValueError(f"the workspace holds no {GOLD_NAME}")
    return GOLD_NAME


def _answer_report(request: ChatRequest, answers: dict[str, Any]) -> dict[str, Any]:
    lesson, topic, cause = _answer_lesson(answers)
    return {
        "failure_causes": [cause],
        "lessons": [{"text": lesson, "topic": topic}],
        "edits": _lesson_edits(request, [lesson]),
    }


def agentic_analyst_responder(request: ChatRequest) -> Reply:
    """Plays the agentic error analyst over native tool calls, or over the text protocol
    when the request offers no tools."""

    if "Your edits were not applied" in request.last_user_text:
        raise ValueError("the simulated analyst's edits always apply")
    if "Your turn budget is used up" in request.last_user_text:
        data = analyst_facts(request)
        return Reply(content=json.dumps(_report(request, data.get("mismatches") or [], data.get("problems") or [])))
    tool, args = agentic_analyst_action(request)
    if request.tools:
        return Reply(tool_calls=[tool_call(tool, args)])
    if tool == "run_python":
        return Reply(content=f"Writing the fix.\n\n```python\n{args['code']}```\n")
    if tool == "evaluate_output":
        return Reply(content=f"EVALUATE_OUTPUT: {args['path']}\n")
    return Reply(content="SUBMIT\n```json\n" + json.dumps(args) + "\n```\n")


def analyst_responder(request: ChatRequest) -> Reply:
    """Any analyst prompt: dispatch on which analyst the system prompt describes."""
    system = (request.messages[0].get("content") or "") if request.messages else ""
    if "You write Agent Skills" in system:
        return skill_creator_responder(request)
    if "success analyst" in system:
        return success_analyst_responder(request)
    if "## Your workspace" in system:
        return agentic_analyst_responder(request)
    return single_call_analyst_responder(request)


_CREATE_RE = re.compile(r"- name: (\S+)\n- description: (.*)")


def skill_creator_responder(request: ChatRequest) -> Reply:
    """Plays the model drafting a first skill from its own knowledge (``t2s init --create``)."""
    match = _CREATE_RE.search(request.text)
    if not match:
        raise ValueError("not a t2s skill-creation prompt")
    name, description = match.group(1), match.group(2).strip()
    title = name.replace("-", " ").capitalize()
    skill_md = (
        f"---\nname: {name}\ndescription: {json.dumps(description)}\n---\n\n# {title}\n\n"
        f"{description}\n\n## Workflow\n\n1. Inspect the input before changing anything.\n"
        "2. Do the work in small steps and print intermediate results.\n"
        "3. Write the result exactly where the task asks for it.\n\n"
        "## Pitfalls\n\n- Do not change data the task does not mention.\n"
        "- More cases in [pitfalls](references/pitfalls.md).\n\n"
        "## Before you finish\n\n- Reopen the output and check the changed parts.\n"
    )
    refs = {"references/pitfalls.md": "# Pitfalls\n\n- Keep the original formatting of untouched data.\n"}
    return Reply(content=json.dumps({"skill_md": skill_md, "references": refs}))
