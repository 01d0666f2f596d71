"""t2s.analysis."""
