"""What the git hooks in ``hooks/`` do; they are thin shell wrappers around this module.

``python -m t2s.hooks pre-commit`` lints every skill as staged (the index is written
to a tree object, which leaves the index itself unchanged). ``python -m t2s.hooks
pre-push REMOTE URL`` reads git's ref lines on stdin and refuses ``v*`` tags that are
not t2s release tags (:func:`t2s.releases.release.release_tag_problem`) or whose commit lacks a
passing evaluation note.
"""

from __future__ import annotations

import sys
from pathlib import Path

from t2s.errors import T2SError
from t2s.gitstore.store import ZERO_SHA, GitStore
from t2s.record import refs
from t2s.record.notes import read_eval_note
from t2s.record.tags import release_tag_problem
from t2s.skill.hooks import HOOK_NAMES
from t2s.skill.repo import lint_skills_at


def pre_commit(store: GitStore) -> int:
    tree = store.index_tree()
    results = lint_skills_at(store, tree)
    bad = [(skill, f) for skill, findings in results for f in findings]
    for skill, finding in bad:
        print(finding.render(prefix=f"{skill}/"), file=sys.stderr)
    if bad:
        print(f"t2s: {len(bad)} lint finding(s) in staged skills; commit refused", file=sys.stderr)
        return 1
    return 0


def pre_push(store: GitStore, lines: list[str]) -> int:
    refused = []
    for line in lines:
        parts = line.split()
        if len(parts) != 4:
            continue
        local_ref, local_sha, _remote_ref, _remote_sha = parts
        name = refs.tag_name(local_ref)
        if local_sha == ZERO_SHA or not name or not name.startswith("v"):
            continue
        tag = next((t for t in store.tag_refs(name) if t.name == name and t.object == local_sha), None)
        problem = release_tag_problem(store, tag) if tag else "it is not a tag here"
        if problem or tag is None:
            refused.append(f"{name} ({local_sha[:12]}): not a t2s release tag: {problem}")
            continue
        commit = tag.target
        note = read_eval_note(store, commit)
        if note is None or not note.has_passing_gate():
            why = "no evaluation note" if note is None else "its evaluation note has no passing gate"
            refused.append(f"{name} ({commit[:12]}): {why}")
    for item in refused:
        print(f"t2s: refusing to push release tag {item}", file=sys.stderr)
    if refused:
        print(
            "t2s: release tags are made by `t2s release` after a passing `t2s gate`; "
            "push other tags under another name than v*",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in HOOK_NAMES:
        print(f"usage: python -m t2s.hooks {{{'|'.join(HOOK_NAMES)}}}", file=sys.stderr)
        return 2
    try:
        store = GitStore.discover(Path.cwd())
        if argv[0] == "pre-commit":
            return pre_commit(store)
        return pre_push(store, sys.stdin.read().splitlines())
    except T2SError as err:
        print(f"t2s {argv[0]}: {err.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
