"""Plain frozen dataclasses with no I/O: topology, probes, results, findings, reports."""
