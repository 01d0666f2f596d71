"""`t2s models` and `t2s models check`, end to end against the scripted server."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from t2s.cli import main


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not a repository: defaults unless a t2s.toml is here
    return CliRunner()


def invoke(runner, *args):
    return runner.invoke(main, list(args), catch_exceptions=False)


def test_models_lists_roles_without_keys(runner, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-printed-123")
    result = invoke(runner, "models", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [r["role"] for r in data["roles"]] == ["agent", "analyst", "merger"]
    assert all(r["api_key_set"] and r["api_key_env"] == "OPENAI_API_KEY" for r in data["roles"])
    assert "sk-never-printed" not in result.output
    table = invoke(runner, "models")
    assert table.exit_code == 0
    assert "agent" in table.output and "OPENAI_API_KEY" in table.output and "(set)" in table.output
    assert "sk-never-printed" not in table.output


def test_models_reads_t2s_toml_of_the_repository(git_repo, runner):
    (git_repo / "t2s.toml").write_text(
        '[models.analyst]\nmodel = "big-analyst"\nbase_url = "http://10.0.0.1:8000/v1"\n'
        "[budget]\nmax_calls = 50\n[prices.big-analyst]\ninput = 1.0\noutput = 2.0\n"
    )
    data = json.loads(invoke(runner, "models", "-C", str(git_repo), "--json").output)
    analyst = next(r for r in data["roles"] if r["role"] == "analyst")
    assert (analyst["model"], analyst["base_url"]) == ("big-analyst", "http://10.0.0.1:8000/v1")
    assert data["budget"]["max_calls"] == 50
    assert data["prices"] == {"big-analyst": {"input": 1.0, "output": 2.0}}
    table = invoke(runner, "models", "-C", str(git_repo)).output
    assert "max_calls=50" in table and "big-analyst" in table


def test_precedence_flag_over_role_env_over_global_env_over_toml(git_repo, runner, monkeypatch):
    (git_repo / "t2s.toml").write_text(
        '[models.agent]\nmodel = "toml-agent"\n[models.merger]\nmodel = "toml-merger"\n'
        '[models.analyst]\nmodel = "toml-analyst"\n'
    )
    monkeypatch.setenv("T2S_MODEL", "global-env")
    monkeypatch.setenv("T2S_ANALYST_MODEL", "role-env")
    monkeypatch.setenv("T2S_MERGER_MODEL", "role-env")
    data = json.loads(invoke(runner, "models", "-C", str(git_repo), "--json", "--set", "merger.model=flag").output)
    models = {r["role"]: r["model"] for r in data["roles"]}
    assert models == {"agent": "global-env", "analyst": "role-env", "merger": "flag"}
    data = json.loads(invoke(runner, "models", "-C", str(git_repo), "--json", "--model", "all-flag").output)
    assert {r["model"] for r in data["roles"]} == {"all-flag"}


def test_bad_set_flag_is_a_usage_error(runner):
    result = runner.invoke(main, ["models", "--set", "agent.colour=red"])
    assert result.exit_code == 2
    assert "unknown setting 'colour'" in result.output
    result = runner.invoke(main, ["models", "--set", "critic.model=x"])
    assert result.exit_code == 2 and "unknown role 'critic'" in result.output


def test_check_every_role_ok(runner, scripted_server, monkeypatch):
    monkeypatch.setenv("T2S_BASE_URL", scripted_server.base_url)
    monkeypatch.setenv("T2S_AGENT_MODEL", "agent-m")
    scripted_server.on(responder=lambda req: "OK" if "single word OK" in req.last_user_text else "??")
    result = invoke(runner, "models", "check", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["role"], r["ok"], r["reply"]) for r in rows] == [
        ("agent", True, "OK"),
        ("analyst", True, "OK"),
        ("merger", True, "OK"),
    ]
    assert rows[0]["model"] == "agent-m" and rows[0]["endpoint"] == scripted_server.base_url
    assert all(r["latency_s"] >= 0 for r in rows)
    assert sorted(r.role for r in scripted_server.requests) == ["agent", "analyst", "merger"]
    assert {r.phase for r in scripted_server.requests} == {"check"}
    assert all(r.body["max_tokens"] == 16 for r in scripted_server.requests)


def test_check_reports_a_failing_role_and_exits_1(runner, scripted_server):
    scripted_server.fault("500", times=None, role="merger")
    result = invoke(
        runner,
        "models",
        "--base-url",
        scripted_server.base_url,
        "check",
        "--retries",
        "0",
        "--set",
        "all.backoff_base=0.001",
    )
    assert result.exit_code == 1
    assert "error" in result.output and "HTTP 500" in result.output
    assert result.output.count("ok") >= 2
    result = invoke(runner, "models", "check", "--base-url", scripted_server.base_url, "--role", "agent", "--json")
    assert result.exit_code == 0
    assert [r["role"] for r in json.loads(result.output)] == ["agent"]


def test_check_unreachable_endpoint(runner, scripted_server):
    scripted_server.fault("hang", times=None)
    result = invoke(
        runner,
        "models",
        "check",
        "--base-url",
        scripted_server.base_url,
        "--role",
        "analyst",
        "--timeout",
        "0.2",
        "--retries",
        "0",
        "--json",
    )
    assert result.exit_code == 1
    (row,) = json.loads(result.output)
    assert not row["ok"] and "timeout" in row["error"]


def test_help_has_examples(runner):
    for args in (["models", "--help"], ["models", "check", "--help"]):
        out = invoke(runner, *args).output
        assert "Examples:" in out and "t2s models check" in out
