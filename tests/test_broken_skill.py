"""A committed skill that does not lint never runs: rollout, eval, analyze and evolve
share one check (t2s.skill.repo.require_clean_skill) and refuse the same commits."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from t2s.cli import main
from tests.conftest import git
from tests.test_eval_support import SKILL_DIR, make_repo

GOOD = "---\nname: sheet-sums\ndescription: Sum cells in spreadsheets. Use for column totals.\n---\n\n# Sheet sums\n"

#: name -> SKILL.md bytes (None: SKILL.md is a symlink to /etc/passwd)
BROKEN = {
    "no-frontmatter": b"# Sheet sums\n\nJust text.\n",
    "bad-yaml": b"---\nname: sheet-sums\ndescription: [unclosed\n---\nbody\n",
    "wrong-name": GOOD.replace("name: sheet-sums", "name: other-skill").encode(),
    "invalid-name": GOOD.replace("name: sheet-sums", "name: Sheet_Sums").encode(),
    "no-description": b"---\nname: sheet-sums\n---\nbody\n",
    "angle-brackets": GOOD.replace("Use for column totals.", "Use <script> for totals.").encode(),
    "not-utf8": GOOD.encode() + b"\xff\xfe broken bytes\n",
    "broken-link": (GOOD + "\nSee [tips](references/missing.md).\n").encode(),
    "symlink-to-etc-passwd": None,
}


def _commit_broken(store, variant: str) -> str:
    path = store.root / SKILL_DIR / "SKILL.md"
    path.unlink()
    if BROKEN[variant] is None:
        os.symlink("/etc/passwd", path)
    else:
        path.write_bytes(BROKEN[variant])
    git(store.root, "add", "-A")
    git(store.root, "commit", "-q", "--no-verify", "-m", f"break the skill: {variant}")
    return store.resolve("HEAD")


def _import_a_run(store, tmp_path) -> None:
    """A run whose S0 is the broken commit, made without a rollout (as `t2s import` does)."""
    chat = {
        "id": "c1",
        "task_id": "easy1",
        "verdict": "failed",
        "messages": [{"role": "user", "content": "Sum A1:A3 into B1."}, {"role": "assistant", "content": "done"}],
    }
    path = tmp_path / "chats.jsonl"
    path.write_text(json.dumps(chat) + "\n")
    out = CliRunner().invoke(
        main,
        ["import", "--format", "openai-jsonl", str(path), "--run", "imp", "-C", str(store.root)],
        catch_exceptions=False,
    )
    assert out.exit_code == 0, out.output


@pytest.mark.parametrize("variant", sorted(BROKEN))
def test_every_command_that_runs_a_skill_refuses_one_that_does_not_lint(tmp_path, scripted_server, variant):
    store = make_repo(tmp_path, scripted_server)
    broken = _commit_broken(store, variant)
    _import_a_run(store, tmp_path)
    refs_before = store.refs("refs/")
    model = ["--base-url", scripted_server.base_url]
    runner = CliRunner()
    commands = {
        "rollout": ["rollout", "--run", "r1"],
        "eval": ["eval", broken],
        "analyze": ["analyze", "--run", "imp", *model],
        "evolve": ["evolve", "--run", "r2"],
    }
    for name, args in commands.items():
        out = runner.invoke(main, [*args, "-C", str(store.root)], catch_exceptions=False)
        assert out.exit_code == 2, (name, out.output)
        assert f"the skill at {broken[:12]} does not lint" in out.output, (name, out.output)
        assert "Traceback" not in out.output
    # Nothing ran and nothing was written: no run records, no notes, no model calls.
    assert store.refs("refs/") == refs_before
    assert scripted_server.requests == []
