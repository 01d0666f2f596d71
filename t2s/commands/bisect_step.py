"""The command ``t2s bisect`` gives ``git bisect run``: ``t2s eval`` tied to the life of
the ``t2s bisect`` that started it.

``python -m t2s.commands.bisect_step REV [eval options]`` runs ``t2s eval REV ...``. When
``$T2S_BISECT_LIFELINE`` names the read end of a pipe whose only writer is
``t2s bisect`` (see :meth:`t2s.gitstore.store.GitStore.bisect_run`), end-of-file on it means
``t2s bisect`` is gone (killed with SIGKILL, say): the step then kills its process
group, which is ``git bisect run`` and everything it started, so no orphan goes on
calling the model or records a verdict in a bisect nobody owns. The next ``t2s
bisect`` removes the worktree and bisect state left behind.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import threading

from t2s.cli import main as cli
from t2s.gitstore.store import LIFELINE_ENV


def _owner_gone(fd: int) -> bool:
    """Block until ``fd`` reaches end-of-file (True), or cannot be read (False)."""
    try:
        while os.read(fd, 1):
            pass  # nobody writes; data would only mean a stray writer
    except OSError:
        return False
    return True


def _in_own_session() -> bool:
    """Whether this process group is the one ``t2s bisect`` made for ``git bisect run``
    (it leads its own session), so killing it reaches nothing else."""
    return os.getpgrp() == os.getsid(0)


def follow_lifeline(value: str | None) -> None:
    """Kill this process group as soon as the lifeline ``value`` (a descriptor number)
    closes; at once if it is closed already. Without a usable lifeline, do nothing."""
    if not value or not value.isdigit() or not _in_own_session():
        return
    fd = int(value)
    try:
        os.fstat(fd)
    except OSError:
        return
    readable, _, _ = select.select([fd], [], [], 0)
    if readable and _owner_gone(fd):  # the owner died before this step started
        os.killpg(os.getpgrp(), signal.SIGKILL)

    def watch() -> None:
        if _owner_gone(fd):
            os.killpg(os.getpgrp(), signal.SIGKILL)

    threading.Thread(target=watch, name="t2s-bisect-lifeline", daemon=True).start()


def main(argv: list[str]) -> None:
    follow_lifeline(os.environ.get(LIFELINE_ENV))

    cli(["eval", *argv], prog_name="t2s eval")


if __name__ == "__main__":
    main(sys.argv[1:])
