"""The built-in lab: regions, routers, racks and pods as real network namespaces."""
