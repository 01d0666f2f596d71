"""A cgroup per sandbox run: process and memory limits for the whole process tree.

A run's cgroup is created below the cgroup t2s itself runs in, the run's first
process joins it before anything else runs (so every descendant is inside), and the
sandbox has no way to leave: ``/sys/fs/cgroup`` is not mounted in it, and its uid may
not write cgroup files anyway.

- cgroup v1 (separate ``pids`` and ``memory`` hierarchies): ``pids.max``,
  ``memory.limit_in_bytes`` (and ``memory.memsw.limit_in_bytes``, so swap is no way
  out); one directory per controller.
- cgroup v2 (a delegated subtree): ``pids.max``, ``memory.max``, ``memory.swap.max``;
  one directory.

Names carry the owner (``t2s-sandbox-<pid namespace>.<pid>.<start time>-<n>``) so
that the cgroups of a killed t2s can be told from those of a live one and removed
(:func:`sweep`). Without a usable cgroup the run falls back to per-process rlimits,
and :func:`report` says so.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from t2s.sandbox.leftovers import owner_alive, owner_tag

PREFIX = "t2s-sandbox-"
_counter = itertools.count()


@dataclass(frozen=True)
class Controller:
    """Where runs' cgroups for one controller go."""

    name: str  # "pids" or "memory"
    version: int  # 1 or 2
    parent: Path


@dataclass
class RunCgroup:
    """The cgroup (one directory per v1 controller, or one v2 directory) of a run."""

    dirs: dict[str, Path] = field(default_factory=dict)  # controller -> directory
    version: int = 1

    @property
    def procs_files(self) -> list[Path]:
        return sorted({d / "cgroup.procs" for d in self.dirs.values()})

    def pids(self) -> list[int]:
        found: set[int] = set()
        for procs in self.procs_files:
            with contextlib.suppress(OSError):
                found.update(int(p) for p in procs.read_text().split())
        return sorted(found)

    def kill(self) -> None:
        """SIGKILL every process in the cgroup, until it is empty (a fork loop may
        add processes while we kill)."""
        for d in self.dirs.values():
            kill_file = d / "cgroup.kill"
            if kill_file.exists():
                with contextlib.suppress(OSError):
                    kill_file.write_text("1\n")
        for _ in range(400):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.005)

    def limits_hit(self) -> list[str]:
        """ "process limit" / "memory limit" when the kernel refused or killed."""
        hit = []
        pids_dir = self.dirs.get("pids")
        if pids_dir is not None and _counter_in(pids_dir / "pids.events", "max") > 0:
            hit.append("process limit")
        mem = self.dirs.get("memory")
        if mem is not None:
            if self.version == 1:
                oom = _counter_in(mem / "memory.oom_control", "oom_kill")
            else:
                oom = _counter_in(mem / "memory.events", "oom_kill") + _counter_in(mem / "memory.events", "max")
            if oom > 0:
                hit.append("memory limit")
        return hit

    def remove(self) -> None:
        self.kill()
        for d in self.dirs.values():
            _rmdir(d)

    def describe(self) -> str:
        return ", ".join(f"{name} {d}" for name, d in self.dirs.items())


def _counter_in(path: Path, key: str) -> int:
    try:
        text = path.read_text()
    except OSError:
        return 0
    m = re.search(rf"^{re.escape(key)} (\d+)$", text, re.M)
    return int(m.group(1)) if m else 0


def _rmdir(path: Path) -> None:
    for _ in range(100):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.01)


# ---------------------------------------------------------------------- discovery
def _mounts() -> dict[str, tuple[int, Path]]:
    """controller -> (version, mount point) from /proc/self/mounts."""
    out: dict[str, tuple[int, Path]] = {}
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split()
        if len(parts) < 4:
            continue
        _, mount, fstype, opts = parts[:4]
        if fstype == "cgroup":
            for name in ("pids", "memory"):
                if name in opts.split(","):
                    out.setdefault(name, (1, Path(mount)))
        elif fstype == "cgroup2":
            out.setdefault("v2", (2, Path(mount)))
    return out


def _own_paths() -> dict[str, str]:
    """controller (or "v2") -> our cgroup path, from /proc/self/cgroup."""
    out: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, rel = parts
        if controllers == "":
            out["v2"] = rel
        for name in controllers.split(","):
            if name in ("pids", "memory"):
                out[name] = rel
    return out


def _candidates() -> list[Controller]:
    mounts, own = _mounts(), _own_paths()
    found = []
    for name in ("pids", "memory"):
        if name in mounts and name in own:
            version, mount = mounts[name]
            found.append(Controller(name, version, mount / own[name].lstrip("/")))
        elif "v2" in mounts and "v2" in own:
            mount = mounts["v2"][1]
            parent = mount / own["v2"].lstrip("/")
            available = parent / "cgroup.subtree_control"
            try:
                enabled = available.read_text().split()
            except OSError:
                enabled = []
            if name in enabled:
                found.append(Controller(name, 2, parent))
    return found


def _probe(ctrl: Controller) -> bool:
    """Create a child cgroup, set its limit, move a process into it: does it work?"""
    probe = ctrl.parent / f"t2s-probe-{owner_tag()}-{next(_counter)}"
    limit = "pids.max" if ctrl.name == "pids" else ("memory.limit_in_bytes" if ctrl.version == 1 else "memory.max")
    sleeper = None
    try:
        probe.mkdir()
        (probe / limit).write_text("268435456\n" if ctrl.name == "memory" else "8\n")
        sleeper = subprocess.Popen(["sleep", "30"], stdin=subprocess.DEVNULL)
        (probe / "cgroup.procs").write_text(f"{sleeper.pid}\n")
        return str(sleeper.pid) in (probe / "cgroup.procs").read_text().split()
    except OSError:
        return False
    finally:
        if sleeper is not None:
            sleeper.kill()
            sleeper.wait()
        _rmdir(probe)


_probed: list[tuple[Controller, ...]] = []
_probe_lock = threading.Lock()


def controllers() -> tuple[Controller, ...]:
    """The controllers a run's cgroup can use here (probed once per process, under a
    lock: runs start from many threads, and a half-probed answer would mean no limits)."""
    with _probe_lock:
        if not _probed:
            _probed.append(tuple(c for c in _candidates() if _probe(c)))
            if _probed[0]:
                sweep()
        return _probed[0]


def report() -> dict[str, str]:
    have = {c.name: c for c in controllers()}
    out = {}
    for name in ("pids", "memory"):
        c = have.get(name)
        out[name] = (
            f"cgroup v{c.version} {name} controller under {c.parent}"
            if c
            else "none (no writable cgroup: per-process rlimits only)"
        )
    return out


# ---------------------------------------------------------------------- runs
def create(max_procs: int | None, memory_bytes: int | None) -> tuple[RunCgroup | None, list[str]]:
    """A cgroup for one run with the given limits (None: that limit is not set), or
    None when no controller is usable here. Returns it and notes on what failed."""
    usable = controllers()
    if not usable:
        return None, []
    name = f"{PREFIX}{owner_tag()}-{next(_counter)}"
    group = RunCgroup(version=usable[0].version)
    notes: list[str] = []
    for ctrl in usable:
        d = ctrl.parent / name
        try:
            d.mkdir(exist_ok=True)
            group.dirs[ctrl.name] = d
            _set_limits(ctrl, d, max_procs, memory_bytes)
        except OSError as err:
            notes.append(f"could not set up the {ctrl.name} cgroup: {err}")
    if not group.dirs:
        return None, notes
    return group, notes


def _set_limits(ctrl: Controller, d: Path, max_procs: int | None, memory_bytes: int | None) -> None:
    if ctrl.name == "pids" and max_procs is not None:
        (d / "pids.max").write_text(f"{max_procs}\n")
    if ctrl.name == "memory" and memory_bytes is not None:
        if ctrl.version == 1:
            (d / "memory.limit_in_bytes").write_text(f"{memory_bytes}\n")
            memsw = d / "memory.memsw.limit_in_bytes"
            if memsw.exists():
                memsw.write_text(f"{memory_bytes}\n")
        else:
            (d / "memory.max").write_text(f"{memory_bytes}\n")
            swap = d / "memory.swap.max"
            if swap.exists():
                swap.write_text("0\n")


def sweep() -> list[Path]:
    """Remove the run cgroups (and probes) of t2s processes that are gone: a
    ``kill -9`` leaves them behind. Their processes, if any survived, are killed."""
    removed = []
    for ctrl in _candidates():
        try:
            entries = list(ctrl.parent.iterdir())
        except OSError:
            continue
        for d in entries:
            m = re.match(r"^t2s-(?:sandbox|probe)-([0-9.]+)(?:-\d+)?$", d.name)
            if not m or not d.is_dir() or owner_alive(m.group(1)) is not False:
                continue
            group = RunCgroup(dirs={ctrl.name: d}, version=ctrl.version)
            group.remove()
            if not d.exists():
                removed.append(d)
    return removed
