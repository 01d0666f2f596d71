"""Prompts are data files: plain text with {placeholders}, read by the modules that use them."""
