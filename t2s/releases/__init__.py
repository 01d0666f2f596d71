"""Stage 5, release: a gated candidate merged into the release branch and tagged
(:mod:`~t2s.releases.release`, with its :mod:`~t2s.releases.changelog`), packed as a
reproducible zip and tarball (:mod:`~t2s.releases.pack`), installed where agents look
for skills (:mod:`~t2s.releases.install`), and shared (:mod:`~t2s.releases.push`).
"""
