import asyncio
import os
import socket

import pytest


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


@pytest.fixture
async def no_leftover_tasks():
    """Fails a test that leaves asyncio tasks running behind it."""
    yield
    await asyncio.sleep(0)
    me = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
    assert not left, f"tasks left behind: {left}"


@pytest.fixture
def token_file(tmp_path):
    path = tmp_path / "token"
    path.write_text(os.urandom(16).hex() + "\n")
    return str(path)


def pytest_configure(config: pytest.Config) -> None:
    """Hypothesis: `make test` gives every property 500 inputs; `make fuzz` (NETCHECK_FUZZ=1)
    10,000."""
    from hypothesis import HealthCheck, settings

    common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=False)
    settings.register_profile("ci", max_examples=500, **common)
    settings.register_profile("fuzz", max_examples=10_000, **common)
    settings.load_profile("fuzz" if os.environ.get("NETCHECK_FUZZ") else "ci")
