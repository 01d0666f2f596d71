"""From model-written edits to a validated unified diff, a tree and a patch branch.

Analysts and the merger write *edits* (:mod:`t2s.patches.edits`), never diffs. The package

1. applies a list of edits to S0's text in memory, in order (:mod:`~t2s.patches.render`),
   reporting every edit that does not apply as an :class:`EditFailure` whose reason
   a model can act on;
2. runs the guardrails in code: only ``SKILL.md`` and ``references/*.md`` inside the
   skill, safe file names, no symlinks, new references linked from SKILL.md, the
   frontmatter ``name`` unchanged, no new lint findings, size limits, no empty
   patches, and the leak guard (:mod:`~t2s.patches.guardrails`, :mod:`~t2s.patches.leaks`);
3. renders a git-style unified diff against S0, checks it parses with ``unidiff``
   and applies with ``git apply --check --cached`` on a private index, and computes
   the resulting tree (:mod:`~t2s.patches.diff`, :mod:`~t2s.patches.context`);
4. offers a bounded retry loop (:mod:`~t2s.patches.retries`) that feeds the failure
   message back to the model and ends in a :class:`Patch` or a :class:`Rejected`
   record, never in silence;
5. commits a patch as one commit on S0 with a create-only branch ref
   (:func:`~t2s.patches.context.commit_patch`).

:mod:`~t2s.patches.overlaps` tells which edits of one answer touch the same text.

Only :mod:`t2s.gitstore.store` runs git.
"""

from t2s.patches.context import PatchContext, commit_patch
from t2s.patches.leaks import distinctive_values, find_leaks
from t2s.patches.overlaps import find_overlaps
from t2s.patches.render import render_edits
from t2s.patches.results import EditFailure, Patch, Rejected, RenderResult
from t2s.patches.retries import edit_format_prompt, edits_with_retries

__all__ = [
    "EditFailure",
    "Patch",
    "PatchContext",
    "Rejected",
    "RenderResult",
    "commit_patch",
    "distinctive_values",
    "edit_format_prompt",
    "edits_with_retries",
    "find_leaks",
    "find_overlaps",
    "render_edits",
]
