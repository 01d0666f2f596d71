"""Installing t2s's git hooks into a skill repository (``t2s init``). What the hooks do
when git runs them is :mod:`t2s.hooks`; the scripts themselves are the project's ``hooks/``."""

from __future__ import annotations

import sys
from pathlib import Path

from t2s.gitstore.store import GitStore

HOOK_NAMES = ("pre-commit", "pre-push")


def hooks_source_dir() -> Path:
    """The project's ``hooks/`` folder (bundled as ``t2s/_data/hooks``)."""
    return Path(__file__).resolve().parents[1] / "_data" / "hooks"


def install_hooks(store: GitStore, python: str = sys.executable) -> list[str]:
    """Copy the hooks into ``.git/hooks``; returns what was installed.

    A hook that exists and was not written by t2s is left alone (reported as skipped).
    """
    source = hooks_source_dir()
    target = store.git_dir / "hooks"
    target.mkdir(exist_ok=True)
    done = []
    for name in HOOK_NAMES:
        text = (source / name).read_text().replace("@PYTHON@", python)
        path = target / name
        if path.exists() and "t2s" not in path.read_text(errors="replace"):
            done.append(f"{name} (skipped: an existing hook was kept)")
            continue
        path.write_text(text)
        path.chmod(0o755)
        done.append(name)
    return done
