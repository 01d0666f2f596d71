"""The hostile battery: what malicious model-written code tries, done for real.

Every attempt of issue 13 (section A) runs through :func:`t2s.sandbox.run.run_code`
against bait the host really holds: an API key in the host's environment, a user's
git repository as the host's current directory, a home folder, the virtualenv t2s
runs from, a listening Unix socket (path and abstract) and TCP port, and the host's
``/etc/shadow``. An attempt *escapes* when the bait leaks into what the code prints
or leaves in its work folder, or when the host changed (a hook, a ``.pth``, a file
in the home folder), or a limit was exceeded, or a process outlived the call.

Used by ``tests/test_sandbox_hostile.py`` (one test per attempt), by
``bench/hostile.py`` (prints "N attempts, 0 escaped"), and standalone::

    python -m t2s.testing.hostile [--json]

The module needs only the standard library and :mod:`t2s.sandbox.run`, so it also runs
under a system Python as an unprivileged user (the test suite does that as
``nobody`` when it runs as root).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from t2s.sandbox import cgroups as _cgroups
from t2s.sandbox.run import ExecResult, run_code, sandbox_env

#: The key variable the bait puts into the host's environment.
KEY_NAME = "OPENAI_API_KEY"


@dataclass
class Bait:
    """What the host holds that hostile code goes after (all under ``root``)."""

    root: Path
    token: str
    key: str
    repo: Path
    home: Path
    workdir: Path
    site_packages: Path
    socket_path: Path
    abstract_name: str
    tcp_port: int = 0
    #: Connections the host's listeners accepted (any is an escape).
    accepted: list[str] = field(default_factory=list)

    @property
    def repo_marker(self) -> str:
        return f"t2s-hostile-repo-{self.token}"

    def snapshot(self) -> dict[str, str]:
        """Hashes of every file of the repo, the home folder and the virtualenv's
        site-packages (top level), to prove they are unchanged afterwards."""
        out: dict[str, str] = {}
        for base in (self.repo, self.home):
            for path in sorted(base.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(self.site_packages.iterdir()):
            out[str(path)] = "dir" if path.is_dir() else _digest(path)
        return out


def _digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "unreadable"


@dataclass
class Attempt:
    name: str
    what: str
    code: Callable[[Bait], str]
    #: ``escaped(bait, result)``: why it escaped, or None when it was blocked.
    escaped: Callable[[Bait, ExecResult], str | None]
    language: Literal["python", "shell"] = "python"
    options: dict = field(default_factory=dict)
    #: Why the attempt does not apply on this machine (None: it does).
    needs: Callable[[], str | None] = lambda: None


@dataclass
class Outcome:
    name: str
    what: str
    escaped: str | None
    verdict: str
    stdout: str = ""
    stderr: str = ""
    skipped: str | None = None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "what": self.what,
            "escaped": self.escaped,
            "verdict": self.verdict,
            "stdout": self.stdout[-600:],
            "stderr": self.stderr[-600:],
            "skipped": self.skipped,
        }


# ---------------------------------------------------------------------- checks
def _leaks(bait: Bait, result: ExecResult, *needles: str) -> str | None:
    """Which needle shows up in the output or in a file of the work folder."""
    text = result.stdout + result.stderr
    for needle in needles:
        if needle and needle in text:
            return f"{needle[:24]!r} in the output"
    for path in bait.workdir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            for needle in needles:
                if needle and needle.encode() in data:
                    return f"{needle[:24]!r} in {path.relative_to(bait.workdir)}"
    return None


def _said(word: str) -> Callable[[Bait, ExecResult], str | None]:
    def check(bait: Bait, result: ExecResult) -> str | None:
        lines = [line for line in result.stdout.splitlines() if line.startswith(word)]
        return "; ".join(lines)[:300] or None

    return check


def _exists(*paths: Callable[[Bait], Path]) -> Callable[[Bait, ExecResult], str | None]:
    def check(bait: Bait, result: ExecResult) -> str | None:
        found = [str(p(bait)) for p in paths if os.path.lexists(p(bait))]
        return f"written on the host: {', '.join(found)}" if found else None

    return check


def _shadow_line() -> str | None:
    try:
        first = Path("/etc/shadow").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return first


def _host_processes_with(token: str) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cmdline = Path(entry.path, "cmdline").read_bytes()
        except OSError:
            continue
        if token.encode() in cmdline:
            found.append(int(entry.name))
    return found


def _outlived(bait: Bait, result: ExecResult) -> str | None:
    pids = _host_processes_with(f"t2s-outlive-{bait.token}")
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return f"processes {pids} outlived run_code" if pids else None


def _forks(limit: int) -> Callable[[Bait, ExecResult], str | None]:
    def check(bait: Bait, result: ExecResult) -> str | None:
        counts = [int(line.split()[1]) for line in result.stdout.splitlines() if line.startswith("STARTED ")]
        if counts and counts[0] > limit:
            return f"{counts[0]} processes started against a limit of {limit}"
        return _said("JOINED")(bait, result)

    return check


def _held(bait: Bait, result: ExecResult) -> str | None:
    held = [line for line in result.stdout.splitlines() if line.startswith("HELD")]
    if len(held) >= 4:
        return f"4 children held 200 MB each at once ({len(held)} reports) against a 256 MB limit"
    return None


def _wrote(limit_bytes: int) -> Callable[[Bait, ExecResult], str | None]:
    def check(bait: Bait, result: ExecResult) -> str | None:
        totals = [int(line.split()[1]) for line in result.stdout.splitlines() if line.startswith("WROTE ")]
        if totals and totals[0] > limit_bytes:
            return f"{totals[0]} bytes written against a limit of {limit_bytes}"
        return None

    return check


def _links_copied_back(bait: Bait, result: ExecResult) -> str | None:
    problems = []
    for path in bait.workdir.rglob("*"):
        if path.is_symlink():
            problems.append(f"symlink {path.relative_to(bait.workdir)} -> {os.readlink(path)}")
    shadow = _shadow_line()
    for name in ("out.xlsx", "passwd", "hard"):
        path = bait.workdir / name
        if path.is_file() and not path.is_symlink():
            data = path.read_text(errors="replace")
            if (shadow and shadow in data) or data == Path("/etc/passwd").read_text(errors="replace"):
                problems.append(f"{name} holds a host file")
    return "; ".join(problems) or None


def _connected(bait: Bait, result: ExecResult) -> str | None:
    said = _said("CONNECTED")(bait, result)
    if bait.accepted:
        return f"the host accepted {bait.accepted}"
    return said


def _environment(bait: Bait, result: ExecResult) -> str | None:

    allowed = set(sandbox_env(bait.workdir)[0])
    names = {line.split("=", 1)[0] for line in result.stdout.splitlines() if "=" in line}
    extra = sorted(names - allowed)
    if extra:
        return f"variables beyond the allow-list: {extra}"
    return _leaks(bait, result, bait.key)


def _ran_as_root(bait: Bait, result: ExecResult) -> str | None:
    for line in result.stdout.splitlines():
        if line.startswith("UID") and "0" in line.split()[1:3]:
            return "the code ran as uid 0"
    return None


def _needs_cgroup(name: str) -> str | None:

    if any(c.name == name for c in _cgroups.controllers()):
        return None
    return (
        f"no writable {name} cgroup for uid {os.geteuid()} here, so no whole-sandbox {name} "
        "limit (per-process limits only; `t2s doctor` says so)"
    )


# ---------------------------------------------------------------------- the attempts
ATTEMPTS: list[Attempt] = [
    Attempt(
        "proc-environ",
        "read the API key from every /proc/*/environ (the parent's, bwrap's PID 1's)",
        lambda b: (
            "import glob\n"
            "for p in sorted(glob.glob('/proc/*/environ')) + ['/proc/1/environ', '/proc/self/environ']:\n"
            "    try:\n        data = open(p, 'rb').read()\n    except OSError:\n        continue\n"
            "    found = [e for e in data.decode('latin-1').split('\\0') if 'KEY' in e.split('=', 1)[0]]\n"
            "    if found:\n        print(p, found)\n"
        ),
        lambda b, r: _leaks(b, r, b.key),
    ),
    Attempt(
        "proc-cwd",
        "read the user's repository through /proc/<pid>/cwd and /proc/<pid>/root",
        lambda b: (
            "import glob, os\n"
            "for p in sorted(glob.glob('/proc/*/cwd') + glob.glob('/proc/*/root')):\n"
            "    for rel in ('.git/config', 'README.md', " + repr(str(b.repo).lstrip("/") + "/.git/config") + "):\n"
            "        try:\n            print(p, rel, open(os.path.join(p, rel)).read())\n"
            "        except OSError as e:\n            print(p, rel, type(e).__name__)\n"
        ),
        lambda b, r: _leaks(b, r, b.repo_marker),
    ),
    Attempt(
        "repo-by-path",
        "read the user's repository by its absolute path",
        lambda b: (
            f"import pathlib\np = pathlib.Path({str(b.repo)!r})\n"
            "for rel in ('.git/config', 'README.md'):\n"
            "    try:\n        print((p / rel).read_text())\n    except OSError as e:\n        print(rel, type(e).__name__)\n"
        ),
        lambda b, r: _leaks(b, r, b.repo_marker),
    ),
    Attempt(
        "etc-shadow",
        "read /etc/shadow",
        lambda b: (
            "try:\n    data = open('/etc/shadow').read()\n    print('READ-OK', len(data)); print(data)\n"
            "except OSError as e:\n    print('blocked', type(e).__name__)\n"
        ),
        lambda b, r: _said("READ-OK")(b, r) or _leaks(b, r, _shadow_line() or ""),
    ),
    Attempt(
        "git-hook",
        "plant a post-commit hook in the user's repository (by path and through /proc/*/cwd)",
        lambda b: (
            "import glob, os\n"
            f"targets = [{str(b.repo / '.git' / 'hooks' / 'post-commit')!r}]\n"
            "targets += [os.path.join(p, '.git/hooks/post-commit') for p in glob.glob('/proc/*/cwd')]\n"
            "for t in targets:\n"
            "    try:\n"
            "        with open(t, 'w') as f:\n            f.write('#!/bin/sh\\necho pwned > /tmp/t2s-hostile-pwned\\n')\n"
            "        os.chmod(t, 0o755); print('PLANTED', t)\n"
            "    except OSError as e:\n        print('blocked', t, type(e).__name__)\n"
        ),
        _exists(lambda b: b.repo / ".git" / "hooks" / "post-commit"),
    ),
    Attempt(
        "venv-pth",
        "drop a .pth file into the virtualenv's site-packages",
        lambda b: (
            f"p = {str(b.site_packages / f't2s-hostile-{b.token}.pth')!r}\n"
            "try:\n    open(p, 'w').write('# t2s hostile test: harmless marker\\n'); print('PLANTED', p)\n"
            "except OSError as e:\n    print('blocked', type(e).__name__)\n"
        ),
        _exists(lambda b: b.site_packages / f"t2s-hostile-{b.token}.pth"),
    ),
    Attempt(
        "home-write",
        "write into the user's home folder and next to the work folder",
        lambda b: (
            f"for p in ({str(b.home / f'.bashrc-{b.token}')!r}, {str(b.workdir.parent / f'escaped-{b.token}')!r}):\n"
            "    try:\n        open(p, 'w').write('x'); print('WROTE', p)\n"
            "    except OSError as e:\n        print('blocked', p, type(e).__name__)\n"
        ),
        _exists(lambda b: b.home / f".bashrc-{b.token}", lambda b: b.workdir.parent / f"escaped-{b.token}"),
    ),
    Attempt(
        "cgroup-escape",
        "leave the sandbox's cgroup by writing to /sys/fs/cgroup/*/cgroup.procs",
        lambda b: (
            "import glob, os\n"
            "files = glob.glob('/sys/fs/cgroup/cgroup.procs') + glob.glob('/sys/fs/cgroup/*/cgroup.procs')\n"
            "for line in open('/proc/self/cgroup').read().splitlines():\n"
            "    rel = line.split(':', 2)[2].strip('/')\n"
            "    files += glob.glob(os.path.join('/sys/fs/cgroup', '*', os.path.dirname(rel), 'cgroup.procs'))\n"
            "for f in files:\n"
            "    try:\n        open(f, 'w').write(str(os.getpid())); print('JOINED', f)\n"
            "    except OSError as e:\n        print('blocked', f, type(e).__name__)\n"
        ),
        _said("JOINED"),
    ),
    Attempt(
        "outlive",
        "leave a process running after run_code returns (setsid, double fork, cgroup escape)",
        lambda b: (
            "import os, subprocess, sys\n"
            "for f in ('/sys/fs/cgroup/pids/cgroup.procs', '/sys/fs/cgroup/cgroup.procs'):\n"
            "    try:\n        open(f, 'w').write(str(os.getpid()))\n    except OSError:\n        pass\n"
            f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', 't2s-outlive-{b.token}'],\n"
            "                 start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,\n"
            "                 stderr=subprocess.DEVNULL)\n"
            "print('spawned')\n"
        ),
        _outlived,
    ),
    Attempt(
        "fork-limit",
        "start 300 processes against a limit of 66, after trying to leave the cgroup",
        lambda b: (
            "import os, subprocess\n"
            "for f in ('/sys/fs/cgroup/pids/cgroup.procs', '/sys/fs/cgroup/cgroup.procs'):\n"
            "    try:\n        open(f, 'w').write(str(os.getpid())); print('JOINED', f)\n    except OSError:\n        pass\n"
            "ps = []\n"
            "for _ in range(300):\n"
            "    try:\n        ps.append(subprocess.Popen(['sleep', '20']))\n"
            "    except OSError:\n        break\n"
            "print('STARTED', len(ps), flush=True)\n"
            "for p in ps:\n    p.kill()\n"
        ),
        _forks(66),
        options={"max_procs": 66, "timeout": 60},
    ),
    Attempt(
        "unix-socket",
        "connect to the host's Unix sockets (a path and an abstract name)",
        lambda b: (
            "import socket\n"
            f"for addr in ({str(b.socket_path)!r}, '\\0' + {b.abstract_name!r}):\n"
            "    s = socket.socket(socket.AF_UNIX)\n    s.settimeout(3)\n"
            "    try:\n        s.connect(addr); print('CONNECTED', repr(addr))\n"
            "    except OSError as e:\n        print('blocked', repr(addr), type(e).__name__)\n"
        ),
        _connected,
    ),
    Attempt(
        "tcp-loopback",
        "connect to a TCP port the host listens on at 127.0.0.1",
        lambda b: (
            "import socket\n"
            f"try:\n    socket.create_connection(('127.0.0.1', {b.tcp_port}), timeout=3); print('CONNECTED')\n"
            "except OSError as e:\n    print('blocked', type(e).__name__)\n"
        ),
        _connected,
    ),
    Attempt(
        "memory-whole",
        "hold 4 x 200 MB in 4 processes against a memory limit of 256 MB",
        lambda b: (
            "import os, select\n"
            "r, w = os.pipe()\nkids = []\n"
            "for _ in range(4):\n"
            "    pid = os.fork()\n"
            "    if pid == 0:\n"
            "        os.close(r)\n        block = bytearray(200 * 1024 * 1024)\n"
            "        for i in range(0, len(block), 4096):\n            block[i] = 1\n"
            "        os.write(w, b'x')\n        select.select([], [], [], 30)\n        os._exit(0)\n"
            "    kids.append(pid)\n"
            "os.close(w)\nheld, gone = 0, set()\n"
            "while held + len(gone) < 4:\n"  # every child either holds its 200 MB or was killed
            "    ready, _, _ = select.select([r], [], [], 0.2)\n"
            "    if ready:\n"
            "        held += len(os.read(r, 16))\n        print('HELD', held, flush=True)\n"
            "    for pid in kids:\n"
            "        if pid not in gone and os.waitpid(pid, os.WNOHANG)[0]:\n            gone.add(pid)\n"
            "print('KILLED', len(gone))\n"
            "for pid in kids:\n"
            "    try:\n        os.kill(pid, 9)\n    except OSError:\n        pass\n"
        ),
        _held,
        options={"memory_mb": 256, "timeout": 60},
        needs=lambda: _needs_cgroup("memory"),
    ),
    Attempt(
        "disk-whole",
        "write 3 files of 50 MB against a disk limit of 64 MB (each under the file limit)",
        lambda b: (
            "total = 0\nchunk = b'x' * (1 << 20)\n"
            "for n in range(3):\n"
            "    try:\n"
            "        with open(f'big{n}.bin', 'wb') as f:\n"
            "            for _ in range(50):\n                f.write(chunk); f.flush(); total += len(chunk)\n"
            "    except OSError as e:\n        print('stopped', type(e).__name__, e)\n        break\n"
            "print('WROTE', total)\n"
            "import os\n"
            "for n in range(3):\n"
            "    try:\n        os.remove(f'big{n}.bin')\n    except OSError:\n        pass\n"
        ),
        _wrote(64 * 1024 * 1024),
        options={"file_size_mb": 64, "timeout": 60},
    ),
    Attempt(
        "symlink-out",
        "leave symlinks to /etc/shadow, /etc/passwd and / (and a hard link) as outputs",
        lambda b: (
            "import os\n"
            "for target, name in (('/etc/shadow', 'out.xlsx'), ('/etc/passwd', 'passwd'), ('/', 'root')):\n"
            "    try:\n        os.symlink(target, name); print('linked', name)\n"
            "    except OSError as e:\n        print('blocked', name, type(e).__name__)\n"
            "try:\n    os.link('/etc/passwd', 'hard'); print('hard-linked')\n"
            "except OSError as e:\n    print('blocked hard link', type(e).__name__)\n"
        ),
        _links_copied_back,
    ),
    Attempt(
        "open-fds",
        "use a descriptor inherited from the host (a directory fd would lead out)",
        lambda b: (
            "import os\n"
            "for fd in sorted(int(n) for n in os.listdir('/proc/self/fd')):\n"
            "    try:\n        target = os.readlink(f'/proc/self/fd/{fd}')\n    except OSError:\n        continue\n"
            "    if fd > 2 and not target.startswith('/proc/'):\n"
            "        print('INHERITED', fd, target)\n"
        ),
        _said("INHERITED"),
    ),
    Attempt(
        "environment",
        "print the environment: nothing beyond the allow-list, no key",
        lambda b: "import os\nfor k, v in sorted(os.environ.items()):\n    print(f'{k}={v}')\n",
        _environment,
    ),
    Attempt(
        "run-as-root",
        "run as root (uid 0) inside the sandbox",
        lambda b: "import os\nprint('UID', os.getuid(), os.geteuid())\n",
        _ran_as_root,
    ),
]


# ---------------------------------------------------------------------- running
def make_bait(root: Path, *, site_packages: Path | None = None) -> Bait:
    """Create the bait under ``root``: a user's repository, home folder and work
    folder (the key and the virtualenv belong to the process that runs the battery)."""
    token = secrets.token_hex(6)
    repo = root / "user-repo"
    (repo / ".git" / "hooks").mkdir(parents=True)
    (repo / ".git" / "config").write_text(f"[core]\n\tbare = false\n# t2s-hostile-repo-{token}\n")
    (repo / "README.md").write_text(f"user project t2s-hostile-repo-{token}\n")
    (root / "home").mkdir()
    (root / "home" / ".bashrc").write_text("# the user's bashrc\n")
    (root / "runs" / "work").mkdir(parents=True)
    (root / "token").write_text(token)
    return _bait_at(root, key="", site_packages=site_packages)


def _bait_at(root: Path, *, key: str, site_packages: Path | None = None) -> Bait:
    import sysconfig

    token = (root / "token").read_text().strip()
    return Bait(
        root=root,
        token=token,
        key=key,
        repo=root / "user-repo",
        home=root / "home",
        workdir=root / "runs" / "work",
        site_packages=site_packages or Path(sysconfig.get_paths()["purelib"]),
        socket_path=root / "host.sock",
        abstract_name=f"t2s-hostile-{token}",
    )


def _listen(bait: Bait) -> list[socket.socket]:
    socks = []
    for family, addr in (
        (socket.AF_UNIX, str(bait.socket_path)),
        (socket.AF_UNIX, "\0" + bait.abstract_name),
        (socket.AF_INET, ("127.0.0.1", 0)),
    ):
        sock = socket.socket(family)
        sock.bind(addr)
        sock.listen(8)
        if family == socket.AF_INET:
            bait.tcp_port = sock.getsockname()[1]
        socks.append(sock)
        threading.Thread(target=_accept, args=(sock, bait, repr(addr)), daemon=True).start()
    os.chmod(bait.socket_path, 0o777)  # reachable for anyone who can see it
    return socks


def _accept(sock: socket.socket, bait: Bait, name: str) -> None:
    try:
        conn, _ = sock.accept()
    except OSError:
        return
    bait.accepted.append(name)
    conn.close()


def run_attempt(attempt: Attempt, bait: Bait) -> Outcome:
    """Run one attempt in a fresh work folder and judge it."""
    reason = attempt.needs()
    if reason:
        return Outcome(attempt.name, attempt.what, None, "skipped", skipped=reason)
    shutil.rmtree(bait.workdir, ignore_errors=True)
    bait.workdir.mkdir(parents=True)
    bait.accepted.clear()
    options = {"timeout": 30, **attempt.options}
    result = run_code(attempt.code(bait), bait.workdir, language=attempt.language, **options)
    escaped = attempt.escaped(bait, result)
    return Outcome(attempt.name, attempt.what, escaped, result.verdict, result.stdout[-2000:], result.stderr[-2000:])


def _attempts_here(root: Path, names: list[str] | None) -> list[Outcome]:
    """In the battery's own process (started with the key in its environment and
    the user's repository as its current directory): run the attempts."""
    bait = _bait_at(root, key=os.environ.get(KEY_NAME, ""))
    if not bait.key or Path.cwd() != bait.repo.resolve():
        raise SystemExit("the battery process must start with the key set and in the user's repository")
    listeners = _listen(bait)
    try:
        return [run_attempt(a, bait) for a in ATTEMPTS if not names or a.name in names]
    finally:
        for sock in listeners:
            sock.close()


def run_battery(
    names: list[str] | None = None,
    *,
    python: str | None = None,
    as_user: int | None = None,
    extra_path: str | None = None,
) -> tuple[list[Outcome], list[str]]:
    """Run the battery in a fresh process started the way t2s is started by a user:
    with the API key in its environment and the user's repository as its current
    directory (so ``/proc/<pid>/environ`` and ``/proc/<pid>/cwd`` hold the bait).

    ``as_user``: run it as that uid (root only; ``setpriv``), with ``python`` (an
    interpreter that user can run) and ``extra_path`` on ``PYTHONPATH``. Returns the
    outcomes and what changed in the repository, home folder and virtualenv.
    """
    import subprocess

    python = python or sys.executable
    root = Path(tempfile.mkdtemp(prefix="t2s-hostile-"))
    try:
        site_packages = Path(
            subprocess.run(
                [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        bait = make_bait(root, site_packages=site_packages)
        key = f"sk-hostile-{secrets.token_hex(16)}"
        env = {**os.environ, KEY_NAME: key, "HOME": str(bait.home)}
        if extra_path:
            env["PYTHONPATH"] = extra_path
        cmd = [python, "-m", "t2s.testing.hostile", "--json", "--bait", str(root), *(names or [])]
        if as_user is not None:
            for path in [root, *root.rglob("*")]:
                os.chown(path, as_user, as_user, follow_symlinks=False)
            os.chmod(root, 0o755)
            cmd = ["setpriv", f"--reuid={as_user}", f"--regid={as_user}", "--clear-groups", "--", *cmd]
        before = bait.snapshot()
        proc = subprocess.run(cmd, cwd=bait.repo, env=env, capture_output=True, text=True, timeout=900)
        after = bait.snapshot()
        with contextlib.suppress(OSError):
            (bait.site_packages / f"t2s-hostile-{bait.token}.pth").unlink()
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"the battery process failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        data = json.loads(proc.stdout)
        outcomes = [
            Outcome(
                o["name"],
                o["what"],
                o["escaped"],
                o["verdict"],
                o.get("stdout", ""),
                o.get("stderr", ""),
                o.get("skipped"),
            )
            for o in data["outcomes"]
        ]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    return outcomes, changed


def summary_line(outcomes: list[Outcome], changed: list[str]) -> str:
    escaped = [o.name for o in outcomes if o.escaped]
    ran = [o for o in outcomes if not o.skipped]
    line = f"{len(ran)} attempts, {len(escaped)} escaped"
    if escaped:
        line += f" ({', '.join(escaped)})"
    skipped = [o for o in outcomes if o.skipped]
    if skipped:
        line += f"; {len(skipped)} not applicable here ({'; '.join(f'{o.name}: {o.skipped}' for o in skipped)})"
    if changed:
        line += f"; the host changed: {', '.join(changed)}"
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the outcomes as JSON")
    parser.add_argument(
        "--bait", type=Path, default=None, help=argparse.SUPPRESS
    )  # internal: run the attempts in this process
    parser.add_argument("names", nargs="*", help="only these attempts")
    args = parser.parse_args(argv)
    changed: list[str] = []
    if args.bait is not None:
        outcomes = _attempts_here(args.bait, args.names or None)
    else:
        outcomes, changed = run_battery(args.names or None)
    if args.json:
        print(
            json.dumps({"outcomes": [o.to_dict() for o in outcomes], "changed": changed, "uid": os.geteuid()}, indent=2)
        )
    else:
        for o in outcomes:
            print(
                f"{'ESCAPED' if o.escaped else 'skipped' if o.skipped else 'blocked':8} {o.name:14} {o.what}"
                + (f"\n         -> {o.escaped}" if o.escaped else "")
            )
        print(summary_line(outcomes, changed))
    return 1 if changed or any(o.escaped for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
