"""Every ref t2s reads or writes, named in one place, with the parsers for them.

```
refs/heads/t2s/<run>/patch/<nnnn>      one analyst patch: a single commit on S0
refs/heads/t2s/<run>/merge/L<l>-<nn>   an octopus merge of one group at level l
refs/heads/t2s/<run>/candidate         the root of the merge tree
refs/heads/t2s/<run>/seq/<nnn>         the sequential baseline's steps (and seq/candidate)
refs/t2s/runs/<run>                    the run record (a commit chain)
refs/t2s/superseded/<run>/<nnn>        a merge tree set aside by `t2s merge --rebuild`
refs/t2s/eval-trajectories/<commit>/<key>  the trajectories of one noted evaluation
refs/t2s/eval-trajectories/<commit>/<key>-<K>-of-<N>  those of one shard of it (collect joins them)
refs/t2s/shards/<run>/<stage>/<K>-of-<N>   one shard's part of a run record (t2s collect joins them)
refs/notes/t2s/eval-shard-<K>-of-<N>   one shard's partial evaluations (t2s collect joins them)
refs/notes/t2s/eval                    evaluation and gate results per commit
refs/notes/t2s/review                  human verdicts on patches
refs/tags/vX.Y.Z                       annotated releases
```

No other module spells a ref: they call these functions, so a change of layout is
one edit here (and a migration), never a search through the code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEADS = "refs/heads/"
TAGS = "refs/tags/"
BISECT = "refs/bisect/"
#: All of t2s's branches, of every run.
BRANCHES = HEADS + "t2s/"
RUNS = "refs/t2s/runs/"
SUPERSEDED = "refs/t2s/superseded/"
EVAL_TRAJECTORIES = "refs/t2s/eval-trajectories/"
SHARDS = "refs/t2s/shards/"
NOTES = "refs/notes/t2s/"
#: Note namespaces under :data:`NOTES` (``git notes --ref t2s/eval``).
EVAL_NOTES = "eval"
REVIEW_NOTES = "review"
#: The prefix of a shard's notes namespace (``eval-shard-<K>-of-<N>``).
EVAL_SHARD_NOTES = "eval-shard-"

_PATCH_RE = re.compile(r"^(?:refs/heads/)?t2s/([^/]+)/patch/([^/]+)$")
_MERGE_RE = re.compile(r"^(?:refs/heads/)?t2s/([^/]+)/merge/(L(\d+)-(\d+))$")
_CANDIDATE_RE = re.compile(r"^(?:refs/heads/)?t2s/([^/]+)/(seq/)?candidate$")
_SHARD_LABEL_RE = re.compile(r"^([1-9]\d*)-of-([1-9]\d*)$")
_VERSION_RE = re.compile(r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")


# ---------------------------------------------------------------------- branches of a run
def run_branches(run: str) -> str:
    """``refs/heads/t2s/<run>/``: the prefix of a run's patch, merge and candidate branches."""
    return f"{BRANCHES}{run}/"


def patch_branch(run: str, number: str) -> str:
    return f"{run_branches(run)}patch/{number}"


def merge_branch(run: str, level: int, group: int) -> str:
    return f"{run_branches(run)}merge/{merge_name(level, group)}"


def merge_name(level: int, group: int) -> str:
    """``L<l>-<nn>``: the name of a merge in its run (branch, report and trailer)."""
    return f"L{level}-{group:02d}"


def round_run(run: str, number: int) -> str:
    """The run name of round ``number`` of ``t2s evolve --rounds``: ``<run>-r<n>``."""
    return f"{run}-r{number}"


def rounds_branches_glob(run: str) -> str:
    """A glob of the branches of every round of ``run`` (``t2s log --run``)."""
    return f"{BRANCHES}{run}-r*"


def candidate_branch(run: str) -> str:
    return f"{run_branches(run)}candidate"


def sequential_branch(run: str, step: int) -> str:
    return f"{run_branches(run)}seq/{step:03d}"


def sequential_candidate(run: str) -> str:
    return f"{run_branches(run)}seq/candidate"


def short(ref: str) -> str:
    """A branch ref as people type it: ``t2s/r1/candidate`` for ``refs/heads/t2s/r1/candidate``."""
    return ref.removeprefix(HEADS)


def head(branch: str) -> str:
    """The full ref of a branch name (``main`` -> ``refs/heads/main``)."""
    return branch if branch.startswith("refs/") else HEADS + branch


def remote_head(remote: str, branch: str) -> str:
    return f"refs/remotes/{remote}/{branch}"


@dataclass(frozen=True)
class PatchRef:
    run: str
    number: str


def parse_patch_branch(ref: str) -> PatchRef | None:
    """``(run, number)`` of ``t2s/<run>/patch/<nnnn>`` (with or without ``refs/heads/``)."""
    m = _PATCH_RE.match(ref)
    return PatchRef(m.group(1), m.group(2)) if m else None


def parse_merge_branch(ref: str) -> tuple[str, str] | None:
    """``(run, name)`` of ``t2s/<run>/merge/L<l>-<nn>``."""
    m = _MERGE_RE.match(ref)
    return (m.group(1), m.group(2)) if m else None


def parse_candidate_branch(ref: str) -> str | None:
    """The run of ``t2s/<run>/candidate`` or ``t2s/<run>/seq/candidate``."""
    m = _CANDIDATE_RE.match(ref)
    return m.group(1) if m else None


def branch_kind(ref: str) -> str | None:
    """``patch``, ``merge``, ``candidate`` or ``sequential`` for a t2s branch; else None."""
    if parse_patch_branch(ref):
        return "patch"
    if parse_merge_branch(ref):
        return "merge"
    if _CANDIDATE_RE.match(ref):
        return "candidate"
    if ref.startswith(BRANCHES) and "/seq/" in ref:
        return "sequential"
    return None


# ---------------------------------------------------------------------- runs
def run_record(run: str) -> str:
    """``refs/t2s/runs/<run>``: the run record."""
    return RUNS + run


def run_of_record(ref: str) -> str | None:
    return ref[len(RUNS) :] if ref.startswith(RUNS) else None


def superseded(run: str, name: str = "") -> str:
    """``refs/t2s/superseded/<run>/<name>`` (the prefix when ``name`` is empty)."""
    return f"{SUPERSEDED}{run}/{name}"


def imported_skill(run: str) -> str:
    """``refs/t2s/imported-skills/<run>``: the S0 commit ``t2s import --skill`` made."""
    return f"refs/t2s/imported-skills/{run}"


def record_path(run: str, path: str) -> str:
    """``refs/t2s/runs/<run>:<path>``: a file of a run record, as git names it."""
    return f"{run_record(run)}:{path}"


# ---------------------------------------------------------------------- shards
def shard_label(k: int, n: int) -> str:
    """``<K>-of-<N>``: how a shard is named in its refs (``K/N`` cannot be: ``/`` nests)."""
    return f"{k}-of-{n}"


def parse_shard_label(label: str) -> tuple[int, int] | None:
    """``(K, N)`` of ``<K>-of-<N>``; else None."""
    m = _SHARD_LABEL_RE.match(label)
    return (int(m.group(1)), int(m.group(2))) if m else None


def shard_records(run: str, stage: str = "") -> str:
    """``refs/t2s/shards/<run>/<stage>/``: the prefix of a run's shard records (of every
    stage when ``stage`` is empty)."""
    return f"{SHARDS}{run}/{stage + '/' if stage else ''}"


def shard_record(run: str, stage: str, label: str) -> str:
    """``refs/t2s/shards/<run>/<stage>/<K>-of-<N>``: one shard's part of a run record."""
    return shard_records(run, stage) + label


def eval_shard_notes(label: str) -> str:
    """``refs/notes/t2s/eval-shard-<K>-of-<N>``: one shard's partial evaluations."""
    return NOTES + EVAL_SHARD_NOTES + label


def label_of_eval_shard_notes(ref: str) -> str | None:
    """The ``<K>-of-<N>`` of a shard's notes ref; else None."""
    prefix = NOTES + EVAL_SHARD_NOTES
    return ref[len(prefix) :] if ref.startswith(prefix) else None


# ---------------------------------------------------------------------- notes
def notes_ref(namespace: str) -> str:
    """``refs/notes/t2s/<namespace>`` (``eval`` or ``review``)."""
    return NOTES + namespace


# ---------------------------------------------------------------------- tags
def tag(name: str) -> str:
    return TAGS + name


def tag_name(ref: str) -> str | None:
    return ref[len(TAGS) :] if ref.startswith(TAGS) else None


def parse_version(name: str) -> tuple[int, int, int] | None:
    """``(X, Y, Z)`` of a strict ``vX.Y.Z`` (no leading zeros, no suffix); else None."""
    m = _VERSION_RE.match(name)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def version_name(version: tuple[int, int, int]) -> str:
    return "v{}.{}.{}".format(*version)


# ---------------------------------------------------------------------- pushing
def mirror(ref: str) -> str:
    """A refspec that pushes ``ref`` to the same name (``ref:ref``)."""
    return f"{ref}:{ref}"


def mirror_all(prefix: str, *, force: bool = False) -> str:
    """A refspec that pushes every ref under ``prefix`` to the same names (``force``:
    even when that is no fast-forward)."""
    return f"{'+' if force else ''}{prefix}*:{prefix}*"


def eval_trajectories(commit: str, key_hash: str) -> str:
    """Where the trajectories of the evaluation of ``commit`` with cache key hash
    ``key_hash`` are kept (``trajectories/<id>.json`` in a one-commit history)."""
    return f"{EVAL_TRAJECTORIES}{commit}/{key_hash[:16]}"


def eval_shard_trajectories(commit: str, key_hash: str, label: str) -> str:
    """Where shard ``label`` (``<K>-of-<N>``) of that evaluation keeps its trajectories
    (a sibling of :func:`eval_trajectories`, which collect fills from all shards)."""
    return f"{eval_trajectories(commit, key_hash)}-{label}"
