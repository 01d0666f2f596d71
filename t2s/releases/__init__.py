"""t2s.releases."""
