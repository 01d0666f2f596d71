"""A tiny WikiTableQuestions-format suite on disk (real format, invented tables) and
helpers for the WTQ tests. Real benchmark data is read from ../shared (tests skip
cleanly when it is absent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import WIKITABLEQUESTIONS

needs_wtq = pytest.mark.skipif(
    not (WIKITABLEQUESTIONS / "questions.tsv").is_file(), reason=f"{WIKITABLEQUESTIONS} not available"
)

# id, utterance, context, targetValue (TSV-escaped)
QUESTIONS = [
    ("nt-0", "which city hosted in 2004?", "csv/200-csv/0.csv", "Athens"),
    ("nt-1", "how many people attended in total?", "csv/200-csv/0.csv", "12,467"),
    ("nt-2", "which cities hosted before 2004?", "csv/200-csv/0.csv", "Sydney|Atlanta"),
    ("nt-3", "what is the quoted title?", "csv/200-csv/1.csv", 'Episode: "Pilot"'),
    ("nt-4", "which value has a pipe?", "csv/200-csv/1.csv", "a\\pb|line\\nbreak|back\\\\slash"),
    ("nt-5", "when was it opened?", "csv/201-csv/2.csv", "1990-06-03"),
]

TABLES = {
    "csv/200-csv/0.csv": (
        '"Year","City","Attendance","Code"\n'
        '"1996","Atlanta","5,000","007"\n'
        '"2000","Sydney","4,467","12.50"\n'
        '"2004","Athens","3,000",""\n'
    ),
    "csv/200-csv/1.csv": (
        '"Title","Notes"\n"Episode: \\"Pilot\\"","first line\nsecond line"\n"back\\\\slash","-3.5"\n'
    ),
    "csv/201-csv/2.csv": '"Name","Opened"\n"Hall","June 3, 1990"\n',
}

SPLITS = {"evolve": ["nt-0", "nt-3"], "heldout": ["nt-5"]}


def make_wtq(root: Path, *, splits: dict | None = None) -> Path:
    """Write the mini suite into ``root`` and return it."""
    root.mkdir(parents=True, exist_ok=True)
    lines = ["id\tutterance\tcontext\ttargetValue"] + ["\t".join(q) for q in QUESTIONS]
    (root / "questions.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for rel, text in TABLES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    (root / "splits.json").write_text(json.dumps(splits or SPLITS))
    return root


def write_answer(path: Path, values: list, sheet: str = "answer") -> Path:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet
    for r, v in enumerate(values, start=1):
        ws.cell(r, 1, v)
    wb.save(path)
    return path
