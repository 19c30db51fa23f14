"""The collector: plans the mesh, dispatches it to every agent at once, gathers results."""
