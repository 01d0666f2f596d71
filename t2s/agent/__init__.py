"""t2s.agent.episode."""
