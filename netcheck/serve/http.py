"""serve's HTTP side (aiohttp): /metrics, /healthz, /report, /report.html, /reports. GET
only; nothing the caller sends is run or probed, and no answer holds a secret (the report
carries none)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from netcheck.model.text import ascii_int
from netcheck.reports.html import to_html
from netcheck.reports.json_report import PROBES_LISTED, to_json
from netcheck.serve.watch import Watch

METRICS_TYPE = "text/plain; version=0.0.4"
WATCH_KEY = web.AppKey("watch", Watch)


def _watch(request: web.Request) -> Watch:
    return request.app[WATCH_KEY]


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=_watch(request).metrics(), headers={"Content-Type": METRICS_TYPE})


async def healthz(request: web.Request) -> web.Response:
    """200 while serving (the server stops with its loop): a run that failed is said here,
    it is not a failed server."""
    watch = _watch(request)
    last = watch.latest
    body: dict[str, Any] = {
        "status": "running" if watch.running else "waiting",
        "runs": watch.runs,
        "last_result": last.result if last else None,
        "last_error": last.error if last else "",
    }
    return web.json_response(body)


async def report(request: web.Request) -> web.Response:
    """The last run's report (?back=K: K runs before it; ?probes=all: every probe listed),
    as `run -o json` writes it."""
    back = ascii_int(request.query.get("back", "0"), 4)
    if back is None or back < 0:
        return web.json_response({"error": "back must be a small whole number"}, status=400)
    probes = request.query.get("probes", "failing")
    if probes not in PROBES_LISTED:
        return web.json_response({"error": "probes must be failing or all"}, status=400)
    found = _watch(request).last_report(back)
    if found is None:
        return web.json_response({"error": "no such report yet"}, status=404)
    text = to_json(found, indent=None, probes=probes)
    return web.Response(text=text, content_type="application/json")


async def report_html(request: web.Request) -> web.Response:
    """The last run's report as one self-contained HTML page (reports/html.py)."""
    found = _watch(request).last_report(0)
    if found is None:
        return web.Response(text="no report yet", status=404)
    return web.Response(text=to_html(found), content_type="text/html")


async def reports(request: web.Request) -> web.Response:
    """The runs kept, the last first: when, how long, the result, why a run failed."""
    rows = [
        {
            "started_at": r.started_at,
            "duration_s": round(r.duration_s, 3),
            "result": r.result,
            "error": r.error,
            "context_errors": r.context_errors,
        }
        for r in _watch(request).records
    ]
    return web.Response(text=json.dumps(rows), content_type="application/json")


def app(watch: Watch) -> web.Application:
    application = web.Application(client_max_size=1024)
    application[WATCH_KEY] = watch
    application.router.add_get("/metrics", metrics)
    application.router.add_get("/healthz", healthz)
    application.router.add_get("/report", report)
    application.router.add_get("/report.html", report_html)
    application.router.add_get("/reports", reports)
    return application


async def serve(watch: Watch, host: str, port: int) -> None:
    """Serve while the loop runs; stop serving when it ends (max_runs) or is cancelled."""
    runner = web.AppRunner(app(watch), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        await watch.loop()
    finally:
        await runner.cleanup()
