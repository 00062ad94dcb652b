"""minilb.rules."""
