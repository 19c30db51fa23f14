"""`preflight`: before Mission Control, agents deployed to every context prove pod to pod on
7000/7001/8080 across clusters, the data planes to the control plane's NodePort 30600, the
control plane to every data-plane API server, and disjoint pod CIDRs; then they are removed."""

from __future__ import annotations

import dataclasses
import datetime
import time
from dataclasses import dataclass
from typing import Any

from netcheck.deploy.apply import nodeport_holder, remove_all
from netcheck.deploy.manifests import COMPONENTS, VECTOR_NODEPORT
from netcheck.diagnosis.cidrs import cidr_findings, cidr_problems
from netcheck.diagnosis.install import install_check
from netcheck.diagnosis.overlay import fold, nat_by_design, overlay_findings
from netcheck.discovery.kube import discover
from netcheck.discovery.kube_topology import preflight_topology
from netcheck.model.findings import Finding, Severity
from netcheck.workflows.contexts import (
    allow_list,
    api_servers,
    clients_for,
    denied_lines,
    manifests,
    per_context,
)
from netcheck.workflows.deploy import AgentOptions, deploy_everywhere
from netcheck.workflows.feedback import BadInput, Feedback
from netcheck.workflows.run import Probing, RunDone, RunOptions, probe_and_report


@dataclass(frozen=True, kw_only=True)
class PreflightOptions:
    control_plane: str  # the Mission Control control-plane context (serves NodePort 30600)
    keep: bool = False  # leave the agents deployed afterwards


def _nodeport_taken(ctx: str, holder: str) -> Finding:
    return Finding(
        severity=Severity.INFO,
        code="NODEPORT_TAKEN",
        summary=f"{ctx}: NodePort 30600 is taken by service {holder}; "
        "netcheck did not put its own in front of the agents",
        src_cluster=ctx,
        dst_cluster=ctx,
        ports=(30600,),
        affected_pairs=0,
        hint="if that is Mission Control's Vector aggregator, the 30600 probes check the real "
        "service as it is",
    )


async def preflight(
    kubeconfig: str,
    contexts: list[str],
    token: str,
    preflight_options: PreflightOptions,
    agents: AgentOptions,
    options: RunOptions,
    *,
    feedback: Feedback | None = None,
) -> RunDone:
    feedback = feedback or Feedback()
    control_plane = preflight_options.control_plane
    if control_plane not in contexts:
        raise BadInput(
            f"--control-plane {control_plane} is not among the chosen contexts "
            f"({', '.join(contexts)}); add --context {control_plane}"
        )
    errors: dict[str, str] = {}
    started = datetime.datetime.now(datetime.UTC)
    t0 = time.monotonic()
    notes: list[Finding] = []
    async with clients_for(kubeconfig, contexts, errors) as clients:
        found = await per_context(clients, errors, lambda cl: discover(cl))
        for line in denied_lines(found):
            feedback.say(line)
        servers = api_servers(found, agents.api_server_overrides)
        allow = allow_list(found, servers)
        rendered: dict[str, list[dict[str, Any]]] = {}
        # who holds NodePort 30600 (list services): a context that may not ask is a problem
        holders = await per_context(
            {c: clients[c] for c in found if c == control_plane}, errors, nodeport_holder
        )
        for ctx in found:
            if ctx in errors:
                continue
            comps = agents.components
            if ctx == control_plane:
                if holders[ctx]:
                    notes.append(_nodeport_taken(ctx, holders[ctx]))
                else:
                    comps += (VECTOR_NODEPORT,)
            rendered[ctx] = manifests(agents.manifests, token, allow, agents.image, comps)
        try:
            await deploy_everywhere(clients, errors, rendered, agents.timeout_s, feedback)
            live = {c: clients[c] for c in found if c not in errors}
            deployed = await per_context(live, errors, lambda cl: discover(cl))
            kt = preflight_topology(
                [deployed[c] for c in contexts if c in deployed],
                control_plane=control_plane,
                api_servers={c: a for c, a in servers.items() if c != control_plane},
            )
            report = await probe_and_report(
                Probing(
                    kt=kt,
                    clients={c: clients[c] for c in deployed},
                    tokens={c: token for c in deployed},
                    options=options,
                    feedback=feedback,
                    control_plane=control_plane,
                    extra_findings=(
                        *notes,
                        *install_check(
                            list(found.values()), control_plane, installing=True
                        ).findings,
                        *cidr_findings(list(found.values())),
                        *overlay_findings(list(found.values())),
                    ),
                    problems=(
                        *(errors[c] for c in contexts if c in errors),
                        *cidr_problems(list(found.values())),
                    ),
                    started=started,
                    t0=t0,
                )
            )
        finally:
            if not preflight_options.keep:
                every = manifests(agents.manifests, token, (), None, COMPONENTS)
                # a failed clean-up is said, not swallowed: agents would stay behind
                left: dict[str, str] = {}
                await per_context(
                    {c: clients[c] for c in rendered}, left, lambda cl: remove_all(cl, every)
                )
                for message in left.values():
                    feedback.say(f"error: agents not removed: {message}; run `netcheck undeploy`")
    planes = list(found.values())
    report = dataclasses.replace(
        report, findings=fold(report.findings, planes), nat_by_design=nat_by_design(planes)
    )
    return RunDone(report=report, errors=errors)
