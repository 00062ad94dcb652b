"""minilb.tcp."""
