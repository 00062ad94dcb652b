"""Shared test helpers (each area keeps its own module here)."""
