"""Foundations: where things live (paths) and what made a result (git hash, lock, atomic writes)."""
