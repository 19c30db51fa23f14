"""The agent's authenticated HTTP API: probe a batch of allowed targets, report what it saw."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from netcheck import __version__
from netcheck.agent import followup
from netcheck.agent.listeners import AcceptLog, ServeSpec
from netcheck.agent.ratelimit import TokenBucket
from netcheck.agent.transport import first_line
from netcheck.agent.wire import API_PREFIX, WireError, result_to_json, target_from_json
from netcheck.model.outcome import Outcome
from netcheck.model.probe import ProbeKind, Target, TargetResult
from netcheck.probes import tcp
from netcheck.probes.connects import Touched
from netcheck.probes.cql import CqlCredentials
from netcheck.probes.dialer import Dialer, result
from netcheck.probes.echo import MAX_PAYLOAD
from netcheck.probes.rawnet import Pace, RawNet
from netcheck.probes.registry import probes, raw_probes

RawOpener = Callable[[Pace], RawNet | None]

MAX_REQUEST_BYTES = 1 << 20
TOKEN_HEADER = "X-Netcheck-Token"
MIN_TIMEOUT_S, MAX_TIMEOUT_S = 0.05, 30.0
# A client must send its request head within this and its body within BODY_TIMEOUT_S: a
# connection that trickles bytes (slowloris) is closed instead of held.
HEAD_TIMEOUT_S, BODY_TIMEOUT_S = 10.0, 30.0
CQL_CONCURRENCY = 4


@dataclass(frozen=True, kw_only=True)
class AgentLimits:
    max_batch: int = 1024
    rate: float = 200.0  # probes per second
    concurrency: int = 64
    max_timeout_s: float = MAX_TIMEOUT_S
    head_timeout_s: float = HEAD_TIMEOUT_S


@dataclass(frozen=True, kw_only=True)
class AgentSettings:
    token: str
    allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    serving: tuple[ServeSpec, ...] = ()
    limits: AgentLimits = field(default_factory=AgentLimits)
    name: str = ""
    cql: CqlCredentials | None = None  # the agent's own CQL login; None: no cql probes


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def allowed(address: str, allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip in net for net in allow)


def parse_probe_request(body: Any, settings: AgentSettings) -> tuple[list[Target], float, int]:
    if not isinstance(body, dict):
        raise WireError("the request must be a JSON object")
    targets_json = body.get("targets")
    if not isinstance(targets_json, list):
        raise WireError("'targets' must be a list")
    if len(targets_json) > settings.limits.max_batch:
        raise OverflowError(
            f"batch of {len(targets_json)} targets exceeds the agent's limit of "
            f"{settings.limits.max_batch}"
        )
    timeout = body.get("timeout_s", 2.0)
    if (
        not isinstance(timeout, int | float)
        or isinstance(timeout, bool)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise WireError("'timeout_s' must be a positive number of seconds")
    timeout = min(max(float(timeout), MIN_TIMEOUT_S), settings.limits.max_timeout_s)
    payload = body.get("payload_bytes", 16384)
    if not isinstance(payload, int) or isinstance(payload, bool) or not 0 <= payload <= MAX_PAYLOAD:
        raise WireError(f"'payload_bytes' must be an integer from 0 to {MAX_PAYLOAD}")
    targets = [target_from_json(t, f"targets[{i}]") for i, t in enumerate(targets_json)]
    return targets, timeout, payload


class ProbeRunner:
    """Runs batches: allow-list, bounded concurrency, bounded rate, one batch at a time."""

    def __init__(
        self, settings: AgentSettings, dialer: Dialer, raw_opener: RawOpener | None = None
    ) -> None:
        self._settings = settings
        self._dialer = dialer
        self._bucket = TokenBucket(settings.limits.rate, burst=max(1, settings.limits.concurrency))
        self._busy = asyncio.Lock()
        self._probes = probes(settings.cql)
        self._cql_gate = asyncio.Semaphore(CQL_CONCURRENCY)  # a driver session is a thread
        self._raw_probes = raw_probes()
        # raw probes take one token per packet they send, so the agent's rate bounds packets
        self.raw = raw_opener(self._bucket.acquire) if raw_opener else None

    @property
    def busy(self) -> bool:
        return self._busy.locked()

    async def run(self, targets: list[Target], timeout: float, payload: int) -> list[TargetResult]:
        async with self._busy:
            sem = asyncio.Semaphore(self._settings.limits.concurrency)
            claims = followup.BatchClaims()
            # a batch names few addresses many times (every port of every peer): each is
            # parsed and checked against the allow list once
            permitted = {a: allowed(a, self._settings.allow) for a in {t.address for t in targets}}
            # connects with nothing to push through and no raw follow-up run in one engine
            # (probes/connects.py), under the same slots and tokens as the other probes
            bare = [
                i
                for i, t in enumerate(targets)
                if permitted[t.address] and tcp.bare(t) and not self._follows(t)
            ]
            out: list[TargetResult | None] = [None] * len(targets)

            def touched(k: int, how: Touched) -> None:
                i = bare[k]
                out[i] = tcp.touched(targets[i], how)

            async def one(t: Target) -> TargetResult:
                if not permitted[t.address]:
                    return result(
                        t,
                        Outcome.NOT_MEASURED,
                        detail=f"refused by the agent: {t.address} is outside its --allow list",
                    )
                if t.kind.raw:
                    return await self._raw_probe(t, timeout, sem)
                if t.kind is ProbeKind.CQL:
                    async with self._cql_gate:
                        await self._bucket.acquire()
                        return await self._probes[t.kind](self._dialer, t, timeout, payload)
                async with sem:
                    await self._bucket.acquire()
                    plain = self._probes[t.kind](self._dialer, t, timeout, payload)
                    if not self._follows(t) or self.raw is None:
                        return await plain
                    return await followup.probe(
                        plain, t, timeout, self.raw, self._raw_probes, claims
                    )

            engine = self._dialer.touch_many(
                [(targets[i].address, targets[i].port) for i in bare],
                timeout=timeout,
                slots=sem,
                pace=self._bucket,
                done=touched,
            )
            alone = set(bare)
            others = [i for i in range(len(targets)) if i not in alone]
            answers = await asyncio.gather(engine, *(one(targets[i]) for i in others))
            for i, r in zip(others, answers[1:], strict=True):
                out[i] = r
            return [
                r
                if r is not None
                else result(t, Outcome.NOT_MEASURED, detail="the connect engine gave no answer")
                for t, r in zip(targets, out, strict=True)
            ]

    def _follows(self, t: Target) -> bool:
        """Raw evidence joins this probe (IPv4 only, the agent holding CAP_NET_RAW)."""
        return t.follow is not None and self.raw is not None and ":" not in t.address

    async def _raw_probe(self, t: Target, timeout: float, sem: asyncio.Semaphore) -> TargetResult:
        if self.raw is None:
            return result(
                t,
                Outcome.NOT_MEASURED,
                detail="raw probes skipped: the agent has no CAP_NET_RAW (or runs with --no-raw)",
            )
        if ipaddress.ip_address(t.address).version != 4:
            return result(t, Outcome.NOT_MEASURED, detail="raw probes are IPv4 only")
        async with sem:
            return await self._raw_probes[t.kind](self.raw, t, timeout)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def info_document(settings: AgentSettings, *, raw: bool) -> dict[str, Any]:
    """GET /v1/info: who the agent is, what it stands in for, its limits and capabilities."""
    return {
        "agent": "netcheck",
        "version": __version__,
        "name": settings.name,
        "serving": [{"port": s.port, "mode": s.mode.value} for s in settings.serving],
        "allow": [str(n) for n in settings.allow],
        "limits": {
            "max_batch": settings.limits.max_batch,
            "rate": settings.limits.rate,
            "concurrency": settings.limits.concurrency,
            "max_timeout_s": settings.limits.max_timeout_s,
        },
        "capabilities": {"raw_probes": raw, "cql": _cql_ready(settings.cql)},
    }


def _cql_ready(credentials: CqlCredentials | None) -> bool:
    """The agent holds a CQL login now (the Secret may be mounted empty)."""
    try:
        return credentials is not None and credentials.read() is not None
    except OSError:
        return False


def _header(request: web.BaseRequest, name: str) -> bytes:
    # headers arrive decoded with surrogate escapes: bytes that are not UTF-8 must not raise
    return request.headers.get(name, "").encode("utf-8", "surrogateescape")


def build_api(settings: AgentSettings, runner: ProbeRunner, log: AcceptLog) -> web.Application:
    expected = f"Bearer {settings.token}".encode()
    token = settings.token.encode()

    def authorized(request: web.BaseRequest) -> bool:
        # Through the Kubernetes pod proxy the API server strips Authorization: a second header.
        return hmac.compare_digest(_header(request, "Authorization"), expected) or (
            hmac.compare_digest(_header(request, TOKEN_HEADER), token)
        )

    async def expect(request: web.Request) -> web.StreamResponse | None:
        """`Expect: 100-continue`: no "go ahead" before the token is checked."""
        refused = None
        if not authorized(request):
            refused = _error(401, "missing or wrong agent token")
        elif request.headers.get("Expect", "").lower() != "100-continue":
            refused = _error(417, "only Expect: 100-continue is understood")
        if refused is not None:
            refused.force_close()  # and no waiting for a body it was told not to send
            return refused
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the response proper has not started (as aiohttp does)
        return None

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/healthz":
            return await handler(request)
        if not authorized(request):
            return _error(401, "missing or wrong agent token")
        try:
            return await handler(request)
        except web.HTTPException as exc:
            return _error(exc.status, exc.reason)

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def info(_: web.Request) -> web.Response:
        return web.json_response(info_document(settings, raw=runner.raw is not None))

    async def probe(request: web.Request) -> web.Response:
        if runner.busy:
            return _error(429, "the agent is running another batch; retry later")
        try:
            async with asyncio.timeout(BODY_TIMEOUT_S):
                raw = await request.read()
            body = json.loads(raw)
            targets, timeout, payload = parse_probe_request(body, settings)
        except TimeoutError:
            return _error(408, f"the request body did not arrive within {BODY_TIMEOUT_S:.0f}s")
        except OverflowError as exc:
            return _error(413, str(exc))
        except (ValueError, UnicodeDecodeError) as exc:  # json and wire errors
            return _error(400, f"malformed probe request: {first_line(str(exc))}")
        except RecursionError:
            return _error(400, "malformed probe request: JSON nested too deeply")
        started = time.time()
        results = await runner.run(targets, timeout, payload)
        return web.json_response(
            {
                "started_at": started,
                "duration_s": round(time.time() - started, 3),
                "results": [result_to_json(r) for r in results],
            }
        )

    async def accepted(_: web.Request) -> web.Response:
        return web.json_response(
            {
                "accepted": [
                    {"at": a.at, "port": a.port, "peer": a.peer_ip, "peer_port": a.peer_port}
                    for a in log.entries()
                ]
            }
        )

    app = web.Application(middlewares=[guard], client_max_size=MAX_REQUEST_BYTES)
    app.router.add_get("/healthz", healthz)
    app.router.add_get(f"{API_PREFIX}/info", info)
    app.router.add_post(f"{API_PREFIX}/probe", probe, expect_handler=expect)
    app.router.add_get(f"{API_PREFIX}/accepted", accepted)
    return app
