"""Run agent code (Python or a shell command) in a subprocess, per task work directory.

Limits and isolation (see ``docs/sandbox.md``; ``t2s doctor`` says which are active):

- wall-clock timeout: the child starts a new session; on timeout (or when the main
  process exits) every process it left behind is killed (its pids cgroup if there is
  one, else its process group);
- memory: ``RLIMIT_AS`` (address space), plus ``RLIMIT_FSIZE`` (largest file written)
  and no core dumps;
- processes: a fresh pids cgroup with ``pids.max`` where the cgroup file system is
  writable (works for root, whom ``RLIMIT_NPROC`` does not bind); otherwise
  ``RLIMIT_NPROC`` for a non-root user (counted per user, so offset by the processes
  the user already has);
- environment: an allow-list only (no API keys, tokens or secrets reach the child),
  ``HOME`` is the work directory and ``TMPDIR`` its ``tmp/``;
- output: stdout and stderr are read as streams and kept as head + tail, with a marker
  saying how many bytes were cut, so a 50 MB print costs no memory;
- network: off by default, through ``unshare --net`` or bubblewrap when either works.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

DEFAULT_TIMEOUT = 60.0
DEFAULT_MEMORY_MB = 2048
DEFAULT_MAX_PROCS = 64
DEFAULT_OUTPUT_LIMIT = 20_000  # bytes kept per stream (head + tail)
DEFAULT_FILE_SIZE_MB = 1024

#: Environment variables a caller may add must not look like secrets.
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH|COOKIE|SESSION", re.I)
_counter = itertools.count()


@dataclass
class ExecResult:
    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool
    #: Why the run did not end on its own terms: "timeout", "memory limit",
    #: "process limit", "file size limit", "signal SIGxxx"; None for a normal exit.
    killed_reason: str | None
    duration_s: float
    #: True if stdout or stderr was cut to head + tail.
    truncated: bool
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    limits_hit: list[str] = field(default_factory=list)
    isolation: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
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

    def text(self) -> str:
        tail = bytes(self.tail[-self.tail_limit:]) if self.tail_limit else b""
        cut = self.total - len(self.head) - len(tail)
        if cut <= 0:
            return (bytes(self.head) + tail).decode("utf-8", "replace")
        return (bytes(self.head).decode("utf-8", "replace")
                + f"\n[... {cut} bytes cut by the t2s sandbox (kept the first {len(self.head)} "
                  f"and the last {len(tail)} of {self.total}) ...]\n"
                + tail.decode("utf-8", "replace"))


# -- isolation probes ------------------------------------------------------------------
def _run_quiet(cmd: list[str], timeout: float = 10) -> bool:
    try:
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=timeout).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@functools.cache
def _network_wrapper() -> tuple[str, tuple[str, ...]]:
    """(description, command prefix) of the way to cut the network, or ("none ...", ())."""
    unshare = shutil.which("unshare")
    if unshare and _run_quiet([unshare, "--net", "--", "true"]):
        return "unshare --net (empty network namespace)", (unshare, "--net", "--")
    bwrap = shutil.which("bwrap")
    if bwrap:
        prefix = (bwrap, "--dev-bind", "/", "/", "--unshare-net", "--die-with-parent", "--")
        if _run_quiet([*prefix, "true"]):
            return "bubblewrap --unshare-net (empty network namespace)", prefix
    return "none (neither `unshare --net` nor bubblewrap works here)", ()


def _own_cgroup_dirs() -> list[tuple[str, Path]]:
    """Candidate parent directories for a pids cgroup: (kind, path)."""
    out = []
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, rel = parts
        if "pids" in controllers.split(","):
            out.append(("cgroup v1 pids", Path("/sys/fs/cgroup/pids") / rel.lstrip("/")))
        elif controllers == "" and Path("/sys/fs/cgroup/cgroup.controllers").exists():
            out.append(("cgroup v2 pids", Path("/sys/fs/cgroup") / rel.lstrip("/")))
    return out


@functools.cache
def _pids_cgroup_parent() -> tuple[str, Path | None]:
    """Find a cgroup directory under which we can create children that limit pids and
    that a process can join; probe it once for real."""
    for kind, parent in _own_cgroup_dirs():
        probe = parent / f"t2s-probe-{os.getpid()}"
        sleeper = None
        try:
            probe.mkdir()
            (probe / "pids.max").write_text("8\n")
            sleeper = subprocess.Popen(["sleep", "30"], stdin=subprocess.DEVNULL)
            (probe / "cgroup.procs").write_text(f"{sleeper.pid}\n")
            joined = str(sleeper.pid) in (probe / "cgroup.procs").read_text().split()
        except OSError:
            joined = False
        finally:
            if sleeper is not None:
                sleeper.kill()
                sleeper.wait()
            _rmdir_cgroup(probe)
        if joined:
            return kind, parent
    return "none", None


def _rmdir_cgroup(path: Path) -> None:
    for _ in range(50):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.01)


def _procs_mode() -> str:
    kind, parent = _pids_cgroup_parent()
    if parent is not None:
        return kind
    if os.geteuid() != 0:
        return "RLIMIT_NPROC (per user, offset by the user's existing processes)"
    return "none (running as root without a writable pids cgroup; RLIMIT_NPROC does not bind root)"


def isolation_report() -> dict[str, str]:
    """Which isolation ``run_code`` applies on this machine (for ``t2s doctor``)."""
    return {
        "network": _network_wrapper()[0],
        "memory": "RLIMIT_AS (address space) + RLIMIT_FSIZE",
        "processes": _procs_mode(),
        "timeout": "kill of the whole process tree (cgroup or process group)",
        "environment": "allow-list (PATH, HOME, TMPDIR, LANG, LC_ALL, PYTHON* basics)",
        "user": f"uid {os.geteuid()}" + (" (root: no uid drop)" if os.geteuid() == 0 else ""),
    }


# -- the run -------------------------------------------------------------------------
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


def _user_process_count() -> int:
    uid = os.getuid()
    n = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    n += 1
            except OSError:
                pass
    return n


def _kill_cgroup(cg: Path) -> None:
    kill_file = cg / "cgroup.kill"
    if kill_file.exists():
        try:
            kill_file.write_text("1\n")
        except OSError:
            pass
    for _ in range(200):
        try:
            pids = [int(p) for p in (cg / "cgroup.procs").read_text().split()]
        except OSError:
            return
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.005)


def run_code(code: str, workdir: Path, *, language: Literal["python", "shell"] = "python",
             timeout: float = DEFAULT_TIMEOUT, memory_mb: int | None = DEFAULT_MEMORY_MB,
             max_procs: int | None = DEFAULT_MAX_PROCS, output_limit: int = DEFAULT_OUTPUT_LIMIT,
             network: bool = False, env: dict[str, str] | None = None,
             file_size_mb: int | None = DEFAULT_FILE_SIZE_MB, stdin: str | None = None) -> ExecResult:
    """Run ``code`` with ``workdir`` as its current and home directory and return what
    happened. Never raises for anything the code does; a bad ``language`` or a missing
    ``workdir`` is a :class:`ValueError`/:class:`FileNotFoundError` (programming errors)."""
    workdir = Path(workdir).resolve()
    if not workdir.is_dir():
        raise FileNotFoundError(f"sandbox work directory {workdir} does not exist")
    (workdir / "tmp").mkdir(exist_ok=True)
    child_env, notes = sandbox_env(workdir, env)
    n = next(_counter)

    if language == "python":
        script = Path(tempfile.mkstemp(prefix=f"t2s-exec-{os.getpid()}-{n}-", suffix=".py",
                                       dir=workdir / "tmp")[1])
        script.write_text(code, encoding="utf-8")
        cmd = [sys.executable, "-s", str(script)]
    elif language == "shell":
        script = None
        shell = shutil.which("bash") or "/bin/sh"
        cmd = [shell, "-c", code]
    else:
        raise ValueError(f"unknown language {language!r} (python or shell)")

    isolation = {"network": "allowed (network=True)"}
    if not network:
        desc, prefix = _network_wrapper()
        isolation["network"] = desc
        cmd = [*prefix, *cmd]

    cg: Path | None = None
    kind, cg_parent = _pids_cgroup_parent()
    nproc_limit = None
    if max_procs is not None:
        if cg_parent is not None:
            cg = cg_parent / f"t2s-sandbox-{os.getpid()}-{n}"
            try:
                cg.mkdir()
                # +2: the network wrapper (bubblewrap forks) counts too
                (cg / "pids.max").write_text(f"{max_procs + 2}\n")
                isolation["processes"] = f"{kind} (pids.max {max_procs + 2})"
            except OSError as err:
                notes.append(f"could not create a pids cgroup: {err}")
                _rmdir_cgroup(cg)
                cg = None
        if cg is None:
            if os.geteuid() != 0:
                nproc_limit = _user_process_count() + max_procs
                isolation["processes"] = f"RLIMIT_NPROC {nproc_limit}"
            else:
                isolation["processes"] = "none (root, no pids cgroup)"
    else:
        isolation["processes"] = "unlimited (max_procs=None)"
    isolation["memory"] = f"RLIMIT_AS {memory_mb} MB" if memory_mb else "unlimited"

    cg_procs = str(cg / "cgroup.procs") if cg else None

    # Limits are applied by exec-chained wrappers (no extra processes, no Python code
    # between fork and exec: the harness calls run_code from threads, where preexec_fn
    # is unsafe). A shell joins the cgroup, then prlimit sets the rlimits.
    prlimit = shutil.which("prlimit")
    preexec = None
    if prlimit:
        limits = [prlimit, "--core=0"]
        if memory_mb:
            limits.append(f"--as={memory_mb * 1024 * 1024}")
        if file_size_mb:
            limits.append(f"--fsize={file_size_mb * 1024 * 1024}")
        if nproc_limit is not None:
            limits.append(f"--nproc={nproc_limit}")
        cmd = [*limits, "--", *cmd]
        if cg_procs:
            cmd = ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', cg_procs, *cmd]
    else:
        preexec = "fallback"

    def _limits() -> None:  # fallback without prlimit: runs in the child before exec
        if cg_procs:
            fd = os.open(cg_procs, os.O_WRONLY)
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
        if memory_mb:
            b = memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (b, b))
        if file_size_mb:
            b = file_size_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_FSIZE, (b, b))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if nproc_limit is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc_limit, nproc_limit))

    out, err = _Capped(output_limit), _Capped(output_limit)
    timed_out = False
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            cmd, cwd=workdir, env=child_env, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
            preexec_fn=_limits if preexec else None, close_fds=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        if cg:
            _rmdir_cgroup(cg)
        return ExecResult(exit_code=None, stdout="", stderr=f"could not start: {exc}",
                          timed_out=False, killed_reason="could not start",
                          duration_s=0.0, truncated=False, isolation=isolation, notes=notes)

    def kill_all() -> None:
        if cg:
            _kill_cgroup(cg)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    if stdin is not None:
        try:
            proc.stdin.write(stdin.encode())
        except (BrokenPipeError, OSError):
            pass
        finally:
            try:
                proc.stdin.close()
            except OSError:
                pass

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, out)
    sel.register(proc.stderr, selectors.EVENT_READ, err)
    deadline = start + timeout
    killed = False
    drain_deadline = None
    try:
        while sel.get_map():
            now = time.monotonic()
            if not killed and now >= deadline:
                timed_out = True
                kill_all()
                killed = True
                drain_deadline = now + 5
            if drain_deadline is not None and now >= drain_deadline:
                break
            wait = min(max(deadline - now, 0.0), 0.2) if not killed else 0.2
            for key, _ in sel.select(timeout=wait):
                data = os.read(key.fd, 1 << 16)
                if data:
                    key.data.feed(data)
                else:
                    sel.unregister(key.fileobj)
            if not killed and proc.poll() is not None:
                # The main process is done: whatever it left running goes too, so the
                # pipes close and the call ends.
                kill_all()
                killed = True
                drain_deadline = time.monotonic() + 5
        if not killed:
            # Both pipes closed but the process may still run: wait out the deadline.
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
            except subprocess.TimeoutExpired:
                timed_out = True
    finally:
        sel.close()
        proc.stdout.close()
        proc.stderr.close()
        kill_all()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            notes.append("the main process did not die after SIGKILL within 10 s")
        duration = time.monotonic() - start
        limits_hit = []
        if cg:
            try:
                events = (cg / "pids.events").read_text()
                m = re.search(r"max (\d+)", events)
                if m and int(m.group(1)) > 0:
                    limits_hit.append("process limit")
            except OSError:
                pass
            _kill_cgroup(cg)
            _rmdir_cgroup(cg)
        if script is not None:
            try:
                script.unlink()
            except OSError:
                pass

    stdout, stderr = out.text(), err.text()
    code_ = proc.returncode
    tail = bytes(err.tail[-4000:] or err.head[-4000:]).decode("utf-8", "replace")
    if "MemoryError" in tail or "Cannot allocate memory" in tail or "memory exhausted" in tail \
            or "std::bad_alloc" in tail:
        limits_hit.append("memory limit")
    if nproc_limit is not None and "Resource temporarily unavailable" in tail:
        limits_hit.append("process limit")
    if code_ is not None and code_ < 0 and -code_ == signal.SIGXFSZ:
        limits_hit.append("file size limit")
    reason = None
    if timed_out:
        reason = "timeout"
    elif limits_hit:
        reason = limits_hit[0]
    elif code_ is not None and code_ < 0:
        try:
            reason = f"signal {signal.Signals(-code_).name}"
        except ValueError:
            reason = f"signal {-code_}"
    return ExecResult(exit_code=code_, stdout=stdout, stderr=stderr, timed_out=timed_out,
                      killed_reason=reason, duration_s=round(duration, 3),
                      truncated=out.truncated or err.truncated, stdout_bytes=out.total,
                      stderr_bytes=err.total, limits_hit=sorted(set(limits_hit)),
                      isolation=isolation, notes=notes)
