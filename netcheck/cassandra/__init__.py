"""Collection of Cassandra's own view through an exec seam (Kubernetes exec, or the lab)."""
