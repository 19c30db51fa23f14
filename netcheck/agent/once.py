"""One batch of probes run once and printed: the agent's API without its server.

`run --context` runs this inside each database pod (an ephemeral container of the agent image,
reached through exec: agent/podexec.py), so that the probes of 7000/7001/8080 leave from the
database pod's own network namespace, with the identity a NetworkPolicy admits. There is no
listener and no token: only someone who may exec into the pod can start it, and they may run
anything there already. The batch comes as an argument (the exec here has no stdin), the answer
goes to stdout as the same documents the HTTP API answers (/v1/info, /v1/probe), so one parser
reads both. It is bounded as the agent is: its batch size, rate, concurrency and timeouts, and
addresses of --allow only.
"""

from __future__ import annotations

import json
import time
from typing import Any

from netcheck.agent.process import AgentConfigError, parse_allow
from netcheck.agent.server import (
    AgentLimits,
    AgentSettings,
    ProbeRunner,
    info_document,
    parse_probe_request,
)
from netcheck.agent.wire import WireError, result_to_json
from netcheck.model.text import one_line
from netcheck.probes.dialer import StreamDialer
from netcheck.probes.rawnet import open_raw

# targets per exec: the batch travels in the exec request's URL, which API servers and kubelets
# take up to 1 MiB of headers (Go's net/http default); 256 targets stay under 64 KiB
MAX_BATCH = 256
MAX_BATCH_CHARS = 200_000


class OnceError(ValueError):
    """A batch that cannot be run: one line that names the input."""


def settings_for(allow: tuple[str, ...], name: str) -> AgentSettings:
    try:
        nets = parse_allow(allow)
    except AgentConfigError as exc:
        raise OnceError(str(exc)) from None
    return AgentSettings(
        token="-" * 16,  # no API: nothing is authenticated here
        allow=nets,
        limits=AgentLimits(max_batch=MAX_BATCH),
        name=name,
    )


async def info_once(allow: tuple[str, ...], name: str, raw: bool) -> dict[str, Any]:
    """The info document, with raw_probes true only when raw sockets really open here."""
    settings = settings_for(allow, name)
    sockets = open_raw() if raw else None
    if sockets is not None:
        sockets.close()
    return info_document(settings, raw=sockets is not None)


async def probe_once(batch: str, allow: tuple[str, ...], name: str, raw: bool) -> dict[str, Any]:
    """Run one /v1/probe request body; the answer /v1/probe would give."""
    settings = settings_for(allow, name)
    if len(batch) > MAX_BATCH_CHARS:
        raise OnceError(f"--batch: longer than {MAX_BATCH_CHARS} characters; send fewer targets")
    try:
        targets, timeout, payload = parse_probe_request(json.loads(batch), settings)
    except OverflowError as exc:
        raise OnceError(f"--batch: {exc}") from None
    except (ValueError, WireError, RecursionError) as exc:
        raise OnceError(f"--batch: not a probe request ({one_line(str(exc), 200)})") from None
    runner = ProbeRunner(settings, StreamDialer(), open_raw if raw else None)
    started = time.time()
    try:
        results = await runner.run(targets, timeout, payload)
    finally:
        if runner.raw is not None:
            runner.raw.close()
    return {
        "started_at": started,
        "duration_s": round(time.time() - started, 3),
        "results": [result_to_json(r) for r in results],
    }
