"""The bounded retry loop: ask for edits, render them, and on failure send the exact
problems back, until a :class:`~t2s.patches.results.Patch` or a
:class:`~t2s.patches.results.Rejected` with its reason.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import (
    Any,
)

from pydantic import ValidationError

from t2s.patches.examples import example_values
from t2s.patches.results import EditFailure, Patch, Rejected, RenderResult
from t2s.prompts import load as load_prompt, render as render_prompt


def edit_format_prompt(skill_texts: Mapping[str, str] | None = None) -> str:
    """The compact description of the edit formats and rules that prompts include, its
    examples located in ``skill_texts`` (the skill being edited; see
    :mod:`t2s.patches.examples`).

    It holds literal braces (JSON examples): insert it as a value, never ``.format()`` it.
    """
    return render_prompt(load_prompt("edit_format.md"), **example_values(skill_texts))


def _rejected(result: RenderResult, attempts: int) -> Rejected:
    failures = list(result.failures)
    summary = "; ".join(f.render() for f in failures[:3])
    if len(failures) > 3:
        summary += f"; and {len(failures) - 3} more"
    what = "attempt" if attempts == 1 else "attempts"
    return Rejected(
        reason=f"no valid patch after {attempts} {what}: {summary}",
        failures=failures,
        attempts=attempts,
        edits=result.edits,
    )


AskEdits = Callable[[str | None], Awaitable[Any]]


RenderEdits = Callable[[Any], RenderResult | Awaitable[RenderResult]]


async def edits_with_retries(ask: AskEdits, render: RenderEdits, *, max_retries: int = 2) -> Patch | Rejected:
    """Ask for edits, render them, and on failure ask again with the failure message.

    ``ask(None)`` is the first request; ``ask(message)`` a retry, where ``message``
    says which edits failed and why. ``ask`` returns edits (models, dicts, or an
    :class:`~t2s.patches.edits.EditList`); a :class:`pydantic.ValidationError` it raises
    counts as a failed attempt. ``render`` is usually :meth:`PatchContext.render`
    (sync renders run in a worker thread). After ``1 + max_retries`` failed
    attempts the result is a :class:`Rejected` with the last failures. Other
    exceptions from ``ask`` (budget exhausted, network) propagate.
    """
    max_attempts = 1 + max(0, max_retries)
    feedback: str | None = None
    last: RenderResult | None = None
    for attempt in range(1, max_attempts + 1):
        try:
            edits = await ask(feedback)
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()[:5])
            last = RenderResult(
                ok=False,
                failures=[EditFailure(op="parse", reason=f"the reply is not a valid list of edits ({problems})")],
            )
        else:
            rendered: RenderResult | Awaitable[RenderResult]
            if inspect.iscoroutinefunction(render):
                rendered = render(edits)
            else:
                rendered = await asyncio.to_thread(render, edits)
            last = await rendered if inspect.isawaitable(rendered) else rendered
        if last.ok:
            return Patch.from_render(last, attempts=attempt)
        feedback = last.feedback(attempt, max_attempts)
    assert last is not None
    return _rejected(last, attempts=max_attempts)
