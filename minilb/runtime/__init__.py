"""minilb.runtime."""
