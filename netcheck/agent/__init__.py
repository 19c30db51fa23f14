"""The probe agent (server side) and the collector's transport to it (client side)."""
