"""The cassandra container's shell as a prober (agent/podshell.py): the script it execs, run by
this machine's real bash against real sockets on loopback, and the reading of its answer.

The exec itself is tested through the real API servers and the lab kubelet in
test_kube_cassandra (test_without_ephemeral_containers_the_cassandra_containers_shell_probes)."""

from __future__ import annotations

import http.server
import socket
import subprocess
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netcheck.agent.podshell import PodShellTransport, _tagged, results, script
from netcheck.agent.transport import AgentError
from netcheck.model.outcome import Outcome
from netcheck.model.probe import ProbeKind, Target


class _Liveness(http.server.BaseHTTPRequestHandler):
    """The Management API's liveness path: 200, or 500 on the server told to fail."""

    def do_GET(self) -> None:
        ok = self.path == "/api/v0/probes/liveness" and not getattr(self.server, "failing", False)
        self.send_response(200 if ok else 500)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def servers() -> Iterator[dict[str, int]]:
    """Ports on loopback: open (a listener), closed, liveness 200, liveness 500, silent (a
    listener that never answers the GET)."""
    listeners = []
    for _ in range(2):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(512)  # nobody accepts: the kernel queues every connect
        listeners.append(s)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    http_servers = []
    for failing in (False, True):
        srv = http.server.HTTPServer(("127.0.0.1", 0), _Liveness)
        srv.failing = failing  # type: ignore[attr-defined]
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        http_servers.append(srv)
    try:
        yield {
            "open": listeners[0].getsockname()[1],
            "silent": listeners[1].getsockname()[1],
            "closed": closed_port,
            "live": http_servers[0].server_port,
            "failing": http_servers[1].server_port,
        }
    finally:
        for srv in http_servers:
            srv.shutdown()
            srv.server_close()
        for s in listeners:
            s.close()


def run_script(targets: list[Target], timeout_s: float) -> list[tuple[Outcome, str]]:
    proc = subprocess.run(
        ["bash", "-c", script(targets, timeout_s)], capture_output=True, text=True, timeout=30
    )
    got = results(targets, _tagged(proc.stdout + proc.stderr), "pod demo/x container cassandra")
    assert [(r.address, r.port, r.kind) for r in got] == [
        (t.address, t.port, t.kind) for t in targets
    ]
    assert all(r.latency_ms is None for r in got)  # a shell's clock includes starting bash
    return [(r.outcome, r.detail) for r in got]


def test_each_outcome_a_shell_can_tell_and_what_it_cannot_is_not_measured(servers):
    def at(port: str, kind: ProbeKind = ProbeKind.TCP, **kw: object) -> Target:
        return Target(address="127.0.0.1", port=servers[port], kind=kind, **kw)  # type: ignore[arg-type]

    targets = [
        at("open"),
        at("closed"),
        at("live", ProbeKind.HTTP),
        at("failing", ProbeKind.HTTP),
        at("silent", ProbeKind.HTTP),
        at("open", ProbeKind.TLS),  # connects, but a TLS handshake is not a shell's to make
        at("closed", ProbeKind.TLS),  # a refused TLS port is measured all the same
        at("open", echo=True),
        at("open", ProbeKind.TLS_FACTS),
    ]
    got = run_script(targets, 1.0)
    assert [o for o, _ in got] == [
        Outcome.OPEN,
        Outcome.REFUSED,
        Outcome.OPEN,
        Outcome.ERROR,
        Outcome.STALLED,
        Outcome.NOT_MEASURED,
        Outcome.REFUSED,
        Outcome.NOT_MEASURED,
        Outcome.NOT_MEASURED,
    ], got
    assert got[1][1] == "ECONNREFUSED: Connection refused"
    assert "HTTP 200" in got[2][1] and "500" in got[3][1]
    assert "a TLS handshake is not a shell's" in got[5][1]
    assert "not probed from pod demo/x container cassandra" in got[7][1]


def test_a_batch_runs_its_connects_32_at_once_at_most_200_a_second_and_answers_each(servers):
    targets = [
        Target(address="127.0.0.1", port=servers["open" if i % 2 else "closed"], kind=ProbeKind.TCP)
        for i in range(100)
    ]
    text = script(targets, 1.0)
    assert text.count("wait; sleep 0.16") == 100 // 32 and text.endswith("wait\n")
    got = run_script(targets, 1.0)
    assert [o for o, _ in got] == [Outcome.OPEN if i % 2 else Outcome.REFUSED for i in range(100)]


@pytest.mark.parametrize(
    ("lines", "outcome", "words"),
    [
        (["0\tR:124"], Outcome.TIMEOUT, "no answer to the SYN"),
        (["0\tC:", "0\tR:124"], Outcome.STALLED, "connected"),
        (["0\tbash: connect: No route to host", "0\tR:7"], Outcome.UNREACHABLE, "EHOSTUNREACH"),
        (["0\tx: connect: Network is unreachable", "0\tR:7"], Outcome.UNREACHABLE, "ENETUNREACH"),
        (["0\tx: connect: Permission denied", "0\tR:7"], Outcome.UNREACHABLE, "EACCES"),
        (["0\tx: timeout: failed to run command", "0\tR:127"], Outcome.ERROR, "exited 127"),
        ([], Outcome.ERROR, "cut before this probe's end"),
        (["0\tC:", "0\tR:8"], Outcome.ERROR, "closed before an HTTP status"),
    ],
)
def test_the_shells_words_are_read_to_the_outcome_they_mean(lines, outcome, words):
    target = Target(address="198.18.1.10", port=8080, kind=ProbeKind.HTTP)
    (got,) = results([target], _tagged("\n".join(lines)), "pod demo/x")
    assert got.outcome is outcome and words in got.detail, got


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=2000))
def test_any_answer_reads_as_one_result_per_target_never_an_exception(text):
    targets = [
        Target(address="198.18.1.10", port=7000, kind=ProbeKind.TCP),
        Target(address="198.18.1.11", port=8080, kind=ProbeKind.HTTP),
    ]
    got = results(targets, _tagged(text), "pod demo/x")
    assert len(got) == 2 and all(len(r.detail) < 300 for r in got)


def test_only_the_database_pods_addresses_are_probed():
    """A batch with one address outside the allow list is refused whole, before any exec (as
    an agent refuses it): the shell is never a scanner for whoever builds the batch."""
    shell = PodShellTransport({}, ("198.18.1.10/32",))
    ok = {"address": "198.18.1.10", "port": 7000, "kind": "tcp", "echo": False}
    assert len(shell._targets({"targets": [ok]}, "w: ")) == 1
    for bad in (
        {**ok, "address": "198.18.1.11"},
        {**ok, "address": "198.18.1.10; rm -rf /"},
        {**ok, "port": "7000; id"},
    ):
        with pytest.raises(AgentError):
            shell._targets({"targets": [ok, bad]}, "w: ")
    with pytest.raises(AgentError, match="at most 256 targets"):
        shell._targets({"targets": [ok] * 257}, "w: ")


def test_the_tls_looks_leave_from_a_pod_with_netchecks_container_never_from_a_shell():
    """A node reached on 7000 by a shell-probed pod and a pod holding netcheck's container is
    looked at from the latter; a node only a shell reached is not looked at (no row, rather
    than a row a shell could not fill)."""
    from netcheck.collector.tls_check import plan_tls
    from netcheck.model.probe import ProbeResult
    from netcheck.model.topology import Endpoint, Topology

    def ep(name: str, prober: str) -> Endpoint:
        return Endpoint(
            name=name, cluster="C", region="r", address=f"198.18.1.{len(name)}", prober=prober
        )

    eps = (
        ep("a", "kube-sh://C/demo/a/cassandra"),
        ep("bb", "kube-exec://C/demo/bb/netcheck-probe"),
        ep("ccc", "kube-exec://C/demo/ccc/netcheck-probe"),
    )
    topology = Topology(clusters=(), endpoints=eps)

    def reached(src: str, dst: str) -> ProbeResult:
        return ProbeResult(src=src, dst=dst, port=7000, kind=ProbeKind.TCP, outcome=Outcome.OPEN)

    plan = plan_tls(topology, [reached("a", "ccc"), reached("bb", "ccc"), reached("a", "bb")], "")
    assert sorted((s.src, s.dst, s.port) for s in plan) == [
        ("bb", "ccc", 7000),
        ("bb", "ccc", 9142),
    ]
