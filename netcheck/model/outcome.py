"""The outcome vocabulary of a probe, documented in one place.

Every probe ends in exactly one outcome. Low-level errors are mapped to it by
:func:`netcheck.probes.dialer.outcome_of_error` and nowhere else.

    open          the port accepted the connection and every check on it passed
    refused       the peer answered with a TCP RST (nothing listens, or a REJECT
                  rule with tcp-reset / icmp-port-unreachable)
    timeout       no answer to the SYN within the timeout: a firewall that DROPs,
                  a blackholed host, or a reply path that is lost
    unreachable   ICMP host/net unreachable or administratively prohibited came
                  back, or the sender has no route (a REJECT rule with
                  icmp-admin-prohibited, a missing route)
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
    def letter(self) -> str:
        return _LETTERS[self]


_LETTERS = {
    Outcome.OPEN: "·",
    Outcome.REFUSED: "R",
    Outcome.TIMEOUT: "T",
    Outcome.UNREACHABLE: "U",
    Outcome.STALLED: "S",
    Outcome.TLS_FAILED: "X",
    Outcome.NAT: "N",
    Outcome.ERROR: "E",
    Outcome.NOT_MEASURED: "?",
}
