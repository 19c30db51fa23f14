"""Kubeconfig: list contexts and turn one into connection parameters for the async client."""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml

from netcheck.kube.errors import KubeconfigError
from netcheck.model.text import YamlLimitError, load_yaml, one_line

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
    cluster: str = ""  # the context's cluster entry in the kubeconfig (its name there)
    # an exec plugin's credentials expire during a long run: this runs the plugin again and
    # gives the new headers (None: static credentials, nothing to refresh)
    refresh: Callable[[], tuple[tuple[str, str], ...]] | None = field(default=None, compare=False)

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


MAX_KUBECONFIG_BYTES = 16 << 20
BROKEN = "__netcheck_broken__"  # on an entry of the wrong shape: what is wrong with it
_PATH_KEYS = {
    "clusters": ("cluster", ("certificate-authority",)),
    "users": ("user", ("client-certificate", "client-key", "tokenFile")),
}
_STRING_KEYS = {
    "clusters": ("server", "certificate-authority", "certificate-authority-data"),
    "users": (
        "token",
        "tokenFile",
        "username",
        "password",
        "client-certificate",
        "client-certificate-data",
        "client-key",
        "client-key-data",
    ),
}
# keys under a user whose values are credentials: never printed, whatever error quotes them
_SECRET_KEY = re.compile(r"token|password|secret|key-data|credential|cookie", re.IGNORECASE)


@dataclass(frozen=True, kw_only=True)
class Kubeconfig:
    """The merged kubeconfig files: parsed once, however many contexts are used."""

    path: str
    doc: dict[str, Any]
    secrets: tuple[str, ...]  # every credential value in it, longest first

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "<redacted>")
        return text


def _read_one(name: str, context: str) -> dict[str, Any]:
    file = os.path.expanduser(name)
    if not os.path.exists(file):
        raise KubeconfigError(
            context, f"kubeconfig {name} does not exist; pass --kubeconfig or set KUBECONFIG"
        )
    try:
        with open(file, "rb") as f:
            data = f.read(MAX_KUBECONFIG_BYTES + 1)
    except OSError as exc:
        raise KubeconfigError(
            context, f"kubeconfig {name} cannot be read ({exc.strerror}); check its permissions"
        ) from None
    if len(data) > MAX_KUBECONFIG_BYTES:
        raise KubeconfigError(context, f"kubeconfig {name} is larger than 16 MiB; is it one?")
    try:
        doc = load_yaml(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise KubeconfigError(
            context, f"kubeconfig {name} is not UTF-8 text (byte {exc.start}); fix the file"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = str(exc) if isinstance(exc, YamlLimitError) else "not valid YAML"
        raise KubeconfigError(
            context, f"kubeconfig {name}{where}: {problem}; fix the file"
        ) from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise KubeconfigError(context, f"kubeconfig {name} is not a mapping; fix the file")
    base = os.path.dirname(os.path.abspath(file))
    # An entry of the wrong shape fails only the contexts that use it (kubectl ignores the
    # others): the problem is kept on the entry and said when a context needs it.
    for section, (body_key, keys) in {**_PATH_KEYS, "contexts": ("context", ())}.items():
        for i, item in enumerate(_named_list(doc, section, name, context)):
            where = f"kubeconfig {name}: {section}[{i}] ({item['name']})"
            body = item.get(body_key)
            if not isinstance(body, dict):
                item[BROKEN] = f"{where} has no '{body_key}' mapping; fix the file"
                continue
            wrong = [k for k in _STRING_KEYS.get(section, ()) if k in body]
            wrong = [k for k in wrong if not isinstance(body[k], str)]
            if wrong:
                item[BROKEN] = f"{where}: '{wrong[0]}' must be a string; fix the file"
                continue
            for key in keys:  # relative paths are relative to the file that names them
                value = body.get(key)
                if isinstance(value, str) and value and not os.path.isabs(value):
                    body[key] = os.path.join(base, value)
    return doc


def _named_list(doc: dict[str, Any], section: str, name: str, context: str) -> list[Any]:
    items = doc.get(section) or []
    if not isinstance(items, list):
        raise KubeconfigError(context, f"kubeconfig {name}: '{section}' is not a list; fix it")
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise KubeconfigError(
                context, f"kubeconfig {name}: {section}[{i}] has no name; fix the file"
            )
    return items


def _secrets(doc: dict[str, Any]) -> tuple[str, ...]:
    found: set[str] = set()

    def walk(value: Any, secret: bool) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, secret or bool(_SECRET_KEY.search(str(k))))
            if secret is False and "value" in value and "name" in value:  # exec env entries
                walk(value["value"], True)
        elif isinstance(value, list):
            for v in value:
                walk(v, secret)
        elif secret and isinstance(value, str | int) and len(str(value)) >= 4:
            found.add(str(value))

    for user in doc.get("users") or []:
        walk(user.get("user"), False)
    return tuple(sorted(found, key=len, reverse=True))


def load_kubeconfig(path: str) -> Kubeconfig:
    """kubectl's merge of the files in path: the first file that names an entry (or the
    current-context) wins. Load it once and pass it on: every context reads the same copy."""
    merged: dict[str, Any] = {"clusters": [], "users": [], "contexts": []}
    seen: dict[str, set[str]] = {k: set() for k in merged}
    for one in path.split(os.pathsep):
        if not one:
            continue
        doc = _read_one(one, "-")
        for section in seen:
            for item in doc.get(section) or []:
                if item["name"] not in seen[section]:
                    seen[section].add(item["name"])
                    merged[section].append(item)
        if "current-context" not in merged and doc.get("current-context"):
            merged["current-context"] = str(doc["current-context"])
    return Kubeconfig(path=path, doc=merged, secrets=_secrets(merged))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return one_line(text[0], 200) if text else type(exc).__name__


def list_contexts(source: str | Kubeconfig) -> list[ContextEntry]:
    kc = source if isinstance(source, Kubeconfig) else load_kubeconfig(source)
    current = kc.doc.get("current-context", "")
    out = []
    for ctx in kc.doc["contexts"]:
        body = ctx["context"] if isinstance(ctx.get("context"), dict) else {}
        out.append(
            ContextEntry(
                name=ctx["name"],
                cluster=str(body.get("cluster", "")),
                user=str(body.get("user", "")),
                namespace=str(body.get("namespace", "") or ""),
                current=ctx["name"] == current,
            )
        )
    return out


def connection(source: str | Kubeconfig, context: str) -> Connection:
    """Resolve a context: server URL, CA, client certificate or token (exec plugins run here).

    source: a kubeconfig path, or one loaded with load_kubeconfig (for many contexts)."""
    try:
        kc = source if isinstance(source, Kubeconfig) else load_kubeconfig(source)
    except KubeconfigError as exc:
        raise KubeconfigError(context, str(exc).removeprefix("context -: ")) from None
    try:
        conn = _connection(kc, context)
    except KubeconfigError as exc:
        # whatever the kubernetes library or ssl quoted, no credential leaves this function
        message = kc.redact(str(exc).removeprefix(f"context {context}: "))
        raise KubeconfigError(context, message) from None
    if not _uses_exec_plugin(kc.doc, context):
        return conn

    def refresh() -> tuple[tuple[str, str], ...]:
        try:
            return _connection(kc, context).headers
        except KubeconfigError as exc:
            message = kc.redact(str(exc).removeprefix(f"context {context}: "))
            raise KubeconfigError(context, message) from None

    return dataclasses.replace(conn, refresh=refresh)


def _uses_exec_plugin(doc: dict[str, Any], context: str) -> bool:
    ctx = next((c for c in doc["contexts"] if c["name"] == context), None)
    user = (ctx or {}).get("context", {}).get("user") if isinstance(ctx, dict) else None
    entry: Any = next((u for u in doc["users"] if u.get("name") == user), {})
    body = entry.get("user") if isinstance(entry, dict) else None
    return isinstance(body, dict) and isinstance(body.get("exec"), dict)


def _connection(kc: Kubeconfig, context: str) -> Connection:
    from kubernetes.client import Configuration
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import KubeConfigLoader

    path = kc.path
    names = [c["name"] for c in kc.doc["contexts"]]
    if context not in names:
        known = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "") or "none"
        raise KubeconfigError(context, f"no such context in {path} (known: {known}); fix --context")
    cfg = Configuration()
    with tempfile.TemporaryDirectory(prefix="netcheck-kube-") as tmp:
        # certificate data is written to tmp, read below, then removed with it
        try:
            loader = KubeConfigLoader(  # type: ignore[no-untyped-call]
                config_dict=_only(kc.doc, context), active_context=context, temp_file_path=tmp
            )
            loader.load_and_set(cfg)  # type: ignore[no-untyped-call]
        except ConfigException as exc:
            raise KubeconfigError(
                context, f"kubeconfig {path}: {_one_line(exc)}; fix the file"
            ) from None
        except Exception as exc:  # exec plugins, file errors, and entries of the wrong shape
            raise KubeconfigError(
                context,
                f"cannot load credentials ({type(exc).__name__}: {_one_line(exc)}); "
                "check the user entry (token, client certificate or exec plugin)",
            ) from None
        server = str(cfg.host or "")
        if not server.startswith(("https://", "http://")):
            raise KubeconfigError(
                context, f"server {server[:100]!r} is not an http(s) URL; fix the cluster entry"
            )
        tls: ssl.SSLContext | None = None
        if server.startswith("https://"):
            tls = _tls(context, cfg)
    headers: list[tuple[str, str]] = []
    token = cfg.api_key.get("BearerToken") or cfg.api_key.get("authorization")
    if token:
        headers.append(("Authorization", token if " " in token else f"Bearer {token}"))
    elif cfg.username:
        headers.append(("Authorization", str(cfg.get_basic_auth_token())))
    entry = next(c for c in kc.doc["contexts"] if c["name"] == context).get("context")
    return Connection(
        context=context,
        server=server.rstrip("/"),
        headers=tuple(headers),
        ssl=tls,
        cluster=str(entry.get("cluster", "")) if isinstance(entry, dict) else "",
    )


def _only(doc: dict[str, Any], context: str) -> dict[str, Any]:
    """The context with its own cluster and user: what one connection needs, copied; a
    KubeconfigError when one of them has the wrong shape."""
    ctx = next(c for c in doc["contexts"] if c["name"] == context)
    if BROKEN in ctx:
        raise KubeconfigError(context, ctx[BROKEN])
    out: dict[str, Any] = {"contexts": [ctx], "current-context": context}
    for section, key in (("clusters", "cluster"), ("users", "user")):
        name = ctx["context"].get(key)
        out[section] = [e for e in doc[section] if e["name"] == name][:1]
        for e in out[section]:
            if BROKEN in e:
                raise KubeconfigError(context, e[BROKEN])
    return copy.deepcopy(out)


def _tls(context: str, cfg: Any) -> ssl.SSLContext:
    try:
        tls = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
    except (ssl.SSLError, OSError, ValueError):
        raise KubeconfigError(
            context,
            "the cluster's certificate-authority(-data) is not a PEM certificate; "
            "fix the cluster entry (base64 of the CA's PEM)",
        ) from None
    if not cfg.verify_ssl:
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
    if cfg.cert_file and cfg.key_file:
        try:
            tls.load_cert_chain(cfg.cert_file, cfg.key_file)
        except (ssl.SSLError, OSError, ValueError):
            raise KubeconfigError(
                context,
                "the user's client certificate and key cannot be loaded (not PEM, or the key "
                "does not belong to the certificate); fix client-certificate(-data) and "
                "client-key(-data)",
            ) from None
    return tls
