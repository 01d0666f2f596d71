"""A patch against one S0: rendering checked by ``git apply --check`` on a private index
(batched when many renders wait at once), its tree, and its commit on a create-only
branch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import (
    Any,
)

from t2s.errors import UsageError
from t2s.gitstore.store import GitStore, HeldObjects, Trailers
from t2s.patches.edits import ANCHOR_SIMILARITY
from t2s.patches.render import _decode, render_edits
from t2s.patches.results import EditFailure, Patch, Rejected, RenderResult
from t2s.patches.retries import _rejected
from t2s.skill.format import (
    REFERENCES_DIR,
    SKILL_FILE,
    Limits,
)


class PatchContext:
    """Everything needed to render edits against one frozen S0 of one skill.

    ``render(edits)`` runs :func:`render_edits` and then checks the diff with
    ``git apply --check --cached`` on a private index and computes the tree.
    ``render_async(edits)`` does the same for many concurrent callers (a merge
    level), whose git checks share one process.
    """

    def __init__(
        self,
        store: GitStore,
        s0: str,
        skill_dir: str,
        *,
        strict: bool = True,
        limits: Limits = Limits(),
        forbidden_values: Iterable[Any] = (),
        forbidden_ids: Iterable[str] = (),
        anchor_similarity: float = ANCHOR_SIMILARITY,
    ):
        self.store = store
        self.anchor_similarity = anchor_similarity
        self.s0 = store.resolve(s0)
        self.skill_dir = skill_dir.strip("/")
        self.strict = strict
        self.limits = limits
        self.forbidden_values = list(forbidden_values)
        self.forbidden_ids = list(forbidden_ids)
        if not store.subtree(self.s0, self.skill_dir):
            raise UsageError(f"{self.skill_dir} does not exist at {s0}")
        prefix = self.skill_dir + "/"
        entries = store.list_tree(self.s0, self.skill_dir)
        self.symlinks = {e.path[len(prefix) :] for e in entries if e.mode == "120000"}
        self.files: dict[str, bytes] = {
            rel: data for rel, data in store.read_files(self.s0, self.skill_dir).items() if rel not in self.symlinks
        }
        self._checks: _BatchedApplyCheck | None = None

    def texts(self) -> dict[str, str]:
        """S0's editable files as text (what the model is shown)."""
        out = {}
        for path, data in self.files.items():
            if path == SKILL_FILE or path.startswith(REFERENCES_DIR + "/"):
                text = _decode(data)
                if text is not None:
                    out[path] = text
        return out

    def render(self, edits: Any) -> RenderResult:
        """Apply ``edits`` to S0 in memory with every guardrail, check that the diff
        applies with git, and write the tree: a :class:`RenderResult` (``ok`` False with
        the failures when an edit, a guardrail or git refuses)."""
        result = self._render_edits(edits)
        if not result.ok:
            return result
        return self._finish(result, self.store.apply_check(self.s0, result.diff))

    async def render_async(self, edits: Any, *, hold: HeldObjects | None = None) -> RenderResult:
        """:meth:`render` for concurrent callers: the git checks of all renders waiting
        at the same moment run as one ``git apply`` (a process each cost more than the
        rest of a merge). The Python work runs on the caller's thread: threads would
        only queue for the GIL. With ``hold``, the tree's new objects are only
        computed (see :meth:`GitStore.write_held`)."""
        result = self._render_edits(edits)
        if not result.ok:
            return result
        if self._checks is None:
            self._checks = _BatchedApplyCheck(self.store, self.s0)
        return self._finish(result, await self._checks.check(result.diff), hold)

    def _render_edits(self, edits: Any) -> RenderResult:
        return render_edits(
            self.files,
            edits,
            skill_dir=self.skill_dir,
            strict=self.strict,
            limits=self.limits,
            symlinks=self.symlinks,
            forbidden_values=self.forbidden_values,
            forbidden_ids=self.forbidden_ids,
            anchor_similarity=self.anchor_similarity,
        )

    def _finish(self, result: RenderResult, reason: str | None, hold: HeldObjects | None = None) -> RenderResult:
        # Git must agree that the diff applies to S0 (`git apply --check --cached` on a
        # private index); render_edits already replayed its hunks onto S0's text, so
        # the tree is written from the edited files themselves.
        if reason is not None:
            return result.model_copy(
                update={
                    "ok": False,
                    "diff": "",
                    "failures": [EditFailure(reason=f"the rendered diff does not apply to S0: {reason}")],
                }
            )
        changes = {f"{self.skill_dir}/{rel}": text.encode("utf-8") for rel, text in result.files.items()}
        tree = self.store.build_tree(self.s0, changes, hold=hold)
        return result.model_copy(update={"tree": tree})

    def build(self, edits: Any) -> Patch | Rejected:
        """One attempt, no retries: a :class:`Patch` or a :class:`Rejected` record."""
        result = self.render(edits)
        if result.ok:
            return Patch.from_render(result)
        return _rejected(result, attempts=1)


class _BatchedApplyCheck:
    """Group commit for ``git apply --check``: the first caller runs its check at once;
    callers arriving meanwhile wait and go together in the next ``git apply``."""

    def __init__(self, store: GitStore, base: str):
        self.store = store
        self.base = base
        self._waiting: list[tuple[str, asyncio.Future]] = []
        self._drainer: asyncio.Task | None = None

    async def check(self, diff: str) -> str | None:
        loop = asyncio.get_running_loop()
        if self._drainer is not None and self._drainer.get_loop() is not loop:
            # left over from an event loop that has ended: nobody waits there any more
            self._drainer = None
            self._waiting = [(d, f) for d, f in self._waiting if f.get_loop() is loop]
        future = loop.create_future()
        self._waiting.append((diff, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    reasons = await asyncio.to_thread(self.store.apply_check_many, self.base, [d for d, _ in batch])
                except BaseException as err:  # every waiter hears about it, none hangs
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(err)
                    if not isinstance(err, Exception):
                        raise
                    continue
                for (_, future), reason in zip(batch, reasons, strict=True):
                    if not future.done():
                        future.set_result(reason)
        finally:
            self._drainer = None


def commit_patch(
    store: GitStore,
    *,
    s0: str,
    tree: str,
    ref: str,
    subject: str,
    body: str = "",
    trailers: Trailers = (),
) -> str:
    """One commit on S0 with ``tree``; ``ref`` is created (create-only, CAS). Returns the commit.

    Raises :class:`t2s.errors.RefConflict` when ``ref`` already exists.
    """
    parent = store.resolve(s0)
    if store.tree_of(parent) == tree:
        raise UsageError(f"refusing an empty patch: the tree equals S0's ({parent[:12]})")
    commit = store.commit(tree, [parent], subject, body, trailers)
    store.create_ref(ref, commit)
    return commit
