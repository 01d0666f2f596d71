"""``t2s bisect``: the first commit whose held-out score falls below a threshold.

``git bisect run`` drives ``t2s eval`` in a private linked worktree without files, so
the user's working tree, index, HEAD and bisect state stay untouched; evaluations come
from the eval cache where the skill did not change. A killed ``t2s bisect`` takes its
``git bisect run`` with it, and the next one removes what it left.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from t2s.config import Config
from t2s.errors import UsageError
from t2s.evaluation.context import make_context
from t2s.evaluation.evaluate import evaluate
from t2s.gitstore.store import GitStore
from t2s.record.describe import describe_commit


@dataclass
class BisectResult:
    good: str
    bad: str
    threshold: float
    first_bad: str | None
    kind: str  # patch | merge | release | commit | unknown
    subject: str = ""
    branches: list[str] = field(default_factory=list)
    trailers: list[tuple[str, str]] = field(default_factory=list)
    details: dict = field(default_factory=dict)
    steps: list[dict] = field(default_factory=list)
    endpoints: list[dict] = field(default_factory=list)
    log: str = ""

    @property
    def evaluations(self) -> int:
        """Agent runs during bisection (cache hits excluded, endpoints excluded)."""
        return sum(1 for s in self.steps if s.get("ran"))

    def to_json(self) -> dict:
        return {
            "good": self.good,
            "bad": self.bad,
            "threshold": self.threshold,
            "first_bad": self.first_bad,
            "kind": self.kind,
            "subject": self.subject,
            "branches": self.branches,
            "trailers": [list(t) for t in self.trailers],
            "details": self.details,
            "steps": self.steps,
            "endpoints": self.endpoints,
            "evaluations": self.evaluations,
        }


def _describe(store: GitStore, commit: str) -> tuple[str, str, list[str], list[tuple[str, str]], dict]:
    """(kind, subject, branches, trailers, details) of the commit bisect named."""
    desc = describe_commit(store, commit)
    prov = desc.provenance
    details: dict = {}
    if desc.kind == "patch":
        fields = {
            "patch": desc.patch,
            "task": prov.task,
            "trajectory": prov.trajectory,
            "outcome": prov.outcome,
            "analyst": prov.analyst,
        }
        details.update({k: v for k, v in fields.items() if v is not None})
        record = desc.patch_record
        if record is not None:
            details["lessons"] = [
                str(lesson.get("text", "")) for lesson in record.get("lessons") or [] if isinstance(lesson, dict)
            ]
            details.setdefault("task", record.get("task"))
            details.setdefault("trajectory", record.get("trajectory"))
        if details.get("trajectory") and desc.run:
            details["trajectory_path"] = desc.trajectory_path(details["trajectory"])
        if not details.get("lessons"):
            details["lessons"] = [desc.subject, *desc.body_lines[:10]]
    elif desc.kind == "merge":
        if desc.merge_report is not None:
            details["merge_report"] = desc.merge_report
        details["level"] = None if prov.merge_level is None else str(prov.merge_level)
        details["parents"] = store.parents(commit)
    kind = desc.kind if desc.kind in ("patch", "merge", "release") else "commit"
    return kind, desc.subject, desc.branches, prov.trailers(), details


BISECT_PREFIX = "bisect-"


def clean_stale_bisects(store: GitStore) -> list[str]:
    """Remove what a ``t2s bisect`` that did not finish (killed, a crash) left behind:
    its linked worktree under ``<git-dir>/t2s/bisect-*`` (with that worktree's bisect
    state and refs/bisect/*) and its folder. A bisect that still runs holds its lock
    and is left alone; nothing t2s did not create is touched. Returns what was removed."""
    removed = []
    for folder in sorted(store.t2s_dir.glob(f"{BISECT_PREFIX}*")):
        if not folder.is_dir():
            continue
        try:
            with store.exclusive(folder.name, "busy"):
                store.worktree_remove(folder / "wt")
                shutil.rmtree(folder, ignore_errors=True)
                (store.t2s_dir / f"{folder.name}.lock").unlink(missing_ok=True)
        except UsageError:
            continue  # a t2s bisect at work
        removed.append(folder.name)
    return removed


def bisect(
    store: GitStore,
    config: Config,
    *,
    good: str,
    bad: str,
    split: str | None = None,
    threshold: float | None = None,
    seeds: int | None = None,
    suite: str | None = None,
    use_cache: bool = True,
    first_parent: bool = False,
    runner=None,
    python: str = sys.executable,
) -> BisectResult:
    """Find the first commit between ``good`` and ``bad`` whose held-out score falls
    below ``threshold`` (default: the good commit's score).

    The endpoints are evaluated here first (through the cache: after a gate they are
    free) and must straddle the threshold. Then ``git bisect run`` runs
    ``t2s eval BISECT_HEAD --exit-code-below THRESHOLD`` in a private, unpopulated
    linked worktree; the notes (and so the eval cache) are shared with the repository.
    The worktree and its bisect state are removed whatever happens.
    """

    if threshold is not None and not (math.isfinite(threshold) and 0 <= threshold <= 1):
        raise UsageError(f"--threshold must be a score from 0 to 1 (got {threshold!r})")
    clean_stale_bisects(store)
    ctx = make_context(store, config, split=split, seeds=seeds, suite=suite, rev_for_skill=bad)
    good_sha, bad_sha = store.resolve(good), store.resolve(bad)
    if not store.is_ancestor(good_sha, bad_sha):
        raise UsageError(f"{good} is not an ancestor of {bad}; bisect needs good before bad")
    ends = []
    outcomes = {}
    for label, rev in (("good", good), ("bad", bad)):
        out = evaluate(ctx, rev, use_cache=use_cache, runner=runner)
        outcomes[label] = out
        ends.append({"label": label, "commit": out.commit, "score": out.record.score, "ran": out.ran})
    if threshold is None:
        threshold = outcomes["good"].record.score
    if outcomes["good"].record.score < threshold:
        raise UsageError(f"good {good} scores {outcomes['good'].record.score:.3f}, below the threshold {threshold:.3f}")
    if outcomes["bad"].record.score >= threshold:
        raise UsageError(
            f"bad {bad} scores {outcomes['bad'].record.score:.3f}, not below the threshold {threshold:.3f}: nothing to bisect",
            hint="lower --threshold, or pick another bad revision",
        )
    name = f"{BISECT_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    with store.exclusive(name, f"{name} is in use"):  # held while it runs: see clean_stale_bisects
        workroot = store.t2s_dir / name
        workroot.mkdir()
        wt_path = workroot / "wt"
        report = workroot / "steps.jsonl"
        cmd_args = [
            "-C",
            str(store.root),
            "--split",
            ctx.split,
            "--seeds",
            str(ctx.seeds),
            "--suite",
            ctx.suite_name,
            "--exit-code-below",
            repr(threshold),
            "--report-file",
            str(report),
            "--quiet",
        ]
        if not use_cache:
            cmd_args.append("--no-cache")
        # The step dies with this process: see t2s.commands.bisect_step.
        script = 'exec "$0" -m t2s.commands.bisect_step "$(git rev-parse BISECT_HEAD)" "$@"'
        package_root = str(Path(__file__).resolve().parents[2])
        env = {"PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH", "")]))}
        try:
            wt = store.worktree_add(wt_path, bad_sha)
            first_bad, log = wt.bisect_run(
                [good_sha], bad_sha, ["sh", "-c", script, python, *cmd_args], first_parent=first_parent, env=env
            )
        finally:
            store.worktree_remove(wt_path)
            steps = (
                [json.loads(line) for line in report.read_text().splitlines() if line.strip()]
                if report.exists()
                else []
            )
            shutil.rmtree(workroot, ignore_errors=True)
            (store.t2s_dir / f"{name}.lock").unlink(missing_ok=True)
    result = BisectResult(good_sha, bad_sha, threshold, first_bad, "unknown", steps=steps, endpoints=ends, log=log)
    if first_bad is None:
        return result
    result.kind, result.subject, result.branches, result.trailers, result.details = _describe(store, first_bad)
    return result
