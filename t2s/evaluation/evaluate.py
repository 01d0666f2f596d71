"""Held-out evaluation, its cache in git notes, and the gate.

``evaluate(ctx, REV)`` materialises the skill folder at REV (``git archive``, nothing
is checked out), runs the agent on the split with it, scores every task, and writes an
:class:`~t2s.record.notes.EvalRecord` into the note on REV in ``refs/notes/t2s/eval``.

**Cache.** Two evaluations are interchangeable when they share the *cache key*:
(skill subtree hash, suite content hash of the split, split name, agent fingerprint
hash, seeds). Before running anything, ``evaluate`` looks for a record with the same
key in REV's own note, then in every other note of ``refs/notes/t2s/eval`` (one
``git cat-file --batch`` read); a hit is copied onto REV's note (``cached_from`` names
the source) and no model is called. So a commit that does not change the skill (a
release merge, a README edit, a re-run of bisect) costs nothing.

The agent fingerprint (:func:`agent_fingerprint`) holds what changes results: the
agent model and its sampling settings, the harness (max turns, execution timeout, a
hash of the agent prompts), and the suite's scoring options. It deliberately leaves
out where the model is served (``base_url``), keys, timeouts, retries and
concurrency, so CI and a laptop share results for the same model.

**Gate.** :func:`gate` evaluates a candidate and a baseline with the same context and
pairs them per task (a task counts as passed when it passed in more than half of its
seeds): both pass, only baseline (a regression), only candidate, neither. It passes
when ``candidate - baseline >= min_delta`` and regressions ``<= max_regressions``, and
reports an exact two-sided sign test on the discordant pairs. The verdict is written
into the candidate's note as a :class:`~t2s.record.notes.GateRecord`.

**Errors are not results.** When any task *errors* (the model endpoint failed, a
crash: :mod:`t2s.faults`), :func:`evaluate` writes nothing and raises
:class:`EvalErrored` (exit 3) with the per-task outcomes and their causes; records of
older t2s versions that hold errored tasks are never reused (:meth:`EvalNote.find`).
So an endpoint outage cannot poison the cache, and the gate never judges one.

**One evaluation at a time per cache key.** The run holds an inter-process lock named
after the key; a second ``evaluate`` of the same skill, suite, split, agent and seeds
waits for it, then reuses the note it wrote (or runs itself if the first one errored).

The agent itself is one function, the *runner* (:data:`Runner`); the default one
drives :mod:`t2s.agent.episode`. Tests and benchmarks may pass their own.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Sequence

from t2s.config import Config
from t2s.errors import ConfigError, T2SError, UsageError
from t2s.faults import ErrorCause, WorkErrored, describe, tally
from t2s.sandbox.leftovers import scratch_dir
from t2s.gitstore.store import GitStore
from t2s.record import refs
from t2s.record.describe import run_s0
from t2s.record.notes import (
    EVAL_NOTES,
    EvalRecord,
    GateRecord,
    NoteFormatError,
    TaskVerdict,
    parse_eval_note,
    read_eval_note,
    update_eval_note,
)

#: RoleModel settings that change what the agent does (everything else is transport).
AGENT_RESULT_FIELDS = ("model", "temperature", "max_tokens", "seed", "extra_body", "protocol")


class Unevaluable(UsageError):
    """The skill at this revision cannot be evaluated (missing, or it does not lint).

    ``t2s eval --exit-code-below`` maps this to exit status 125, which makes
    ``git bisect run`` skip the commit.
    """


# ---------------------------------------------------------------------- context
@dataclass
class EvalContext:
    """Everything two evaluations must share to be comparable: suite, split, agent."""

    store: GitStore
    config: Config
    suite: Any  # t2s.tasks.Suite
    suite_name: str
    split: str
    seeds: int
    skill_dir: str
    task_ids: list[str]
    suite_hash: str
    agent: dict
    agent_hash: str
    #: The effective agent role settings (t2s.config.RoleModel), transport included.
    agent_role: Any = None
    #: Run the agent's code without the sandbox where none can be had
    #: (``--unsafe-no-sandbox``; None: ``$T2S_UNSAFE_NO_SANDBOX``).
    unsafe_no_sandbox: bool | None = None

    def key(self, skill_tree: str) -> tuple[str, str, str, str, int]:
        return (skill_tree, self.suite_hash, self.split, self.agent_hash, self.seeds)


def harness_hash() -> str:
    """A short hash of the agent prompts shipped with t2s (a harness change re-runs)."""
    h = hashlib.sha256()
    try:
        folder = resources.files("t2s.prompts")
        for item in sorted(folder.iterdir(), key=lambda p: p.name):
            if item.name.startswith("agent") and item.is_file():
                h.update(item.name.encode() + b"\0" + item.read_bytes() + b"\0")
    except (ModuleNotFoundError, FileNotFoundError):  # pragma: no cover
        pass
    return h.hexdigest()[:16]


def agent_fingerprint(config: Config, role: Any, suite: Any = None) -> dict:
    """The agent settings that change results; see the module docstring."""
    data = {name: getattr(role, name) for name in AGENT_RESULT_FIELDS}
    data["max_turns"] = config.rollout.max_turns
    data["exec_timeout"] = config.rollout.exec_timeout
    data["harness"] = harness_hash()
    if suite is not None:
        data["suite_type"] = getattr(suite, "type", "")
        data["lenient"] = bool(getattr(suite, "lenient", False))
        data["recalculate"] = bool(getattr(suite, "recalculate", False))
    return data


def fingerprint_hash(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def suite_name_of(config: Config, suite: str | None = None) -> str:
    """The suite to evaluate on: ``--suite``, else ``[rollout] suite``, else the only one."""
    if suite:
        return suite
    if config.rollout.suite:
        return config.rollout.suite
    if len(config.suites) == 1:
        return next(iter(config.suites))
    have = ", ".join(sorted(config.suites)) or "none"
    raise ConfigError(
        f"which task suite? t2s.toml configures: {have}",
        hint="set [rollout] suite in t2s.toml, or pass --suite NAME",
    )


def make_context(
    store: GitStore,
    config: Config,
    *,
    split: str | None = None,
    seeds: int | None = None,
    suite: str | None = None,
    skill_dir: str | None = None,
    rev_for_skill: str = "HEAD",
    unsafe_no_sandbox: bool | None = None,
) -> EvalContext:
    """Load the suite and resolve the agent settings once for a series of evaluations."""
    from t2s.llm.roles import resolve_roles
    from t2s.skill.repo import skill_dir_of
    from t2s.tasks import load_suite

    split = split or config.gate.split or config.rollout.heldout_split
    seeds = seeds if seeds is not None else config.gate.seeds
    if seeds < 1:
        raise UsageError("--seeds must be at least 1")
    name = suite_name_of(config, suite)
    loaded = load_suite(name, config, base_dir=store.root)
    task_ids = loaded.task_ids(split)
    if not task_ids:
        raise UsageError(f"split {split!r} of suite {name!r} has no tasks")
    role = resolve_roles(config, roles=("agent",))["agent"]
    agent = agent_fingerprint(config, role, loaded)
    if skill_dir is None:
        skill_dir = skill_dir_of(store, config, rev_for_skill)
    return EvalContext(
        store=store,
        config=config,
        suite=loaded,
        suite_name=name,
        split=split,
        seeds=seeds,
        skill_dir=skill_dir,
        task_ids=list(task_ids),
        suite_hash=loaded.content_hash(split),
        agent=agent,
        agent_hash=fingerprint_hash(agent),
        agent_role=role,
        unsafe_no_sandbox=unsafe_no_sandbox,
    )


# ---------------------------------------------------------------------- runner
@dataclass
class RunRequest:
    """What a runner gets: the materialised skill and the tasks to run it on."""

    ctx: EvalContext
    commit: str
    skill_path: Path
    workdir: Path
    task_ids: list[str]
    seeds: int


@dataclass
class RunResult:
    verdicts: list[TaskVerdict]
    tokens: int = 0
    cost_usd: float = 0.0
    model_calls: int = 0


Runner = Callable[[RunRequest], RunResult]


def agent_runner(request: RunRequest) -> RunResult:
    """The default runner: :mod:`t2s.agent.episode` with the skill, on every task and seed."""
    try:
        from t2s.agent import episode as agent
    except ImportError as err:  # pragma: no cover - until the agent lands
        raise T2SError(f"the agent harness (t2s.agent.episode) is not available: {err}") from None
    run_tasks = getattr(agent, "evaluate_tasks", None)
    if run_tasks is None:  # pragma: no cover
        raise T2SError("t2s.agent.episode has no evaluate_tasks(); cannot evaluate")
    return run_tasks(request)


# ---------------------------------------------------------------------- cache
@dataclass
class EvalOutcome:
    commit: str
    record: EvalRecord
    #: True when no agent ran: the record came from a note.
    cached: bool = False
    #: Where a cached record came from (the commit whose note held it).
    source: str | None = None

    @property
    def ran(self) -> bool:
        return not self.cached


def find_cached(store: GitStore, key: tuple, *, prefer: str | None = None) -> tuple[str, EvalRecord] | None:
    """A record with cache key ``key`` in any eval note: ``(commit, record)`` or None.

    ``prefer``'s own note is looked at first. Notes that do not parse are ignored here
    (they are reported when read directly).
    """
    if prefer:
        try:
            note = read_eval_note(store, prefer)
        except NoteFormatError:
            note = None
        if note is not None and (hit := note.find(key)) is not None:
            return prefer, hit
    listing = store.list_notes(EVAL_NOTES)
    if not listing:
        return None
    blobs = store.read_objects(listing.values())
    best: tuple[str, EvalRecord] | None = None
    for commit, blob in sorted(listing.items()):
        raw = blobs.get(blob)
        if raw is None:
            continue
        try:
            note = parse_eval_note(raw.decode("utf-8", errors="replace"))
        except NoteFormatError:
            continue
        hit = note.find(key)
        if hit is not None and (best is None or (best[1].cached_from and not hit.cached_from)):
            best = (commit, hit)
    return best


def _record_on(store: GitStore, commit: str, record: EvalRecord) -> None:
    update_eval_note(store, commit, lambda note: note.upsert(record))


class EvalErrored(WorkErrored):
    """Some tasks of an evaluation errored: nothing was written (see the module doc).
    ``outcome`` holds the per-task results of the attempt, for display only."""

    def __init__(self, outcome: EvalOutcome):
        record = outcome.record
        errored = record.errored_tasks
        causes = tally(v.cause or ErrorCause(kind="error", message=v.error or "") for v in errored)
        super().__init__(
            describe(causes, len(errored), record.total, "task runs"),
            causes=causes,
            hint="no result was recorded; fix the cause and run the same command again",
        )
        self.outcome = outcome


def _reuse(store: GitStore, commit: str, key: tuple) -> EvalOutcome | None:
    """The cached result for ``key`` as ``commit``'s outcome (copied onto its note)."""
    hit = find_cached(store, key, prefer=commit)
    if hit is None:
        return None
    source, record = hit
    if source != commit:
        copy = record.model_copy(update={"cached_from": source})
        _record_on(store, commit, copy)
        record = copy
    return EvalOutcome(commit, record, cached=True, source=source)


def eval_lock(store: GitStore, ctx: EvalContext, tree: str, on_wait: Callable[[str], None] | None = None):
    """The inter-process lock of one cache key (a context manager): a second
    evaluation of the same skill, suite, split, agent and seeds waits for the first."""
    key = ctx.key(tree)
    name = "eval-" + hashlib.sha256(json.dumps(key).encode()).hexdigest()[:24]
    busy = (f"waiting for another `t2s eval` of this skill (tree {tree[:12]}) on "
            f"{ctx.suite_name}/{ctx.split} with the same agent to finish")
    return store.exclusive(name, busy, wait=on_wait or (lambda _message: None))


def check_evaluable(ctx: EvalContext, commit: str) -> str:
    """The skill's subtree hash at ``commit``; :class:`Unevaluable` if it cannot run."""
    from t2s.skill.repo import BrokenSkill, require_clean_skill

    try:
        return require_clean_skill(ctx.store, ctx.config, commit, ctx.skill_dir)
    except BrokenSkill as err:
        raise Unevaluable(err.message, hint=err.hint) from None


def evaluate(
    ctx: EvalContext,
    rev: str,
    *,
    use_cache: bool = True,
    runner: Runner | None = None,
    workdir: Path | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> EvalOutcome:
    """Evaluate the skill at ``rev`` (or reuse a cached result) and note it on ``rev``.

    Raises :class:`EvalErrored` (and writes nothing) when any task errored.
    ``on_wait(message)`` is called when another evaluation of the same cache key holds
    the lock (this one then waits for it, and reuses its result unless ``use_cache``
    is False).
    """
    store = ctx.store
    commit = store.resolve(rev)
    tree = store.subtree(commit, ctx.skill_dir)
    if not tree:
        raise Unevaluable(f"{rev} ({commit[:12]}) has no skill folder {ctx.skill_dir}")
    key = ctx.key(tree)
    if use_cache and (hit := _reuse(store, commit, key)) is not None:
        return hit
    check_evaluable(ctx, commit)
    with eval_lock(store, ctx, tree, on_wait):
        if use_cache and (hit := _reuse(store, commit, key)) is not None:
            return hit  # the evaluation we waited for wrote it
        runner = runner or agent_runner
        started = time.monotonic()
        with scratch_dir("t2s-eval-", workdir) as tmp:
            skill_name = PurePosixPath(ctx.skill_dir).name
            skill_path = store.archive(commit, ctx.skill_dir, Path(tmp) / "skill" / skill_name)
            work = Path(tmp) / "work"
            work.mkdir()
            result = runner(RunRequest(ctx, commit, skill_path, work, list(ctx.task_ids), ctx.seeds))
        duration = time.monotonic() - started
        record = make_record(ctx, commit, tree, result, duration)
        if not record.complete:
            raise EvalErrored(EvalOutcome(commit, record, cached=False))
        _record_on(store, commit, record)
    return EvalOutcome(commit, record, cached=False)


def make_record(ctx: EvalContext, commit: str, tree: str, result: RunResult, duration: float) -> EvalRecord:
    verdicts = sorted(result.verdicts, key=lambda v: (ctx.task_ids.index(v.task) if v.task in ctx.task_ids else 1 << 30, v.task, v.seed))
    expected = {(t, s) for t in ctx.task_ids for s in range(ctx.seeds)}
    got = {(v.task, v.seed) for v in verdicts}
    for task, seed in sorted(expected - got, key=lambda p: (ctx.task_ids.index(p[0]), p[1])):
        verdicts.append(TaskVerdict(task=task, seed=seed, passed=False, score=0.0, error="no result from the runner",
                                    cause=ErrorCause(kind="harness", message="no result from the runner")))
    total = len(verdicts)
    return EvalRecord(
        suite=ctx.suite_name,
        split=ctx.split,
        suite_hash=ctx.suite_hash,
        skill_tree=tree,
        skill_dir=ctx.skill_dir,
        agent=ctx.agent,
        agent_hash=ctx.agent_hash,
        seeds=ctx.seeds,
        tasks=verdicts,
        score=round(sum(v.score for v in verdicts) / total, 6) if total else 0.0,
        passed=sum(1 for v in verdicts if v.passed),
        total=total,
        tokens=result.tokens,
        cost_usd=round(result.cost_usd, 6),
        duration_s=round(duration, 3),
        model_calls=result.model_calls,
        commit=commit,
    )


# ---------------------------------------------------------------------- gate
PAIR_KEYS = ("both", "only_baseline", "only_candidate", "neither")


def task_passes(record: EvalRecord) -> dict[str, bool]:
    """Task -> passed in more than half of its seeds."""
    runs: dict[str, list[bool]] = {}
    for v in record.tasks:
        runs.setdefault(v.task, []).append(v.passed)
    return {task: sum(flags) * 2 > len(flags) for task, flags in runs.items()}


def sign_test(b: int, c: int) -> float:
    """Exact two-sided sign test (binomial, p = 1/2) on ``b`` vs ``c`` discordant pairs."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


@dataclass
class PairRow:
    task: str
    baseline: bool
    candidate: bool

    @property
    def kind(self) -> str:
        if self.baseline and self.candidate:
            return "both"
        if self.baseline:
            return "only_baseline"
        if self.candidate:
            return "only_candidate"
        return "neither"


@dataclass
class GateResult:
    record: GateRecord
    candidate: EvalOutcome
    baseline: EvalOutcome
    rows: list[PairRow] = field(default_factory=list)
    candidate_rev: str = ""
    baseline_rev: str = ""

    @property
    def passed(self) -> bool:
        return self.record.passed

    def to_json(self) -> dict:
        return {
            "passed": self.passed,
            "candidate": {"rev": self.candidate_rev, "commit": self.candidate.commit, "score": self.candidate.record.score, "cached": self.candidate.cached},
            "baseline": {"rev": self.baseline_rev, "commit": self.baseline.commit, "score": self.baseline.record.score, "cached": self.baseline.cached},
            "gate": self.record.model_dump(),
            "tasks": [{"task": r.task, "baseline": r.baseline, "candidate": r.candidate, "kind": r.kind} for r in self.rows],
        }


def pair(baseline: EvalRecord, candidate: EvalRecord, task_ids: Sequence[str]) -> list[PairRow]:
    b, c = task_passes(baseline), task_passes(candidate)
    return [PairRow(t, b.get(t, False), c.get(t, False)) for t in task_ids]


def default_baseline(store: GitStore, candidate: str, config: Config) -> str:
    """The latest release tag; else the run's S0 (``T2S-Run`` trailer -> run record);
    else the merge base of the candidate with the release branch."""
    from t2s.record.tags import latest_release_tag

    tag = latest_release_tag(store)
    if tag:
        return tag
    s0 = run_s0(store, candidate)
    if s0:
        return s0
    branch = (store.rev_parse(refs.head(config.release.branch))
              or store.rev_parse(refs.remote_head("origin", config.release.branch)))
    if branch:
        base = store.merge_base(candidate, branch)
        if base:
            return base
    raise UsageError(f"no baseline for {candidate}: no release tag, no run S0, no merge base with {config.release.branch}", hint="pass --baseline REV")


def gate(
    ctx: EvalContext,
    candidate: str,
    baseline: str | None = None,
    *,
    min_delta: float | None = None,
    max_regressions: int | None = None,
    use_cache: bool = True,
    runner: Runner | None = None,
    write_note: bool = True,
    on_wait: Callable[[str], None] | None = None,
) -> GateResult:
    """Evaluate ``candidate`` and ``baseline`` in the same context and judge the delta.

    Raises :class:`EvalErrored` (and records nothing) when either evaluation errored."""
    store, config = ctx.store, ctx.config
    min_delta = config.gate.min_delta if min_delta is None else min_delta
    max_regressions = config.gate.max_regressions if max_regressions is None else max_regressions
    baseline = baseline or default_baseline(store, candidate, config)
    base = evaluate(ctx, baseline, use_cache=use_cache, runner=runner, on_wait=on_wait)
    cand = evaluate(ctx, candidate, use_cache=use_cache, runner=runner, on_wait=on_wait)
    for outcome in (base, cand):  # evaluate() returns complete records only; never judge anything else
        if not outcome.record.complete:
            raise EvalErrored(outcome)
    rows = pair(base.record, cand.record, ctx.task_ids)
    counts = {k: 0 for k in PAIR_KEYS}
    for row in rows:
        counts[row.kind] += 1
    delta = round(cand.record.score - base.record.score, 6)
    regressions = counts["only_baseline"]
    passed = delta >= min_delta - 1e-9 and regressions <= max_regressions
    record = GateRecord(
        passed=passed,
        candidate=cand.commit,
        baseline=base.commit,
        split=ctx.split,
        suite_hash=ctx.suite_hash,
        candidate_score=cand.record.score,
        baseline_score=base.record.score,
        delta=delta,
        regressions=regressions,
        min_delta=min_delta,
        max_regressions=max_regressions,
        paired=counts,
        p_value=sign_test(counts["only_baseline"], counts["only_candidate"]),
        suite=ctx.suite_name,
        agent_hash=ctx.agent_hash,
        candidate_tree=cand.record.skill_tree,
        baseline_tree=base.record.skill_tree,
        regressed=[r.task for r in rows if r.kind == "only_baseline"],
        improved=[r.task for r in rows if r.kind == "only_candidate"],
    )
    if write_note:
        update_eval_note(store, cand.commit, lambda note: setattr(note, "gate", record))
    return GateResult(record, cand, base, rows, candidate, baseline)


# ---------------------------------------------------------------------- reports
def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def eval_table_markdown(record: GateRecord, *, candidate_label: str = "candidate", baseline_label: str = "baseline") -> str:
    """The score table (shared by the gate summary, the release commit and the tag)."""
    p = record.paired
    pv = "n/a" if record.p_value is None else f"{record.p_value:.4g}"
    lines = [
        f"| | {baseline_label} | {candidate_label} |",
        "|---|---|---|",
        f"| commit | `{record.baseline[:12]}` | `{record.candidate[:12]}` |",
        f"| score | {_pct(record.baseline_score)} | {_pct(record.candidate_score)} |",
        "",
        f"Delta {record.delta:+.3f} (need >= {record.min_delta:+.3f}); "
        f"regressions {record.regressions} (allowed {record.max_regressions}); "
        f"sign test p = {pv} on {p.get('only_baseline', 0) + p.get('only_candidate', 0)} discordant task(s).",
        "",
        "| paired tasks | count |",
        "|---|---|",
        f"| both pass | {p.get('both', 0)} |",
        f"| only baseline (regressed) | {p.get('only_baseline', 0)} |",
        f"| only candidate (improved) | {p.get('only_candidate', 0)} |",
        f"| neither | {p.get('neither', 0)} |",
    ]
    return "\n".join(lines)


def gate_markdown(result: GateResult) -> str:
    """A Markdown summary for a pull-request comment or ``$GITHUB_STEP_SUMMARY``."""
    r = result.record
    status = "PASSED" if r.passed else "FAILED"
    reasons = []
    if r.delta < r.min_delta - 1e-9:
        reasons.append(f"score delta {r.delta:+.3f} is below the minimum {r.min_delta:+.3f}")
    if r.regressions > r.max_regressions:
        reasons.append(f"{r.regressions} task(s) regressed; at most {r.max_regressions} allowed")
    agent = result.candidate.record.agent
    lines = [
        f"## t2s gate {status}: `{result.candidate_rev or r.candidate[:12]}` vs `{result.baseline_rev or r.baseline[:12]}`",
        "",
    ]
    if reasons:
        lines += [f"- {x}" for x in reasons] + [""]
    lines.append(eval_table_markdown(r, candidate_label=f"candidate `{result.candidate_rev}`", baseline_label=f"baseline `{result.baseline_rev}`"))
    if r.regressed:
        lines += ["", "Regressed: " + ", ".join(f"`{t}`" for t in r.regressed)]
    if r.improved:
        lines += ["", "Improved: " + ", ".join(f"`{t}`" for t in r.improved)]
    lines += [
        "",
        f"<sub>suite `{r.suite}` split `{r.split}` (hash `{r.suite_hash[:12]}`), "
        f"{result.candidate.record.total} run(s) of {result.candidate.record.seeds} seed(s), "
        f"agent `{agent.get('model', '?')}` (config `{r.agent_hash[:12]}`); "
        f"candidate {'cached' if result.candidate.cached else 'evaluated'}, "
        f"baseline {'cached' if result.baseline.cached else 'evaluated'}.</sub>",
    ]
    return "\n".join(lines) + "\n"
