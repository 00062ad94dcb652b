"""minilb.master."""
