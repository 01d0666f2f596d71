"""t2s.consolidation."""
