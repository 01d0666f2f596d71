"""t2s.views."""
