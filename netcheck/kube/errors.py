"""Errors of the Kubernetes API, each a one-line message that names the context and the fix.

KubeError
 ├── KubeconfigError     the kubeconfig file cannot be read or has no such context
 ├── ApiUnreachable      the API server does not answer (DNS, TCP, TLS)
 ├── Unauthorized        401: credentials missing or expired
 ├── Forbidden           403: RBAC lacks a verb on a resource in a namespace
 ├── NotFound            404
 ├── Conflict            409 (already exists)
 └── ApiFailed           any other non-2xx answer
"""

from __future__ import annotations

from netcheck.model.text import one_line

USER_RBAC = "probes/rbac/netcheck-user.yaml"


class KubeError(Exception):
    """A Kubernetes problem: the message is one line, names the context and says what to do."""

    def __init__(self, context: str, message: str) -> None:
        # names and values quoted from files and servers must not break the line
        super().__init__(one_line(f"context {context}: {message}", limit=1000))
        self.context = context
        self.detail = one_line(message, limit=1000)  # without the context, for a line naming it


class KubeconfigError(KubeError):
    pass


class ApiUnreachable(KubeError):
    pass


class Unauthorized(KubeError):
    pass


class Forbidden(KubeError):
    def __init__(self, context: str, verb: str, resource: str, namespace: str | None) -> None:
        where = f"in namespace {namespace}" if namespace else "cluster-wide"
        super().__init__(
            context,
            f"RBAC forbids '{verb}' on '{resource}' {where}; grant it to your user "
            f"(the ClusterRole in {USER_RBAC} lists everything netcheck needs)",
        )
        self.verb = verb
        self.resource = resource
        self.namespace = namespace


class NotFound(KubeError):
    pass


class Conflict(KubeError):
    pass


class ApiFailed(KubeError):
    def __init__(self, context: str, message: str, status: int) -> None:
        super().__init__(context, message)
        self.status = status
