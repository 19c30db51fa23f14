"""Where the topology comes from: an inventory file here, Kubernetes later."""
