"""t2s.rollouts."""
