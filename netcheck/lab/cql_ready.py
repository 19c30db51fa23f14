"""Run in a lab host's network namespace (`ip netns exec`): until the node at --address accepts
the lab's CQL login and its system.peers_v2 lists --peers other nodes, or --timeout passes.

A Cassandra node that has just logged "Startup complete" creates its default superuser about
ten seconds later and writes its peers' rows some seconds after gossip marks them UP; `lab up
--cassandra` waits for both on every node, so that what a user runs next finds the cluster as it
will stay. Exit 0 when ready; else 1 with the last thing the node said on stderr, one line.
"""

from __future__ import annotations

import argparse
import sys
import time

from netcheck.probes.cql import LoginRefused, read_tables

NATIVE_PORT = 9042
TRY_TIMEOUT_S = 5.0


def wait(address: str, peers: int, username: str, password: str, timeout_s: float) -> str:
    """ "" when ready, else the last reason it was not."""
    deadline = time.monotonic() + timeout_s
    why = "not tried"
    while time.monotonic() < deadline:
        try:
            view = read_tables(address, NATIVE_PORT, username, password, TRY_TIMEOUT_S)
        except LoginRefused as exc:
            why = f"login refused: {exc}"
        except Exception as exc:  # the driver's errors have no common base
            why = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        else:
            if len(view.peers) >= peers:
                return ""
            why = f"{view.peers_table} lists {len(view.peers)} of {peers} peers"
        time.sleep(1.0)
    return why


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--address", required=True)
    p.add_argument("--peers", type=int, required=True)
    p.add_argument("--timeout", type=float, required=True)
    args = p.parse_args()
    # the lab's login: Cassandra's default superuser (lab/build.py writes the same for agents)
    why = wait(args.address, args.peers, "cassandra", "cassandra", args.timeout)
    if why:
        print(f"{args.address}: {why}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
