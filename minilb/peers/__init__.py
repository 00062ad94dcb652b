"""minilb.peers."""
