"""The bubblewrap command line of a sandbox run, and whether it works on this machine.

What the sandboxed code sees (the rest of the host does not exist for it):

- ``/usr`` (and the ``/bin``, ``/lib``... links or folders), a few ``/etc`` files the
  C library and Python read, a generated ``/etc/passwd``, ``/etc/group`` and
  ``/etc/hosts``, and the interpreter t2s runs on (its prefix, its virtualenv and the
  site-packages holding openpyxl), all read-only, at their host paths;
- the work folder, at its host path: a tmpfs of ``disk_bytes`` the run's files are
  copied into and back out of (:mod:`t2s.sandbox.workcopy`); ``/tmp`` and ``/dev/shm`` are
  tmpfs of the same size; ``/proc`` of its own PID namespace; a minimal ``/dev``;
- no network (an empty network namespace: no host TCP, no abstract Unix sockets) and
  no host socket files (none is mounted); its own IPC and UTS namespaces;
- a non-root uid. t2s as root: bubblewrap runs privileged (no user namespace) and
  ``setpriv`` drops to ``SANDBOX_UID`` (nobody) before any sandboxed code runs, so the
  code is uid 65534 for the kernel and root-owned host files stay closed even if one
  were visible. (A user namespace mapping the sandbox's uid to host root would not do:
  the kernel still checks files against host uid 0, the owner of ``/etc/shadow``.)
  t2s as another user: an unprivileged user namespace (``--unshare-user``) with that
  user's uid, and no further user namespaces inside (``--disable-userns``).

bubblewrap is started from an empty environment (its PID 1 in the sandbox keeps the
environment it was started with, whatever ``--clearenv`` does for the child).
"""

from __future__ import annotations

import functools
import os
import shutil
import site
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

from t2s.sandbox import workcopy as _workcopy

#: The uid (and gid) sandboxed code runs as when t2s runs as root: nobody.
SANDBOX_UID = 65534
HOSTNAME = "t2s-sandbox"
SUPERVISOR = Path(__file__).with_name("supervisor.sh")
#: Tools the supervisor and the command line need inside the sandbox.
TOOLS = ("bash", "tar", "env", "sleep")
#: Where a Python program is put in the sandbox (read-only; outside the work folder).
SCRIPT_PATH = "/tmp/t2s-exec.py"
#: /etc files the C library and Python read (when the host has them).
ETC_FILES = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "alternatives",
    "fonts",
    "mime.types",
    "nsswitch.conf",
    "host.conf",
    "gai.conf",
)
#: /etc files a run with the network on (``network=True``) also needs.
NETWORK_ETC_FILES = ("resolv.conf", "ssl", "ca-certificates", "ca-certificates.conf", "services", "protocols")
#: Top-level system folders: links on merged-/usr systems, folders elsewhere.
SYSTEM_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


def runs_as_root() -> bool:
    return os.geteuid() == 0


def sandbox_ids() -> tuple[int, int]:
    """(uid, gid) the code runs as."""
    if runs_as_root():
        return SANDBOX_UID, SANDBOX_UID
    return os.getuid(), os.getgid()


# ---------------------------------------------------------------------- the view
@functools.cache
def python_dirs() -> tuple[str, ...]:
    """Folders of the interpreter t2s runs on that the sandbox needs (read-only):
    its prefixes and site-packages (openpyxl's included), minus what /usr covers."""
    found = {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sys.base_exec_prefix,
        str(Path(sys.executable).resolve().parent.parent),
    }
    for key in ("purelib", "platlib", "stdlib", "platstdlib"):
        found.add(sysconfig.get_paths()[key])
    found.update(site.getsitepackages())
    try:
        import openpyxl

        found.add(str(Path(openpyxl.__file__).resolve().parent.parent))
    except ImportError:  # pragma: no cover - a dependency
        pass
    dirs = sorted({str(Path(d).resolve()) for d in found if d and Path(d).is_dir()})
    dirs += [d for d in {sys.prefix, sys.exec_prefix} if Path(d).is_dir()]  # the venv's own path
    keep: list[str] = []
    for d in sorted(set(dirs), key=len):
        if d == "/" or d.startswith("/usr/") or d == "/usr":
            continue
        if not any(d == k or d.startswith(k.rstrip("/") + "/") for k in keep):
            keep.append(d)
    return tuple(keep)


def _parents_args(path: str) -> list[str]:
    """``--perms 0755 --dir`` for each parent of ``path`` (bwrap would copy a host
    parent's mode, and ``/root`` is 0700)."""
    args: list[str] = []
    parts = Path(path).parts[1:-1]
    current = ""
    for part in parts:
        current += "/" + part
        args += ["--perms", "0755", "--dir", current]
    return args


def _system_args(network: bool = False) -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in SYSTEM_DIRS:
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            args += ["--ro-bind", str(host), str(host)]
    args += ["--perms", "0755", "--dir", "/etc"]
    for name in ETC_FILES + (NETWORK_ETC_FILES if network else ()):
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    for d in python_dirs():
        args += [*_parents_args(d), "--ro-bind", d, d]
    return args


def etc_files() -> dict[str, bytes]:
    """Generated /etc files: the sandbox's users and hosts, nothing of the host's."""
    uid, gid = sandbox_ids()
    passwd = "root:x:0:0:root:/root:/usr/sbin/nologin\n"
    group = "root:x:0:\n"
    if uid != 0:
        passwd += f"sandbox:x:{uid}:{gid}:t2s sandbox:/nonexistent:/usr/sbin/nologin\n"
        group += f"sandbox:x:{gid}:\n"
    hosts = f"127.0.0.1 localhost\n::1 localhost\n127.0.1.1 {HOSTNAME}\n"
    return {"/etc/passwd": passwd.encode(), "/etc/group": group.encode(), "/etc/hosts": hosts.encode()}


# ---------------------------------------------------------------------- the command
@dataclass
class Plan:
    """A bubblewrap command and the descriptors it must inherit."""

    argv: list[str]
    pass_fds: list[int] = field(default_factory=list)
    #: Descriptors the caller closes once the process started.
    close_after_start: list[int] = field(default_factory=list)


@functools.cache
def bwrap_version() -> tuple[int, ...]:
    try:
        out = subprocess.run(["bwrap", "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ()
    try:
        return tuple(int(x) for x in out.split()[-1].split("."))
    except (IndexError, ValueError):
        return ()


def _namespace_args(network: bool) -> list[str]:
    if runs_as_root():
        # privileged bubblewrap, no user namespace: the uid drop below is real
        args = [
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--cap-drop",
            "ALL",
            "--cap-add",
            "CAP_SETUID",
            "--cap-add",
            "CAP_SETGID",
            "--cap-add",
            "CAP_SETPCAP",
        ]
    else:
        args = [
            "--unshare-user",
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--cap-drop",
            "ALL",
        ]
        if bwrap_version() >= (0, 8):
            args.append("--disable-userns")  # no nested user namespaces (kernel surface)
    if not network:
        args.append("--unshare-net")
    return args


def _tmpfs(path: str, size: int, perms: str) -> list[str]:
    return ["--perms", perms, "--size", str(size), "--tmpfs", path]


def plan(
    workdir: Path,
    *,
    disk_bytes: int,
    in_fd: int,
    out_fd: int,
    seconds: float,
    command: list[str],
    rlimits: tuple[str, str, str] = ("-", "-", "-"),
    script: bytes | None = None,
    network: bool = False,
) -> Plan:
    """The bwrap command running ``command`` (already wrapped in ``env -i``) under the
    supervisor, with ``rlimits`` (address space KiB, file size KiB, processes; "-"
    for none) and ``script`` at :data:`SCRIPT_PATH`; the data files go in as memory
    files."""
    work = str(workdir)
    data = dict(etc_files())
    if script is not None:
        data[SCRIPT_PATH] = script
    data_fds: list[int] = []
    data_args: list[str] = []
    for dest, content in data.items():
        fd = os.memfd_create("t2s-data")
        os.write(fd, content)
        os.lseek(fd, 0, os.SEEK_SET)
        data_fds.append(fd)
        data_args += ["--perms", "0444", "--ro-bind-data", str(fd), dest]
    # /tmp first: an interpreter or venv below /tmp is then bound on top of it
    argv = [
        "bwrap",
        *_namespace_args(network),
        "--die-with-parent",
        "--new-session",
        "--hostname",
        HOSTNAME,
        "--clearenv",
        "--setenv",
        "PATH",
        "/usr/bin:/bin",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        *_tmpfs("/dev/shm", disk_bytes, "1777"),
        *_tmpfs("/tmp", disk_bytes, "1777"),
        *_system_args(network),
        *data_args,
        *_parents_args(work),
        *_tmpfs(work, disk_bytes, "0777"),
        "--chdir",
        work,
        "--",
    ]
    if runs_as_root():
        argv += [
            "setpriv",
            f"--reuid={SANDBOX_UID}",
            f"--regid={SANDBOX_UID}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
        ]
    argv += [
        "bash",
        "--noprofile",
        "--norc",
        "-c",
        supervisor_script(),
        "t2s-sandbox",
        str(in_fd),
        str(out_fd),
        f"{seconds:.3f}",
        *rlimits,
        *command,
    ]
    return Plan(argv, pass_fds=[in_fd, out_fd, *data_fds], close_after_start=data_fds)


@functools.cache
def supervisor_script() -> str:
    return SUPERVISOR.read_text()


# ---------------------------------------------------------------------- availability
@dataclass
class Availability:
    ok: bool
    #: What is missing, one precise sentence each (empty when ok).
    missing: list[str] = field(default_factory=list)
    version: str = ""


def _missing_tools() -> list[str]:
    missing = []
    if shutil.which("bwrap") is None:
        missing.append("bubblewrap is not installed (no `bwrap` on PATH; Debian/Ubuntu: apt-get install bubblewrap)")
    if runs_as_root() and shutil.which("setpriv") is None:
        missing.append(
            "`setpriv` (util-linux) is not installed: t2s runs as root and needs it "
            "to run the sandbox as an unprivileged user"
        )
    for tool in TOOLS:
        if not (Path("/usr/bin") / tool).exists() and not (Path("/bin") / tool).exists():
            missing.append(f"`{tool}` is not installed in /usr/bin (the sandbox's supervisor needs it)")
    return missing


def explain_failure(stderr: str) -> str:
    """A sentence for why bubblewrap could not set a sandbox up."""
    text = stderr.strip().splitlines()[-1] if stderr.strip() else "no message"
    if (
        "uid map" in stderr
        or "No permissions to create new namespace" in stderr
        or ("Operation not permitted" in stderr and "namespace" in stderr)
    ):
        return (
            f"bubblewrap cannot create a user namespace here ({text}): enable unprivileged "
            "user namespaces (sysctl kernel.unprivileged_userns_clone=1; on Ubuntu 24.04 "
            "also kernel.apparmor_restrict_unprivileged_userns=0), or run t2s as root"
        )
    return f"bubblewrap cannot set a sandbox up here: {text}"


@functools.cache
def availability() -> Availability:
    """Whether a real sandbox starts here: probed once per process, with the same
    command line a run uses (``python -c pass`` under the supervisor)."""
    missing = _missing_tools()
    if missing:
        return Availability(False, missing)
    version = ".".join(map(str, bwrap_version()))
    if bwrap_version() < (0, 5):
        return Availability(
            False,
            [
                f"bubblewrap {version or '(unknown version)'} is too old: the sandbox "
                "needs 0.5 or newer (--size, --perms)"
            ],
            version,
        )
    problem = _probe_run()
    if problem:
        return Availability(False, [problem], version)
    return Availability(True, [], version)


def _probe_run() -> str | None:
    """Why ``python -c pass`` does not run in a sandbox here, or None when it does."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="t2s-sandbox-probe-") as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        status, stderr, returncode = _probe_once(work)
    if returncode != 0 and not status:
        return explain_failure(stderr)
    if not status.startswith(b"t2s-status 0 "):
        return (
            f"the interpreter {sys.executable} does not run inside the sandbox as uid "
            f"{sandbox_ids()[0]}: {stderr.strip()[-300:] or status.decode(errors='replace')}"
        )
    return None


def _probe_once(work: Path) -> tuple[bytes, str, int]:
    """(status line, stderr, exit status) of one sandboxed ``python -c pass``."""

    in_fd = _workcopy.pack(work, dirs=("tmp",))
    read_end, write_end = os.pipe()
    p = plan(
        work,
        disk_bytes=16 << 20,
        in_fd=in_fd,
        out_fd=write_end,
        seconds=30,
        command=["env", "-i", sys.executable, "-s", "-c", "pass"],
    )
    try:
        proc = subprocess.Popen(
            p.argv,
            env={},
            pass_fds=p.pass_fds,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd="/",
        )
    except OSError as err:
        os.close(read_end)
        return b"", str(err), 127
    finally:
        for fd in (in_fd, write_end, *p.close_after_start):
            os.close(fd)
    with os.fdopen(read_end, "rb") as result:
        status = result.readline()
        result.read()
    assert proc.stderr is not None  # stderr=PIPE
    stderr = proc.stderr.read().decode("utf-8", "replace")
    proc.stderr.close()
    proc.wait(timeout=60)
    return status, stderr, proc.returncode
