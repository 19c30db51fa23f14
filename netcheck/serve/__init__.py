"""`netcheck serve`: a workflow run again and again, its last report as Prometheus series and
JSON over HTTP."""
