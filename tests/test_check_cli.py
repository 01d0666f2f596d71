"""`t2s check` and `t2s doctor` through the real command line."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from t2s.cli import main
from tests.conftest import SPREADSHEETBENCH, needs_shared
from tests.test_tasks_helpers import make_suite, write_book


@pytest.fixture
def env(tmp_path, monkeypatch):
    suite = make_suite(tmp_path / "repo" / "data" / "sb")
    repo = tmp_path / "repo"
    (repo / "t2s.toml").write_text('[suites.mini]\npath = "data/sb"\n')
    sub = repo / "deep" / "er"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)  # t2s.toml is found walking up
    return suite, tmp_path


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_pass_fail_and_json(env):
    suite, tmp = env
    good = shutil.copy(suite / "spreadsheet" / "a-1" / "2_a-1_answer.xlsx", tmp / "good.xlsx")
    r = run("check", str(good), "--task", "a-1", "--suite", "mini", "--case", "2")
    assert r.exit_code == 0 and r.output.startswith("PASS  task a-1 case 2")
    r = run("check", str(good), "--task", "a-1", "--suite", "mini")  # case 1 differs
    assert r.exit_code == 1 and "FAIL" in r.output and "Sheet1!C2" in r.output
    r = run("check", str(good), "--task", "a-1", "--suite", str(suite), "--json")
    data = json.loads(r.output)
    assert r.exit_code == 1 and data["passed"] is False
    m = data["report"]["mismatches"][0]
    assert (m["sheet"], m["cell"], m["expected"], m["actual"]) == ("Sheet1", "C2", 11, 22)
    assert (m["expected_type"], m["actual_type"]) == ("int", "int")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--task", "zzz", "--suite", "mini"], "has no task 'zzz'"),
        (["--task", "a-1", "--suite", "nosuch"], "neither a configured suite"),
        (["--task", "a-1", "--suite", "mini", "--case", "9"], "has no test case 9"),
    ],
)
def test_usage_errors_exit_2(env, args, message):
    _suite, tmp = env
    out = write_book(tmp / "o.xlsx", {"Sheet1": {}})
    r = CliRunner().invoke(main, ["check", str(out), *args])
    assert r.exit_code == 2 and message in r.output


def test_missing_output_exits_2_and_corrupt_output_fails(env):
    _suite, tmp = env
    r = CliRunner().invoke(main, ["check", str(tmp / "none.xlsx"), "--task", "a-1", "--suite", "mini"])
    assert r.exit_code == 2 and "no such file" in r.output
    bad = tmp / "bad.xlsx"
    bad.write_text("garbage")
    r = run("check", str(bad), "--task", "a-1", "--suite", "mini")
    assert r.exit_code == 1 and "not a readable .xlsx" in r.output


def test_overlapping_splits_refuse_to_run(env):
    _suite, tmp = env
    (tmp / "repo" / "t2s.toml").write_text(
        '[suites.mini]\npath = "data/sb"\n[suites.mini.splits.evolve]\nrows = "0:2"\n'
        '[suites.mini.splits.heldout]\nids = ["a-1"]\n'
    )
    out = write_book(tmp / "o.xlsx", {"Sheet1": {}})
    r = CliRunner().invoke(main, ["check", str(out), "--task", "a-1", "--suite", "mini"])
    assert r.exit_code == 2 and "overlap" in r.output and "a-1" in r.output


@needs_shared(SPREADSHEETBENCH)
def test_lenient_flag_on_a_verified_task(tmp_path):
    golden = next((SPREADSHEETBENCH / "spreadsheet" / "45944").glob("*golden*.xlsx"))
    args = ["check", str(golden), "--task", "45944", "--suite", str(SPREADSHEETBENCH)]
    assert run(*args).exit_code == 1
    assert run(*args, "--lenient").exit_code == 0


def test_doctor_json(env):
    r = run("doctor", "--json")
    data = json.loads(r.output)
    assert r.exit_code == (0 if data["ok"] else 1)
    assert data["python"]["version"].startswith("3.")
    assert set(data["sandbox"]) >= {"network", "memory", "processes", "smoke_test"}
    assert data["sandbox"]["smoke_test"].startswith("ok")
    r = run("doctor", "--no-smoke")
    assert "sandbox" in r.output and "network:" in r.output


def test_help_has_examples():
    assert "Examples:" in run("check", "--help").output
    assert "Examples:" in run("doctor", "--help").output
