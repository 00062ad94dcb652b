"""minilb.stick."""
