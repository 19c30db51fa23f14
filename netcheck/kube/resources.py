"""The API paths of the kinds netcheck reads and writes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Kind:
    kind: str
    api_version: str
    plural: str
    namespaced: bool = True

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


KINDS = {
    k.kind: k
    for k in (
        Kind(kind="Namespace", api_version="v1", plural="namespaces", namespaced=False),
        Kind(kind="Node", api_version="v1", plural="nodes", namespaced=False),
        Kind(kind="Pod", api_version="v1", plural="pods"),
        Kind(kind="Service", api_version="v1", plural="services"),
        Kind(kind="Secret", api_version="v1", plural="secrets"),
        Kind(kind="ConfigMap", api_version="v1", plural="configmaps"),
        Kind(kind="ServiceAccount", api_version="v1", plural="serviceaccounts"),
        Kind(kind="Event", api_version="v1", plural="events"),
        Kind(kind="DaemonSet", api_version="apps/v1", plural="daemonsets"),
        Kind(kind="EndpointSlice", api_version="discovery.k8s.io/v1", plural="endpointslices"),
        Kind(kind="NetworkPolicy", api_version="networking.k8s.io/v1", plural="networkpolicies"),
        Kind(
            kind="ServiceCIDR",
            api_version="networking.k8s.io/v1",
            plural="servicecidrs",
            namespaced=False,
        ),
        Kind(kind="Role", api_version="rbac.authorization.k8s.io/v1", plural="roles"),
        Kind(kind="RoleBinding", api_version="rbac.authorization.k8s.io/v1", plural="rolebindings"),
        Kind(
            kind="ClusterRole",
            api_version="rbac.authorization.k8s.io/v1",
            plural="clusterroles",
            namespaced=False,
        ),
        Kind(
            kind="ClusterRoleBinding",
            api_version="rbac.authorization.k8s.io/v1",
            plural="clusterrolebindings",
            namespaced=False,
        ),
        Kind(
            kind="ClientConfig", api_version="config.k8ssandra.io/v1beta1", plural="clientconfigs"
        ),
        Kind(kind="StatefulSet", api_version="apps/v1", plural="statefulsets"),
        Kind(
            kind="CustomResourceDefinition",
            api_version="apiextensions.k8s.io/v1",
            plural="customresourcedefinitions",
            namespaced=False,
        ),
        Kind(
            kind="StorageClass",
            api_version="storage.k8s.io/v1",
            plural="storageclasses",
            namespaced=False,
        ),
        # the CNI's own objects (discovery/cni.py)
        Kind(
            kind="IPPool",
            api_version="crd.projectcalico.org/v1",
            plural="ippools",
            namespaced=False,
        ),
        Kind(kind="CiliumNode", api_version="cilium.io/v2", plural="ciliumnodes", namespaced=False),
        Kind(
            kind="CiliumPodIPPool",
            api_version="cilium.io/v2alpha1",
            plural="ciliumpodippools",
            namespaced=False,
        ),
        Kind(
            kind="ENIConfig",
            api_version="crd.k8s.amazonaws.com/v1alpha1",
            plural="eniconfigs",
            namespaced=False,
        ),
        # Submariner (discovery/overlay.py)
        Kind(kind="Submariner", api_version="submariner.io/v1alpha1", plural="submariners"),
        Kind(kind="Gateway", api_version="submariner.io/v1", plural="gateways"),
        Kind(
            kind="CassandraDatacenter",
            api_version="cassandra.datastax.com/v1beta1",
            plural="cassandradatacenters",
        ),
        Kind(
            kind="MissionControlCluster",
            api_version="missioncontrol.datastax.com/v1beta2",
            plural="missioncontrolclusters",
        ),
    )
}


def kind_of(obj: dict[str, object]) -> Kind:
    kind = str(obj.get("kind", ""))
    if kind not in KINDS:
        raise KeyError(kind)
    return KINDS[kind]
