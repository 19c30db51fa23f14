"""Probes from a database pod's own `cassandra` container, where netcheck's container cannot
be added (RBAC without `patch` on pods/ephemeralcontainers, a policy engine that refuses
ephemeral containers, an image the node cannot pull): bash's /dev/tcp, exec'd in the container.

Every Cassandra image cass-operator and Mission Control run (the Management API images) has
bash and coreutils' `timeout`; nothing else is assumed and nothing is installed. A batch is one
exec (`pods/exec`, the grant nodetool uses already) of one script built here from validated
addresses and port numbers only. It does what a shell can do honestly, and no more:
- a TCP connect (7000): open, refused, unreachable (the kernel's errno, as bash says it), or
  timeout (killed by `timeout`, never connected);
- the Management API's liveness GET (8080): open on HTTP 200, error on another status,
  stalled when it connected and nothing came back;
- a TLS port (the legacy 7001): its connect; connected is not_measured (a connect alone would
  pass a port whose TLS is broken), a refused or failed connect is what it is;
- anything else (an echo, a TLS look, raw follow-ups) is not_measured, saying so.
No latency is reported: the time a shell measures includes starting `timeout` and bash.

A prober is named kube-sh://CONTEXT/NAMESPACE/POD/CONTAINER. The transport answers the agent
API's documents (info, probe), so the collector reads it as any agent.
"""

from __future__ import annotations

import errno
import ipaddress
import re
import shlex
import time
from collections.abc import Mapping, Sequence
from typing import Any

from netcheck.agent.podexec import prober_client
from netcheck.agent.server import AgentLimits, AgentSettings, info_document
from netcheck.agent.transport import AgentError, JsonAgentTransport, first_line
from netcheck.agent.wire import WireError, result_to_json, target_from_json
from netcheck.kube.client import KubeClient
from netcheck.kube.errors import KubeError
from netcheck.model.outcome import Outcome
from netcheck.model.probe import ProbeKind, Target, TargetResult
from netcheck.probes.dialer import outcome_of_error
from netcheck.probes.http import LIVENESS_PATH

SHELL_SCHEME = "kube-sh://"
SHELL = ("bash", "-c")
CONTAINER = "cassandra"
MAX_BATCH = 256
CONCURRENCY = 32  # connects of a batch at once, each a `timeout` and a bash
RATE = 200.0  # connects a second at most (the agents' default)
START_S = 1.0  # added to each probe's time limit: its `timeout` and bash must start first

# bash says the kernel's errno as strerror: the ones a connect meets, back to their errno
_STRERROR = {
    "Connection refused": "ECONNREFUSED",
    "Connection reset by peer": "ECONNRESET",
    "No route to host": "EHOSTUNREACH",
    "Network is unreachable": "ENETUNREACH",
    "Permission denied": "EACCES",
    "Operation not permitted": "EPERM",
    "Connection timed out": "ETIMEDOUT",
}
_LINE = re.compile(r"^(\d{1,3})\t([CSRE]):(.*)$")

# one target: connect (C once connected), for the liveness GET the status line (S:...), then
# the exit code (R:...): 7 no connect, 8 closed unanswered, 9 no answer in time. $0 address,
# $1 port, $2 h for the GET, $3 read timeout, $4 the path.
_ONE = (
    r"""exec 3<>"/dev/tcp/$0/$1" || exit 7; echo C:; [ "$2" = h ] || exit 0; """
    r"""printf 'GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$4" "$0" >&3; """
    r"""IFS= read -r -t "$3" l <&3; r=$?; [ "$r" -gt 128 ] && exit 9; """
    r"""[ "$r" -ne 0 ] && [ -z "$l" ] && exit 8; echo "S:${l%$'\r'}" """
)
CHECK = "command -v timeout >/dev/null || exit 3; exec 3<>/dev/tcp/127.0.0.1/0; exit 0"


def is_shell(prober: str | None) -> bool:
    """The prober reference is a database pod's own container's bash (shell_ref)."""
    return prober is not None and prober.startswith(SHELL_SCHEME)


def shell_ref(context: str, namespace: str, pod: str, container: str = CONTAINER) -> str:
    return f"{SHELL_SCHEME}{context}/{namespace}/{pod}/{container}"


def shell_where(namespace: str, pod: str, container: str = CONTAINER) -> str:
    """How an error of a shell prober starts."""
    return f"probes from pod {namespace}/{pod} container {container} (bash): "


def shell_reason(exc: AgentError, namespace: str, pod: str) -> str:
    """Why the cassandra container's shell cannot probe, without the pod (a finding groups
    the pods by reason)."""
    return (
        f"its {CONTAINER} container's shell: {str(exc).removeprefix(shell_where(namespace, pod))}"
    )


def shell_kind(t: Target) -> str:
    """'c' for a connect, 'h' for the liveness GET, 't' for a TLS port (the connect only:
    connected is not measured, a failed connect is), '' for what a shell cannot probe."""
    if t.follow is not None or t.echo or t.ca_pem:
        return ""
    return {ProbeKind.TCP: "c", ProbeKind.HTTP: "h", ProbeKind.TLS: "t"}.get(t.kind, "")


def script(targets: Sequence[Target], timeout_s: float) -> str:
    """The batch as one bash script: CONCURRENCY at a time and at most RATE a second, each
    output line tagged with the target's index. Only validated addresses and integers are
    written into it."""
    t = f"{timeout_s:.3f}"
    lines = [
        f"ONE={shlex.quote(_ONE)}",
        # LIMIT ADDRESS PORT KIND READ_TIMEOUT PATH INDEX
        'p() { timeout -k 1 "$1" bash -c "$ONE" "$2" "$3" "$4" "$5" "$6" 2>&1 '
        '| while IFS= read -r l; do printf "%s\\t%s\\n" "$7" "$l"; done; '
        'printf "%s\\tR:%s\\n" "$7" "${PIPESTATUS[0]}"; }',
    ]
    started = 0
    for i, target in enumerate(targets):
        kind = shell_kind(target)
        if not kind:
            continue
        address = str(ipaddress.ip_address(target.address))
        # a second more for starting `timeout` and bash, so a loaded node is not a timeout
        limit = f"{(2 if kind == 'h' else 1) * timeout_s + START_S:.3f}"
        connect = "h" if kind == "h" else "c"
        lines.append(f"p {limit} {address} {int(target.port)} {connect} {t} {LIVENESS_PATH} {i} &")
        started += 1
        if started % CONCURRENCY == 0:  # a group at a time, at most RATE connects a second
            lines.append(f"wait; sleep {CONCURRENCY / RATE:.2f}")
    lines.append("wait")
    return "\n".join(lines) + "\n"


def results(targets: Sequence[Target], stdout: str, name: str) -> list[TargetResult]:
    """Each target's result from the script's tagged lines (a target without its exit line
    is an error: the script was cut)."""
    said: dict[int, list[tuple[str, str]]] = {}
    for line in stdout.splitlines():
        m = _LINE.match(line)
        if m:
            said.setdefault(int(m.group(1)), []).append((m.group(2), m.group(3)))
    out = []
    for i, target in enumerate(targets):
        kind = shell_kind(target)
        if not kind:
            outcome, detail = (
                Outcome.NOT_MEASURED,
                f"not probed from {name}: its shell makes connects and the liveness GET only",
            )
        else:
            outcome, detail = _judged(kind, said.get(i, []))
        out.append(
            TargetResult(
                address=target.address,
                port=target.port,
                kind=target.kind,
                outcome=outcome,
                latency_ms=None,
                detail=detail,
            )
        )
    return out


def _judged(kind: str, said: list[tuple[str, str]]) -> tuple[Outcome, str]:
    codes = [v.strip() for tag, v in said if tag == "R"]
    if not codes:
        return Outcome.ERROR, "the shell's answer was cut before this probe's end"
    code = codes[-1]
    connected = any(tag == "C" for tag, _ in said)
    status = next((v for tag, v in said if tag == "S"), None)
    words = [v for tag, v in said if tag == "E"]
    if code in ("124", "137", "9"):  # killed by timeout, or the read timed out
        if connected:
            return Outcome.STALLED, "connected from the shell; no answer to the liveness GET"
        return Outcome.TIMEOUT, "no answer to the SYN within the timeout (bash /dev/tcp)"
    if code == "0" and connected and kind == "c":
        return Outcome.OPEN, "connected (bash /dev/tcp)"
    if code == "0" and connected and kind == "t":  # a connect alone would pass broken TLS
        return Outcome.NOT_MEASURED, "connected (bash /dev/tcp); a TLS handshake is not a shell's"
    if code == "0" and status is not None:
        if re.match(r"HTTP/1\.[01] 200\b", status):
            return Outcome.OPEN, f"GET {LIVENESS_PATH}: HTTP 200 (bash /dev/tcp)"
        return Outcome.ERROR, f"unexpected answer: GET {LIVENESS_PATH} answered {status[:60]!r}"
    if code == "7" and not connected:
        name = next((_STRERROR[w] for w in words if w in _STRERROR), "")
        if name:
            number = getattr(errno, name)
            return outcome_of_error(OSError(number, next(w for w in words if w in _STRERROR)))
    if code == "8" and connected:
        return Outcome.ERROR, "unexpected answer: the connection closed before an HTTP status"
    said_words = "; ".join(words)[:120] or "no words"
    return Outcome.ERROR, f"the shell exited {code[:8]}: {said_words}"


class PodShellTransport(JsonAgentTransport):
    """allow: the networks its probes may reach (the database pods' addresses): a target
    outside is refused before anything runs, as an agent refuses it."""

    def __init__(self, clients: Mapping[str, KubeClient], allow: tuple[str, ...]) -> None:
        self._clients = clients
        self._allow = tuple(ipaddress.ip_network(a) for a in allow)
        self._checked: set[str] = set()  # shells that showed bash's /dev/tcp and `timeout`
        self.info_timeout_s = self.start_s = 60.0

    async def _call(
        self, agent: str, method: str, path: str, total: float, body: Any, max_bytes: int
    ) -> Any:
        client, namespace, pod, container = prober_client(self._clients, agent, SHELL_SCHEME)
        where = shell_where(namespace, pod, container)
        if body is None:
            if agent in self._checked:
                return self._info(pod)
            out = await self._exec(client, namespace, pod, container, CHECK, total, where)
            if "Connection refused" not in out:
                raise AgentError(f"{where}bash has no /dev/tcp here ({first_line(out)[:120]})")
            self._checked.add(agent)
            return self._info(pod)
        targets = self._targets(body, where)
        started = time.time()
        text = script(targets, float(body.get("timeout_s", 2.0)))
        out = await self._exec(client, namespace, pod, container, text, total, where)
        words = f"pod {namespace}/{pod} container {container}"
        return {
            "started_at": started,
            "duration_s": round(time.time() - started, 3),
            "results": [result_to_json(r) for r in results(targets, _tagged(out), words)],
        }

    def _targets(self, body: Any, where: str) -> list[Target]:
        raw = body.get("targets") if isinstance(body, dict) else None
        if not isinstance(raw, list) or len(raw) > MAX_BATCH:
            raise AgentError(f"{where}a batch of at most {MAX_BATCH} targets")  # a bug here
        try:
            targets = [target_from_json(t, f"targets[{i}]") for i, t in enumerate(raw)]
        except WireError as exc:
            raise AgentError(f"{where}{exc}") from None
        for t in targets:
            address = ipaddress.ip_address(t.address)
            if not any(address in net for net in self._allow):
                raise AgentError(f"{where}{t.address} is not a database pod's address")
        return targets

    async def _exec(
        self,
        client: KubeClient,
        namespace: str,
        pod: str,
        container: str,
        text: str,
        total: float,
        where: str,
    ) -> str:
        try:
            out = await client.exec(namespace, pod, container, [*SHELL, text], total)
        except KubeError as exc:
            raise AgentError(f"{where}{exc}") from None
        if out.exit_code is None:
            raise AgentError(f"{where}{out.message}")
        if out.exit_code == 3:
            raise AgentError(f"{where}no `timeout` (coreutils) in the container")
        return out.stdout + out.stderr

    def _info(self, pod: str) -> dict[str, Any]:
        """The agent's info document, with the shell's limits and no capabilities."""
        shell = AgentSettings(
            token="",
            allow=self._allow,
            limits=AgentLimits(max_batch=MAX_BATCH, rate=RATE, concurrency=CONCURRENCY),
            name=pod,
        )
        return info_document(shell, raw=False)


def _tagged(out: str) -> str:
    """The script's lines, bash's own words (a connect's errno, which p's pipe tags with the
    index) as `INDEX\tE:strerror`."""
    lines = []
    for line in out.splitlines():
        idx, sep, rest = line.partition("\t")
        if sep and idx.isdigit() and rest[:2] not in ("C:", "S:", "R:"):
            err = next((s for s in _STRERROR if s in rest), "")
            lines.append(f"{idx}\tE:{err or rest[:120]}")
        else:
            lines.append(line)
    return "\n".join(lines)
