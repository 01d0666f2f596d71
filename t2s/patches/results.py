"""What rendering and the retry loop give: each failed edit with its reason, a render's
result, and a patch that is either accepted (:class:`Patch`) or :class:`Rejected` with
why, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import (
    Annotated,
    Literal,
)

from pydantic import BaseModel, Field

from t2s.patches.edits import (
    Edit,
)


class EditFailure(BaseModel):
    """Why one edit (``index`` 1-based) or the patch as a whole (``index`` None) failed."""

    index: int | None = None
    op: str = "patch"
    file: str = ""
    reason: str

    def render(self) -> str:
        """The failure as one line a model can act on, e.g. ``edit 2 (replace) on SKILL.md: ...``."""
        where = f" on {self.file}" if self.file else ""
        if self.index is None:
            return f"patch{where}: {self.reason}"
        return f"edit {self.index} ({self.op}){where}: {self.reason}"


class RenderResult(BaseModel):
    """The outcome of rendering one list of edits against S0."""

    ok: bool
    edits: list[Edit] = Field(default_factory=list)
    #: Git-style unified diff against S0 (repo-relative ``a/``/``b/`` paths); "" on failure.
    diff: str = ""
    #: Changed or new files after the edits, relative to the skill folder.
    files: dict[str, str] = Field(default_factory=dict)
    #: Repo-relative paths the diff touches.
    paths: list[str] = Field(default_factory=list)
    added: int = 0
    removed: int = 0
    failures: list[EditFailure] = Field(default_factory=list)
    #: The tree of S0 with the diff applied (set by :class:`PatchContext`).
    tree: str | None = None
    #: Anchors or replaced texts found by resolution, not verbatim: one line each, with
    #: how and how similar (see :func:`t2s.patches.edits.locate`).
    resolutions: list[str] = Field(default_factory=list)

    def feedback(self, attempt: int | None = None, max_attempts: int | None = None) -> str:
        """The message that goes back to the model after this failed render."""
        return feedback_message(self.failures, attempt=attempt, max_attempts=max_attempts)


class Patch(BaseModel):
    """An accepted patch: edits, the diff they render to, and where it was committed."""

    status: Literal["patch"] = "patch"
    edits: list[Edit]
    diff: str
    added: int
    removed: int
    files: list[str]
    attempts: int = 1
    tree: str | None = None
    commit: str | None = None
    ref: str | None = None
    #: Anchors resolved rather than found verbatim (see :attr:`RenderResult.resolutions`).
    resolutions: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Always True: a patch is the successful outcome (see :class:`Rejected`)."""
        return True

    @classmethod
    def from_render(cls, result: RenderResult, attempts: int = 1) -> Patch:
        """The patch of a successful render (``ValueError`` for a failed one)."""
        if not result.ok:
            raise ValueError("a failed render is not a patch")
        return cls(
            edits=result.edits,
            diff=result.diff,
            added=result.added,
            removed=result.removed,
            files=result.paths,
            attempts=attempts,
            tree=result.tree,
            resolutions=result.resolutions,
        )


class Rejected(BaseModel):
    """A patch that never applied: recorded with its reason, never dropped silently."""

    status: Literal["rejected"] = "rejected"
    reason: str
    failures: list[EditFailure] = Field(default_factory=list)
    attempts: int = 0
    #: The edits of the last attempt (for review).
    edits: list[Edit] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Always False: a rejection is the failed outcome (see :class:`Patch`)."""
        return False


PatchResult = Annotated[Patch | Rejected, Field(discriminator="status")]


def feedback_message(
    failures: Sequence[EditFailure], *, attempt: int | None = None, max_attempts: int | None = None
) -> str:
    """The message that goes back to the model after a failed attempt."""
    count = len(failures)
    head = f"Your edits were not applied ({count} problem{'s' if count != 1 else ''})"
    if attempt is not None and max_attempts is not None:
        head += f"; attempt {attempt} of {max_attempts}"
    lines = [head + ". Nothing was changed. Fix these and send the complete list of edits again:"]
    lines += [f"- {failure.render()}" for failure in failures]
    if any(f.index is not None for f in failures):
        lines.append(
            "Edits are applied in order to the current files; locate text by copying it exactly "
            "(anchors and `old` must occur exactly once)."
        )
    return "\n".join(lines)
