"""The sandbox with clumsy code: each run ends with a clear verdict and the next runs.

(Malicious code, attempt by attempt, is ``tests/test_sandbox_hostile.py``.)"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from t2s.sandbox import cgroups as _cgroups
from t2s.sandbox.run import ExecResult, availability, isolation_report, run_code

SANDBOX = availability().ok
needs_sandbox = pytest.mark.skipif(
    not SANDBOX, reason="no bubblewrap sandbox here: " + "; ".join(availability().missing)
)
HAS_PIDS_CGROUP = any(c.name == "pids" for c in _cgroups.controllers())
PROC_LIMIT_ENFORCED = HAS_PIDS_CGROUP or os.geteuid() != 0


@pytest.fixture
def work(tmp_path) -> Path:
    d = tmp_path / "work"
    d.mkdir()
    return d


def _running_with(token: str) -> list[int]:
    """Host processes whose command line holds ``token`` (pids inside the sandbox are
    of its own namespace, so the token is how the host finds them)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if token.encode() in (entry / "cmdline").read_bytes():
                    state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                    if state != "Z":
                        found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_plain_python_and_shell(work):
    r = run_code("import openpyxl, pathlib\npathlib.Path('out.txt').write_text('hi')\nprint('done')", work)
    assert isinstance(r, ExecResult) and r.ok and r.stdout == "done\n" and r.verdict.startswith("ok")
    assert (work / "out.txt").read_text() == "hi"  # cwd is the work dir
    r = run_code("echo $HOME; echo oops >&2; exit 3", work, language="shell")
    assert r.exit_code == 3 and r.stdout.strip() == str(work.resolve()) and "oops" in r.stderr
    assert r.verdict == "failed: exit code 3"
    with pytest.raises(ValueError):
        run_code("x", work, language="ruby")  # type: ignore[arg-type]


def test_files_persist_between_calls_and_deletions_too(work):
    (work / "input.txt").write_text("from the host")
    r = run_code(
        "import os\nprint(open('input.txt').read())\nos.makedirs('sub/deeper')\n"
        "open('sub/deeper/a.txt', 'w').write('A')\nos.remove('input.txt')",
        work,
    )
    assert r.ok and r.stdout == "from the host\n"
    assert (work / "sub" / "deeper" / "a.txt").read_text() == "A" and not (work / "input.txt").exists()
    r = run_code("print(open('sub/deeper/a.txt').read())", work)
    assert r.stdout == "A\n"


def test_infinite_loop_times_out_and_leaves_nothing_running(work):
    token = f"t2s-test-{os.getpid()}-loop"
    code = (
        "import subprocess, sys, time\n"
        f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', {token!r}])\n"
        "open('before-timeout.txt', 'w').write('kept')\n"
        "while True:\n    pass\n"
    )
    # long enough for the sandbox and the interpreter to start on a loaded machine
    r = run_code(code, work, timeout=5)
    assert r.timed_out and r.killed_reason == "timeout" and r.verdict.startswith("killed: timeout")
    assert not _running_with(token)
    assert (work / "before-timeout.txt").read_text() == "kept"  # what it wrote before is kept
    assert run_code("print(1)", work).stdout == "1\n"  # the harness keeps going


def test_background_children_are_reaped_when_the_main_process_exits(work):
    token = f"t2s-test-{os.getpid()}-background"
    r = run_code(f"(exec -a {token} sleep 300) & echo started", work, language="shell", timeout=30)
    assert r.exit_code == 0 and not r.timed_out and r.stdout == "started\n"
    assert not _running_with(token)


def test_memory_hog_hits_the_memory_limit(work):
    r = run_code("x = bytearray(4 * 1024**3)\nprint('allocated')", work, memory_mb=512)
    assert r.exit_code != 0 and "allocated" not in r.stdout
    assert r.killed_reason == "memory limit" and "MemoryError" in r.stderr


@pytest.mark.skipif(not PROC_LIMIT_ENFORCED, reason="no process limit available (root, no pids cgroup)")
def test_fork_bomb_is_stopped(work):
    r = run_code("import os\nwhile True:\n    os.fork()\n", work, max_procs=16, timeout=20)
    assert r.killed_reason in ("process limit", "timeout")
    assert "process limit" in r.limits_hit or r.timed_out
    r = run_code(":(){ :|:& };:; sleep 3", work, language="shell", max_procs=16, timeout=10)
    assert "process limit" in r.limits_hit or r.timed_out
    assert run_code("print(2)", work).stdout == "2\n"


@pytest.mark.skipif(not PROC_LIMIT_ENFORCED, reason="no process limit available (root, no pids cgroup)")
def test_process_limit_counts_processes(work):
    code = (
        "import subprocess\nok = 0\nps = []\n"
        "for _ in range(40):\n"
        "    try:\n        ps.append(subprocess.Popen(['sleep', '30'])); ok += 1\n"
        "    except OSError:\n        break\n"
        "print(ok)\n"
    )
    r = run_code(code, work, max_procs=10, timeout=30)
    assert 0 < int(r.stdout.strip()) < 12
    assert "process limit" in r.limits_hit
    assert "process limit" not in run_code(code, work, max_procs=60, timeout=30).limits_hit


def test_environment_is_an_allow_list(work, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-secret")
    monkeypatch.setenv("SOMETHING_ELSE", "visible?")
    r = run_code(
        "import os\nfor k, v in sorted(os.environ.items()): print(f'{k}={v}')",
        work,
        env={"MY_SETTING": "1", "AWS_SECRET_ACCESS_KEY": "nope"},
    )
    assert r.ok
    assert "secret" not in r.stdout and "SOMETHING_ELSE" not in r.stdout
    names = {line.split("=", 1)[0] for line in r.stdout.splitlines()}
    assert {"PATH", "HOME", "TMPDIR", "MY_SETTING"} <= names
    assert "AWS_SECRET_ACCESS_KEY" not in names and any("AWS_SECRET" in n for n in r.notes)
    assert f"TMPDIR={work.resolve() / 'tmp'}" in r.stdout


def test_fifty_megabyte_print_is_capped_head_and_tail(work):
    code = "import sys\nsys.stdout.write('HEAD' + 'x' * 50_000_000 + 'TAIL')\nsys.stderr.write('e' * 10)\n"
    r = run_code(code, work, output_limit=10_000)
    assert r.ok and r.truncated and r.stdout_bytes == 50_000_008
    assert r.stdout.startswith("HEAD") and r.stdout.endswith("TAIL")
    assert len(r.stdout) < 11_000 and "bytes cut by the t2s sandbox" in r.stdout
    assert r.stderr == "e" * 10


def test_output_under_the_limit_is_untouched(work):
    r = run_code("print('a' * 999)", work, output_limit=2000)
    assert not r.truncated and r.stdout == "a" * 999 + "\n"


@needs_sandbox
def test_no_network_by_default(work):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    port = server.getsockname()[1]
    accepted = []
    t = threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True)
    t.start()
    code = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=3)\nprint('connected')\n"
    try:
        r = run_code(code, work, timeout=20)
        assert "connected" not in r.stdout and r.exit_code != 0
        r = run_code(code, work, timeout=20, network=True)
        assert r.stdout == "connected\n"
    finally:
        server.close()
    assert "network" in isolation_report()


def test_isolation_report_names_every_axis():
    report = isolation_report()
    if not SANDBOX:
        assert report["sandbox"].startswith("UNAVAILABLE") and "unsafe-no-sandbox" in report["consequence"]
        return
    assert set(report) >= {
        "sandbox",
        "user",
        "filesystem",
        "network",
        "memory",
        "processes",
        "disk",
        "timeout",
        "environment",
    }
    assert report["sandbox"].startswith("bubblewrap") and "uid" in report["user"]


def test_missing_workdir_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        run_code("print(1)", tmp_path / "nope")


def test_concurrent_calls_from_threads(work, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    dirs = []
    for i in range(4):
        d = tmp_path / f"w{i}"
        d.mkdir()
        dirs.append(d)
    codes = ["print('a')", "while True: pass", "x = bytearray(4 * 1024**3)", "print('d')"]
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(lambda a: run_code(a[0], a[1], timeout=3, memory_mb=512), zip(codes, dirs, strict=True))
        )
    assert [r.stdout for r in (results[0], results[3])] == ["a\n", "d\n"]
    assert results[1].timed_out and results[2].killed_reason == "memory limit"
