"""t2s.gitstore.store."""
