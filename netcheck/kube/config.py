"""Kubeconfig: list contexts and turn one into connection parameters for the async client."""

from __future__ import annotations

import os
import ssl
import tempfile
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from netcheck.kube.errors import KubeconfigError

DEFAULT_KUBECONFIG = "~/.kube/config"


@dataclass(frozen=True, kw_only=True)
class ContextEntry:
    name: str
    cluster: str
    user: str
    namespace: str
    current: bool


@dataclass(frozen=True, kw_only=True)
class Connection:
    """What the async client needs to talk to one context's API server."""

    context: str
    server: str
    headers: tuple[tuple[str, str], ...]
    ssl: ssl.SSLContext | None

    @property
    def host(self) -> str:
        return urlsplit(self.server).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.server)
        return parts.port or (443 if parts.scheme == "https" else 80)


def kubeconfig_path(explicit: str | None) -> str:
    """--kubeconfig, else $KUBECONFIG (may list several files), else ~/.kube/config."""
    if explicit:
        return explicit
    env = os.environ.get("KUBECONFIG", "")
    return env if env else os.path.expanduser(DEFAULT_KUBECONFIG)


def _load(path: str, context: str | None = None) -> Any:
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import _get_kube_config_loader

    for one in path.split(os.pathsep):
        if not os.path.exists(os.path.expanduser(one)):
            raise KubeconfigError(
                context or "-",
                f"kubeconfig {one} does not exist; pass --kubeconfig or set KUBECONFIG",
            )
    try:
        return _get_kube_config_loader(  # type: ignore[no-untyped-call]
            filename=path, active_context=context, persist_config=False
        )
    except ConfigException as exc:
        raise KubeconfigError(context or "-", _kubeconfig_problem(path, exc)) from None
    except Exception as exc:  # yaml and file errors raised by the loader
        raise KubeconfigError(
            context or "-", f"kubeconfig {path} cannot be read ({_one_line(exc)}); fix the file"
        ) from None


def _kubeconfig_problem(path: str, exc: Exception) -> str:
    text = _one_line(exc)
    if "Expected key current-context" in text or "context" in text.lower():
        return f"kubeconfig {path}: {text}; pick one of `netcheck contexts`"
    return f"kubeconfig {path}: {text}; fix the file"


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def list_contexts(path: str) -> list[ContextEntry]:
    loader = _load(path)
    try:
        current = loader.current_context.get("name", "")
    except Exception:
        current = ""
    out = []
    for ctx in loader.list_contexts():
        body = ctx.get("context") or {}
        out.append(
            ContextEntry(
                name=str(ctx.get("name", "")),
                cluster=str(body.get("cluster", "")),
                user=str(body.get("user", "")),
                namespace=str(body.get("namespace", "") or ""),
                current=ctx.get("name") == current,
            )
        )
    return out


def connection(path: str, context: str) -> Connection:
    """Resolve a context: server URL, CA, client certificate or token (exec plugins run here)."""
    from kubernetes.client import Configuration
    from kubernetes.config.config_exception import ConfigException

    names = [c.name for c in list_contexts(path)]
    if context not in names:
        known = ", ".join(names) or "none"
        raise KubeconfigError(context, f"no such context in {path} (known: {known}); fix --context")
    loader = _load(path, context)
    cfg = Configuration()
    with tempfile.TemporaryDirectory(prefix="netcheck-kube-") as tmp:
        loader._temp_file_path = tmp  # certificate data is written here, read below, then removed
        try:
            loader.load_and_set(cfg)
        except ConfigException as exc:
            raise KubeconfigError(context, _kubeconfig_problem(path, exc)) from None
        except Exception as exc:  # exec plugins and file errors
            raise KubeconfigError(
                context,
                f"cannot load credentials ({_one_line(exc)}); "
                "check the user entry (token, client certificate or exec plugin)",
            ) from None
        server = str(cfg.host or "")
        if not server.startswith(("https://", "http://")):
            raise KubeconfigError(
                context, f"server {server!r} is not an http(s) URL; fix the cluster entry"
            )
        tls: ssl.SSLContext | None = None
        if server.startswith("https://"):
            tls = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
            if not cfg.verify_ssl:
                tls.check_hostname = False
                tls.verify_mode = ssl.CERT_NONE
            if cfg.cert_file and cfg.key_file:
                tls.load_cert_chain(cfg.cert_file, cfg.key_file)
    headers: list[tuple[str, str]] = []
    token = cfg.api_key.get("BearerToken") or cfg.api_key.get("authorization")
    if token:
        headers.append(("Authorization", token if " " in token else f"Bearer {token}"))
    elif cfg.username:
        headers.append(("Authorization", str(cfg.get_basic_auth_token())))
    return Connection(context=context, server=server.rstrip("/"), headers=tuple(headers), ssl=tls)
