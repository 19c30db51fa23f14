"""Running an agent: listeners plus the API, until told to stop."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import ssl
import sys
from dataclasses import dataclass, field, replace

from aiohttp import web

from netcheck.agent.certs import server_context
from netcheck.agent.listeners import AcceptLog, Listeners, ServeMode, ServeSpec
from netcheck.agent.server import AgentLimits, AgentSettings, ProbeRunner, build_api
from netcheck.files import FileProblem, read_text
from netcheck.probes.cql import CqlCredentials
from netcheck.probes.dialer import StreamDialer
from netcheck.probes.rawnet import open_raw

DEFAULT_API_PORT = 9925
MAX_TOKEN_BYTES = 4096  # a token is tens of bytes; a Secret's value fits many times over
MAX_ALLOW_FILE_BYTES = 1 << 20  # the ConfigMap's allow list: one CIDR a line


class AgentConfigError(ValueError):
    """A bad flag or file given to the agent: one line, names the input and the fix."""


@dataclass(frozen=True, kw_only=True)
class AgentConfig:
    bind: str = "0.0.0.0"
    api_port: int = DEFAULT_API_PORT
    serve_bind: str = "0.0.0.0"
    token_file: str
    serve: tuple[ServeSpec, ...] = ()
    allow: tuple[str, ...] = ()
    allow_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    limits: AgentLimits = field(default_factory=AgentLimits)
    name: str = ""
    raw: bool = True  # use raw probes when the process has CAP_NET_RAW
    # CQL: a mounted Secret directory (keys username, password), or a user and a password file
    cql_credentials_dir: str | None = None
    cql_username: str | None = None
    cql_password_file: str | None = None


def read_token(path: str) -> str:
    try:
        token = read_text(path, MAX_TOKEN_BYTES).strip()
    except FileProblem as exc:
        raise AgentConfigError(
            f"--token-file {path}: {exc}; write a random token into it "
            "(`openssl rand -hex 32 > FILE`)"
        ) from None
    if len(token) < 16:
        raise AgentConfigError(
            f"--token-file {path}: the token must be at least 16 characters; "
            "use e.g. `openssl rand -hex 32`"
        )
    return token


def parse_allow(
    cidrs: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    nets = []
    for c in cidrs:
        try:
            nets.append(ipaddress.ip_network(c, strict=False))
        except ValueError:
            raise AgentConfigError(f"--allow {c!r}: not a CIDR; write e.g. 198.18.0.0/15") from None
    return tuple(nets)


def read_allow_file(path: str) -> tuple[str, ...]:
    """One CIDR per line; blank lines and # comments are skipped (a mounted ConfigMap key)."""
    try:
        lines = read_text(path, MAX_ALLOW_FILE_BYTES).splitlines()
    except FileProblem as exc:
        raise AgentConfigError(
            f"--allow-file {path}: {exc}; mount the netcheck-agent ConfigMap there or use --allow"
        ) from None
    return tuple(x for x in (ln.split("#", 1)[0].strip() for ln in lines) if x)


def cql_credentials(config: AgentConfig) -> CqlCredentials | None:
    """Where the agent's CQL login comes from, or None (no CQL reads)."""
    if (config.cql_username is None) != (config.cql_password_file is None):
        raise AgentConfigError(
            "--cql-username and --cql-password-file go together: give both or neither"
        )
    if config.cql_username is not None and config.cql_password_file is not None:
        return CqlCredentials(username=config.cql_username, password_file=config.cql_password_file)
    if config.cql_credentials_dir:
        # an optional Secret mount: it may be empty now and filled later
        where = config.cql_credentials_dir
        return CqlCredentials(
            username_file=os.path.join(where, "username"),
            password_file=os.path.join(where, "password"),
        )
    return None


def settings_of(config: AgentConfig) -> AgentSettings:
    if (config.cert_file is None) != (config.key_file is None):
        raise AgentConfigError("--cert and --key go together: give both or neither")
    return AgentSettings(
        token=read_token(config.token_file),
        allow=parse_allow(
            config.allow + (read_allow_file(config.allow_file) if config.allow_file else ())
        ),
        serving=config.serve,
        limits=config.limits,
        name=config.name,
        cql=cql_credentials(config),
    )


async def run_agent(
    config: AgentConfig, stop: asyncio.Event, ready: asyncio.Event | None = None
) -> None:
    settings = settings_of(config)
    tls: ssl.SSLContext | None = None
    if any(s.mode is ServeMode.TLS for s in config.serve):
        tls = server_context(
            config.cert_file,
            config.key_file,
            config.name or "netcheck-agent",
            [config.serve_bind, config.bind],
        )
    log = AcceptLog()
    listeners = Listeners(config.serve_bind, list(config.serve), tls, log)
    probe_runner = ProbeRunner(settings, StreamDialer(), open_raw if config.raw else None)
    runner: web.AppRunner | None = None
    try:
        busy = await listeners.start()
        for spec in busy:
            print(
                f"netcheck agent: port {spec.port} is already in use on this address (another "
                f"process serves it, e.g. Cassandra on a shared network): no {spec.mode.value} "
                "stand-in there",
                file=sys.stderr,
                flush=True,
            )
        # /v1/info says what this agent stands in for: only the ports it holds
        settings = replace(settings, serving=tuple(s for s in config.serve if s not in busy))
        runner = web.AppRunner(
            build_api(settings, probe_runner, log),
            access_log=None,
            handle_signals=False,
            # armed when a connection opens: a request head must be complete by then
            keepalive_timeout=config.limits.head_timeout_s,
            lingering_time=0,  # a body we did not read (401) is not waited for
        )
        await runner.setup()
        await web.TCPSite(runner, config.bind, config.api_port, reuse_address=True).start()
    except OSError as exc:
        await listeners.stop()
        if runner is not None:
            await runner.cleanup()
        if probe_runner.raw is not None:
            probe_runner.raw.close()
        raise AgentConfigError(
            f"cannot listen ({exc.strerror}): check --bind/--serve-bind and that the ports are free"
        ) from None
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await listeners.stop()
        if probe_runner.raw is not None:
            probe_runner.raw.close()
