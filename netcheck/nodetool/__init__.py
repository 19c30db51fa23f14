"""Parsers for what Cassandra prints: nodetool status/describecluster/gossipinfo, system.log.

Pure functions of text: each returns what it read and one warning per line it could not read.
"""
