"""The trajectories an evaluation keeps: one commit holding ``trajectories/<id>.json``
under a ref of its own (:func:`t2s.record.refs.eval_trajectories`), which the eval
note names (``EvalRecord.trajectories``). A shard keeps its own under a sibling ref
(:func:`t2s.record.refs.eval_shard_trajectories`); collect joins them into the ref an
unsharded evaluation writes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from t2s.gitstore.store import ZERO_SHA, GitStore, RefUpdate

FOLDER = "trajectories"


def key_hash(key: tuple) -> str:
    """The hash of an evaluation's cache key that names its trajectories' ref."""
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()


def keep_trajectories(store: GitStore, ref: str, trajectories: Mapping[str, str | bytes], what: str) -> str | None:
    """Keep ``trajectories`` (id -> JSON) at ``ref`` (secrets are redacted as git writes
    them) and return ``ref``; None when there are none. A ref that already holds exactly
    these is left alone, so keeping again (collecting twice) writes nothing."""
    if not trajectories:
        return None
    tree = store.build_tree(None, {f"{FOLDER}/{tid}.json": text for tid, text in sorted(trajectories.items())})
    old = store.rev_parse(ref)
    if old and store.tree_of(old) == tree:
        return ref
    kept = store.commit(tree, [], f"t2s eval {what}: {len(trajectories)} trajectories")
    store.update_refs([RefUpdate(ref, kept, old or ZERO_SHA)])
    return ref


def read_kept(store: GitStore, ref: str) -> dict[str, bytes] | None:
    """The trajectories kept at ``ref`` (id -> JSON); None when the ref is not here."""
    head = store.rev_parse(ref)
    if head is None:
        return None
    return {name.removesuffix(".json"): data for name, data in store.read_files(head, FOLDER).items()}
