"""The path-MTU decision rule against exact loss patterns.

Why a double of the raw-socket seam here: the lab gives real MTU limits and real random loss
(tests/test_lab_scenarios.py runs both through the real agents), but not a repeatable loss
*pattern*. The rule "a black hole needs size-dependent loss that repeats" is checked here
against the patterns that fooled the earlier rule: a burst lost at the start of a round (what
a loaded agent saw), and seeded random loss.
"""

import asyncio
import random
from collections.abc import Callable

from netcheck.model.evidence import Reply, ReplyKind
from netcheck.model.outcome import Outcome
from netcheck.model.probe import ProbeKind, Target
from netcheck.probes import pmtu

TARGET = Target(address="198.18.1.10", port=6443, kind=ProbeKind.PMTU)


class ScriptedPath:
    """Shaped like RawSockets: syn() answers SYN-ACK unless the size is above the path MTU
    (silently: a black hole) or the loss rule drops that packet."""

    def __init__(self, mtu: int, lose: Callable[[int, int], bool]) -> None:
        self.mtu, self.lose, self.sent = mtu, lose, 0

    async def syn(
        self, address: str, port: int, *, timeout: float, ttl: int = 64, size: int = 40
    ) -> Reply:
        self.sent += 1
        await asyncio.sleep(0)
        if size > self.mtu or self.lose(self.sent, size):
            return Reply(kind=ReplyKind.NONE)
        return Reply(kind=ReplyKind.SYN_ACK, source=address, ttl=64, rtt_ms=0.2)

    def local_mtu(self, address: str) -> int:
        return 1500

    def close(self) -> None:
        pass


def measure(path: ScriptedPath):
    return asyncio.run(pmtu.probe(path, TARGET, timeout=0.01))


def test_a_clean_path_has_its_interface_mtu():
    got = measure(ScriptedPath(1500, lambda n, size: False))
    assert got.outcome is Outcome.OPEN
    assert got.evidence.path_mtu.path_mtu == 1500 and not got.evidence.path_mtu.black_hole


def test_a_burst_lost_at_the_start_is_not_a_black_hole():
    """The loaded-agent pattern: the first packets of the first round vanish."""
    got = measure(ScriptedPath(1500, lambda n, size: n <= 10))
    assert not got.evidence.path_mtu.black_hole, got.detail
    assert got.evidence.path_mtu.path_mtu == 1500


def test_random_loss_never_makes_a_black_hole():
    for seed in range(200):
        rng = random.Random(seed)
        got = measure(ScriptedPath(1500, lambda n, size, rng=rng: rng.random() < 0.3))
        mtu = got.evidence.path_mtu
        assert not mtu.black_hole, (seed, got.detail)
        assert mtu.path_mtu in (1500, None), (seed, got.detail)


def test_a_real_black_hole_is_confirmed():
    got = measure(ScriptedPath(1200, lambda n, size: False))
    assert got.outcome is Outcome.STALLED
    assert got.evidence.path_mtu.black_hole
    assert (got.evidence.path_mtu.path_mtu, got.evidence.path_mtu.smallest_lost) == (1200, 1201)
    assert "confirmed" in got.detail


def test_a_black_hole_is_still_found_through_moderate_loss():
    found = 0
    for seed in range(100):
        rng = random.Random(seed)
        got = measure(ScriptedPath(1200, lambda n, size, rng=rng: rng.random() < 0.1))
        mtu = got.evidence.path_mtu
        assert mtu.path_mtu in (1200, None), (seed, got.detail)  # never a wrong limit
        found += mtu.black_hole
    assert found >= 95


def test_filtered_needs_two_silent_syns_and_an_answer_needs_one():
    from netcheck.probes import syn

    target = Target(address="198.18.1.10", port=7000, kind=ProbeKind.SYN)
    answered = ScriptedPath(1500, lambda n, size: False)
    got = asyncio.run(syn.probe(answered, target, timeout=0.05))
    assert got.outcome is Outcome.OPEN and answered.sent == 1  # no second packet needed
    first_lost = ScriptedPath(1500, lambda n, size: n == 1)
    got = asyncio.run(syn.probe(first_lost, target, timeout=0.05))
    assert got.outcome is Outcome.OPEN and first_lost.sent == 2  # one lost answer is loss
    silent = ScriptedPath(1500, lambda n, size: True)
    got = asyncio.run(syn.probe(silent, target, timeout=0.05))
    assert got.outcome is Outcome.FILTERED and silent.sent == 2 and "2 SYNs" in got.detail
