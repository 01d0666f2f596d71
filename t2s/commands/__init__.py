"""One module per CLI verb; see ``t2s.cli.COMMANDS``."""
