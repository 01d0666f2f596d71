"""The agent: one ReAct episode of a model with a skill on a task (:mod:`~t2s.agent.episode`),
its actions and text protocol (:mod:`~t2s.agent.actions`), what it is told
(:mod:`~t2s.agent.prompting`), the skill it reads (:mod:`~t2s.agent.bundle`) and the
record of what happened (:mod:`~t2s.agent.trajectory`). Its code runs in
:mod:`t2s.sandbox`."""
