"""`t2s suites`, and `t2s init --suite` configuring a skill repository for a suite."""

from __future__ import annotations

import json
import re
from importlib import metadata

import pytest
from click.testing import CliRunner

from t2s.cli import main
from t2s.config import load_config
from t2s.tasks import load_suite, registry
from tests._wtq_support import make_wtq
from tests.test_tasks_helpers import make_suite


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def repo(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    make_wtq(repo / "data" / "wtq")
    make_suite(repo / "data" / "sb")
    (repo / "t2s.toml").write_text(
        '[suites.wtq]\ntype = "wikitablequestions"\npath = "data/wtq"\n'
        '[suites.sheets]\npath = "data/sb"\n[suites.sheets.splits.evolve]\nrows = "0:2"\n'
    )
    (repo / "deep").mkdir()
    monkeypatch.chdir(repo / "deep")  # t2s.toml is found walking up
    return repo


def test_suites_lists_types_and_configured_suites(repo):
    r = run("suites")
    assert r.exit_code == 0, r.output
    out = r.output
    assert "spreadsheetbench" in out and "wikitablequestions" in out and "built-in" in out
    assert "t2s.tasks.wikitablequestions:WikiTableQuestionsSuite" in out
    assert re.search(r"evolve +2 tasks", out) and re.search(r"heldout +1 tasks", out)
    wtq = load_suite(repo / "data" / "wtq")
    assert wtq.content_hash("evolve")[:12] in out


def test_suites_json(repo):
    r = run("suites", "--json")
    assert r.exit_code == 0
    data = json.loads(r.output)
    types = {t["type"]: t for t in data["types"]}
    assert types["wikitablequestions"]["source"] == "built-in"
    assert types["spreadsheetbench"]["class"] == "t2s.tasks.spreadsheetbench:SpreadsheetBenchSuite"
    suites = {s["name"]: s for s in data["suites"]}
    assert suites["wtq"]["type"] == "wikitablequestions" and suites["wtq"]["tasks"] == 6
    assert suites["wtq"]["splits"]["evolve"]["size"] == 2 and len(suites["wtq"]["splits"]["evolve"]["hash"]) == 64
    assert suites["sheets"]["type"] == "spreadsheetbench" and suites["sheets"]["splits"]["evolve"]["size"] == 2
    assert data["config"].endswith("t2s.toml") and suites["wtq"]["error"] is None


def test_suites_reports_a_refused_configuration(repo):
    (repo / "t2s.toml").write_text(
        '[suites.wtq]\ntype = "wikitablequestions"\npath = "data/wtq"\n'
        '[suites.wtq.splits]\nevolve = { ids = ["nt-0"] }\nheldout = { ids = ["nt-2"] }\n'
    )
    r = run("suites", "--json")
    assert r.exit_code == 1
    error = json.loads(r.output)["suites"][0]["error"]
    assert "overlap on 1 table(s)" in error and "csv/200-csv/0.csv" in error
    r = run("suites")
    assert r.exit_code == 1 and "overlap" in r.output


def test_suites_outside_a_configured_repo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = run("suites")
    assert r.exit_code == 0 and "No t2s.toml" in r.output and "wikitablequestions" in r.output


def test_suites_lists_third_party_types(repo, monkeypatch):
    ep = metadata.EntryPoint(name="toy", value="tests.test_tasks_suite:ToySuite", group="t2s.suites")
    real = metadata.entry_points

    def fake(**kw):
        return [ep] if kw.get("group") == "t2s.suites" else real(**kw)

    monkeypatch.setattr(registry.metadata, "entry_points", fake)
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    monkeypatch.setattr(registry, "_TYPES", dict(registry._TYPES))
    monkeypatch.setattr(registry, "_SOURCES", dict(registry._SOURCES))
    data = json.loads(run("suites", "--json").output)
    toy = next(t for t in data["types"] if t["type"] == "toy")
    assert toy["class"] == "tests.test_tasks_suite:ToySuite" and toy["source"].startswith("entry point")


# ----------------------------------------------------------------------------- init --suite
def test_init_configures_the_suite(tmp_path, monkeypatch):
    data = make_wtq(tmp_path / "shared" / "wtq")
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(
        main,
        [
            "init",
            "my-skills",
            "--seed",
            "table-qa",
            "--no-hooks",
            "--suite",
            "wikitablequestions",
            "--suite-path",
            "shared/wtq",
        ],
    )
    assert r.exit_code == 0, r.output
    repo = tmp_path / "my-skills"
    text = (repo / "t2s.toml").read_text()
    assert '[suites.wtq]\ntype = "wikitablequestions"\npath = "../shared/wtq"' in text
    config = load_config(repo / "t2s.toml")
    assert config.rollout.suite == "wtq" and config.gate.split == "heldout"
    assert config.skill.name == "table-qa"
    suite = load_suite("wtq", config, base_dir=repo)
    assert suite.root.resolve() == data.resolve() and suite.splits()["evolve"] == ["nt-0", "nt-3"]
    assert (repo / "skills" / "table-qa" / "references" / "answer-format.md").is_file()
    lint = CliRunner().invoke(main, ["lint", "-C", str(repo), "HEAD"])
    assert lint.exit_code == 0, lint.output
    monkeypatch.chdir(repo)
    listing = json.loads(run("suites", "--json").output)
    assert listing["suites"][0]["name"] == "wtq" and listing["suites"][0]["error"] is None


def test_init_suite_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["init", "a", "--seed", "table-qa", "--suite", "wikitablequestions"])
    assert r.exit_code == 2 and "go together" in r.output
    (tmp_path / "empty").mkdir()
    r = CliRunner().invoke(
        main, ["init", "b", "--seed", "table-qa", "--suite", "wikitablequestions", "--suite-path", "empty"]
    )
    assert r.exit_code == 2 and "not a wikitablequestions suite" in r.output
    assert not (tmp_path / "b").exists()  # refused before anything was written
    r = CliRunner().invoke(main, ["init", "c", "--seed", "table-qa", "--suite", "nope", "--suite-path", "empty"])
    assert r.exit_code == 2 and "unknown suite type 'nope'" in r.output
