"""Stage 1, rollout: the agent with the skill at S0 on a split's tasks, every finished
trajectory appended to the run record (:mod:`~t2s.rollouts.rollout`); or trajectories
from other agents' logs (:mod:`~t2s.rollouts.importers`).
"""
