"""The agent harness: one ReAct episode of a model, with a skill, on one task.

The model sees a system prompt with the skill's body (frontmatter stripped) and the list
of the skill's other files (read on demand), then the task prompt the suite renders
(instruction, input and output paths, answer position, a preview of the input). It acts
with tools: run Python, run a shell command, read a skill file, finish.

Two ways to act, because small local models often ignore native tool calling:

- ``tools``: OpenAI native tool calls (``prompts/agent_tools.json``);
- ``text``: a plain-text protocol (``prompts/agent_text_protocol.md``): a fenced
  ```` ```python ```` block runs code, ```` ```bash ```` runs a command,
  ``READ_SKILL_FILE: path`` reads a skill file, ``FINISH`` (or ``<final>..</final>``)
  ends. Parsing is lenient, built from real small-model replies (fences untagged,
  indented or never closed, protocol lines written inside a fence, tool calls written
  as JSON or ``<tool_call>`` text, lower case keywords); a fence that only shows a
  value or printed output does not run;
- ``auto`` starts with tools and switches to text for the rest of the episode when the
  model's first reply calls no tool; the switch and its reason are recorded, and
  remembered for the endpoint and model for the rest of the run
  (:mod:`t2s.agent.protocol_memory`): later episodes start in text.

In text, a reply's first action runs; the others are ignored and the model is told so
(one action per reply: it must see each result before it acts again). A final answer
(below) is the reply's action whatever comes before it.

A suite that takes a final answer (``Suite.final_answer_parameter``, e.g.
WikiTableQuestions) gets an ``answer`` argument on ``finish`` and a ``FINAL ANSWER: ...``
line in text replies; the suite records it into the output (``record_final_answer``).

The episode ends when the agent finishes (if it tries to finish before the output file
exists it gets a reminder, at most ``max_reminders`` times), or after ``max_turns``
model replies. Then the suite checks the output and the :class:`~t2s.agent.trajectory.Trajectory`
records everything. Code runs through :func:`t2s.sandbox.run.run_code` in the task's work
directory, in a thread; observations are cut to head + tail.

:class:`t2s.llm.client.BudgetExceeded` and :class:`t2s.llm.client.CacheMiss` propagate (the episode is
unfinished and must not be recorded); any other failure gives an ``errored`` trajectory.
"""

from __future__ import annotations

import asyncio
import os
import stat
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from t2s import sandbox
from t2s.agent.actions import (
    PROTOCOLS,
    Action,
    _action_from_call,
    _finish_with_answer,
    parse_final_answer,
    parse_text_actions,
    tool_specs,
)
from t2s.agent.bundle import SkillBundle
from t2s.agent.prompting import _relativise, format_exec, system_prompt, text_protocol, truncate, wording
from t2s.agent.protocol_memory import remember_text_protocol, remembered_switch
from t2s.agent.trajectory import (
    Message,
    Step,
    ToolCallRecord,
    Trajectory,
    now_iso,
    trajectory_id,
)
from t2s.errors import T2SError
from t2s.faults import ErrorCause, cause_of
from t2s.llm.errors import BudgetExceeded, CacheMiss
from t2s.prompts import load as prompt, render
from t2s.skill.format import SKILL_FILE, skill_body
from t2s.tasks.base import Workspace


# ---------------------------------------------------------------------------- options
@dataclass
class AgentOptions:
    """How an episode runs. Defaults match ``[rollout]`` of ``t2s.toml``."""

    max_turns: int = 12
    #: ``auto`` | ``tools`` | ``text``; None takes the role's ``protocol`` setting.
    protocol: str | None = None
    exec_timeout: float = 60.0
    memory_mb: int | None = sandbox.DEFAULT_MEMORY_MB
    network: bool = False
    allow_shell: bool = True
    #: Characters of one observation shown to the model (head + tail).
    observation_limit: int = 6000
    #: Characters of a skill file shown at once.
    skill_file_limit: int = 20000
    #: Reminders when the agent tries to finish before writing the output.
    max_reminders: int = 2
    #: Tell the model when its last turn has come.
    last_turn_warning: bool = True
    role: str = "agent"
    phase: str = "rollout"
    #: The sampling seed sent to the model (None: the role's seed).
    seed: int | None = None
    #: Run the code without the sandbox where none can be had (``--unsafe-no-sandbox``;
    #: None: ``$T2S_UNSAFE_NO_SANDBOX``). A working sandbox is always used.
    unsafe_no_sandbox: bool | None = None


# ---------------------------------------------------------------------------- the skill


# ---------------------------------------------------------------------------- text protocol


# ---------------------------------------------------------------------------- helpers


# ---------------------------------------------------------------------------- the episode
class _Episode:
    def __init__(
        self,
        llm,
        suite,
        task,
        skill: SkillBundle,
        workdir: Path,
        options: AgentOptions,
        traj: Trajectory,
        endpoint: tuple[str, str] = ("", ""),
    ):
        self.llm = llm
        self.suite = suite
        self.task = task
        self.skill = skill
        self.workdir = Path(workdir)
        self.opt = options
        self.traj = traj
        self.messages: list[dict[str, Any]] = []
        self.protocol = "tools"
        self.tools_seen = False
        self.finished = False
        self.workspace: Workspace | None = None
        self.output_rel = "output"
        #: The suite's schema for an answer on ``finish`` (None: the suite takes none).
        self.answer_parameter = getattr(suite, "final_answer_parameter", None)
        #: (base_url, model) of the agent role: where ``auto`` remembers a switch to text.
        self.endpoint = endpoint

    def wording(self, part: str, **values: str) -> str:
        """What prompt ``part`` says about finishing, for this suite (see prompting)."""
        return wording(part, final_answer=bool(self.answer_parameter), **values)

    def switch_note(self) -> str:
        return render(
            prompt("agent_protocol_switch.md"), protocol=text_protocol(final_answer=bool(self.answer_parameter))
        ).strip()

    # -- recording
    def add(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        calls = [
            ToolCallRecord(id=tc["id"], name=tc["function"]["name"], arguments=tc["function"]["arguments"])
            for tc in message.get("tool_calls") or []
        ]
        self.traj.messages.append(
            Message(
                role=message["role"],
                content=message.get("content"),
                tool_calls=calls,
                tool_call_id=message.get("tool_call_id"),
                name=message.get("name"),
            )
        )

    def step(self, turn: int, action: Action, observation: str, **kw: Any) -> Step:
        step = Step(
            index=len(self.traj.steps) + 1,
            turn=turn,
            tool=action.tool,
            arguments=action.arguments,
            observation=observation,
            call_id=action.call_id,
            error=action.error,
            **kw,
        )
        self.traj.steps.append(step)
        return step

    @property
    def output_exists(self) -> bool:
        return self.workspace is not None and Path(self.workspace.output_path).is_file()

    # -- actions
    async def execute(self, turn: int, action: Action) -> str:
        """Run one action; returns the observation the model sees."""
        opt = self.opt
        if action.tool == "invalid":
            obs = f"Error: {action.error}"
            self.step(turn, action, obs)
            return obs
        if action.tool in ("run_python", "run_shell"):
            if action.tool == "run_shell" and not opt.allow_shell:
                action.error = "run_shell is disabled"
                obs = "Error: run_shell is not available; use run_python."
                self.step(turn, action, obs)
                return obs
            code = action.arguments.get("code" if action.tool == "run_python" else "command", "")
            language: Literal["python", "shell"] = "python" if action.tool == "run_python" else "shell"
            self.traj.scripts.append(code if language == "python" else f"# shell\n{code}")
            result = await asyncio.to_thread(
                sandbox.run_code,
                code,
                self.workdir,
                language=language,
                timeout=opt.exec_timeout,
                memory_mb=opt.memory_mb,
                network=opt.network,
                unsafe_no_sandbox=opt.unsafe_no_sandbox,
            )
            self.traj.meta.setdefault("sandbox", result.isolation.get("sandbox", ""))
            self.traj.timings.exec_s += result.duration_s
            obs, cut = format_exec(action.tool, result, opt.observation_limit)
            obs = _relativise(obs, self.workdir)
            self.step(
                turn,
                action,
                obs,
                exit_code=result.exit_code,
                timed_out=result.timed_out,
                truncated=cut,
                duration_s=round(result.duration_s, 3),
            )
            return obs
        if action.tool == "read_skill_file":
            asked = str(action.arguments.get("path", ""))
            rel = self.skill.resolve(asked)
            if rel is None:
                listing = ", ".join([SKILL_FILE, *self.skill.other_files])
                obs = f"Error: the skill has no file {asked!r}. Its files: {listing}"
                self.step(turn, action, obs, exit_code=1)
                return obs
            body = self.skill.text(rel)
            if rel == SKILL_FILE:
                body = skill_body(body)
            text, cut = truncate(body, opt.skill_file_limit)
            obs = f"[{rel}]\n{text}"
            self.step(turn, action, obs, exit_code=0, truncated=cut)
            return obs
        if action.tool == "finish":
            recorded = ""
            if "answer" in action.arguments and self.answer_parameter:
                try:  # the suite writes the answer into the output (t2s.tasks.Suite)
                    recorded = await asyncio.to_thread(
                        self.suite.record_final_answer, self.workspace, action.arguments["answer"]
                    )
                except T2SError as err:
                    action.error = err.message
                    obs = f"Error: {err.message}"
                    self.step(turn, action, obs)
                    return obs
            if not self.output_exists and self.traj.reminders < opt.max_reminders:
                self.traj.reminders += 1
                # A suite that takes a final answer asks for the answer, not a workbook.
                reminder = "agent_reminder_no_answer.md" if self.answer_parameter else "agent_reminder_no_output.md"
                obs = render(prompt(reminder), output_path=self.output_rel).strip()
                self.step(turn, action, obs)
                return obs
            self.finished = True
            obs = f"Finished. {recorded}" if recorded else "Finished."
            self.step(turn, action, obs)
            return obs
        raise AssertionError(f"unhandled action {action.tool}")  # pragma: no cover

    # -- the loop
    async def run(self) -> None:
        opt = self.opt
        traj = self.traj
        requested = traj.protocol
        remembered = remembered_switch(*self.endpoint) if requested == "auto" else None
        self.protocol = "text" if requested == "text" or remembered else "tools"
        if remembered:  # an earlier episode of this run found that the model answers in text
            traj.protocol_switch = f"remembered from an earlier episode of this run ({remembered})"
        ws, opening = await asyncio.to_thread(
            opening_messages, self.suite, self.task, self.skill, self.workdir, self.protocol, traj.case
        )
        self.workspace = ws
        self.output_rel = os.path.relpath(ws.output_path, ws.dir)
        for message in opening:
            self.add(message)
        tools = tool_specs(opt.allow_shell)
        if self.answer_parameter:
            tools = _finish_with_answer(tools, self.answer_parameter)
        traj.protocol_used = self.protocol

        for turn in range(1, opt.max_turns + 1):
            if turn == opt.max_turns and opt.max_turns > 1 and opt.last_turn_warning:
                self.add(
                    {
                        "role": "user",
                        "content": render(
                            prompt("agent_last_turn.md"),
                            last_turn=self.wording("last_turn", output_path=self.output_rel),
                        ).strip(),
                    }
                )
            params: dict[str, Any] = {"phase": opt.phase}
            if opt.seed is not None:
                params["seed"] = opt.seed
            res = await self.llm.chat(
                opt.role, self.messages, tools=tools if self.protocol == "tools" else None, **params
            )
            traj.turns = turn
            traj.usage.calls += 0 if res.cached else 1
            traj.usage.cached_calls += 1 if res.cached else 0
            traj.usage.prompt_tokens += res.usage.prompt_tokens
            traj.usage.completion_tokens += res.usage.completion_tokens
            traj.timings.llm_s += res.latency_s
            if res.model and not traj.model:
                traj.model = res.model
            self.add(res.message)

            if res.tool_calls:  # native calls are answered natively, whatever the protocol
                self.tools_seen = True
                for call in res.tool_calls:
                    try:
                        args = call.parsed_arguments()
                    except ValueError as err:
                        action = Action(
                            "invalid",
                            {"name": call.name, "arguments": call.arguments},
                            call.id,
                            f"the arguments of {call.name} are not valid JSON: {err}",
                        )
                    else:
                        action = _action_from_call(call.name, args, call.id)
                    obs = await self.execute(turn, action)
                    self.add({"role": "tool", "tool_call_id": call.id, "content": obs})
                if self.finished:
                    traj.stop_reason = "finished"
                    return
                continue

            actions = parse_text_actions(res.content)
            final_answer = parse_final_answer(res.content) if self.answer_parameter else None
            if final_answer is not None:  # the answer ends the episode: it is the reply's action
                actions = [Action("finish", {"answer": final_answer})] + [a for a in actions if a.tool != "finish"]
            if self.protocol == "tools":
                if requested == "auto" and not self.tools_seen:
                    self.protocol = "text"
                    traj.protocol_used = "text"
                    traj.protocol_switch = f"turn {turn}: the model answered without a tool call" + (
                        " and wrote a text action" if actions else ""
                    )
                    remember_text_protocol(*self.endpoint, traj.protocol_switch)
                    if not actions:
                        self.add({"role": "user", "content": self.switch_note()})
                        continue
                else:
                    if self.output_exists and not actions:
                        # a closing message without a tool call: take it as finishing
                        self.step(
                            turn,
                            Action("finish", {"summary": (res.content or "").strip()[:500]}),
                            "Finished (a reply without a tool call, output written).",
                        )
                        traj.stop_reason = "finished"
                        return
                    if final_answer is None:
                        note = render(prompt("agent_no_tool_call.md"), finish=self.wording("no_tool_call"))
                        self.add({"role": "user", "content": note.strip()})
                        continue
                    actions = actions[:1]  # tools protocol: only the final answer of a text reply counts

            if not actions:
                self.step(
                    turn, Action("invalid", {"reply": (res.content or "")[:200]}, error="no action in the reply"), ""
                )
                note = render(prompt("agent_no_action.md"), finish=self.wording("no_action"))
                self.add({"role": "user", "content": note.strip()})
                continue
            # One action per reply (the protocol says so): the model must see each result
            # before it acts again. The rest is ignored, and the model is told so.
            action, ignored = actions[0], actions[1:]
            obs = await self.execute(turn, action)
            if self.finished:
                traj.stop_reason = "finished"
                return
            if ignored:
                traj.meta["ignored_actions"] = traj.meta.get("ignored_actions", 0) + len(ignored)
                obs += (
                    "\n\n"
                    + render(
                        prompt("agent_ignored_actions.md"),
                        ran=action.tool,
                        count=str(len(ignored)),
                        ignored=", ".join(a.tool for a in ignored),
                    ).strip()
                )
            note = ""
            if traj.protocol_switch and traj.protocol_switch.startswith(f"turn {turn}:"):
                note = self.switch_note() + "\n\n"
            self.add({"role": "user", "content": note + obs})
        traj.stop_reason = "max_turns"


def opening_messages(
    suite, task, skill: SkillBundle, workdir: Path, protocol: str, case: int
) -> tuple[Workspace, list[dict[str, Any]]]:
    """The workspace of an episode and its first two messages (system and task), as sent
    to the model; ``t2s.estimates`` renders the same ones to count a dry run's tokens."""
    ws: Workspace = suite.prepare(task, workdir, case)
    on_disk = skill.has_scripts
    if on_disk:
        for rel, data in skill.files.items():
            target = workdir / "skill" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    task_prompt = _relativise(suite.render_prompt(task, ws), ws.dir)
    output_rel = os.path.relpath(ws.output_path, ws.dir)
    final_answer = bool(getattr(suite, "final_answer_parameter", None))
    goal = wording("task", final_answer=final_answer, output_path=output_rel)
    return ws, [
        {"role": "system", "content": system_prompt(skill, protocol, on_disk=on_disk, final_answer=final_answer)},
        {
            "role": "user",
            "content": render(prompt("agent_task.md"), task_prompt=task_prompt.rstrip() + "\n", goal=goal).strip(),
        },
    ]


async def run_agent(
    llm,
    suite,
    task,
    skill: SkillBundle,
    workdir: Path,
    *,
    options: AgentOptions | None = None,
    case: int | None = None,
    traj_id: str | None = None,
    split: str = "",
    seed_index: int = 0,
) -> Trajectory:
    """Run one episode of the ``agent`` role on ``task`` with ``skill`` in ``workdir``.

    Returns the finished trajectory (``passed`` / ``failed`` by the suite's checker, or
    ``errored`` with ``error`` set). Raises :class:`t2s.llm.client.BudgetExceeded` /
    :class:`t2s.llm.client.CacheMiss` when the run must stop (the episode is then unfinished).
    The output file stays in ``workdir``; see :func:`artifact_files`.
    """

    options = options or AgentOptions()
    role = llm.role(options.role)
    protocol = options.protocol or role.protocol
    if protocol not in PROTOCOLS:
        raise T2SError(f"agent protocol {protocol!r} (protocols: {', '.join(PROTOCOLS)})")
    case = case if case is not None else (task.cases[0].index if task.cases else 1)
    traj = new_trajectory(
        llm, suite, task, skill, options=options, case=case, traj_id=traj_id, split=split, seed_index=seed_index
    )
    started = time.perf_counter()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    episode = _Episode(llm, suite, task, skill, workdir, options, traj, endpoint=(role.base_url, role.model))
    try:
        await episode.run()
    except (BudgetExceeded, CacheMiss):
        raise
    except Exception as err:  # the model endpoint, or a bug: an error, never a verdict
        record_error(traj, cause_of(err))
        traj.stop_reason = "error"
        if not isinstance(err, T2SError):  # a bug must not take a whole rollout down: keep its trace
            traj.meta["traceback"] = traceback.format_exc(limit=8)

    if traj.verdict != "errored" and episode.workspace is not None:
        check_started = time.perf_counter()
        try:
            verdict = await asyncio.to_thread(suite.check, task, episode.workspace.output_path, case)
        except Exception as err:
            record_error(traj, cause_of(err, prefix="checker: "))
        else:
            report = verdict.report.model_dump(mode="json")
            report["output_path"] = episode.output_rel
            traj.check = report
            traj.score = verdict.score
            traj.verdict = "passed" if verdict.passed else "failed"
        traj.timings.check_s = round(time.perf_counter() - check_started, 3)
    if episode.output_exists:
        traj.outputs = [episode.output_rel]
    traj.timings.wall_s = round(time.perf_counter() - started, 3)
    traj.timings.llm_s = round(traj.timings.llm_s, 3)
    traj.timings.exec_s = round(traj.timings.exec_s, 3)
    traj.timings.finished_at = now_iso()
    return traj


def new_trajectory(
    llm,
    suite,
    task,
    skill: SkillBundle,
    *,
    options: AgentOptions,
    case: int | None = None,
    traj_id: str | None = None,
    split: str = "",
    seed_index: int = 0,
) -> Trajectory:
    """The trajectory of an episode as it starts (no steps, no verdict yet)."""
    role = llm.role(options.role)
    traj = Trajectory(
        id=traj_id or trajectory_id(task.id),
        task_id=task.id,
        suite=getattr(suite, "name", ""),
        split=split,
        case=case if case is not None else (task.cases[0].index if task.cases else 1),
        seed_index=seed_index,
        seed=options.seed if options.seed is not None else role.seed,
        instruction=task.instruction,
        answer_position=task.answer_position,
        skill_dir=skill.skill_dir,
        skill_tree=skill.tree,
        s0=skill.s0,
        model=role.model,
        protocol=options.protocol or role.protocol,
        source="rollout",
        meta={"max_turns": options.max_turns, "exec_timeout": options.exec_timeout},
    )
    traj.timings.started_at = now_iso()
    return traj


def record_error(traj: Trajectory, cause: ErrorCause) -> None:
    """Mark ``traj`` errored with ``cause`` (no verdict: it is run again next time)."""
    traj.verdict = "errored"
    traj.error = cause.message
    traj.error_cause = cause


def artifact_files(traj: Trajectory, workdir: Path) -> dict[str, bytes]:
    """The files to keep with a trajectory, relative to ``artifacts/<id>/``: the output
    file(s) and the scripts the agent ran (``scripts/001.py``, ``scripts/002.sh``...)."""
    files: dict[str, bytes] = {}
    for name in traj.outputs:
        data = _read_no_follow(Path(workdir) / name)
        if data is not None:
            files[name] = data
    for n, code in enumerate(traj.scripts, start=1):
        shell = code.startswith("# shell\n")
        files[f"scripts/{n:03d}.{'sh' if shell else 'py'}"] = (code[len("# shell\n") :] if shell else code).encode()
    return files


def _read_no_follow(path: Path) -> bytes | None:
    """A regular file's bytes, never through a symlink (t2s may run as root, and
    unsandboxed code could have left ``output.xlsx -> /etc/shadow``)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read()


# ---------------------------------------------------------------------------- evaluation runner
