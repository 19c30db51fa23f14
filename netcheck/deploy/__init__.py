"""Deploying the probe agents to a context: the manifests in probes/kubernetes, applied as is."""
