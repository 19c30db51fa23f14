"""Turns the matrix into findings: one per cause, with its place and remedy."""
