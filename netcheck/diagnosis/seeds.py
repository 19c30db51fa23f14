"""What a node's log says about finding its cluster at start-up, and about gossip members
that were never part of the ring:

- SEED_UNRESOLVED: "Seed provider couldn't lookup host NAME". In Kubernetes the seeds are
  Services (cass-operator's `<cluster>-seed-service`, `<cluster>-<dc>-additional-seed-service`);
  a headless Service without ready endpoints has no DNS answer. An error when the node then
  stopped ("The seed provider lists no seeds"), a warning while other seeds resolved.
- SEED_STARTED_ALONE: a seed reached no other seed and went on alone ("continuing anyway
  since node is in its own seed list"): right for the first node of a new cluster; for a seed
  of a second region it is how a cluster splits in two.
- GOSSIP_FAT_CLIENT_REMOVED: an endpoint that never joined the ring (Stargate, a failed
  bootstrap, sstableloader) went silent and gossip dropped it.
"""

from __future__ import annotations

from netcheck.diagnosis.findings import group_text
from netcheck.model.findings import Finding, Severity
from netcheck.model.gossip import STORAGE_PORT, Observation, Signature


def seed_findings(obs: list[Observation]) -> list[Finding]:
    out = []
    for o in obs:
        logs = o.logs or ()
        stopped = any(s.signature is Signature.NO_SEEDS for s in logs)
        names = sorted({s.peer for s in logs if s.signature is Signature.SEED_UNRESOLVED})
        if names or stopped:
            count = sum(s.count for s in logs if s.signature is Signature.SEED_UNRESOLVED)
            said = (
                f"{o.observer} could not resolve its seed(s) {group_text(names, 'names')} "
                f"({count}x)" + (": no seed was left and it stopped at start-up" if stopped else "")
                if names
                else f"{o.observer} stopped at start-up: its seed provider lists no seeds"
            )
            out.append(
                Finding(
                    severity=Severity.ERROR if stopped else Severity.WARNING,
                    code="SEED_UNRESOLVED",
                    summary=said,
                    src_cluster="*",
                    dst_cluster="*",
                    ports=(STORAGE_PORT,),
                    affected_pairs=max(1, len(names)),
                    hint="in Kubernetes a seed Service only resolves once it has ready "
                    "endpoints: `kubectl get endpointslices -l "
                    "kubernetes.io/service-name=NAME` in the database namespace; across "
                    "clusters the name must resolve in this cluster's DNS too (additional "
                    "seeds as addresses, or a DNS that serves the other cluster's Services)",
                    src_scope=o.observer,
                    location="DNS of the seed names" if names else "",
                )
            )
        for s in logs:
            if s.signature is Signature.STARTED_ALONE:
                out.append(
                    Finding(
                        severity=Severity.INFO,
                        code="SEED_STARTED_ALONE",
                        summary=f"{o.observer} reached no other seed at start-up and went on "
                        f"as its own seed ({s.count}x, last {s.last or 'unknown'})",
                        src_cluster="*",
                        dst_cluster="*",
                        ports=(STORAGE_PORT,),
                        affected_pairs=1,
                        hint="normal for the first node of a new cluster; if the cluster "
                        "already had nodes (another region), this node formed a cluster of "
                        "its own: check that it lists the other region's seeds and reaches "
                        "them on 7000",
                        src_scope=o.observer,
                    )
                )
        removed = [s for s in logs if s.signature is Signature.FAT_CLIENT_REMOVED]
        if removed:
            who = group_text([s.peer for s in removed], "endpoints")
            times = sum(s.count for s in removed)
            out.append(
                Finding(
                    severity=Severity.INFO,
                    code="GOSSIP_FAT_CLIENT_REMOVED",
                    summary=f"{o.observer} dropped {who} from gossip ({times}x): members that "
                    "never joined the ring went silent",
                    src_cluster="*",
                    dst_cluster="*",
                    ports=(STORAGE_PORT,),
                    affected_pairs=len(removed),
                    hint="Stargate or a bootstrap that failed, usually; if it was a database "
                    "node, it could not finish joining: read its log",
                    src_scope=o.observer,
                    dst_scope=who,
                )
            )
    return out
