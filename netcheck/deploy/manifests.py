"""Read probes/kubernetes (a kustomize base plus components) into the objects deploy applies.

Only what our kustomization uses is understood: `resources`, `secretGenerator` with `files`,
`generatorOptions` labels, and components. A test checks the result equals `kubectl kustomize`.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HOST_NETWORK = "host-network"
VECTOR_NODEPORT = "vector-nodeport"
ALLOW_CONFIGMAP = "netcheck-agent"
TOKEN_SECRET = "netcheck-agent-token"


class ManifestError(ValueError):
    """A manifest file that cannot be used: one line naming the file and the fix."""


def default_root() -> Path:
    env = os.environ.get("NETCHECK_MANIFESTS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "probes" / "kubernetes"


@dataclass(frozen=True, kw_only=True)
class DeployOptions:
    token: str
    allow: tuple[str, ...] = ()
    image: str | None = None
    components: tuple[str, ...] = ()  # host-network, vector-nodeport


def _read_yaml(path: Path) -> list[dict[str, Any]]:
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    except OSError as exc:
        raise ManifestError(
            f"{path}: cannot read it ({exc.strerror}); pass --manifests DIR"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ManifestError(f"{path}:{where}: not valid YAML; fix the file") from None
    for d in docs:
        if (
            not isinstance(d, dict)
            or not d.get("kind")
            or not (d.get("metadata") or {}).get("name")
        ):
            raise ManifestError(f"{path}: a document without kind or metadata.name; fix the file")
    return docs


def _kustomization(directory: Path) -> dict[str, Any]:
    path = directory / "kustomization.yaml"
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ManifestError(
            f"{path}: cannot read it ({exc.strerror}); pass --manifests DIR"
        ) from None
    except yaml.YAMLError:
        raise ManifestError(f"{path}: not valid YAML; fix the file") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("resources"), list):
        raise ManifestError(f"{path}: no 'resources' list; fix the kustomization")
    return doc


def load_manifests(root: Path, options: DeployOptions) -> list[dict[str, Any]]:
    base = root / "base"
    kust = _kustomization(base)
    objects = [d for r in kust["resources"] for d in _read_yaml(base / str(r))]
    labels = (kust.get("generatorOptions") or {}).get("labels") or {}
    for gen in kust.get("secretGenerator") or []:
        data = {}
        for f in gen.get("files") or []:
            if Path(str(f)).name != "token":
                raise ManifestError(
                    f"{base / 'kustomization.yaml'}: secretGenerator file {f!r} is not "
                    "understood; netcheck fills only 'token'"
                )
            data["token"] = base64.b64encode(options.token.encode()).decode()
        secret: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": gen["name"], "namespace": gen.get("namespace", "netcheck")},
            "type": gen.get("type", "Opaque"),
            "data": data,
        }
        if labels:
            secret["metadata"]["labels"] = dict(labels)
        objects.append(secret)
    for name in options.components:
        comp = root / "components" / name
        if not comp.is_dir():
            raise ManifestError(
                f"{comp}: no such component; known: {HOST_NETWORK}, {VECTOR_NODEPORT}"
            )
        objects.extend(d for r in _kustomization(comp)["resources"] for d in _read_yaml(comp / r))
    for obj in objects:
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == ALLOW_CONFIGMAP:
            obj["data"] = {"allow": "".join(f"{c}\n" for c in options.allow)}
        if obj["kind"] == "DaemonSet" and options.image:
            for c in obj["spec"]["template"]["spec"]["containers"]:
                c["image"] = options.image
    return objects


def to_yaml(objects: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False)
