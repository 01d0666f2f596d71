"""``t2s push``: share runs, notes and releases with explicit refspecs."""

from __future__ import annotations

from dataclasses import dataclass

from t2s.errors import UsageError
from t2s.gitstore.store import GitStore
from t2s.record import refs
from t2s.record.runs import check_run_name
from t2s.record.tags import release_tags


@dataclass
class PushResult:
    remote: str
    refspecs: list[str]
    updated: list[dict]

    def to_json(self) -> dict:
        return {"remote": self.remote, "refspecs": self.refspecs, "updated": self.updated}


def push_refspecs(store: GitStore, run: str | None = None, *, release_branch: str | None = None) -> list[str]:
    """Explicit refspecs for what reviewers need, only for refs that exist locally: a
    run's (or every run's) branches, record and set-aside merge trees, the notes and the
    trajectories their evaluations keep, the release tags and the release branch."""
    specs = []
    if run:
        check_run_name(run)
        shards = store.refs(refs.shard_records(run))
        if not store.rev_parse(refs.run_record(run)) and not shards:
            raise UsageError(f"run {run!r} does not exist")
        if store.refs(refs.run_branches(run)):
            specs.append(refs.mirror_all(refs.run_branches(run)))
        if store.rev_parse(refs.run_record(run)):
            specs.append(refs.mirror(refs.run_record(run)))
        if shards:  # a shard's part of the run, for `t2s collect` elsewhere
            specs.append(refs.mirror_all(refs.shard_records(run)))
        if store.refs(refs.superseded(run)):
            specs.append(refs.mirror_all(refs.superseded(run)))
    else:
        for prefix in (refs.BRANCHES, refs.RUNS, refs.SUPERSEDED, refs.SHARDS):
            if store.refs(prefix):
                specs.append(refs.mirror_all(prefix))
    if store.refs(refs.NOTES):
        specs.append(refs.mirror_all(refs.NOTES))
    if store.refs(refs.EVAL_TRAJECTORIES):  # what the notes' evaluations (and eval shards) keep
        # forced: an evaluation run again keeps its trajectories in a new one-commit history
        specs.append(refs.mirror_all(refs.EVAL_TRAJECTORIES, force=True))
    # Each release tag by name: a stray v* tag that is not a release stays local.
    specs += [refs.mirror(refs.tag(name)) for _, name in release_tags(store)]
    if release_branch:
        specs.append(refs.mirror(refs.head(release_branch)))
    return specs


def push(
    store: GitStore, remote: str, *, run: str | None = None, release_branch: str | None = None, dry_run: bool = False
) -> PushResult:
    specs = push_refspecs(store, run, release_branch=release_branch)
    if not specs:
        raise UsageError("nothing to push: no t2s branches, run records, notes or release tags")
    report = store.push(remote, specs, dry_run=dry_run)
    updated = []
    for line in report.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and ":" in parts[1]:
            flag, pair, summary = parts[0], parts[1], parts[2]
            _local, remote_ref = pair.split(":", 1)
            updated.append(
                {
                    "flag": flag.strip() or " ",
                    "ref": remote_ref,
                    "summary": summary.strip(),
                    "up_to_date": flag.strip() == "=",
                }
            )
    return PushResult(remote, specs, updated)
