"""Releases, packs, installs, pushes and bisects: what happens after the gate.

- :func:`release` merges a gated candidate into the release branch (first parent: the
  previous release), tags it ``vX.Y.Z`` and moves the branch and the tag in one
  compare-and-swap transaction. Nothing is checked out; a release branch that is
  checked out in a worktree is left for its owner to fast-forward.
- :func:`pack` writes ``dist/<name>-<version>.zip`` and ``.tar.gz`` (one top-level
  ``<name>/`` folder), the eval JSON and ``SHA256SUMS``; the bytes depend only on the
  packed commit and its note.
- :func:`install` copies a released skill into ``.claude/skills/<name>`` (or
  ``.agents/skills/``, or any folder) and records where it came from.
- :func:`push` sends a run's branches, its run record, the notes and the tags.
- :func:`bisect` drives ``git bisect run`` with ``t2s eval`` in a private linked
  worktree, so the user's working tree, index, HEAD and bisect state stay untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from t2s.config import Config
from t2s.errors import RefConflict, T2SError, UsageError
from t2s.evaluation.summary import eval_table_markdown
from t2s.gitstore.store import ZERO_SHA, GitStore, RefUpdate
from t2s.record import refs
from t2s.record.describe import run_of
from t2s.record.notes import (
    EVAL_NOTES,
    NoteFormatError,
    read_eval_note,
    write_eval_note,
)
from t2s.record.provenance import Provenance
from t2s.record.tags import release_tags
from t2s.releases.changelog import changelog, changelog_markdown
from t2s.skill.repo import skill_dir_of

BUMPS = ("major", "minor", "patch")


# ---------------------------------------------------------------------- versions


def bump_version(current: tuple[int, int, int] | None, bump: str) -> str:
    """The next ``vX.Y.Z`` after ``current`` (None: 0.0.0)."""
    if bump not in BUMPS:
        raise UsageError(f"--bump must be one of {', '.join(BUMPS)}")
    major, minor, patch = current or (0, 0, 0)
    if bump == "major":
        return f"v{major + 1}.0.0"
    if bump == "minor":
        return f"v{major}.{minor + 1}.0"
    return f"v{major}.{minor}.{patch + 1}"


# ---------------------------------------------------------------------- changelog


# ---------------------------------------------------------------------- release
@dataclass
class ReleaseResult:
    """A release made by :func:`release`: the version (also the tag's name), the release
    commit, the candidate it merges, the branch's previous head, the tag object, whether
    the branch moved (not when a worktree has it checked out: then ``checked_out_in``
    says where), the changelog entries, the message, and warnings."""

    version: str
    commit: str
    candidate: str
    previous: str
    branch: str
    tag_object: str
    branch_moved: bool
    checked_out_in: Path | None
    changelog: list[dict]
    message: str
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        """The result as JSON-ready data (what ``t2s release --json`` prints)."""
        return {
            "version": self.version,
            "tag": self.version,
            "commit": self.commit,
            "candidate": self.candidate,
            "previous": self.previous,
            "branch": self.branch,
            "branch_moved": self.branch_moved,
            "checked_out_in": str(self.checked_out_in) if self.checked_out_in else None,
            "changelog": self.changelog,
            "warnings": self.warnings,
        }


def release(
    store: GitStore,
    config: Config,
    candidate: str,
    *,
    bump: str = "minor",
    branch: str | None = None,
) -> ReleaseResult:
    """Merge the gated ``candidate`` into the release branch and tag it.

    Refuses without a passing gate note on the candidate. The release commit's parents
    are [release branch head, candidate]; its tree is the branch's tree with the skill
    folder replaced by the candidate's. The candidate's eval note (with the gate) is
    copied onto the release commit, so the pre-push hook accepts the tag. The branch
    and the tag move together with compare-and-swap; if the branch is checked out in a
    worktree it is not moved (t2s never touches a working tree) and the result says
    how to fast-forward it.
    """

    branch = branch or config.release.branch
    branch_ref = refs.head(branch)
    cand = store.resolve(candidate)
    try:
        note = read_eval_note(store, cand)
    except NoteFormatError as err:
        raise T2SError(f"refusing to release {candidate}: {err.message}") from None
    if note is None or note.gate is None:
        raise T2SError(
            f"refusing to release {candidate} ({cand[:12]}): it has no gate verdict in {EVAL_NOTES}",
            hint=f"run `t2s gate {candidate}` first",
        )
    if not note.gate.passed:
        raise T2SError(
            f"refusing to release {candidate} ({cand[:12]}): its gate failed "
            f"(delta {note.gate.delta:+.3f}, {note.gate.regressions} regression(s))"
        )
    if note.gate.candidate != cand:
        raise T2SError(f"refusing to release {candidate}: its gate note is for {note.gate.candidate[:12]}")
    old = store.rev_parse(branch_ref)
    if not old:
        raise UsageError(f"there is no branch {branch} to release onto")
    if store.is_ancestor(cand, old):
        raise UsageError(f"{candidate} ({cand[:12]}) is already part of {branch}")
    tags = release_tags(store)
    if tags:
        latest_commit = store.resolve(tags[-1][1])
        if not store.is_ancestor(latest_commit, old):
            raise UsageError(
                f"{branch} does not contain the latest release {tags[-1][1]}",
                hint=f"fast-forward it first: `git merge --ff-only {tags[-1][1]}` on {branch}",
            )
    version = bump_version(tags[-1][0] if tags else None, bump)
    if store.rev_parse(refs.tag(version)):
        raise RefConflict(f"tag {version} already exists")

    skill_dir = skill_dir_of(store, config, cand)
    skill_tree = store.subtree(cand, skill_dir)
    tree = store.replace_subtree(old, skill_dir, skill_tree)
    entries = changelog(store, tags[-1][1] if tags else old, cand)
    name = PurePosixPath(skill_dir).name
    table = eval_table_markdown(note.gate, candidate_label=f"{version}", baseline_label="baseline")
    body = f"{table}\n\nChangelog:\n{changelog_markdown(entries)}"
    run = run_of(store, cand)
    trailers = Provenance.for_release(version=version, candidate=cand, baseline=note.gate.baseline, run=run).trailers()
    subject = f"Release {version}: {name}" + (f" from run {run}" if run else "")
    commit = store.commit(tree, [old, cand], subject, body, trailers)
    write_eval_note(store, commit, note)
    tag_message = f"{name} {version}\n\n{body}\n"
    tag_obj = store.tag_object(version, commit, tag_message)

    checked = store.checked_out().get(branch_ref)
    updates = [RefUpdate(refs.tag(version), tag_obj, ZERO_SHA)]
    if checked is None:
        updates.append(RefUpdate(branch_ref, commit, old))
    store.drop_tag_reflogs()  # earlier t2s versions made them, and `git gc` printed errors
    try:
        store.update_refs(updates, reason=f"t2s release {version}")
    except RefConflict as err:
        raise RefConflict(f"release {version} not made: {branch} or the tag moved meanwhile ({err.message})") from None
    warnings = []
    latest = tags[-1][1] if tags else None
    if latest and note.gate.baseline != store.resolve(latest):
        warnings.append(f"the gate compared against {note.gate.baseline[:12]}, not the latest release {latest}")
    return ReleaseResult(version, commit, cand, old, branch, tag_obj, checked is None, checked, entries, body, warnings)


# ---------------------------------------------------------------------- pack


# ---------------------------------------------------------------------- install


# ---------------------------------------------------------------------- push


# ---------------------------------------------------------------------- bisect
