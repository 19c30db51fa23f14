"""CQL probe: log in on the native port and read the node's system tables.

A plain TCP connect first (the network outcome, mapped like every other probe), then
cassandra-driver with the agent's own credentials: `system.local` (the node: DC, rack, host ID,
release and schema version) and `system.peers_v2` (`system.peers` before 4.0: every peer the node
keeps). The driver is told to use this one host only and to skip schema and token metadata.
Credentials never travel in a probe request: the agent reads them from its own files (a mounted
Secret, or --cql-username/--cql-password-file), again for each probe, so a Secret created or
rotated after the agent started works.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass
from typing import Any

from netcheck.model.evidence import CQL_LOGIN_REFUSED, CqlNode, CqlView
from netcheck.model.gossip import NATIVE_PORT
from netcheck.model.outcome import Outcome
from netcheck.model.probe import Evidence, Target, TargetResult
from netcheck.probes.dialer import Dialer, ProbeFn, close, dial, outcome_of_error, result

NATIVE_PORTS = frozenset({NATIVE_PORT, 9142})
LOCAL = (
    "SELECT cluster_name, data_center, rack, host_id, release_version, schema_version, "
    "broadcast_address FROM system.local WHERE key = 'local'"
)
PEERS_V2 = (
    "SELECT peer, data_center, rack, host_id, release_version, schema_version FROM system.peers_v2"
)
PEERS_V1 = (
    "SELECT peer, data_center, rack, host_id, release_version, schema_version FROM system.peers"
)
MAX_PEERS = 4096


@dataclass(frozen=True, kw_only=True)
class CqlCredentials:
    """Where the agent finds its CQL login. Read at each probe: an optional Secret may be
    mounted empty and filled later, or rotated."""

    password_file: str
    username_file: str = ""  # a mounted Secret's key file
    username: str = ""  # given as a flag instead

    def read(self) -> tuple[str, str] | None:
        """(username, password); None when the Secret has not been filled (no username)."""
        username = self.username
        if not username:
            try:
                with open(self.username_file, encoding="utf-8") as f:
                    username = f.read().strip()
            except FileNotFoundError:
                return None
        with open(self.password_file, encoding="utf-8") as f:
            return username, f.read().strip()


class LoginRefused(Exception):
    pass


def make_probe(credentials: CqlCredentials | None) -> ProbeFn:
    async def probe(dialer: Dialer, target: Target, timeout: float, _: int) -> TargetResult:
        if target.port not in NATIVE_PORTS:
            return result(
                target,
                Outcome.NOT_MEASURED,
                detail=f"refused by the agent: CQL only to the native ports {sorted(NATIVE_PORTS)}",
            )
        if credentials is None:
            return result(
                target,
                Outcome.NOT_MEASURED,
                detail="the agent has no CQL credentials (mount Secret netcheck-cql, or "
                "--cql-username/--cql-password-file)",
            )
        try:
            login = credentials.read()
        except OSError as exc:
            return result(
                target,
                Outcome.NOT_MEASURED,
                detail=f"cannot read the CQL password file {credentials.password_file} "
                f"({exc.strerror})",
            )
        if login is None:
            return result(
                target,
                Outcome.NOT_MEASURED,
                detail=f"no CQL credentials in {os.path.dirname(credentials.username_file)} "
                "(create Secret netcheck-cql with keys username and password)",
            )
        conn = await dial(dialer, target, timeout)
        if isinstance(conn, TargetResult):
            return conn
        await close(conn)
        username, password = login
        try:
            view = await asyncio.wait_for(
                asyncio.to_thread(
                    read_tables,
                    target.address,
                    target.port,
                    username,
                    password,
                    timeout,
                ),
                timeout * 4 + 1,  # connect, login, two queries
            )
        except LoginRefused as exc:
            return result(
                target,
                Outcome.ERROR,
                latency_ms=conn.connect_ms,
                detail=f"{CQL_LOGIN_REFUSED}: {exc}",
            )
        except TimeoutError:
            return result(
                target,
                Outcome.TIMEOUT,
                latency_ms=conn.connect_ms,
                detail=f"connected, but CQL did not answer within {timeout * 4 + 1:g}s",
            )
        except Exception as exc:  # every failure is a result
            outcome, detail = outcome_of_error(exc)
            return result(target, outcome, latency_ms=conn.connect_ms, detail=f"CQL: {detail}")
        return result(
            target,
            Outcome.OPEN,
            latency_ms=conn.connect_ms,
            detail=f"CQL {view.local.release_version}, {len(view.peers)} peers",
            evidence=Evidence(cql=view),
        )

    return probe


def read_tables(address: str, port: int, username: str, password: str, timeout: float) -> CqlView:
    # imported here: the driver is only loaded by agents that are asked for CQL
    from cassandra import AuthenticationFailed, InvalidRequest
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
    from cassandra.policies import WhiteListRoundRobinPolicy
    from cassandra.query import dict_factory

    profile = ExecutionProfile(
        load_balancing_policy=WhiteListRoundRobinPolicy([address]),
        request_timeout=timeout,
        row_factory=dict_factory,
    )
    cluster = Cluster(
        contact_points=[address],
        port=port,
        auth_provider=PlainTextAuthProvider(username=username, password=password),
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        protocol_version=4,  # Cassandra 3.0 to 5.0 all speak it
        connect_timeout=timeout,
        control_connection_timeout=timeout,
        schema_metadata_enabled=False,
        token_metadata_enabled=False,
        executor_threads=1,
        idle_heartbeat_interval=0,
    )
    try:
        try:
            session = cluster.connect()
        except NoHostAvailable as exc:
            errors = list(exc.errors.values())
            auth = next((e for e in errors if isinstance(e, AuthenticationFailed)), None)
            if auth is not None:
                raise LoginRefused(_first_line(auth)) from None
            raise (errors[0] if errors and isinstance(errors[0], Exception) else exc) from None
        local = session.execute(LOCAL).one() or {}
        table = "system.peers_v2"
        try:
            rows = list(session.execute(PEERS_V2))
        except InvalidRequest:  # before 4.0
            table = "system.peers"
            rows = list(session.execute(PEERS_V1))
    finally:
        with contextlib.suppress(Exception):
            cluster.shutdown()
    return CqlView(
        cluster_name=str(local.get("cluster_name") or ""),
        local=_node(local, "broadcast_address", address),
        peers=tuple(_node(r, "peer", "") for r in rows[:MAX_PEERS]),
        peers_table=table,
    )


def _node(row: dict[str, Any], key: str, default: str) -> CqlNode:
    return CqlNode(
        address=str(row.get(key) or default),
        datacenter=str(row.get("data_center") or ""),
        rack=str(row.get("rack") or ""),
        host_id=str(row.get("host_id") or ""),
        release_version=str(row.get("release_version") or ""),
        schema_version=str(row.get("schema_version") or ""),
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    # the driver wraps the server's message: 'Failed to authenticate to X: Error from server:
    # code=0100 [Bad credentials] message="Provided username ... are incorrect"'
    if 'message="' in text:
        text = text.split('message="', 1)[1].rstrip('"')
    return text.splitlines()[0][:200] if text else type(exc).__name__
