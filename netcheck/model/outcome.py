"""The outcome vocabulary of a probe, documented in one place.

Every probe ends in exactly one outcome. Low-level errors are mapped to it by
:func:`netcheck.probes.dialer.outcome_of_error` and nowhere else.

    open          the port accepted the connection and every check on it passed
    refused       the peer answered with a TCP RST (nothing listens, or a REJECT
                  rule with tcp-reset / icmp-port-unreachable)
    timeout       no answer to the SYN within the timeout: a firewall that DROPs,
                  a blackholed host, or a reply path that is lost (plain connect)
    filtered      a raw SYN got no answer at all: the same as timeout, proven with
                  a crafted packet (no RST, no ICMP came back)
    prohibited    ICMP administratively prohibited came back to a raw SYN (type 3
                  code 9, 10 or 13): a REJECT rule or a NetworkPolicy
    unreachable   ICMP host/net unreachable came back, or the sender has no route;
                  from a plain connect also a REJECT with icmp-admin-prohibited,
                  which the kernel reports the same way (raw probes tell them apart)
    stalled       the TCP handshake passed, then full-size data did not cross
                  within the timeout (typical path-MTU black hole)
    tls_failed    TCP connected but the TLS handshake was refused or failed
    nat           connected, but the peer agent saw another source address than
                  the one the sender used (masquerade/SNAT between pods)
    error         anything else that went wrong (bad answer, local error)
    not_measured  the probe did not run (agent unreachable, target outside the
                  agent's allow list, run interrupted). Never a pass.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    OPEN = "open"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    FILTERED = "filtered"
    PROHIBITED = "prohibited"
    UNREACHABLE = "unreachable"
    STALLED = "stalled"
    TLS_FAILED = "tls_failed"
    NAT = "nat"
    ERROR = "error"
    NOT_MEASURED = "not_measured"

    @property
    def passed(self) -> bool:
        return self is Outcome.OPEN

    @property
    def failed(self) -> bool:
        """A measured failure: everything but open and not_measured."""
        return self not in (Outcome.OPEN, Outcome.NOT_MEASURED)

    @property
    def connected(self) -> bool:
        """The TCP handshake completed, whatever happened after it."""
        return self in (Outcome.OPEN, Outcome.NAT, Outcome.STALLED, Outcome.TLS_FAILED)

    @property
    def letter(self) -> str:
        return _LETTERS[self]


_LETTERS = {
    Outcome.OPEN: "·",
    Outcome.REFUSED: "R",
    Outcome.TIMEOUT: "T",
    Outcome.FILTERED: "F",
    Outcome.PROHIBITED: "P",
    Outcome.UNREACHABLE: "U",
    Outcome.STALLED: "S",
    Outcome.TLS_FAILED: "X",
    Outcome.NAT: "N",
    Outcome.ERROR: "E",
    Outcome.NOT_MEASURED: "?",
}
