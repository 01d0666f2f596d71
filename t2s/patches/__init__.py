"""t2s.patches.pipeline."""
