"""Report writers: JSON, JUnit, Prometheus exposition, terminal."""
