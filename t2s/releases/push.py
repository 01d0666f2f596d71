"""t2s.releases.push."""

from __future__ import annotations

from dataclasses import dataclass

from t2s.errors import UsageError
from t2s.gitstore.store import GitStore
from t2s.record.tags import release_tags


@dataclass
class PushResult:
    remote: str
    refspecs: list[str]
    updated: list[dict]

    def to_json(self) -> dict:
        return {"remote": self.remote, "refspecs": self.refspecs, "updated": self.updated}


def push_refspecs(store: GitStore, run: str | None = None, *, release_branch: str | None = None) -> list[str]:
    """Explicit refspecs for what reviewers need, only for refs that exist locally."""
    from t2s.record.runs import RUNS_PREFIX, check_run_name

    specs = []
    if run:
        check_run_name(run)
        if not store.rev_parse(RUNS_PREFIX + run):
            raise UsageError(f"run {run!r} does not exist")
        branches, runs = f"refs/heads/t2s/{run}/", RUNS_PREFIX + run
        if store.refs(branches):
            specs.append(f"{branches}*:{branches}*")
        specs.append(f"{runs}:{runs}")
    else:
        if store.refs("refs/heads/t2s/"):
            specs.append("refs/heads/t2s/*:refs/heads/t2s/*")
        if store.refs(RUNS_PREFIX):
            specs.append(f"{RUNS_PREFIX}*:{RUNS_PREFIX}*")
    if store.refs("refs/notes/t2s/"):
        specs.append("refs/notes/t2s/*:refs/notes/t2s/*")
    # Each release tag by name: a stray v* tag that is not a release stays local.
    specs += [f"refs/tags/{name}:refs/tags/{name}" for _, name in release_tags(store)]
    if release_branch:
        specs.append(f"refs/heads/{release_branch}:refs/heads/{release_branch}")
    return specs


def push(store: GitStore, remote: str, *, run: str | None = None, release_branch: str | None = None, dry_run: bool = False) -> PushResult:
    specs = push_refspecs(store, run, release_branch=release_branch)
    if not specs:
        raise UsageError("nothing to push: no t2s branches, run records, notes or release tags")
    report = store.push(remote, specs, dry_run=dry_run)
    updated = []
    for line in report.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and ":" in parts[1]:
            flag, refs, summary = parts[0], parts[1], parts[2]
            local, remote_ref = refs.split(":", 1)
            updated.append({"flag": flag.strip() or " ", "ref": remote_ref, "summary": summary.strip(), "up_to_date": flag.strip() == "="})
    return PushResult(remote, specs, updated)
