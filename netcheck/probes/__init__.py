"""Probes: plain async functions of one signature, each in its own module."""
