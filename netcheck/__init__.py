"""netcheck: connectivity verification and diagnostics for multi-region Cassandra."""

__version__ = "0.1.0"
