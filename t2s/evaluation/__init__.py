"""t2s.evaluation."""
