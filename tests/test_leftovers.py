"""Issue 13, section D: nothing a killed t2s left behind survives the next start.

Temporary work folders and the sandbox's cgroups are named for their owner and
swept when it is gone; helper processes (``t2s check``) and sandboxed code die
with t2s. Tested with real ``kill -9``s of real processes.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from t2s.sandbox import cgroups as _cgroups
from t2s.sandbox.leftovers import dies_with_parent, owner_alive, owner_tag, scratch_dir, sweep
from t2s.sandbox.run import availability

needs_sandbox = pytest.mark.skipif(
    not availability().ok, reason="no bubblewrap sandbox here: " + "; ".join(availability().missing)
)


def _exits_within(pid: int, seconds: float) -> bool:
    """Wait for process ``pid`` (not our child) to end, through a pidfd: an event,
    not polling."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        ready, _, _ = select.select([fd], [], [], seconds)
        return bool(ready)
    finally:
        os.close(fd)


def _wait_for(predicate, seconds: float = 120.0):
    """Wait for another process to reach a state it does not announce (no event to
    wait on): check often, give up at a deadline."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"gave up waiting after {seconds} s")


def _kill9(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


HOLD_SCRATCH = textwrap.dedent("""
    import sys
    from t2s.sandbox.leftovers import scratch_dir
    held = scratch_dir(sys.argv[1], sys.argv[2])
    folder = held.__enter__()
    (folder / "work.txt").write_text("unfinished")
    print(folder, flush=True)
    sys.stdin.read()
""")


def test_a_killed_owners_scratch_folder_is_swept_and_a_live_ones_is_kept(tmp_path):
    owner = subprocess.Popen(
        [sys.executable, "-c", HOLD_SCRATCH, "t2s-analyst-", str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    dead = Path(owner.stdout.readline().strip())
    tag = owner_tag(owner.pid)
    assert dead.name.startswith(f"t2s-analyst-{tag}-") and owner_alive(tag) is True
    _kill9(owner)
    assert (dead / "work.txt").read_text() == "unfinished"  # kill -9 left it behind
    assert owner_alive(tag) is False
    old_style = tmp_path / "t2s-analyst-abc123"  # no owner in the name: not ours to judge
    old_style.mkdir()
    with scratch_dir("t2s-analyst-", tmp_path) as mine:  # the next start sweeps the dead one
        assert not dead.exists() and mine.is_dir() and old_style.is_dir()
        assert sweep("t2s-analyst-", tmp_path) == []  # a live owner's folder stays
        assert mine.is_dir()
    assert not mine.exists()  # removed on a normal exit


def test_scratch_folder_is_removed_on_an_exception(tmp_path):
    with pytest.raises(RuntimeError), scratch_dir("t2s-eval-", tmp_path) as folder:
        raise RuntimeError("boom")
    assert not folder.exists()


HOLD_CHILD = textwrap.dedent("""
    import subprocess, sys, threading
    from t2s.sandbox.leftovers import dies_with_parent

    def start():  # from a thread, as t2s starts t2s check (asyncio.to_thread)
        code = "import time; print('ready', flush=True); time.sleep(600)"
        child = subprocess.Popen(dies_with_parent([sys.executable, "-c", code]))
        print(child.pid, flush=True)
        child.wait()

    thread = threading.Thread(target=start)
    thread.start()
    thread.join()
""")


def test_a_helper_process_dies_with_a_killed_t2s():
    parent = subprocess.Popen([sys.executable, "-c", HOLD_CHILD], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    assert parent.stdout.readline() == "ready\n" and not _exits_within(child, 0)
    _kill9(parent)
    assert _exits_within(child, 30), "the helper outlived the killed t2s"


def test_the_checker_the_analyst_runs_dies_with_t2s(tmp_path, scripted_server, monkeypatch):
    """The analyst's ``t2s check`` goes through dies_with_parent (the process above)."""
    import t2s.analysis.analysts
    from t2s.analysis.analyze import AnalyzeSettings, analyze_run
    from t2s.llm.client import LLM
    from t2s.testing.pytest_plugin import scripted_role
    from t2s.testing.simulated import agentic_analyst_responder
    from tests.test_analysts_support import add_trajectory, load_config_and_suite, make_repo, start_run

    store = make_repo(tmp_path)
    config, suite = load_config_and_suite(store)
    record = start_run(store)
    add_trajectory(record, suite, "txt-1", wrong=True, tmp=tmp_path)
    scripted_server.on(agentic_analyst_responder, role="analyst")
    started = []
    real_run = subprocess.run

    def spy(cmd, *args, **kwargs):
        started.append(list(cmd))
        return real_run(cmd, *args, **kwargs)

    monkeypatch.setattr(t2s.analysis.analysts.subprocess, "run", spy)
    llm = LLM(roles={"analyst": scripted_role(scripted_server, model="analyst-model")}, env={})
    summary = analyze_run(
        store, config, run="r1", llm=llm, settings=AnalyzeSettings.from_config(config, mode="error", analyst="agentic")
    )
    assert summary.accepted == 1
    checks = [c for c in started if "check" in c]
    assert checks and all(c[: -len(c) + 4] == dies_with_parent(["x"])[:4] for c in checks)
    assert dies_with_parent(["x"])[1:3] == ["--pdeathsig", "KILL"]


# ---------------------------------------------------------------------- a real t2s rollout
SLOW_CODE = """
import subprocess, sys
open('started.txt', 'w').write('x')
subprocess.run([sys.executable, '-c', 'import time; time.sleep(600)', {token!r}])
"""


def _demo_repo(tmp_path: Path) -> Path:
    from t2s.demo import _configure
    from t2s.demo.tasks import write_suite
    from t2s.skill.repo import init_skill_repo

    write_suite(tmp_path / "tasks")
    repo = tmp_path / "my-skills"
    init_skill_repo(repo, seed="xlsx", install_git_hooks=False)
    _configure(repo)
    return repo


def _running_with(token: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if token.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def _cgroups_of(tag: str, parents: list[Path]) -> list[Path]:
    return [d for parent in parents for d in parent.glob(f"{_cgroups.PREFIX}{tag}-*")]


@pytest.fixture
def own_cgroups(tmp_path):
    """Parent cgroups for the t2s under test, so that no other t2s on this machine
    (which sweeps the dead runs' cgroups next to its own) removes its leftovers
    before the test sees them. None where t2s makes no cgroups."""
    parents = []
    for ctrl in _cgroups.controllers():
        d = ctrl.parent / f"t2s-test-{os.getpid()}-{tmp_path.name}"
        d.mkdir()
        parents.append(d)
    yield parents
    for d in parents:
        for child in d.iterdir():
            if child.is_dir():
                _cgroups.RunCgroup(dirs={"x": child}).remove()
        _cgroups.RunCgroup(dirs={"x": d}).remove()


def _inside(parents: list[Path], cmd: list[str]) -> list[str]:
    """``cmd`` started inside the cgroups ``parents`` (it then makes its own below)."""
    join = 'for f in "$@"; do [ "$f" = -- ] && break; echo $$ > "$f"; shift; done; shift; exec "$@"'
    return ["/bin/sh", "-c", join, "join", *(str(p / "cgroup.procs") for p in parents), "--", *cmd]


@needs_sandbox
def test_kill_9_during_a_sandboxed_run_then_resume_leaves_nothing(tmp_path, scripted_server, own_cgroups):
    from t2s.testing import Reply, tool_call

    repo = _demo_repo(tmp_path)
    token = f"t2s-kill9-{os.getpid()}-{tmp_path.name}"
    phase = {"slow": True}

    def agent(request):
        turn = sum(1 for m in request.messages if m.get("role") == "assistant")
        if turn == 0 and phase["slow"]:
            return Reply(tool_calls=[tool_call("run_python", {"code": SLOW_CODE.format(token=token)})])
        return Reply(tool_calls=[tool_call("finish", {"summary": "done"})])

    scripted_server.on(agent, role="agent")
    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    env = {**os.environ, "T2S_BASE_URL": scripted_server.base_url, "T2S_MODEL": "m", "TMPDIR": str(temp_root)}
    cmd = [sys.executable, "-m", "t2s", "rollout", "--run", "k9", "--limit", "1", "--no-cache"]
    first = subprocess.Popen(
        _inside(own_cgroups, cmd), cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    sandboxed = _wait_for(lambda: _running_with(token))  # the agent's code is running
    tag = owner_tag(first.pid)
    _kill9(first)

    assert all(_exits_within(pid, 30) for pid in sandboxed), "sandboxed code outlived the killed t2s"
    leftover_dirs = list(temp_root.glob(f"t2s-rollout-{tag}-*"))
    assert leftover_dirs  # what kill -9 leaves behind...
    if own_cgroups:
        assert _cgroups_of(tag, own_cgroups)  # ... including the run's cgroups

    phase["slow"] = False
    second = subprocess.Popen(
        _inside(own_cgroups, cmd), cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    _, stderr = second.communicate(timeout=300)
    assert second.returncode == 0, stderr
    assert not any(d.exists() for d in leftover_dirs)  # ... is gone after the resume
    assert not list(temp_root.glob("t2s-rollout-*"))  # and the resume removed its own
    assert not [d for p in own_cgroups for d in p.iterdir() if d.is_dir()]
