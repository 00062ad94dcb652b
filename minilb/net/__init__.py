"""minilb.net."""
