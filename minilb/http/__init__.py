"""minilb.http."""
