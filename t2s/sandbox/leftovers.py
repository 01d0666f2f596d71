"""What a killed t2s would leave behind, and how it does not.

- Scratch folders: ``tempfile.TemporaryDirectory`` cleans up on a normal exit and on
  exceptions, but a ``kill -9`` leaves the folder behind for good. A scratch folder's
  name carries its owner - ``<prefix><pid namespace>.<pid>.<start time>-<random>`` -
  so the next t2s that makes a folder with the same prefix in the same place removes
  the folders whose owner is gone (the start time tells a reused pid from the
  original owner; the pid namespace keeps a t2s in another container from judging
  ours). The sandbox's cgroups are named the same way (:mod:`t2s.sandbox.cgroups`).
- Child processes: :func:`dies_with_parent` gives a command a parent-death signal,
  so a helper process (``t2s check``) does not run on after t2s is killed. Sandboxed
  code needs none: bubblewrap's ``--die-with-parent`` and its PID namespace end it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: Prefixes of t2s's scratch folders in the system's temporary directory.
KNOWN_PREFIXES = ("t2s-analyst-", "t2s-eval-", "t2s-rollout-")


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


@functools.cache
def _pid_namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "0"


def owner_tag(pid: int | None = None) -> str:
    """``<pid namespace>.<pid>.<start time>`` of this process (or of ``pid``)."""
    pid = os.getpid() if pid is None else pid
    return f"{_pid_namespace()}.{pid}.{_start_time(pid) or 0}"


def owner_alive(tag: str) -> bool | None:
    """Is the owner named by ``tag`` still running? None when we cannot tell (a tag
    of another pid namespace, or not a tag at all)."""
    parts = tag.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    namespace, pid, start = parts
    if namespace != _pid_namespace():
        return None
    return _start_time(int(pid)) == start


_TAGGED = re.compile(r"^(?P<tag>\d+\.\d+\.\d+)-")


def sweep(prefix: str, directory: Path | str | None = None) -> list[Path]:
    """Remove the ``prefix`` scratch folders in ``directory`` (default: the system's
    temporary directory) whose owner is gone. Returns what was removed."""
    base = Path(directory) if directory is not None else Path(tempfile.gettempdir())
    removed: list[Path] = []
    try:
        entries = list(base.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        m = _TAGGED.match(entry.name[len(prefix) :])
        if not m or owner_alive(m.group("tag")) is not False:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            removed.append(entry)
    return removed


def dies_with_parent(argv: list[str]) -> list[str]:
    """``argv`` prefixed so the process gets SIGKILL when the thread that started it
    ends (``setpriv --pdeathsig``; an exec chain, so no Python runs between fork and
    exec: t2s starts helpers from threads). A parent that died before the signal was
    armed is caught too: the shell then finds itself adopted and exits."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return list(argv)
    check = 'if [ "$PPID" != "$0" ]; then exit 137; fi; exec "$@"'
    return [setpriv, "--pdeathsig", "KILL", "--", "/bin/sh", "-c", check, str(os.getpid()), *argv]


_swept: set[tuple[str, str]] = set()


@contextlib.contextmanager
def scratch_dir(prefix: str, directory: Path | str | None = None) -> Iterator[Path]:
    """A temporary folder named for this process, removed on exit and on exceptions;
    a dead owner's folders with the same prefix in the same place go first."""
    key = (prefix, str(directory))
    if key not in _swept:
        _swept.add(key)
        sweep(prefix, directory)
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}{owner_tag()}-", dir=directory))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
