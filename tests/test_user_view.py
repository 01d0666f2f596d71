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
