"""Run model-written code (Python or a shell command) in a sandbox, per work folder.

The sandbox is bubblewrap (:mod:`t2s.sandbox.bwrap`; ``docs/sandbox.md`` has the whole
picture and ``t2s doctor`` says what works here). The code sees nothing of the host
but a read-only system and Python, and a copy of its work folder:

- its own mount, PID, network, IPC and UTS namespaces: no host files beyond ``/usr``,
  a few ``/etc`` files and the interpreter; its own ``/proc`` (no parent's environ or
  cwd); no network and no host sockets;
- a non-root uid, even when t2s runs as root;
- the work folder is a size-limited tmpfs (the disk limit) the host folder is copied
  into and back out of (:mod:`t2s.sandbox.workcopy`; links are never followed);
- one cgroup for the whole run (:mod:`t2s.sandbox.cgroups`): process and memory limits for
  the tree, which it cannot leave; per-process ``RLIMIT_AS``/``RLIMIT_FSIZE`` too;
- a wall-clock timeout for the code's process group, after which (and whenever the
  code ends) every other process of the sandbox is killed;
- an environment of the allow-list only, from an empty one;
- stdout and stderr kept as head + tail (a 50 MB print costs no memory).

Where bubblewrap cannot run, :func:`run_code` raises :class:`SandboxUnavailable`
unless the caller accepts running unsandboxed (``unsafe_no_sandbox``, the CLI's
``--unsafe-no-sandbox``): then the code runs as t2s's own user in the real work
folder with only rlimits, a cgroup and ``unshare --net`` around it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from t2s.errors import T2SError
from t2s.sandbox import bwrap as _bwrap, cgroups as _cgroups, workcopy as _workcopy
from t2s.sandbox.leftovers import KNOWN_PREFIXES, sweep

DEFAULT_TIMEOUT = 60.0
DEFAULT_MEMORY_MB = 2048
DEFAULT_MAX_PROCS = 64
DEFAULT_OUTPUT_LIMIT = 20_000  # bytes kept per stream (head + tail)
DEFAULT_FILE_SIZE_MB = 1024
#: Set to 1 to allow running unsandboxed where bubblewrap cannot run (the default
#: of ``unsafe_no_sandbox``; the CLI flag ``--unsafe-no-sandbox`` sets it too).
UNSAFE_ENV = "T2S_UNSAFE_NO_SANDBOX"
#: Seconds the host waits beyond the code's timeout (copying in and out) before it
#: kills the whole sandbox itself.
GRACE_S = 15.0
#: Processes of a run besides those the code starts: the cgroup join (then the outer
#: bubblewrap), bubblewrap's PID 1, the supervisor, the code's first process, the
#: timer and its sleep. ``max_procs`` counts what the code may start on top.
SANDBOX_PROCS = 6
#: Where a Python program is put without the sandbox, relative to the work folder
#: (removed afterwards); in the sandbox it is the read-only ``/tmp/t2s-exec.py``.
SCRIPT = "tmp/t2s-exec.py"

#: Environment variables a caller may add must not look like secrets.
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH|COOKIE|SESSION", re.I)


class SandboxUnavailable(T2SError):
    """Model code was to run, but no sandbox can be had here and running without one
    was not allowed."""


@dataclass
class ExecResult:
    """How one :func:`run_code` went: exit code, output (cut to head and tail when
    long), whether a limit or the timeout ended it, how long it took, and how it was
    isolated."""

    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool
    #: Why the run did not end on its own terms: "timeout", "memory limit",
    #: "process limit", "disk limit", "file size limit", "signal SIGxxx"; None for a
    #: normal exit.
    killed_reason: str | None
    duration_s: float
    #: True if stdout or stderr was cut to head + tail.
    truncated: bool
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    limits_hit: list[str] = field(default_factory=list)
    isolation: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: True when the code ran in the bubblewrap sandbox; False only for a run the
    #: caller allowed without one (``unsafe_no_sandbox``).
    sandboxed: bool = False

    @property
    def ok(self) -> bool:
        """Exit code 0, within time, and no limit hit."""
        return self.exit_code == 0 and not self.timed_out and not self.killed_reason

    @property
    def verdict(self) -> str:
        """One line a person (or a model) can read."""
        if self.timed_out:
            return f"killed: timeout after {self.duration_s:.1f} s"
        if self.killed_reason and self.exit_code == 0:
            return f"limit hit: {self.killed_reason} (exit code 0)"
        if self.killed_reason:
            return f"failed: {self.killed_reason} (exit code {self.exit_code})"
        if self.exit_code == 0:
            return "ok (exit code 0)"
        return f"failed: exit code {self.exit_code}"

    def to_dict(self) -> dict:
        """The result as JSON-ready data, with its :attr:`verdict`."""
        d = asdict(self)
        d["verdict"] = self.verdict
        return d


class _Capped:
    """Keeps the first ``head`` and last ``tail`` bytes of a stream."""

    def __init__(self, limit: int):
        self.head_limit = limit // 2
        self.tail_limit = limit - self.head_limit
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data and self.tail_limit > 0:
            self.tail += data
            if len(self.tail) > 2 * self.tail_limit:
                del self.tail[: len(self.tail) - self.tail_limit]

    @property
    def truncated(self) -> bool:
        return self.total > self.head_limit + self.tail_limit

    def last(self, n: int) -> str:
        data = bytes(self.tail[-n:]) if self.tail else bytes(self.head[-n:])
        return data.decode("utf-8", "replace")

    def text(self) -> str:
        tail = bytes(self.tail[-self.tail_limit :]) if self.tail_limit else b""
        cut = self.total - len(self.head) - len(tail)
        if cut <= 0:
            return (bytes(self.head) + tail).decode("utf-8", "replace")
        return (
            bytes(self.head).decode("utf-8", "replace")
            + f"\n[... {cut} bytes cut by the t2s sandbox (kept the first {len(self.head)} "
            f"and the last {len(tail)} of {self.total}) ...]\n" + tail.decode("utf-8", "replace")
        )


class _Spool:
    """The sandbox's result stream (status line + tar), up to ``limit`` bytes."""

    def __init__(self, limit: int):
        self.file = tempfile.SpooledTemporaryFile(max_size=16 << 20)  # noqa: SIM115 - outlives __init__; _collect closes it
        self.limit = limit
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        if self.total <= self.limit:
            self.file.write(data)

    @property
    def overflowed(self) -> bool:
        return self.total > self.limit


# ---------------------------------------------------------------------- availability
def availability() -> _bwrap.Availability:
    """Can the bubblewrap sandbox run here (probed once per process)?"""
    return _bwrap.availability()


def unsafe_allowed(explicit: bool | None = None) -> bool:
    """Running unsandboxed was allowed: ``explicit``, else ``$T2S_UNSAFE_NO_SANDBOX``."""
    if explicit is not None:
        return explicit
    return os.environ.get(UNSAFE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def unavailable_error() -> SandboxUnavailable:
    missing = availability().missing
    return SandboxUnavailable(
        "refusing to run model-written code: no sandbox can be had on this machine:\n"
        + "\n".join(f"  - {m}" for m in missing),
        hint="`t2s doctor` shows the details; fix the above, or pass --unsafe-no-sandbox to "
        "run the code with t2s's own user, files and environment (dangerous)",
    )


def unsafe_warning() -> str:
    return (
        "WARNING: no sandbox: model-written code runs as "
        f"{'root' if os.geteuid() == 0 else 'your user'} with access to your files "
        "(--unsafe-no-sandbox): " + "; ".join(availability().missing)
    )


def preflight(unsafe_no_sandbox: bool | None = None) -> str | None:
    """For a command about to run model code: remove what killed t2s processes left
    behind, then check the sandbox. Raises :class:`SandboxUnavailable` if there is
    none and unsandboxed runs were not allowed; returns the warning to print (and
    record) when they were; None when the code will be sandboxed."""

    sweep_leftovers()
    if availability().ok:
        return None
    if not unsafe_allowed(unsafe_no_sandbox):
        raise unavailable_error()
    return unsafe_warning()


def isolation_report() -> dict[str, str]:
    """What ``run_code`` applies on this machine (for ``t2s doctor``)."""
    avail = availability()
    cg = _cgroups.report()
    uid, _ = _bwrap.sandbox_ids()
    if not avail.ok:
        return {
            "sandbox": "UNAVAILABLE: " + "; ".join(avail.missing),
            "consequence": "rollout, eval, gate, analyze and evolve refuse to run model code "
            "unless --unsafe-no-sandbox is given",
            "unsafe fallback": f"{_network_wrapper()[0]}; processes: {cg['pids']}; memory: {cg['memory']}",
        }
    return {
        "sandbox": f"bubblewrap {avail.version}",
        "user": f"uid {uid}"
        + (
            " (nobody; t2s runs as root, setpriv drops before the code runs)"
            if _bwrap.runs_as_root()
            else " (your own, in a user namespace)"
        ),
        "filesystem": "own mount namespace: /usr, a few /etc files and the interpreter read-only "
        f"({', '.join(_bwrap.python_dirs())}); the work folder, /tmp and /dev/shm are tmpfs",
        "network": "none (empty network namespace; no host sockets)",
        "processes": f"own PID namespace and /proc; {cg['pids']}",
        "memory": f"{cg['memory']}; RLIMIT_AS per process",
        "disk": "the work folder, /tmp and /dev/shm: tmpfs of file_size_mb each; RLIMIT_FSIZE",
        "timeout": "the code's process group, then every process of the sandbox",
        "environment": "allow-list only (PATH, HOME, TMPDIR, LANG, LC_ALL, PYTHON* basics), "
        "started from an empty environment",
    }


# ---------------------------------------------------------------------- the run
def sandbox_env(workdir: Path, extra: dict[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """The child's environment: an allow-list, never the parent's secrets."""
    py_dir = str(Path(sys.executable).parent)
    env = {
        "PATH": f"{py_dir}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(workdir),
        "TMPDIR": str(workdir / "tmp"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONUNBUFFERED": "1",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
    }
    notes = []
    for key, value in (extra or {}).items():
        if SECRET_NAME.search(key):
            notes.append(f"environment variable {key} dropped: its name looks like a secret")
            continue
        env[key] = str(value)
    return env, notes


@dataclass
class _Limits:
    timeout: float
    memory_mb: int | None
    max_procs: int | None
    file_size_mb: int | None
    output_limit: int
    network: bool

    @property
    def disk_bytes(self) -> int:
        return (self.file_size_mb or DEFAULT_FILE_SIZE_MB) << 20


@dataclass
class _Run:
    """One run being prepared and carried out: what both ways of running share."""

    workdir: Path
    env: dict[str, str]
    limits: _Limits
    stdin: str | None
    notes: list[str]
    group: _cgroups.RunCgroup | None = None
    nproc: int | None = None
    isolation: dict[str, str] = field(default_factory=dict)
    #: The output sinks, made when the process starts (:func:`_execute`).
    out: _Capped = field(init=False, repr=False)
    err: _Capped = field(init=False, repr=False)
    limits_hit: list[str] = field(default_factory=list)


def run_code(
    code: str,
    workdir: Path,
    *,
    language: Literal["python", "shell"] = "python",
    timeout: float = DEFAULT_TIMEOUT,
    memory_mb: int | None = DEFAULT_MEMORY_MB,
    max_procs: int | None = DEFAULT_MAX_PROCS,
    output_limit: int = DEFAULT_OUTPUT_LIMIT,
    network: bool = False,
    env: dict[str, str] | None = None,
    file_size_mb: int | None = DEFAULT_FILE_SIZE_MB,
    stdin: str | None = None,
    unsafe_no_sandbox: bool | None = None,
) -> ExecResult:
    """Run ``code`` with ``workdir`` as its current and home directory and return what
    happened; the files it leaves are in ``workdir`` afterwards.

    Never raises for anything the code does. A bad ``language`` or a missing
    ``workdir`` is a :class:`ValueError`/:class:`FileNotFoundError` (programming
    errors); :class:`SandboxUnavailable` when bubblewrap cannot run here and
    ``unsafe_no_sandbox`` (default: ``$T2S_UNSAFE_NO_SANDBOX``) does not allow running
    without it.
    """
    workdir = Path(workdir).resolve()
    if not workdir.is_dir():
        raise FileNotFoundError(f"sandbox work directory {workdir} does not exist")
    if language not in ("python", "shell"):
        raise ValueError(f"unknown language {language!r} (python or shell)")
    child_env, notes = sandbox_env(workdir, env)
    run = _Run(
        workdir, child_env, _Limits(timeout, memory_mb, max_procs, file_size_mb, output_limit, network), stdin, notes
    )
    if availability().ok:
        return _run_sandboxed(code, language, run)
    if not unsafe_allowed(unsafe_no_sandbox):
        raise unavailable_error()
    return _run_unsandboxed(code, language, run)


def _code_command(code: str, language: str, script_path: str) -> tuple[list[str], bytes | None]:
    """The command running ``code``, and the script file's content (Python)."""
    if language == "python":
        return [sys.executable, "-s", script_path], code.encode("utf-8")
    return [shutil.which("bash") or "/bin/sh", "-c", code], None


# -- limits
def _set_up_limits(run: _Run, uid: int, *, machinery: int, own_namespace: bool) -> None:
    """The run's cgroup (``max_procs`` + ``machinery`` processes, ``memory_mb``), or the
    per-user ``RLIMIT_NPROC`` where there is no pids cgroup; noted in ``isolation``."""
    limits = run.limits
    run.group, cg_notes = _cgroups.create(
        limits.max_procs + machinery if limits.max_procs is not None else None,
        limits.memory_mb << 20 if limits.memory_mb else None,
    )
    run.notes += cg_notes
    run.nproc = _nproc_fallback(run.group, limits, uid, machinery=machinery, own_namespace=own_namespace)
    procs = "unlimited (max_procs=None)"
    if limits.max_procs is not None:
        if run.group is not None and "pids" in run.group.dirs:
            procs = f"cgroup pids.max {limits.max_procs + machinery} for the whole run"
        elif run.nproc is not None:
            procs = f"RLIMIT_NPROC {run.nproc} (no pids cgroup)"
        else:
            procs = "none beyond the timeout (root, no pids cgroup)"
    memory = "unlimited"
    if limits.memory_mb:
        memory = f"RLIMIT_AS {limits.memory_mb} MB per process"
        if run.group is not None and "memory" in run.group.dirs:
            memory += f"; cgroup {limits.memory_mb} MB for the whole run (files in tmpfs count)"
    run.isolation.update(processes=procs, memory=memory)


def _nproc_fallback(
    group: _cgroups.RunCgroup | None, limits: _Limits, uid: int, *, machinery: int, own_namespace: bool
) -> int | None:
    """``RLIMIT_NPROC`` when no pids cgroup limits the run. It counts per user: in the
    sandbox's own user namespace only the sandbox's processes (``max_procs`` plus
    what runs there besides: bubblewrap's PID 1, the supervisor, the code's first
    process, the timer and its sleep; the outer bubblewrap is outside); otherwise
    every process of that user on the machine, so those are added."""
    if limits.max_procs is None or (group is not None and "pids" in group.dirs):
        return None
    if uid == 0:
        return None  # RLIMIT_NPROC does not bind root
    if own_namespace:
        return limits.max_procs + machinery - 1
    return _user_process_count(uid) + limits.max_procs + machinery


def _user_process_count(uid: int) -> int:
    n = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    n += 1
            except OSError:
                pass
    return n


def _join_cgroup(group: _cgroups.RunCgroup | None) -> list[str]:
    """A shell that moves itself into the run's cgroup, then execs the rest, so the
    whole tree is inside from its first instruction (an exec chain: no Python runs
    between fork and exec, and ``run_code`` is called from threads)."""
    if group is None:
        return []
    files = [str(f) for f in group.procs_files]
    script = 'for f in "$@"; do [ "$f" = -- ] && break; echo $$ > "$f" || exit 127; shift; done; shift; exec "$@"'
    return ["/bin/sh", "-c", script, "t2s-join", *files, "--"]


# -- sandboxed
def _run_sandboxed(code: str, language: str, run: _Run) -> ExecResult:
    uid, _ = _bwrap.sandbox_ids()
    limits = run.limits
    _set_up_limits(run, uid, machinery=SANDBOX_PROCS, own_namespace=not _bwrap.runs_as_root())
    run.isolation.update(
        sandbox=f"bubblewrap {availability().version}",
        user=f"uid {uid}",
        network="allowed (network=True)" if limits.network else "none (empty network namespace)",
        disk=f"tmpfs {limits.disk_bytes >> 20} MB",
    )
    command, script = _code_command(code, language, _bwrap.SCRIPT_PATH)
    inner = ["env", "-i", *(f"{k}={v}" for k, v in run.env.items()), *command]
    rlimits = (
        str(limits.memory_mb << 10) if limits.memory_mb else "-",
        str(limits.file_size_mb << 10) if limits.file_size_mb else "-",
        str(run.nproc) if run.nproc is not None else "-",
    )
    in_fd = _workcopy.pack(run.workdir, dirs=("tmp",))
    read_end, write_end = os.pipe()
    spool = _Spool(2 * limits.disk_bytes + (64 << 20))
    try:
        plan = _bwrap.plan(
            run.workdir,
            disk_bytes=limits.disk_bytes,
            in_fd=in_fd,
            out_fd=write_end,
            seconds=limits.timeout,
            command=inner,
            rlimits=rlimits,
            script=script,
            network=limits.network,
        )
        started = _execute(
            run,
            _join_cgroup(run.group) + plan.argv,
            env={},
            cwd="/",
            pass_fds=plan.pass_fds,
            close_after_start=[in_fd, write_end, *plan.close_after_start],
            extra={read_end: spool},
            deadline_s=limits.timeout + GRACE_S,
        )
    finally:
        os.close(read_end)
    if isinstance(started, ExecResult):
        return started
    returncode, host_timeout, duration = started
    status = _collect(spool, run.workdir, limits, run.notes)
    return _result(run, status, returncode, host_timeout, duration, sandboxed=True)


def _collect(spool: _Spool, workdir: Path, limits: _Limits, notes: list[str]) -> dict | None:
    """Read the supervisor's status line and copy the work folder back."""
    with spool.file:
        if spool.overflowed:
            notes.append(f"the sandbox sent more than {spool.limit} bytes back: its files were not copied back")
            return None
        spool.file.seek(0)
        m = re.fullmatch(rb"t2s-status (\d+) ([01])\n", spool.file.readline())
        if not m:
            if spool.total:
                notes.append("the sandbox's result was unreadable: its files were not copied back")
            return None
        try:
            notes += _workcopy.copy_back(spool.file, workdir, max_bytes=2 * limits.disk_bytes)
        except _workcopy.CopyBackError as err:
            notes.append(f"the work folder was not copied back: {err}")
    return {"code": _from_shell_status(int(m.group(1))), "timed_out": m.group(2) == b"1"}


def _from_shell_status(code: int) -> int:
    """A shell's ``$?`` (128 + N for a signal) in Popen's convention (-N)."""
    if code > 128:
        try:
            signal.Signals(code - 128)
            return -(code - 128)
        except ValueError:
            pass
    return code


# -- unsandboxed (only where allowed)
@functools.cache
def _network_wrapper() -> tuple[str, tuple[str, ...]]:
    """(description, command prefix) of the way to cut the network without the
    sandbox, or ("none ...", ())."""
    unshare = shutil.which("unshare")
    if unshare and _run_quiet([unshare, "--net", "--", "true"]):
        return "unshare --net (empty network namespace)", (unshare, "--net", "--")
    bwrap = shutil.which("bwrap")
    if bwrap:
        prefix = (bwrap, "--dev-bind", "/", "/", "--unshare-net", "--die-with-parent", "--")
        if _run_quiet([*prefix, "true"]):
            return "bubblewrap --unshare-net (empty network namespace)", prefix
    return "none (neither `unshare --net` nor bubblewrap works here)", ()


def _run_quiet(cmd: list[str], timeout: float = 10) -> bool:
    try:
        return (
            subprocess.run(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def _run_unsandboxed(code: str, language: str, run: _Run) -> ExecResult:
    """The code as t2s's own user, in the real work folder: rlimits, a cgroup where
    one is writable, ``unshare --net``. Only where the caller allowed it."""
    run.notes.append(unsafe_warning())
    _set_up_limits(run, os.geteuid(), machinery=2, own_namespace=False)
    run.isolation["sandbox"] = "NONE (unsafe_no_sandbox): the code runs as t2s's user, in the real work folder"
    net: tuple[str, ...] = ()
    if run.limits.network:
        run.isolation["network"] = "allowed (network=True)"
    else:
        run.isolation["network"], net = _network_wrapper()
    script_path = run.workdir / SCRIPT
    command, script = _code_command(code, language, str(script_path))
    (run.workdir / "tmp").mkdir(exist_ok=True)
    if script is not None:
        script_path.write_bytes(script)
    argv = _join_cgroup(run.group) + _rlimits(run.limits, run.nproc) + list(net) + command
    try:
        started = _execute(
            run,
            argv,
            env=run.env,
            cwd=str(run.workdir),
            pass_fds=[],
            close_after_start=[],
            extra={},
            deadline_s=run.limits.timeout,
        )
    finally:
        if script is not None:
            script_path.unlink(missing_ok=True)
    if isinstance(started, ExecResult):
        return started
    returncode, host_timeout, duration = started
    if run.nproc is not None and "Resource temporarily unavailable" in run.err.last(4000):
        run.limits_hit.append("process limit")
    status = {"code": returncode, "timed_out": False}
    return _result(run, status, returncode, host_timeout, duration, sandboxed=False)


def _rlimits(limits: _Limits, nproc: int | None) -> list[str]:
    """``prlimit`` in front of the command (an exec: no Python between fork and exec)."""
    args = ["prlimit", "--core=0"]
    if limits.memory_mb:
        args.append(f"--as={limits.memory_mb << 20}")
    if limits.file_size_mb:
        args.append(f"--fsize={limits.file_size_mb << 20}")
    if nproc is not None:
        args.append(f"--nproc={nproc}")
    return [*args, "--"]


# -- shared
def _execute(
    run: _Run,
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: str,
    pass_fds: list[int],
    close_after_start: list[int],
    extra: dict,
    deadline_s: float,
):
    """Start ``argv``, stream its output (and ``extra`` descriptors into their sinks)
    until it and everything in its cgroup are gone; then remove the cgroup.
    Returns (exit status, whether the host's deadline hit, seconds), or an
    :class:`ExecResult` when it could not start."""
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            pass_fds=pass_fds,
            close_fds=True,
            start_new_session=True,
            stdin=subprocess.PIPE if run.stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError as exc:
        if run.group:
            run.group.remove()
        return ExecResult(
            exit_code=None,
            stdout="",
            stderr=f"could not start: {exc}",
            timed_out=False,
            killed_reason="could not start",
            duration_s=0.0,
            truncated=False,
            isolation=run.isolation,
            notes=run.notes,
        )
    finally:
        for fd in close_after_start:
            os.close(fd)
    run.out, run.err = _Capped(run.limits.output_limit), _Capped(run.limits.output_limit)
    kill = _killer(proc, run.group)
    try:
        sinks = {proc.stdout: run.out, proc.stderr: run.err, **extra}
        host_timeout = _pump(proc, run.stdin, sinks, start + deadline_s, on_deadline=kill, on_exit=kill)
    finally:
        kill()
        _reap(proc, run.notes)
        if run.group:
            run.limits_hit += run.group.limits_hit()
            run.group.remove()
    return proc.returncode, host_timeout, time.monotonic() - start


def _killer(proc: subprocess.Popen, group: _cgroups.RunCgroup | None) -> Callable[[], None]:
    def kill() -> None:
        if group is not None:
            group.kill()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    return kill


def _reap(proc: subprocess.Popen, notes: list[str]) -> None:
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:  # pipes: never None here
            stream.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        notes.append("the main process did not die after SIGKILL within 10 s")


def _feed_stdin(proc: subprocess.Popen, stdin: str | None) -> None:
    pipe = proc.stdin  # a pipe exactly when there is stdin to feed
    if stdin is None or pipe is None:
        return
    try:
        pipe.write(stdin.encode())
    except (BrokenPipeError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError):
            pipe.close()


def _pump(
    proc: subprocess.Popen,
    stdin: str | None,
    sinks: dict,
    deadline: float,
    *,
    on_deadline: Callable[[], None],
    on_exit: Callable[[], None],
) -> bool:
    """Feed stdin, read every stream into its sink until all close. At ``deadline``
    (returns True) ``on_deadline`` runs; when the main process is gone, ``on_exit``
    runs, so what it left behind cannot hold the pipes open."""
    _feed_stdin(proc, stdin)
    sel = selectors.DefaultSelector()
    for stream, sink in sinks.items():
        sel.register(stream, selectors.EVENT_READ, sink)
    timed_out = killed = False
    drain_deadline = None
    try:
        while sel.get_map():
            now = time.monotonic()
            if not killed and now >= deadline:
                timed_out = killed = True
                on_deadline()
                drain_deadline = now + 5
            if drain_deadline is not None and now >= drain_deadline:
                break
            _read_ready(sel, min(max(deadline - now, 0.0), 0.2) if not killed else 0.2)
            if not killed and proc.poll() is not None:
                on_exit()
                killed = True
                drain_deadline = time.monotonic() + 5
        if not killed:  # the pipes closed but the process may still run
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
            except subprocess.TimeoutExpired:
                timed_out = True
    finally:
        sel.close()
    return timed_out


def _read_ready(sel: selectors.BaseSelector, wait: float) -> None:
    for key, _ in sel.select(timeout=wait):
        data = os.read(key.fd, 1 << 16)
        if data:
            key.data.feed(data)
        else:
            sel.unregister(key.fileobj)


_MEMORY_ERRORS = ("MemoryError", "Cannot allocate memory", "memory exhausted", "std::bad_alloc")


def _result(
    run: _Run, status: dict | None, returncode: int | None, host_timeout: bool, duration: float, *, sandboxed: bool
) -> ExecResult:
    out, err, hit = run.out, run.err, run.limits_hit
    tail = err.last(4000)
    code = status["code"] if status else None
    if status is None and not host_timeout and not hit:
        run.notes.append(f"the sandbox failed (exit status {returncode}); see stderr")
    timed_out = host_timeout or bool(status and status["timed_out"])
    if any(s in tail for s in _MEMORY_ERRORS):
        hit.append("memory limit")
    if "No space left on device" in tail or "No space left on device" in out.last(4000):
        hit.append("disk limit")
    if code is not None and code < 0 and -code == signal.SIGXFSZ:
        hit.append("file size limit")
    return ExecResult(
        exit_code=code,
        stdout=out.text(),
        stderr=err.text(),
        timed_out=timed_out,
        killed_reason=_killed_reason(timed_out, hit, code, status),
        duration_s=round(duration, 3),
        truncated=out.truncated or err.truncated,
        stdout_bytes=out.total,
        stderr_bytes=err.total,
        limits_hit=sorted(set(hit)),
        isolation=run.isolation,
        notes=run.notes,
        sandboxed=sandboxed,
    )


def _killed_reason(timed_out: bool, hit: list[str], code: int | None, status: dict | None) -> str | None:
    if timed_out:
        return "timeout"
    if hit:
        return hit[0]
    if code is not None and code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return "sandbox failure" if status is None else None


def sweep_leftovers() -> list[Path]:
    """What killed t2s processes left behind: scratch folders in the system's
    temporary directory and the sandbox's cgroups. Runs at the start of every
    command that runs model code (so a resumed run cleans up after the killed one)."""
    removed = []
    for prefix in KNOWN_PREFIXES:
        removed += sweep(prefix)
    removed += _cgroups.sweep()
    return removed
