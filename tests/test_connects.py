"""The batch connect engine (probes/connects.py) on loopback: real sockets, real timeouts.

A port nobody accepts on times out here without leaving the machine: a listener with a
backlog of 0 whose one queued connection is never accepted drops every later SYN.
"""

import asyncio
import socket
import time

import pytest

from netcheck.agent.process import parse_allow
from netcheck.agent.ratelimit import TokenBucket
from netcheck.agent.server import AgentLimits, AgentSettings, ProbeRunner, allowed
from netcheck.model.outcome import Outcome
from netcheck.model.probe import ProbeKind, Target
from netcheck.probes import tcp
from netcheck.probes.connects import Touched, connect_all
from netcheck.probes.dialer import StreamDialer
from tests.conftest import free_ports


@pytest.fixture
def ports():
    """An open port, a closed one, and one that drops SYNs (its queue is full)."""
    opened = socket.create_server(("127.0.0.1", 0), backlog=128)
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    filler = socket.create_connection(full.getsockname(), timeout=1)
    (closed,) = free_ports(1)
    yield {"open": opened.getsockname()[1], "closed": closed, "silent": full.getsockname()[1]}
    for s in (filler, full, opened):
        s.close()


async def _run(addresses, *, timeout=0.5, slots=8, rate=10_000.0):
    sem = asyncio.Semaphore(slots)
    got: dict[int, list[Touched]] = {}
    await connect_all(
        addresses,
        timeout=timeout,
        slots=sem,
        pace=TokenBucket(rate, burst=slots),
        done=lambda i, how: got.setdefault(i, []).append(how),
    )
    return got, sem


async def test_every_address_ends_once_with_what_the_port_did(ports, no_leftover_tasks):
    kinds = ["open", "closed", "silent"] * 4
    got, sem = await _run([("127.0.0.1", ports[k]) for k in kinds], timeout=0.4)
    assert sorted(got) == list(range(len(kinds)))
    assert all(len(v) == 1 for v in got.values())
    outcomes = {
        k: {tcp.touched(Target(address="127.0.0.1", port=1), got[i][0]).outcome}
        for i, k in enumerate(kinds)
    }
    assert outcomes == {
        "open": {Outcome.OPEN},
        "closed": {Outcome.REFUSED},
        "silent": {Outcome.TIMEOUT},
    }
    opened = [got[i][0] for i, k in enumerate(kinds) if k == "open"]
    assert all(t.local_address == "127.0.0.1" and t.connect_ms >= 0 for t in opened)
    # every slot came back
    for _ in range(8):
        assert not sem.locked()
        await sem.acquire()


async def test_no_more_connects_in_flight_than_slots(ports, no_leftover_tasks):
    # six connects that each wait out a 0.3 s timeout, two at a time: three rounds at least
    started = time.monotonic()
    got, _ = await _run([("127.0.0.1", ports["silent"])] * 6, timeout=0.3, slots=2)
    assert len(got) == 6
    assert time.monotonic() - started >= 0.85


async def test_the_rate_holds_for_connects_that_end_at_once(ports, no_leftover_tasks):
    # a burst of 5, then 50 per second: 25 more connects need at least half a second
    started = time.monotonic()
    got, _ = await _run([("127.0.0.1", ports["open"])] * 30, slots=5, rate=50.0)
    assert len(got) == 30
    assert time.monotonic() - started >= 0.45


async def test_slots_held_by_other_probes_are_waited_for(ports, no_leftover_tasks):
    sem = asyncio.Semaphore(1)
    await sem.acquire()  # the batch's other probe holds the only slot
    got: dict[int, Touched] = {}
    engine = asyncio.ensure_future(
        connect_all(
            [("127.0.0.1", ports["open"])] * 3,
            timeout=0.5,
            slots=sem,
            pace=TokenBucket(1000.0, burst=1),
            done=got.__setitem__,
        )
    )
    await asyncio.sleep(0.2)
    assert not got and not engine.done()
    sem.release()
    await asyncio.wait_for(engine, 5)
    assert sorted(got) == [0, 1, 2]


async def test_a_cancelled_batch_closes_its_sockets_and_frees_its_slots(ports, no_leftover_tasks):
    sem = asyncio.Semaphore(4)
    engine = asyncio.ensure_future(
        connect_all(
            [("127.0.0.1", ports["silent"])] * 8,
            timeout=5.0,
            slots=sem,
            pace=TokenBucket(1000.0, burst=4),
            done=lambda i, how: None,
        )
    )
    await asyncio.sleep(0.2)
    assert sem.locked()
    engine.cancel()
    with pytest.raises(asyncio.CancelledError):
        await engine
    for _ in range(4):
        assert not sem.locked()
        await sem.acquire()


async def test_the_runner_answers_bare_and_other_targets_in_the_batch_order(
    ports, no_leftover_tasks
):
    settings = AgentSettings(
        token="t" * 20,
        allow=parse_allow(("127.0.0.1/32",)),
        limits=AgentLimits(rate=1000, concurrency=4),
    )
    runner = ProbeRunner(settings, StreamDialer())
    targets = [
        Target(address="127.0.0.1", port=ports["open"]),
        Target(address="127.0.0.2", port=ports["open"]),  # outside the allow list
        Target(address="127.0.0.1", port=ports["closed"]),
        Target(address="127.0.0.1", port=ports["open"], kind=ProbeKind.TLS),  # not bare
        Target(address="127.0.0.1", port=ports["silent"]),
    ]
    assert [tcp.bare(t) for t in targets] == [True, True, True, False, True]
    assert not allowed("127.0.0.2", settings.allow)
    results = await runner.run(targets, 0.4, 0)
    assert [(r.address, r.port, r.kind) for r in results] == [
        (t.address, t.port, t.kind) for t in targets
    ]
    outcomes = [r.outcome for r in results]
    assert outcomes[:3] + outcomes[4:] == [
        Outcome.OPEN,
        Outcome.NOT_MEASURED,
        Outcome.REFUSED,
        Outcome.TIMEOUT,
    ]
    # the TLS probe ran its own way: connected, and then nothing spoke TLS on the port
    assert outcomes[3].connected and outcomes[3] is not Outcome.OPEN
    assert results[0].local_address == "127.0.0.1" and results[0].detail == "connected"
    assert results[4].detail == "no answer to the SYN within the timeout"
