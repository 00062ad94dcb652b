"""minilb.worker."""
