"""The lab kubelet's pod network: each pod's network namespace behind its node's, wired as a
CNI plugin wires it (Calico's shape).

The pod's eth0 has its /32 and a default route to a link-local gateway (169.254.1.1) that the
node's end of the veth answers; the node routes the pod's address to that veth and answers ARP
for it on its own eth0 (proxy ARP, set up with the node: lab/build.py), so the cluster reaches
the pod through its node and the pod's packets leave with its own address, as in a real
cluster. The namespaces carry the lab's prefix, so `lab down` removes them with their
processes, also after a crash.
"""

from __future__ import annotations

from netcheck.lab import net

GATEWAY = "169.254.1.1"  # the node's end of every pod's veth, as Calico's


def namespace_of(uid: str) -> str:
    """A pod's network namespace (under the lab's prefix)."""
    return f"{net.PREFIX}pod-{uid[:8]}"


def make(node_ns: str, uid: str, pod_ip: str, node_address: str) -> str:
    """The pod's namespace, wired to its node's; its name. LabError (nothing left behind) when
    a step fails. node_address: the source of the node's own packets to the pod."""
    pod_ns, link = namespace_of(uid), f"vp{uid[:8]}"
    try:
        net.add_namespace(pod_ns)
        veth = ["link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", pod_ns]
        net.ip(node_ns, *veth)
        net.ip(node_ns, "addr", "add", f"{GATEWAY}/32", "dev", link)
        net.ip(node_ns, "link", "set", link, "up")
        net.ip(node_ns, "route", "add", f"{pod_ip}/32", "dev", link, "src", node_address)
        net.ip(pod_ns, "addr", "add", f"{pod_ip}/32", "dev", "eth0")
        net.ip(pod_ns, "link", "set", "eth0", "up")
        net.ip(pod_ns, "route", "add", GATEWAY, "dev", "eth0", "scope", "link")
        net.ip(pod_ns, "route", "add", "default", "via", GATEWAY, "dev", "eth0")
    except net.LabError:
        remove(pod_ns)
        raise
    return pod_ns


def remove(ns: str) -> None:
    """The pod's namespace, its processes and its veth pair."""
    net.kill_namespace_processes(ns, grace_s=1.0)
    net.run("ip", "netns", "del", ns, check=False)
