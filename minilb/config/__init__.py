"""minilb.config."""
