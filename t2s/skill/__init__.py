"""Agent Skills: the ``SKILL.md`` format and its lint (:mod:`~t2s.skill.format`), skill
repositories and ``t2s init`` (:mod:`~t2s.skill.repo`), and the git hooks they get
(:mod:`~t2s.skill.hooks`).
"""
