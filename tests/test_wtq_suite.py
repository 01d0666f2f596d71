"""The WikiTableQuestions suite: parsing and escaping, prepare (a real xlsx), the prompt,
table-disjoint splits, hashing, the final-answer hook, the leak-guard inputs."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from t2s.config import parse_config
from t2s.errors import ConfigError, UsageError
from t2s.tasks import SplitOverlapError, detect_suite_type, load_suite
from t2s.tasks.wikitablequestions import (
    WikiTableQuestionsSuite,
    cell_value,
    parse_target,
    read_questions,
    read_table,
)
from tests._wtq_support import make_wtq, needs_wtq, write_answer
from tests.conftest import WIKITABLEQUESTIONS


@pytest.fixture
def root(tmp_path) -> Path:
    return make_wtq(tmp_path / "wtq")


@pytest.fixture
def suite(root):
    return load_suite(root)


# ----------------------------------------------------------------------------- parsing
def test_target_unescaping():
    assert parse_target("Sydney|Atlanta") == ["Sydney", "Atlanta"]
    assert parse_target("a\\pb|line\\nbreak|back\\\\slash") == ["a|b", "line\nbreak", "back\\slash"]
    assert parse_target("\\\\n") == ["\\n"]  # an escaped backslash, then a plain n
    assert parse_target("12,467") == ["12,467"]


def test_questions_and_tables(root, suite):
    qs = read_questions(root / "questions.tsv")
    assert [q.id for q in qs] == [f"nt-{i}" for i in range(6)]
    assert qs[4].target == ("a|b", "line\nbreak", "back\\slash")
    rows = read_table(root / "csv/200-csv/1.csv")
    assert rows[0] == ["Title", "Notes"]
    assert rows[1] == ['Episode: "Pilot"', "first line\nsecond line"]  # \" escape, quoted newline
    assert rows[2] == ["back\\slash", "-3.5"]  # \\ escape
    assert suite.type == "wikitablequestions" and detect_suite_type(root) is WikiTableQuestionsSuite
    task = suite.task("nt-3")
    assert task.instruction == "what is the quoted title?" and task.meta["target"] == ['Episode: "Pilot"']
    assert task.meta["context"] == "csv/200-csv/1.csv" and task.answer_position == "'answer'!A:A"
    with pytest.raises(UsageError, match="has no task 'nt-99'"):
        suite.task("nt-99")


def test_bad_questions_files(tmp_path):
    root = tmp_path / "w"
    (root / "csv").mkdir(parents=True)
    (root / "questions.tsv").write_text("id\tquestion\n")
    with pytest.raises(UsageError, match="header lacks utterance, context, targetValue"):
        load_suite(root)
    (root / "questions.tsv").write_text("id\tutterance\tcontext\ttargetValue\nnt-0\tq\tc.csv\n")
    with pytest.raises(UsageError, match="3 tab-separated fields"):
        load_suite(root)
    (root / "questions.tsv").write_text("id\tutterance\tcontext\ttargetValue\nnt-0\tq\tc\t1\nnt-0\tq\tc\t2\n")
    with pytest.raises(UsageError, match="duplicate question id 'nt-0'"):
        load_suite(root)


@needs_wtq
def test_real_data_parses():
    suite = load_suite(WIKITABLEQUESTIONS)
    ids = suite.task_ids()
    assert len(ids) == 14152 and ids[0] == "nt-0"
    assert suite.task("nt-1").meta["target"] == ["Bangkok, Thailand"]
    assert suite.task("nt-9").meta["target"] == ["Siim Ennemuist", "Andri Aganits"]
    splits = suite.splits()
    assert len(splits["evolve"]) == 200 and len(splits["heldout"]) == 200
    suite.check_disjoint("evolve", "heldout")  # the shipped splits are table-disjoint
    rows = read_table(WIKITABLEQUESTIONS / "csv/203-csv/133.csv")
    assert any('\\"Kim\\"' in cell for row in rows for cell in row)


# ----------------------------------------------------------------------------- prepare
@pytest.mark.parametrize(
    "text, value, fmt",
    [
        ("2004", 2004, None),
        ("-3.5", -3.5, "0.0"),
        ("12.50", 12.5, "0.00"),
        ("0", 0, None),
        ("7,169", 7169, "#,##0"),
        ("1,234,567.25", 1234567.25, "#,##0.00"),
        ("007", "007", None),
        ("1,2", "1,2", None),
        ("12%", "12%", None),
        ("", None, None),
        ("1234567890123456", "1234567890123456", None),
        ("June 3, 1990", "June 3, 1990", None),
    ],
)
def test_cell_value(text, value, fmt):
    assert cell_value(text) == (value, fmt)
    assert type(cell_value(text)[0]) is type(value)


def test_prepare_writes_a_real_workbook(suite, tmp_path):
    task = suite.task("nt-1")
    ws = suite.prepare(task, tmp_path / "work")
    assert ws.input_path == tmp_path / "work" / "table.xlsx"
    assert ws.output_path == tmp_path / "work" / "output.xlsx" and not ws.output_path.exists()
    assert (tmp_path / "work" / "question.txt").read_text() == "how many people attended in total?\n"
    wb = openpyxl.load_workbook(ws.input_path)
    assert wb.sheetnames == ["table"]
    sheet = wb["table"]
    assert [c.value for c in sheet[1]] == ["Year", "City", "Attendance", "Code"]  # header stays text
    assert [c.value for c in sheet[2]] == [1996, "Atlanta", 5000, "007"]
    assert sheet["C2"].number_format == "#,##0" and sheet["D3"].value == 12.5
    assert sheet["D4"].value is None and sheet.max_row == 4
    # the quoted-newline table
    ws2 = suite.prepare(suite.task("nt-3"), tmp_path / "work2")
    sheet = openpyxl.load_workbook(ws2.input_path)["table"]
    assert sheet["A2"].value == 'Episode: "Pilot"' and sheet["B2"].value == "first line\nsecond line"
    assert sheet["B3"].value == -3.5


def test_prompt_shows_question_table_and_answer_rules(suite, tmp_path):
    task = suite.task("nt-2")
    ws = suite.prepare(task, tmp_path / "w")
    prompt = suite.render_prompt(task, ws)
    assert "which cities hosted before 2004?" in prompt
    assert f"Write your answer to: {ws.output_path}" in prompt
    assert "sheet named 'answer'" in prompt and "FINAL ANSWER:" in prompt
    assert "| 2 | 1996 | Atlanta | 5,000 | 007 |" in prompt  # rows numbered as in the workbook
    assert "A = 'Year'" in prompt and "all 3 rows" in prompt
    assert "Sydney|Atlanta" not in prompt and "12,467" not in prompt  # no gold answer


def test_prompt_preview_is_capped(root, tmp_path):
    suite = WikiTableQuestionsSuite("w", root, options={"preview_rows": 1})
    task = suite.task("nt-0")
    prompt = suite.render_prompt(task, suite.prepare(task, tmp_path / "w"))
    assert "(2 more row(s) in the workbook, rows 3-4)" in prompt and "the first 1 of 3 rows" in prompt
    with pytest.raises(ConfigError, match="unknown option"):
        WikiTableQuestionsSuite("w", root, options={"preview": 3})


# ----------------------------------------------------------------------------- splits
def test_table_overlapping_splits_are_refused(root):
    # nt-0 and nt-1 are different questions about the same table
    config = parse_config(
        f'[suites.w]\ntype = "wikitablequestions"\npath = "{root}"\n'
        '[suites.w.splits]\nevolve = { ids = ["nt-0", "nt-3"] }\nheldout = { ids = ["nt-1", "nt-5"] }\n'
    )
    with pytest.raises(SplitOverlapError) as err:
        load_suite("w", config)
    message = err.value.message
    assert "overlap on 1 table(s)" in message and "csv/200-csv/0.csv" in message
    assert "nt-0 in 'evolve'" in message and "nt-1 in 'heldout'" in message
    # the gate split is checked too
    config = parse_config(
        f'[suites.w]\ntype = "wikitablequestions"\npath = "{root}"\n'
        '[suites.w.splits]\nevolve = { ids = ["nt-3"] }\nheldout = { ids = ["nt-5"] }\n'
        'gate = { ids = ["nt-4"] }\n[gate]\nsplit = "gate"\n'
    )
    with pytest.raises(SplitOverlapError, match="'evolve' and 'gate' overlap on 1 table"):
        load_suite("w", config)
    # shared ids are named as ids first
    config = parse_config(
        f'[suites.w]\ntype = "wikitablequestions"\npath = "{root}"\n'
        '[suites.w.splits]\nevolve = { ids = ["nt-3"] }\nheldout = { ids = ["nt-3"] }\n'
    )
    with pytest.raises(SplitOverlapError, match=r"1 task\(s\): nt-3"):
        load_suite("w", config)


def test_disjoint_configuration_loads_and_splits_json_is_the_default(root):
    config = parse_config(f'[suites.w]\ntype = "wikitablequestions"\npath = "{root}"\n')
    suite = load_suite("w", config)
    assert suite.splits() == {"evolve": ["nt-0", "nt-3"], "heldout": ["nt-5"]}
    assert suite.describe()["tables"] == 3


def test_rollout_refuses_overlapping_tables(root, tmp_path):
    from t2s.rollouts.rollout import rollout_async

    suite = WikiTableQuestionsSuite("w", root)
    suite._splits = {"evolve": ["nt-0"], "heldout": ["nt-2"]}
    with pytest.raises(SplitOverlapError, match=r"csv/200-csv/0\.csv"):
        import asyncio

        asyncio.run(rollout_async(None, parse_config(""), None, suite, run="r"))


def test_content_hash_covers_answers_and_tables(tmp_path):
    a = WikiTableQuestionsSuite("a", make_wtq(tmp_path / "a"))
    b = WikiTableQuestionsSuite("b", make_wtq(tmp_path / "b"))
    assert a.content_hash("evolve") == b.content_hash("evolve")  # path-independent
    h = a.content_hash("evolve")
    q = tmp_path / "a" / "questions.tsv"
    q.write_text(q.read_text().replace("Athens", "Athina"))
    assert WikiTableQuestionsSuite("a", tmp_path / "a").content_hash("evolve") != h  # the gold answer
    b_h = b.content_hash("evolve")
    table = tmp_path / "b" / "csv/200-csv/1.csv"
    table.write_text(table.read_text() + '"x","y"\n')
    assert WikiTableQuestionsSuite("b", tmp_path / "b").content_hash("evolve") != b_h  # the table


# ----------------------------------------------------------------------------- hooks
def test_record_final_answer(suite, tmp_path):
    task = suite.task("nt-2")
    ws = suite.prepare(task, tmp_path / "w")
    note = suite.record_final_answer(ws, "Sydney | Atlanta")
    assert "Answer recorded in output.xlsx" in note
    assert suite.check(task, ws.output_path).passed
    # an existing answer sheet wins
    note = suite.record_final_answer(ws, "Athens")
    assert "already has a sheet 'answer'" in note and suite.check(task, ws.output_path).passed
    # an output without the sheet gets it added, its other sheets kept
    ws2 = suite.prepare(task, tmp_path / "w2")
    write_answer(ws2.output_path, ["x"], sheet="scratch")
    suite.record_final_answer(ws2, ["Atlanta", "Sydney"])
    assert openpyxl.load_workbook(ws2.output_path).sheetnames == ["scratch", "answer"]
    assert suite.check(task, ws2.output_path).passed
    with pytest.raises(UsageError, match="empty"):
        suite.record_final_answer(ws, " | ")


def test_leak_guard_inputs(suite):
    from t2s.agent.trajectory import Trajectory
    from t2s.analysis.analyze import forbidden_values_for

    task = suite.task("nt-1")
    assert suite.gold_values(task) == ["12,467"]
    assert "Atlanta" in suite.visible_texts(task)[0]
    traj = Trajectory(id="t", task_id="nt-1", instruction=task.instruction)
    assert forbidden_values_for(traj, task, suite) == ["12,467"]  # computed: not in the table
    task0 = suite.task("nt-0")
    assert forbidden_values_for(Trajectory(id="t", task_id="nt-0"), task0, suite) == []  # in the table
