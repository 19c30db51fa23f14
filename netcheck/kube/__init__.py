"""Kubernetes access: kubeconfig contexts, an async API client, and its one-line errors."""
