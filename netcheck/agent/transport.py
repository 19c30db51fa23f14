"""The collector's seam to agents: direct HTTP here, the Kubernetes pod proxy in podproxy.py."""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

import aiohttp

from netcheck.agent.wire import API_PREFIX, WireError, result_from_json, target_to_json
from netcheck.kube.client import read_at_most
from netcheck.model.probe import ProbeKind, Target, TargetResult
from netcheck.model.text import one_line


class AgentError(Exception):
    """An agent that cannot be used: the message is one line that names it and the fix."""


@dataclass(frozen=True, kw_only=True)
class AgentInfo:
    name: str
    version: str
    max_batch: int
    rate: float
    concurrency: int
    raw_probes: bool = False  # holds CAP_NET_RAW: SYN, traceroute, path MTU, latency


@dataclass(frozen=True, kw_only=True)
class ProbeBatch:
    targets: tuple[Target, ...]
    timeout_s: float
    payload_bytes: int


class AgentTransport(Protocol):
    async def info(self, agent: str) -> AgentInfo: ...

    async def probe(self, agent: str, batch: ProbeBatch, info: AgentInfo) -> list[TargetResult]: ...


# raw packets a follow-up may send besides its trace and latency SYNs: two SYNs, and a path
# MTU's rounds (up to 3 x 24 sizes twice, then 3 confirmations of 3 sizes x 4)
FOLLOW_PACKETS = 2 + 3 * 24 * 2 + 3 * 3 * 4
# a follow-up's worst time in raw timeouts: SYN or trace, else latency then the path MTU
# (3 rounds, then 3 confirmations that may wait 4 round trips each)
FOLLOW_TIMEOUTS = 1 + 3 + 3 * 4


def batch_deadline(batch: ProbeBatch, info: AgentInfo) -> float:
    """How long a healthy agent may take: rate-limited start plus waves of worst-case probes."""
    n = len(batch.targets)
    waves = math.ceil(n / max(1, info.concurrency))
    packets, follow_s = n, 0.0
    for t in batch.targets:
        if t.follow is not None:
            packets += FOLLOW_PACKETS + t.follow.trace_hops + t.follow.latency_count
            follow_s = max(follow_s, FOLLOW_TIMEOUTS * t.follow.timeout_s + 1.0)
    return packets / max(info.rate, 1e-3) + waves * (4 * batch.timeout_s + follow_s) + 5.0


# What a sane agent may announce; anything outside is nonsense, not a setting to obey.
MAX_BATCH_LIMIT = 100_000
MAX_CONCURRENCY = 10_000
MAX_RATE = 1e6


def _limit(limits: Any, key: str, kind: type[int] | type[float], lo: float, hi: float) -> Any:
    value: Any = limits.get(key) if isinstance(limits, dict) else None
    number = isinstance(value, int) if kind is int else isinstance(value, int | float)
    if not number or isinstance(value, bool) or not lo <= float(value) <= hi:  # NaN fails too
        raise WireError(f"limits.{key} must be a number from {lo:g} to {hi:g}")
    return kind(value)


def _info_from_json(agent: str, body: Any) -> AgentInfo:
    try:
        if not isinstance(body, dict) or body.get("agent") != "netcheck":
            raise WireError("not a netcheck agent info document")
        limits = body.get("limits")
        name, version = body.get("name", ""), body.get("version", "")
        if not isinstance(name, str) or not isinstance(version, str):
            raise WireError("name and version must be strings")
        return AgentInfo(
            name=name[:200],
            version=version[:64],
            max_batch=_limit(limits, "max_batch", int, 1, MAX_BATCH_LIMIT),
            rate=_limit(limits, "rate", float, 1e-3, MAX_RATE),
            concurrency=_limit(limits, "concurrency", int, 1, MAX_CONCURRENCY),
            raw_probes=isinstance(caps := body.get("capabilities"), dict)
            and caps.get("raw_probes") is True,
        )
    except WireError as exc:
        raise AgentError(
            f"agent {agent} answered something that is not a netcheck agent ({exc}); "
            "check that the URL points at a netcheck agent's API port"
        ) from None


# the most an honest answer takes, in bytes: a node's system tables (4096 peers) or its
# endpoint states run to megabytes, any other probe's answer (evidence, traces) to kilobytes.
# Past it the answer is dropped unread: a broken or hostile agent cannot fill the collector.
INFO_MAX_BYTES = 1 << 20
ANSWER_MAX_BYTES = {ProbeKind.CQL: 4 << 20, ProbeKind.MGMT: 4 << 20}
TARGET_MAX_BYTES = 64 << 10


def answer_max_bytes(batch: ProbeBatch) -> int:
    return INFO_MAX_BYTES + sum(
        ANSWER_MAX_BYTES.get(t.kind, TARGET_MAX_BYTES) for t in batch.targets
    )


class JsonAgentTransport:
    """The agent API's documents, whatever carries them: subclasses only move bytes."""

    async def _call(
        self, agent: str, method: str, path: str, total: float, body: Any, max_bytes: int
    ) -> Any:
        raise NotImplementedError

    # seconds an info answer may take: an HTTP agent answers at once, a process started for
    # it (podexec.py) needs its interpreter's start on a node that may be busy
    info_timeout_s = 10.0
    start_s = 0.0  # added to each batch's deadline: a process's start, where one is started

    async def info(self, agent: str) -> AgentInfo:
        path = f"{API_PREFIX}/info"
        answer = await self._call(agent, "GET", path, self.info_timeout_s, None, INFO_MAX_BYTES)
        return _info_from_json(agent, answer)

    async def probe(self, agent: str, batch: ProbeBatch, info: AgentInfo) -> list[TargetResult]:
        body = {
            "targets": [target_to_json(t) for t in batch.targets],
            "timeout_s": batch.timeout_s,
            "payload_bytes": batch.payload_bytes,
        }
        answer = await self._call(
            agent,
            "POST",
            f"{API_PREFIX}/probe",
            batch_deadline(batch, info) + self.start_s,
            body,
            answer_max_bytes(batch),
        )
        try:
            if not isinstance(answer, dict) or not isinstance(answer.get("results"), list):
                raise WireError("no 'results' list")
            results = [
                result_from_json(r, f"results[{i}]") for i, r in enumerate(answer["results"])
            ]
        except WireError as exc:
            raise AgentError(
                f"agent {agent} answered the probe batch with nonsense ({exc}); "
                "check the agent's version and logs"
            ) from None
        asked = [(t.address, t.port, t.kind) for t in batch.targets]
        got = [(r.address, r.port, r.kind) for r in results]
        if asked != got:
            raise AgentError(
                f"agent {agent} answered for other targets than it was asked; "
                "check the agent's version and logs"
            )
        return results


CONNECTIONS = 256  # to agents at once


class HttpAgentTransport(JsonAgentTransport):
    """Talks to agents over plain HTTP with the bearer token."""

    def __init__(
        self, token: str, connect_timeout: float = 3.0, connections: int = CONNECTIONS
    ) -> None:
        self._token = token
        self._connect_timeout = connect_timeout
        self._session: aiohttp.ClientSession | None = None
        self._connections = connections
        # a call starts its clock once it holds a connection: with more agents than
        # connections, an agent's info must not time out waiting behind others' batches
        self._slots = asyncio.Semaphore(connections)

    async def __aenter__(self) -> HttpAgentTransport:
        self._session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {self._token}"},
            connector=aiohttp.TCPConnector(limit=self._connections),
        )
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(
        self, agent: str, method: str, path: str, total: float, body: Any, max_bytes: int
    ) -> Any:
        assert self._session is not None, "use HttpAgentTransport as an async context manager"
        timeout = aiohttp.ClientTimeout(total=total, sock_connect=self._connect_timeout)
        url = agent.rstrip("/") + path
        try:
            async with (
                self._slots,
                self._session.request(method, url, json=body, timeout=timeout) as resp,
            ):
                raw = await read_at_most(resp, max_bytes)
                if raw is None:
                    raise AgentError(
                        f"agent {agent} answered {path} with more than {max_bytes >> 20} MiB, "
                        "more than any agent's answer to it; check the agent's version and logs"
                    )
                text = raw.decode("utf-8", "replace")
                if resp.status == 401:
                    raise AgentError(
                        f"agent {agent} rejected the token (HTTP 401); give the collector the "
                        "agent's token (inventory token_file or --token-file)"
                    )
                if resp.status != 200:
                    raise AgentError(
                        f"agent {agent} answered HTTP {resp.status} to {path}: {first_line(text)}"
                    )
        except aiohttp.ClientConnectorError as exc:
            raise AgentError(
                f"agent {agent} is unreachable ({exc.os_error.strerror or exc}); check that it "
                "runs and that the collector can reach its API port"
            ) from None
        except TimeoutError:
            raise AgentError(f"agent {agent} did not answer {path} within {total:.0f}s") from None
        except aiohttp.ClientError as exc:
            raise AgentError(f"agent {agent}: {type(exc).__name__}: {exc}") from None
        return json_answer(agent, path, text, "check that the URL points at a netcheck agent")


def json_answer(agent: str, path: str, text: str, fix: str) -> Any:
    """An agent's answer as JSON, or the one-line error every transport gives."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than any real answer
        raise AgentError(
            f"agent {agent} answered {path} with something that is not JSON "
            f"({first_line(text)!r}); {fix}"
        ) from None


def first_line(text: str) -> str:
    """The first line of a remote answer, short and without control characters."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return one_line(line, 160)


class RoutedTransport:
    """Agents of several kinds in one run: each reference goes to the transport of its scheme
    (kube:// agents through the pod proxy, kube-exec:// probers through exec)."""

    def __init__(self, routes: dict[str, AgentTransport]) -> None:
        self._routes = routes

    def _route(self, agent: str) -> AgentTransport:
        for scheme, transport in self._routes.items():
            if agent.startswith(scheme):
                return transport
        raise AgentError(f"agent {agent}: no transport for it")

    async def info(self, agent: str) -> AgentInfo:
        return await self._route(agent).info(agent)

    async def probe(self, agent: str, batch: ProbeBatch, info: AgentInfo) -> list[TargetResult]:
        return await self._route(agent).probe(agent, batch, info)
