"""t2s.record."""
