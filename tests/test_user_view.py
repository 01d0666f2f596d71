"""What a real run shows its user (issue 21): init flags, escaped markup, progress,
consistent views, ledger totals, kept transcripts, filters."""

from __future__ import annotations

from click.testing import CliRunner

from t2s.cli import main
from t2s.config import load_config


def test_init_writes_model_and_base_url_into_t2s_toml(tmp_path):
    target = tmp_path / "new"
    out = CliRunner().invoke(
        main,
        [
            "init",
            str(target),
            "--seed",
            "xlsx",
            "--no-hooks",
            "--model",
            "qwen2.5-7b",
            "--base-url",
            "http://127.0.0.1:8000/v1",
            "--api-key-env",
            "LOCAL_KEY",
        ],
    )
    assert out.exit_code == 0, out.output
    text = (target / "t2s.toml").read_text()
    config = load_config(target / "t2s.toml")
    for role in ("agent", "analyst", "merger"):
        settings = config.role(role)
        assert (settings.model, settings.base_url, settings.api_key_env) == (
            "qwen2.5-7b",
            "http://127.0.0.1:8000/v1",
            "LOCAL_KEY",
        )
    assert "gpt-4o-mini" not in text.split("[prices]")[0]
    assert "# the variable's name, not the key" in text  # the template's comments stay


def test_init_without_model_flags_keeps_the_template_defaults(tmp_path):
    target = tmp_path / "new"
    out = CliRunner().invoke(main, ["init", str(target), "--seed", "xlsx", "--no-hooks", "--model", "m1"])
    assert out.exit_code == 0, out.output
    config = load_config(target / "t2s.toml")
    assert config.role("merger").model == "m1"
    assert config.role("merger").base_url == "https://api.openai.com/v1"


MARKUP = "See [answer format](references/answer-format.md) and [bold]this[/bold]"


def _captured(fn, *args):
    from t2s.commands._common import console

    width = console.width
    console.width = 400  # no wrapping: the text is compared whole
    try:
        with console.capture() as cap:
            fn(*args)
    finally:
        console.width = width
    return cap.get()


def test_merge_summary_prints_model_text_intact():
    from types import SimpleNamespace

    from t2s.commands.merge import print_summary

    summary = SimpleNamespace(
        run="r1",
        strategy="tree",
        levels=[["[x]L1-01"]],
        inputs=2,
        candidate_ref="refs/heads/t2s/r1/candidate",
        candidate="c" * 40,
        merged=1,
        failed=0,
        reused=0,
        excluded={"0002": MARKUP},
    )
    out = _captured(print_summary, summary)
    assert MARKUP in out
    assert "[x]L1-01" in out


def test_eval_table_prints_task_errors_intact():
    from types import SimpleNamespace

    from t2s.commands.eval_ import _print_tasks
    from t2s.record.notes import TaskVerdict

    verdict = TaskVerdict(task="[t]1", seed=0, passed=False, score=0.0, stop_reason=MARKUP)
    outcome = SimpleNamespace(commit="c" * 40, record=SimpleNamespace(suite="s", split="h", tasks=[verdict]))
    out = _captured(_print_tasks, outcome)
    assert MARKUP in out and "[t]1" in out


def test_stage_tables_and_bisect_print_text_intact():
    from types import SimpleNamespace

    from t2s.commands import bisect
    from t2s.commands._common import print_row_table

    assert "[b]x" in _captured(print_row_table, "t", [("time", "[b]x")])
    result = SimpleNamespace(
        endpoints=[],
        steps=[],
        evaluations=0,
        threshold=0.5,
        first_bad="f" * 40,
        kind="patch",
        subject=MARKUP,
        branches=[],
        details={"lessons": [MARKUP]},
    )
    assert _captured(bisect._print, result).count(MARKUP) == 2
