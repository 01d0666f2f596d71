"""t2s.views.bisect."""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from t2s.config import Config
from t2s.errors import UsageError
from t2s.gitstore.store import GitStore
from t2s.record.describe import _run_json, _trailer, branches_at


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
            "good": self.good, "bad": self.bad, "threshold": self.threshold,
            "first_bad": self.first_bad, "kind": self.kind, "subject": self.subject,
            "branches": self.branches, "trailers": [list(t) for t in self.trailers],
            "details": self.details, "steps": self.steps, "endpoints": self.endpoints,
            "evaluations": self.evaluations,
        }


def _describe(store: GitStore, commit: str) -> tuple[str, str, list[str], list[tuple[str, str]], dict]:
    """(kind, subject, branches, trailers, details) of a commit bisect named."""
    from t2s.evaluation.evaluate import run_of

    message = store.commit_message(commit)
    subject = message.splitlines()[0] if message else ""
    trailers = store.trailers(commit)
    keys = {k for k, _ in trailers}
    branches = branches_at(store, commit)
    run = run_of(store, commit)
    details: dict = {}
    if "T2S-Release" in keys:
        return "release", subject, branches, trailers, details
    if "T2S-Patch" in keys or any("/patch/" in b for b in branches):
        kind = "patch"
        for key in ("T2S-Patch", "T2S-Task", "T2S-Trajectory", "T2S-Outcome", "T2S-Analyst"):
            if (v := _trailer(trailers, key)) is not None:
                details[key[4:].lower()] = v
        number = details.get("patch") or next((b.rsplit("/", 1)[1] for b in branches if "/patch/" in b), None)
        record = _run_json(store, run, f"patches/{number}.json") if run and number else None
        if isinstance(record, dict):
            details["lessons"] = [str(l.get("text", "")) for l in record.get("lessons") or [] if isinstance(l, dict)]
            details.setdefault("task", record.get("task"))
            details.setdefault("trajectory", record.get("trajectory"))
        if details.get("trajectory") and run:
            details["trajectory_path"] = f"refs/t2s/runs/{run}:trajectories/{details['trajectory']}.json"
        if not details.get("lessons"):
            body = message.split("\n\n", 1)[1] if "\n\n" in message else ""
            body_lines = [l for l in body.splitlines() if l.strip() and not re.match(r"^[A-Za-z0-9-]+: ", l)]
            details["lessons"] = [subject] + body_lines[:10]
        return kind, subject, branches, trailers, details
    if len(store.parents(commit)) > 1 or "T2S-Merge-Level" in keys:
        group = _trailer(trailers, "T2S-Merge-Group") or next((b.rsplit("/", 1)[1] for b in branches if "/merge/" in b), None)
        report = _run_json(store, run, f"merges/{group}.json") if run and group else None
        if report is not None:
            details["merge_report"] = report
        details["level"] = _trailer(trailers, "T2S-Merge-Level")
        details["parents"] = store.parents(commit)
        return "merge", subject, branches, trailers, details
    return "commit", subject, branches, trailers, details


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
    from t2s.evaluation.evaluate import evaluate, make_context

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
        raise UsageError(f"bad {bad} scores {outcomes['bad'].record.score:.3f}, not below the threshold {threshold:.3f}: nothing to bisect",
                         hint="lower --threshold, or pick another bad revision")
    name = f"{BISECT_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    with store.exclusive(name, f"{name} is in use"):  # held while it runs: see clean_stale_bisects
        workroot = store.t2s_dir / name
        workroot.mkdir()
        wt_path = workroot / "wt"
        report = workroot / "steps.jsonl"
        cmd_args = ["-C", str(store.root), "--split", ctx.split, "--seeds", str(ctx.seeds), "--suite", ctx.suite_name,
                    "--exit-code-below", repr(threshold), "--report-file", str(report), "--quiet"]
        if not use_cache:
            cmd_args.append("--no-cache")
        # The step dies with this process: see t2s.bisect_step.
        script = 'exec "$0" -m t2s.bisect_step "$(git rev-parse BISECT_HEAD)" "$@"'
        package_root = str(Path(__file__).resolve().parents[2])
        env = {"PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH", "")]))}
        try:
            wt = store.worktree_add(wt_path, bad_sha)
            first_bad, log = wt.bisect_run([good_sha], bad_sha, ["sh", "-c", script, python, *cmd_args],
                                           first_parent=first_parent, env=env)
        finally:
            store.worktree_remove(wt_path)
            steps = [json.loads(l) for l in report.read_text().splitlines() if l.strip()] if report.exists() else []
            shutil.rmtree(workroot, ignore_errors=True)
            (store.t2s_dir / f"{name}.lock").unlink(missing_ok=True)
    result = BisectResult(good_sha, bad_sha, threshold, first_bad, "unknown", steps=steps, endpoints=ends, log=log)
    if first_bad is None:
        return result
    result.kind, result.subject, result.branches, result.trailers, result.details = _describe(store, first_bad)
    return result
