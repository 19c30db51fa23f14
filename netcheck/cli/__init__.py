"""The click entry point: the only place that calls asyncio.run."""
