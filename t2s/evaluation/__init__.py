"""Stage 4, evaluate: a skill revision on held-out tasks, its result cached in git notes,
and the gate that compares a candidate with its baseline.

:mod:`~t2s.evaluation.context` (suite, split, agent fingerprint),
:mod:`~t2s.evaluation.runner` (the agent on every task), :mod:`~t2s.evaluation.evaluate`
(one revision, the cache, the lock), :mod:`~t2s.evaluation.gate` (the paired verdict)
and :mod:`~t2s.evaluation.summary` (Markdown for people).
"""
