"""t2s.llm.client."""
