"""Stage 2, analyze: one analyst per trajectory proposes a patch against the frozen S0.

:mod:`~t2s.analysis.analysts` are the analysts (an agentic error analyst that must prove
its fix with the checker, a single-call one, a success analyst, and skill drafting for
``t2s init --create``); :mod:`~t2s.analysis.analyze` runs them over a run and turns
every accepted patch into a branch.
"""
