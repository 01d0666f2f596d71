"""Which agent runs an episode: t2s's own ReAct agent, or a CLI agent (``harness = "command"``).

The ``command`` harness runs a configured CLI agent (``claude -p``, ``codex exec``,
``opencode run``...) in the task's work folder, non-interactively:

- the suite prepares the work folder and renders the task prompt, as for the builtin agent;
- the skill's files are installed into ``<work folder>/<skills_path>/<skill name>/``;
- the prompt goes in on stdin, or into the argument that holds ``{prompt}``;
- the command runs with a timeout (its whole process group is killed then), its stdout
  capped at ``max_output_bytes`` (a flood stops it), ``{workdir}`` / ``{output}`` filled in;
- its transcript (stdout, or the newest ``transcript_file``) is read by the importer
  named by ``transcript`` (see :mod:`t2s.rollouts.importing`);
- the suite's checker scores the output file, as for the builtin agent.

An agent that times out, floods, exits non-zero or writes no output is judged by its
output (usually ``failed``), with ``stop_reason`` saying what happened; only a command
that cannot be started is ``errored`` (the infrastructure, not the agent).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from t2s.agent.bundle import SkillBundle
from t2s.agent.episode import AgentOptions, artifact_files, run_agent
from t2s.agent.executor import Episode
from t2s.agent.trajectory import Trajectory, now_iso, trajectory_id
from t2s.errors import T2SError, UsageError
from t2s.faults import ErrorCause
from t2s.rollouts.importing import parse_file

_CHUNK = 65536
#: How long to wait for a killed CLI agent to be reaped.
_REAP_S = 10.0


async def run_episode(
    llm,
    suite,
    task,
    skill: SkillBundle,
    workdir: Path,
    *,
    options: AgentOptions | None = None,
    traj_id: str | None = None,
    split: str = "",
    seed_index: int = 0,
) -> Trajectory:
    """One episode with the configured harness of the agent role (see the module docstring)."""
    options = options or AgentOptions()
    role = llm.role(options.role)
    if getattr(role, "harness", "builtin") != "command":
        return await run_agent(
            llm, suite, task, skill, workdir, options=options, traj_id=traj_id, split=split, seed_index=seed_index
        )
    return await run_command_agent(
        role, suite, task, skill, Path(workdir), traj_id=traj_id, split=split, seed_index=seed_index
    )


def install_skill(skill: SkillBundle, workdir: Path, skills_path: str) -> Path:
    """Write the skill's files to ``workdir/skills_path/<name>/`` (where CLI agents look)."""
    dest = workdir / skills_path / (skill.name or "skill")
    for rel, data in skill.files.items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return dest


def _argv(command: list[str], prompt: str, workdir: Path, output: Path) -> tuple[list[str], bool]:
    """The argv with ``{prompt}``, ``{workdir}``, ``{output}`` filled in; True if the prompt
    went into an argument (else it goes in on stdin)."""
    as_argument = any("{prompt}" in part for part in command)
    argv = [
        part.replace("{workdir}", str(workdir)).replace("{output}", str(output)).replace("{prompt}", prompt)
        for part in command
    ]
    return argv, as_argument


async def _run(
    argv: list[str], cwd: Path, stdin: bytes | None, timeout: float, cap: int
) -> tuple[bytes, str, int | None]:
    """Run ``argv``; (stdout up to ``cap`` bytes, how it ended, exit code). Ends:
    ``finished``, ``timeout`` (killed), ``output_limit`` (killed: too much stdout)."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=str(cwd),
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,  # its own process group: a timeout kills its children too
    )
    out = bytearray()
    ended = "finished"

    async def feed() -> None:
        assert proc.stdin is not None
        try:
            proc.stdin.write(stdin or b"")
            await proc.stdin.drain()
            proc.stdin.close()
        except (BrokenPipeError, ConnectionResetError):  # the agent does not read its stdin
            pass

    async def read() -> None:
        nonlocal ended
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(_CHUNK):
            if len(out) + len(chunk) > cap:
                out.extend(chunk[: cap - len(out)])
                ended = "output_limit"
                return
            out.extend(chunk)

    try:
        if stdin is not None:
            await asyncio.wait_for(asyncio.gather(feed(), read()), timeout)
        else:
            await asyncio.wait_for(read(), timeout)
        if ended == "finished":
            await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        ended = "timeout"
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            # Bounded: after an in-process Ray driver, asyncio's child watcher was seen to
            # lose a killed child and wait forever; the child is gone either way.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), _REAP_S)
    return bytes(out), ended, proc.returncode if ended == "finished" else None


def _transcript(role, workdir: Path, stdout: bytes, scratch: Path, started: float) -> Path | None:
    if not role.transcript_file:
        path = scratch / "stdout.jsonl"
        path.write_bytes(stdout)
        return path
    pattern = os.path.expanduser(role.transcript_file)
    if not os.path.isabs(pattern):
        pattern = str(workdir / pattern)
    found = [Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file()]
    found = [p for p in found if p.stat().st_mtime >= started - 1]  # this episode's, not an old one
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


async def run_command_agent(
    role,
    suite,
    task,
    skill: SkillBundle,
    workdir: Path,
    *,
    traj_id: str | None = None,
    split: str = "",
    seed_index: int = 0,
) -> Trajectory:
    """One episode of the CLI agent ``role.command`` (see the module docstring)."""
    case = task.cases[0].index if task.cases else 1
    workdir.mkdir(parents=True, exist_ok=True)
    ws = suite.prepare(task, workdir, case=case)
    prompt = suite.render_prompt(task, ws)
    install_skill(skill, workdir, role.skills_path)
    argv, as_argument = _argv(list(role.command), prompt, workdir, ws.output_path)
    harness_meta: dict[str, Any] = {"harness": "command", "command": list(role.command), "transcript": role.transcript}
    traj = Trajectory(
        id=traj_id or trajectory_id(task.id),
        task_id=task.id,
        suite=getattr(suite, "name", ""),
        split=split,
        case=case,
        seed_index=seed_index,
        instruction=task.instruction,
        answer_position=task.answer_position,
        skill_dir=skill.skill_dir,
        skill_tree=skill.tree,
        s0=skill.s0,
        model=role.model,
        protocol="command",
        source="harness:command",
        meta=harness_meta,
    )
    traj.timings.started_at = now_iso()
    started = time.time()
    clock = time.perf_counter()
    if not argv:
        return _errored(traj, "config", '[models.agent] harness = "command" needs a command')
    try:
        stdout, ended, code = await _run(
            argv, workdir, None if as_argument else prompt.encode(), role.command_timeout, role.max_output_bytes
        )
    except OSError as err:  # not found, not executable: the setup, never the agent's verdict
        return _errored(traj, "harness", f"cannot start {argv[0]!r}: {err.strerror or err}")
    traj.meta.update({"exit_code": code, "ended": ended, "stdout_bytes": len(stdout)})
    traj.stop_reason = ended if ended != "finished" else ("finished" if code == 0 else f"exit {code}")
    with tempfile.TemporaryDirectory(prefix="t2s-harness-") as scratch:
        transcript = _transcript(role, workdir, stdout, Path(scratch), started)
        _attach_transcript(traj, transcript, role.transcript)
    output_rel = os.path.relpath(ws.output_path, ws.dir)
    try:
        verdict = await asyncio.to_thread(suite.check, task, ws.output_path, case)
    except T2SError as err:
        return _errored(traj, "checker", f"checker: {err.message}")
    report = verdict.report.model_dump(mode="json")
    report["output_path"] = output_rel
    traj.check, traj.score = report, verdict.score
    traj.verdict = "passed" if verdict.passed else "failed"
    if ws.output_path.is_file():
        traj.outputs = [output_rel]
    traj.timings.wall_s = round(time.perf_counter() - clock, 3)
    traj.timings.finished_at = now_iso()
    return traj


def _attach_transcript(traj: Trajectory, path: Path | None, fmt: str) -> None:
    """The agent's conversation, steps, scripts and usage, read by the ``fmt`` importer."""
    if path is None or path.stat().st_size == 0:
        traj.meta["transcript_problem"] = "the agent left no transcript"
        return
    parsed = parse_file(path, fmt)
    if parsed.problems:
        traj.meta["transcript_problems"] = [f"line {p.line}: {p.reason}" for p in parsed.problems[:20]]
    if not parsed.trajectories:
        traj.meta["transcript_problem"] = f"no {fmt} conversation in the transcript"
        return
    got = parsed.trajectories[0]
    traj.messages, traj.steps, traj.scripts, traj.usage = got.messages, got.steps, got.scripts, got.usage
    traj.turns = sum(1 for m in got.messages if m.role == "assistant")
    traj.model = got.model or traj.model


def _errored(traj: Trajectory, kind: str, message: str) -> Trajectory:
    traj.verdict = "errored"
    traj.error = message
    traj.error_cause = ErrorCause(kind=kind, message=message)
    traj.stop_reason = "error"
    traj.timings.finished_at = now_iso()
    return traj


class HarnessExecutor:
    """The local executor through the configured harness: the builtin agent or a CLI
    agent (``[models.agent] harness``). The default executor of rollout and eval; a CLI
    agent runs on this machine only (``--executor ray`` runs the builtin agent)."""

    name = "local"

    async def episode(self, llm, suite, task, skill, workdir, *, options, traj_id, split, seed_index) -> Episode:
        traj = await run_episode(
            llm, suite, task, skill, workdir, options=options, traj_id=traj_id, split=split, seed_index=seed_index
        )
        return Episode(traj, artifact_files(traj, workdir))


def episode_executor(llm, executor, role: str = "agent"):
    """The executor episodes run on: the configured harness here unless a remote executor
    was asked for; a CLI-agent harness refuses a remote one (it would silently run the
    builtin agent there)."""
    if executor is None or getattr(executor, "name", "local") == "local":
        return HarnessExecutor()
    if getattr(llm.role(role), "harness", "builtin") == "command":
        raise UsageError(
            f"[models.{role}] harness = 'command' runs the CLI agent on this machine",
            hint="leave out --executor ray, or use --shard K/N to spread the work over machines",
        )
    return executor
