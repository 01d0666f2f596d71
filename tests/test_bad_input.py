"""Bad numbers and silent successes (issue 13, section C): t2s.toml and the flags share
one set of bounds, NaN never passes, and a command that found nothing says so."""

from __future__ import annotations

import importlib

import click
import pytest
from click.testing import CliRunner

from t2s.cli import COMMANDS, main
from tests.conftest import git
from tests.test_eval_support import make_repo


def run_cli(args: list[str]):
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert "Traceback" not in result.output
    return result


def _all_commands():
    for name, target in COMMANDS.items():
        module, attr = target.split(":")
        command = getattr(importlib.import_module(module), attr)
        yield name, command
        for sub_name, sub in getattr(command, "commands", {}).items():
            yield f"{name} {sub_name}", sub


def test_every_number_flag_is_checked_by_a_config_rule():
    """No verb takes a bare int or float: each goes through t2s.config's bounds."""
    from t2s.commands._common import Bounded

    bare = []
    for name, command in _all_commands():
        for param in command.params:
            if isinstance(param.type, (click.types.IntParamType, click.types.FloatParamType)):
                bare.append(f"{name} {param.opts[0]}")
    assert bare == []
    typed = [f"{name} {p.opts[0]}" for name, c in _all_commands() for p in c.params if isinstance(p.type, Bounded)]
    assert len(typed) >= 25


# ---------------------------------------------------------------------- one rule for file and flag
CASES = [  # (section, key, value, flag command, rule)
    ("rollout", "concurrency", "-3", ["rollout", "--concurrency"], "must be at least 1"),
    ("rollout", "max_turns", "0", ["rollout", "--max-turns"], "must be at least 1"),
    ("analyze", "concurrency", "0", ["analyze", "--run", "r1", "--concurrency"], "must be at least 1"),
    ("analyze", "max_turns", "-1", ["analyze", "--run", "r1", "--max-turns"], "must be at least 1"),
    ("merge", "fan_in", "1", ["merge", "--run", "r1", "--fan-in"], "must be at least 2"),
    ("gate", "seeds", "0", ["gate", "HEAD", "--seeds"], "must be at least 1"),
    ("gate", "max_regressions", "-1", ["gate", "HEAD", "--max-regressions"], "must be at least 0"),
    ("gate", "min_delta", "nan", ["gate", "HEAD", "--min-delta"], "must be a finite number (not NaN or infinity)"),
    ("gate", "min_delta", "inf", ["gate", "HEAD", "--min-delta"], "must be a finite number (not NaN or infinity)"),
    ("lint", "max_skill_lines", "0", ["lint", "--max-skill-lines"], "must be at least 1"),
]


@pytest.mark.parametrize("section, key, value, flag, rule", CASES, ids=lambda v: v if isinstance(v, str) else None)
def test_t2s_toml_and_the_flag_refuse_the_same_values(tmp_path, scripted_server, section, key, value, flag, rule):
    store = make_repo(tmp_path, scripted_server)
    repo = store.root
    before = git(repo, "for-each-ref")
    by_flag = run_cli([*flag, value, "-C", str(repo)])
    assert by_flag.exit_code == 2, by_flag.output
    assert f"{rule} (got '{value}')" in by_flag.output

    toml = repo / "t2s.toml"
    toml.write_text(_set(toml.read_text(), section, key, value))  # TOML spells nan and inf as Python does
    by_file = run_cli([*flag[:-1], "-C", str(repo)])
    assert by_file.exit_code == 2, by_file.output
    assert f"{section}.{key}: {rule} (got {value})" in by_file.output
    assert git(repo, "for-each-ref") == before
    assert scripted_server.requests == []


def _set(text: str, section: str, key: str, value: str) -> str:
    """``text`` with ``key = value`` in ``[section]`` (the section added when missing)."""
    header = f"[{section}]"
    if header not in text:
        return text + f"\n{header}\n{key} = {value}\n"
    head, tail = text.split(header, 1)
    lines = [line for line in tail.split("\n") if not line.startswith(f"{key} ")]
    return head + header + "\n" + f"{key} = {value}" + "\n".join(lines)


def test_the_issue_examples_concurrency_minus_three_and_max_turns_zero(tmp_path, scripted_server):
    store = make_repo(tmp_path, scripted_server)
    toml = store.root / "t2s.toml"
    toml.write_text(
        toml.read_text().replace("concurrency = 4", "concurrency = -3").replace("max_turns = 4", "max_turns = 0")
    )
    out = run_cli(["rollout", "--run", "r1", "-C", str(store.root)])
    assert out.exit_code == 2
    assert "rollout.max_turns: must be at least 1 (got 0)" in out.output
    assert "rollout.concurrency: must be at least 1 (got -3)" in out.output
    assert store.rev_parse("refs/t2s/runs/r1") is None


# ---------------------------------------------------------------------- NaN
@pytest.mark.parametrize(
    "args",
    [
        ["gate", "HEAD", "--min-delta", "nan"],
        ["gate", "HEAD", "--min-delta", "-inf"],
        ["bisect", "--good", "HEAD~1", "--bad", "HEAD", "--threshold", "nan"],
        ["bisect", "--good", "HEAD~1", "--bad", "HEAD", "--threshold", "1.5"],
        ["eval", "HEAD", "--exit-code-below", "nan"],
    ],
    ids=lambda a: " ".join(a[-2:]),
)
def test_non_finite_numbers_are_refused_before_any_work(tmp_path, scripted_server, args):
    store = make_repo(tmp_path, scripted_server)
    before = git(store.root, "for-each-ref")
    out = run_cli([*args, "-C", str(store.root)])
    assert out.exit_code == 2, out.output
    assert "must be a finite number" in out.output or "must be at most 1" in out.output
    assert git(store.root, "for-each-ref") == before  # no eval or gate note
    assert scripted_server.requests == []


@pytest.mark.parametrize("setting", ["all.timeout=nan", "agent.temperature=inf", "all.max_retries=-1"])
def test_model_settings_from_set_follow_the_same_rules(tmp_path, setting):
    out = run_cli(["models", "-C", str(tmp_path), "--set", setting])
    assert out.exit_code == 2, out.output
    assert "must be" in out.output


def test_models_check_flags_use_the_role_rules(tmp_path):
    out = run_cli(["models", "check", "--timeout", "nan"])
    assert out.exit_code == 2 and "--timeout': must be a finite number" in out.output
    out = run_cli(["models", "check", "--timeout", "0"])
    assert out.exit_code == 2 and "--timeout': must be greater than 0" in out.output


# ---------------------------------------------------------------------- silent successes
def test_log_of_a_run_that_does_not_exist_is_an_error(tmp_path, scripted_server):
    store = make_repo(tmp_path, scripted_server)
    out = run_cli(["log", "--run", "nosuch", "-C", str(store.root)])
    assert out.exit_code == 2 and "run 'nosuch' does not exist" in out.output
    for count in ("-1", "0"):
        out = run_cli(["log", "-n", count, "-C", str(store.root)])
        assert out.exit_code == 2 and f"must be at least 1 (got '{count}')" in out.output
    ok = run_cli(["log", "-n", "1", "-C", str(store.root)])
    assert ok.exit_code == 0 and ok.output.count("\n") == 1


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--set", "garbage"], "--set 'garbage': expected ROLE.SETTING=VALUE"),
        (["--set", "agent.model=x"], "only apply with --create"),
        (["--model", "gpt-4o"], "only apply with --create"),
    ],
)
def test_init_refuses_model_flags_it_would_ignore(tmp_path, flags, message):
    target = tmp_path / "new"
    out = run_cli(["init", str(target), "--seed", "xlsx", *flags])
    assert out.exit_code == 2, out.output
    assert message in out.output
    assert not target.exists()
