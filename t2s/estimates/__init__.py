"""Know the cost before spending it: per-role estimates of calls, tokens, USD and wall
time for a stage (``--dry-run``), built from the real rendered prompts and this
repository's own ledgers (docs/estimates-and-gates.md)."""
