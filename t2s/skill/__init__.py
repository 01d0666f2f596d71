"""t2s.skill.format."""
