"""Every ref t2s reads or writes, named in one place, with the parsers for them.

```
refs/heads/t2s/<run>/patch/<nnnn>      one analyst patch: a single commit on S0
refs/heads/t2s/<run>/merge/L<l>-<nn>   an octopus merge of one group at level l
refs/heads/t2s/<run>/candidate         the root of the merge tree
refs/heads/t2s/<run>/seq/<nnn>         the sequential baseline's steps (and seq/candidate)
refs/t2s/runs/<run>                    the run record (a commit chain)
refs/t2s/superseded/<run>/<nnn>        a merge tree set aside by `t2s merge --rebuild`
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
NOTES = "refs/notes/t2s/"
#: Note namespaces under :data:`NOTES` (``git notes --ref t2s/eval``).
EVAL_NOTES = "eval"
REVIEW_NOTES = "review"

_PATCH_RE = re.compile(r"^(?:refs/heads/)?t2s/([^/]+)/patch/([^/]+)$")
_MERGE_RE = re.compile(r"^(?:refs/heads/)?t2s/([^/]+)/merge/(L(\d+)-(\d+))$")
_CANDIDATE_RE = re.compile(r"^(?:refs/heads/)?t2s/([^/]+)/(seq/)?candidate$")
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


def record_path(run: str, path: str) -> str:
    """``refs/t2s/runs/<run>:<path>``: a file of a run record, as git names it."""
    return f"{run_record(run)}:{path}"


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


def mirror_all(prefix: str) -> str:
    """A refspec that pushes every ref under ``prefix`` to the same names."""
    return f"{prefix}*:{prefix}*"
