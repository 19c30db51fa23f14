"""One size of the scale benchmark (section o of `make bench`), in a process of its own so
that its peak memory is its own: `python -m bench.scale PODS` prints one JSON line with the CPU
time and the peak resident memory after each stage, from the plan to every output.

The probing itself is not measured here (the agents' side is sections b, g and p): the
agents' answers are those of bench/meshes.py's compound mesh, made before the clock starts;
the results stage is the table the collector fills from them, row by row.
"""

from __future__ import annotations

import io
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

from bench import meshes


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(pods: int) -> dict[str, Any]:
    from rich.console import Console

    from netcheck.collector.plan import plan_mesh
    from netcheck.diagnosis.findings import diagnose
    from netcheck.model.report import RunReport
    from netcheck.reports import html, json_report, junit, prometheus, terminal

    stages: list[dict[str, Any]] = []
    state: dict[str, Any] = {}

    def stage(name: str, fn: Callable[[], Any]) -> None:
        t0 = time.process_time()
        state[name] = fn()
        stages.append({"stage": name, "cpu_s": time.process_time() - t0, "peak_mib": _peak_mib()})

    topo = meshes.topology(pods)
    stage("plan", lambda: plan_mesh(topo))
    answers = meshes.answers(topo)  # the agents' part, one byte a probe: not netcheck's cost
    stage("results", lambda: meshes.table(state["plan"], answers))
    results = state["results"]
    stage("diagnosis", lambda: diagnose(topo, results))
    report = RunReport(
        topology=topo,
        probes=results,
        findings=state["diagnosis"],
        started_at="2026-12-01T00:00:00+00:00",
        duration_s=1.0,
    )
    stage("verdict", lambda: report.verdict)
    with open(os.devnull, "w", encoding="utf-8") as null:
        stage("json", lambda: json_report.write_json(report, null))
        stage("junit", lambda: null.write(junit.to_junit(report)))
        stage("prometheus", lambda: null.write(prometheus.to_exposition(report)))
        stage("html", lambda: null.write(html.to_html(report)))
        stage(
            "terminal",
            lambda: terminal.render(report, Console(file=io.StringIO(), width=120)),
        )
    return {
        "pods": sum(1 for ep in topo.endpoints if ep.has_agent),
        "probes": len(results),
        "findings": len(state["diagnosis"]),
        "codes": sorted(f.code for f in state["diagnosis"]),
        "stages": stages,
    }


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]))))
