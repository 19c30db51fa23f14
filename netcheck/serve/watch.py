"""Runs a workflow every interval (with jitter), one run at a time, and keeps what they said.

Each run that completes replaces the report series (reports/prometheus.py's, built afresh in a
registry of their own: the series of pairs that went away go with it). A run that fails (an
exception, bad input found on the way) keeps the previous series, counts as `error` and says
why in the last error. The serve series of its own registry: runs by result, run duration,
last run and last success times, the interval, probes by outcome.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from netcheck.model.report import RunReport
from netcheck.reports.prometheus import fill_registry
from netcheck.workflows.run import RunDone

DURATION_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
MAX_ERROR = 500  # characters of a failed run's reason kept


@dataclass(frozen=True, kw_only=True)
class WatchOptions:
    interval_s: float = 60.0
    jitter: float = 0.1  # up to this share of the interval is added to each wait
    keep: int = 10  # reports kept (the last first)
    max_runs: int | None = None  # None: until stopped
    pod_pairs: bool = False  # netcheck_pod_pair_up as --prom-pod-pairs


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """One run: when (Unix seconds), how long, and its report or why it failed."""

    started_at: float
    duration_s: float
    report: RunReport | None = None
    error: str = ""
    context_errors: dict[str, str] = field(default_factory=dict)

    @property
    def result(self) -> str:
        return self.report.verdict.value if self.report is not None else "error"


class Watch:
    """The loop and what it keeps. job: one run (a workflow with its options bound)."""

    def __init__(
        self,
        job: Callable[[], Awaitable[RunDone]],
        options: WatchOptions,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._job = job
        self.options = options
        self._clock = clock
        self.records: deque[RunRecord] = deque(maxlen=max(1, options.keep))
        self.runs = 0
        self.running = False
        self.stopped = False
        self._report_metrics = b""
        self.registry = CollectorRegistry()
        self._runs = Counter(
            "netcheck_serve_runs",
            "Runs by result: pass, fail, incomplete, or error (the run itself failed)",
            ["result"],
            registry=self.registry,
        )
        for result in ("pass", "fail", "incomplete", "error"):
            self._runs.labels(result)
        self._duration = Histogram(
            "netcheck_serve_run_duration_seconds",
            "Wall time of each run",
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self._last_run = Gauge(
            "netcheck_serve_last_run_timestamp_seconds",
            "When the last run ended (Unix time)",
            registry=self.registry,
        )
        self._last_success = Gauge(
            "netcheck_serve_last_success_timestamp_seconds",
            "When the last run that gave a report ended (Unix time)",
            registry=self.registry,
        )
        self._last_ok = Gauge(
            "netcheck_serve_last_run_ok",
            "1 when the last run gave a report, 0 when it failed (the series are the previous "
            "run's)",
            registry=self.registry,
        )
        Gauge(
            "netcheck_serve_interval_seconds",
            "The interval between runs",
            registry=self.registry,
        ).set(options.interval_s)
        self._probes = Counter(
            "netcheck_serve_probes",
            "Probes of every run by outcome",
            ["outcome"],
            registry=self.registry,
        )

    @property
    def latest(self) -> RunRecord | None:
        return self.records[0] if self.records else None

    def last_report(self, back: int = 0) -> RunReport | None:
        """The report `back` runs before the last that gave one (0: the last)."""
        reports = [r.report for r in self.records if r.report is not None]
        return reports[back] if 0 <= back < len(reports) else None

    def metrics(self) -> bytes:
        """The last report's series, then serve's own."""
        return self._report_metrics + generate_latest(self.registry)

    async def run_once(self) -> RunRecord:
        started, t0 = self._clock(), time.monotonic()
        self.running = True
        try:
            done = await self._job()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failed run is a result: the loop goes on
            reason = str(exc) or type(exc).__name__
            record = RunRecord(
                started_at=started,
                duration_s=time.monotonic() - t0,
                error=reason[:MAX_ERROR],
            )
        else:
            record = RunRecord(
                started_at=started,
                duration_s=time.monotonic() - t0,
                report=done.report,
                context_errors=dict(done.errors),
            )
        finally:
            self.running = False
        self._account(record)
        return record

    def _account(self, record: RunRecord) -> None:
        self.runs += 1
        self.records.appendleft(record)
        self._runs.labels(record.result).inc()
        self._duration.observe(record.duration_s)
        now = self._clock()
        self._last_run.set(now)
        self._last_ok.set(0 if record.report is None else 1)
        if record.report is not None:
            self._last_success.set(now)
            for p in record.report.probes:
                self._probes.labels(p.outcome.value).inc()
            fresh = CollectorRegistry()
            fill_registry(fresh, record.report, self.options.pod_pairs)
            self._report_metrics = generate_latest(fresh)

    def next_wait(self, took_s: float) -> float:
        """Seconds to the next run: the rest of the interval, plus jitter."""
        spread = random.uniform(0, self.options.jitter * self.options.interval_s)
        return max(0.0, self.options.interval_s - took_s) + spread

    async def loop(self) -> None:
        """Run until max_runs (or forever)."""
        try:
            while self.options.max_runs is None or self.runs < self.options.max_runs:
                record = await self.run_once()
                if self.options.max_runs is not None and self.runs >= self.options.max_runs:
                    break
                await asyncio.sleep(self.next_wait(record.duration_s))
        finally:
            self.stopped = True
