"""Suites: loading, cases, splits, hashing, prepare/prompt, check and score, registry."""

from __future__ import annotations

import json
import shutil
from importlib import metadata
from pathlib import Path

import pytest

from t2s.config import Config, parse_config
from t2s.errors import ConfigError, T2SError, UsageError
from t2s.tasks import (
    SplitOverlapError,
    Suite,
    Task,
    Verdict,
    Workspace,
    get_suite_type,
    load_suite,
    register_suite_type,
    registry,
)
from t2s.tasks.spreadsheetbench import SpreadsheetBenchSuite
from tests.test_tasks_helpers import make_suite, write_book


@pytest.fixture
def suite_dir(tmp_path) -> Path:
    return make_suite(tmp_path / "suite")


def test_load_from_directory_discovers_original_naming(suite_dir):
    suite = load_suite(suite_dir)
    assert suite.type == "spreadsheetbench" and suite.root == suite_dir.resolve()
    assert suite.task_ids() == ["a-1", "7", "b-2"]  # ids are strings, dataset order
    task = suite.task("7")
    assert [c.index for c in task.cases] == [1, 2, 3]
    assert task.cases[1].input_path.name == "2_7_input.xlsx"
    assert task.cases[1].answer_path.name == "2_7_answer.xlsx"
    assert task.answer_position == "'Out'!A1" and task.meta["answer_sheet"] == "Out"
    assert suite.task(7) is task  # int ids work too


def test_verified_naming_and_irregular_names(tmp_path):
    root = make_suite(tmp_path / "v", naming="verified", cases=1)
    folder = root / "spreadsheet" / "a-1"
    (folder / "1_a-1_init.xlsx").rename(folder / "initial.xlsx")
    (folder / "1_a-1_golden.xlsx").rename(folder / "golden.xlsx")
    folder = root / "spreadsheet" / "b-2"
    (folder / "1_b-2_golden.xlsx").rename(folder / "1_b-3_golden.xlsx")
    suite = load_suite(root)
    a = suite.task("a-1")
    assert (a.cases[0].input_path.name, a.cases[0].answer_path.name) == ("initial.xlsx", "golden.xlsx")
    b = suite.task("b-2")
    assert b.cases[0].answer_path.name == "1_b-3_golden.xlsx"
    assert "names id 'b-3'" in b.meta["notes"][0]


def test_unknown_task_and_case_are_usage_errors(suite_dir):
    suite = load_suite(suite_dir)
    with pytest.raises(UsageError, match="has no task 'zzz'"):
        suite.task("zzz")
    with pytest.raises(UsageError, match="has no test case 4"):
        suite.task("a-1").case(4)
    with pytest.raises(UsageError, match="neither a configured suite"):
        load_suite(suite_dir / "nope")
    with pytest.raises(UsageError, match="not a task suite"):
        load_suite(suite_dir / "spreadsheet")


def test_broken_dataset_is_a_usage_error(tmp_path):
    root = tmp_path / "s"
    (root / "spreadsheet").mkdir(parents=True)
    (root / "dataset.json").write_text("{not json")
    with pytest.raises(UsageError, match="not valid JSON"):
        load_suite(root)
    (root / "dataset.json").write_text(json.dumps([{"id": 1}, {"id": "1"}]))
    with pytest.raises(UsageError, match="duplicate task id '1'"):
        load_suite(root)


def test_prepare_and_prompt(suite_dir, tmp_path):
    suite = load_suite(suite_dir)
    task = suite.task("a-1")
    ws = suite.prepare(task, tmp_path / "work" / "a-1", case=2)
    assert isinstance(ws, Workspace)
    assert ws.input_path.read_bytes() == task.case(2).input_path.read_bytes()
    assert ws.output_path == tmp_path / "work" / "a-1" / "output.xlsx" and not ws.output_path.exists()
    prompt = suite.render_prompt(task, ws)
    assert "Put A+B into column C." in prompt
    assert str(ws.input_path) in prompt and str(ws.output_path) in prompt
    assert "C2:C3" in prompt
    assert "| 2 | 20 | 2 |" in prompt  # preview of the first rows (case 2: A2=20, B2=2)
    assert "answer" not in ws.input_path.name


def test_check_and_score_over_test_cases(suite_dir, tmp_path):
    suite = load_suite(suite_dir)
    task = suite.task("b-2")
    outputs = {}
    for c in task.cases:
        outputs[c.index] = shutil.copy(c.answer_path, tmp_path / f"out{c.index}.xlsx")
    good = suite.check(task, Path(outputs[1]))
    assert isinstance(good, Verdict) and good.passed and good.score == 1.0
    assert good.report.cells_checked == 5
    write_book(tmp_path / "bad2.xlsx", {"S1": {"A1": 1, "B1": "x", "A2": 2.5}, "S2": {"A1": "nope"}})
    bad = suite.check(task, tmp_path / "bad2.xlsx", case=2)
    assert not bad.passed and [(m.sheet, m.cell) for m in bad.report.mismatches] == [("S2", "A1")]
    score = suite.score(task, {1: Path(outputs[1]), 2: tmp_path / "bad2.xlsx"})
    assert score.case_results == {1: True, 2: False, 3: False}
    assert score.soft == pytest.approx(1 / 3) and score.hard == 0.0
    score = suite.score(task, {k: Path(v) for k, v in outputs.items()})
    assert (score.soft, score.hard) == (1.0, 1.0)


def test_missing_answer_file_is_an_error(suite_dir, tmp_path):
    (suite_dir / "spreadsheet" / "a-1" / "1_a-1_answer.xlsx").unlink()
    suite = load_suite(suite_dir)
    with pytest.raises(T2SError, match="no answer file"):
        suite.check(suite.task("a-1"), tmp_path / "x.xlsx")


def test_content_hash_is_stable_and_tracks_data(suite_dir, tmp_path):
    h1 = load_suite(suite_dir).content_hash()
    copy = shutil.copytree(suite_dir, tmp_path / "elsewhere")
    assert load_suite(copy).content_hash() == h1  # independent of location
    cfg = parse_config('[suites.s]\npath = "elsewhere"\n[suites.s.splits.one]\nids = ["7"]\n')
    suite = load_suite("s", cfg, base_dir=tmp_path)
    assert suite.content_hash("one") != h1
    before = suite.content_hash("one")
    write_book(copy / "spreadsheet" / "a-1" / "1_a-1_answer.xlsx", {"Sheet1": {"C2": 0}})
    assert load_suite("s", cfg, base_dir=tmp_path).content_hash("one") == before  # not in split
    assert load_suite(copy).content_hash() != h1


def _config(text: str) -> Config:
    return parse_config(text)


def test_splits_from_rows_ids_and_file(suite_dir, tmp_path):
    (tmp_path / "splits.json").write_text(json.dumps({"train": ["b-2", 7], "x": "no"}))
    cfg = _config(f"""
[suites.sb]
path = "{suite_dir.name}"
[suites.sb.splits.evolve]
rows = "0:1"
[suites.sb.splits.heldout]
rows = "1:"
[suites.sb.splits.train]
file = "splits.json"
[suites.sb.splits.pick]
ids = ["b-2", "a-1", "b-2"]
""")
    suite = load_suite("sb", cfg, base_dir=tmp_path)
    assert suite.splits() == {"evolve": ["a-1"], "heldout": ["7", "b-2"], "train": ["b-2", "7"], "pick": ["b-2", "a-1"]}
    assert suite.task_ids("heldout") == ["7", "b-2"]
    with pytest.raises(UsageError, match="has no split 'test'"):
        suite.task_ids("test")


@pytest.mark.parametrize(
    "body, message",
    [
        ('ids = ["a-1", "ghost"]', "not in the suite: 'ghost'"),
        ('rows = "x:2"', "must be integers"),
        ('rows = "0:1"\nids = ["7"]', "exactly one of"),
        ('file = "missing.json"', "does not exist"),
        ('file = "splits.json"\nkey = "nope"', "has no key 'nope'"),
    ],
)
def test_bad_split_declarations(suite_dir, tmp_path, body, message):
    (tmp_path / "splits.json").write_text("{}")
    cfg = _config(f'[suites.sb]\npath = "{suite_dir.name}"\n[suites.sb.splits.evolve]\n{body}\n')
    with pytest.raises(ConfigError, match=message):
        load_suite("sb", cfg, base_dir=tmp_path)


def test_overlapping_evolve_and_heldout_are_refused(suite_dir, tmp_path):
    cfg = _config(f"""
[suites.sb]
path = "{suite_dir.name}"
[suites.sb.splits.evolve]
rows = "0:2"
[suites.sb.splits.heldout]
rows = "1:3"
""")
    with pytest.raises(SplitOverlapError, match=r"overlap on 1 task.*'?7'?") as info:
        load_suite("sb", cfg, base_dir=tmp_path)
    assert info.value.overlap == ["7"] and isinstance(info.value, UsageError)


def test_suite_without_configured_splits_uses_its_splits_json(suite_dir):
    (suite_dir / "splits.json").write_text(json.dumps({"evolve": ["a-1"], "heldout": ["7"]}))
    suite = load_suite(suite_dir)
    assert suite.splits() == {"evolve": ["a-1"], "heldout": ["7"]}
    suite.check_disjoint("evolve", "heldout")
    (suite_dir / "splits.json").write_text(json.dumps({"evolve": ["a-1"], "heldout": ["a-1"]}))
    with pytest.raises(SplitOverlapError):
        load_suite(suite_dir).check_disjoint("evolve", "heldout")


def test_unknown_suite_type_and_missing_path(tmp_path):
    with pytest.raises(ConfigError, match="unknown suite type 'nope'"):
        get_suite_type("nope")
    cfg = _config('[suites.x]\npath = "gone"\n')
    with pytest.raises(ConfigError, match="not a directory"):
        load_suite("x", cfg, base_dir=tmp_path)


class ToySuite(Suite):
    """A minimal third-party suite: each task is a text file whose answer is its reverse."""

    type = "toy"

    @classmethod
    def detect(cls, path: Path) -> bool:
        return (Path(path) / "toy.txt").is_file()

    def all_task_ids(self) -> list[str]:
        return self.root.joinpath("toy.txt").read_text().split()

    def task(self, task_id: str) -> Task:
        if task_id not in self.all_task_ids():
            raise UsageError(f"no toy task {task_id!r}")
        return Task(id=task_id, instruction=f"reverse {task_id}", cases=[{"index": 1}])

    def render_prompt(self, task, workspace):
        return f"{task.instruction} into {workspace.output_path}"

    def check(self, task, output_path, case=1, *, recalculate=None, lenient=None):
        from t2s.tasks import CheckReport

        ok = Path(output_path).is_file() and Path(output_path).read_text() == task.id[::-1]
        report = CheckReport(task_id=task.id, problems=[] if ok else ["wrong"])
        return Verdict(passed=ok, score=float(ok), report=report)


def test_third_party_suite_through_entry_points(monkeypatch, tmp_path):
    ep = metadata.EntryPoint(name="toy", value="tests.test_tasks_suite:ToySuite", group="t2s.suites")
    real = metadata.entry_points

    def fake(**kw):
        return [ep] if kw.get("group") == "t2s.suites" else real(**kw)

    monkeypatch.setattr(registry.metadata, "entry_points", fake)
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    monkeypatch.setattr(registry, "_TYPES", dict(registry._TYPES))
    assert get_suite_type("toy") is ToySuite
    root = tmp_path / "toys"
    root.mkdir()
    (root / "toy.txt").write_text("abc xyz")
    suite = load_suite(root)  # auto-detected
    assert suite.type == "toy" and suite.task_ids() == ["abc", "xyz"]
    ws = suite.prepare(suite.task("abc"), tmp_path / "w")
    ws.output_path.write_text("cba")
    assert suite.check(suite.task("abc"), ws.output_path).passed
    cfg = _config(f'[suites.t]\ntype = "toy"\npath = "{root}"\n')
    assert load_suite("t", cfg).name == "t"


def test_register_suite_type_validates():
    with pytest.raises(TypeError):
        register_suite_type(object)  # type: ignore[arg-type]
    assert get_suite_type("spreadsheetbench") is SpreadsheetBenchSuite
