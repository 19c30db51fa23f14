"""Read probes/kubernetes (a kustomize base plus components) into the objects deploy applies.

Only what our kustomization uses is understood: `resources`, `secretGenerator` with `files`,
`generatorOptions` labels, and components with `resources` and JSON 6902 `patches` (add and
replace, targeted by kind and name). A test checks the result equals `kubectl kustomize`.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from netcheck.bundled import top_level

HOST_NETWORK = "host-network"
VECTOR_NODEPORT = "vector-nodeport"
RAW_PROBES = "raw-probes"
COMPONENTS = (HOST_NETWORK, VECTOR_NODEPORT, RAW_PROBES)
ALLOW_CONFIGMAP = "netcheck-agent"
TOKEN_SECRET = "netcheck-agent-token"


CONFIG_ANNOTATION = "netcheck.io/config-sha256"


class ManifestError(ValueError):
    """A manifest file that cannot be used: one line naming the file and the fix."""


def default_root() -> Path:
    """probes/kubernetes: $NETCHECK_MANIFESTS, else the checkout's, else the wheel's copy."""
    return top_level("NETCHECK_MANIFESTS", "probes", "kubernetes")


@dataclass(frozen=True, kw_only=True)
class DeployOptions:
    token: str
    allow: tuple[str, ...] = ()
    image: str | None = None
    components: tuple[str, ...] = ()  # of COMPONENTS


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
    if not isinstance(doc, dict) or not isinstance(doc.get("resources", doc.get("patches")), list):
        raise ManifestError(f"{path}: no 'resources' or 'patches' list; fix the kustomization")
    return doc


def _apply_patch(objects: list[dict[str, Any]], comp: Path, patch: Any) -> None:
    where = comp / "kustomization.yaml"
    if not isinstance(patch, dict) or not isinstance(patch.get("target"), dict):
        raise ManifestError(f"{where}: a patch needs 'path' and 'target'; fix the kustomization")
    path = comp / str(patch.get("path"))
    try:
        ops = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        raise ManifestError(f"{path}: cannot read it as YAML; fix the file") from None
    if not isinstance(ops, list):
        raise ManifestError(f"{path}: a JSON 6902 patch is a list of operations; fix the file")
    target = patch["target"]
    for obj in objects:
        if obj["kind"] == target.get("kind") and obj["metadata"]["name"] == target.get("name"):
            for op in ops:
                _json6902(obj, op, path)


def _json6902(obj: dict[str, Any], op: Any, path: Path) -> None:
    if not isinstance(op, dict) or op.get("op") not in ("add", "replace"):
        raise ManifestError(f"{path}: only 'add' and 'replace' operations are understood")
    parts = [p.replace("~1", "/").replace("~0", "~") for p in str(op.get("path")).split("/")[1:]]
    node: Any = obj
    try:
        for key in parts[:-1]:
            node = node[int(key)] if isinstance(node, list) else node[key]
        last = parts[-1]
        if isinstance(node, list):
            node.insert(len(node) if last == "-" else int(last), op["value"])
        elif op["op"] == "replace" and last not in node:
            raise KeyError(last)
        else:
            node[last] = op["value"]
    except (KeyError, IndexError, ValueError, TypeError):
        raise ManifestError(
            f"{path}: {op.get('op')} {op.get('path')} does not fit the target; fix the patch"
        ) from None


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
            raise ManifestError(f"{comp}: no such component; known: {', '.join(COMPONENTS)}")
        kust = _kustomization(comp)
        objects.extend(d for r in kust.get("resources") or [] for d in _read_yaml(comp / r))
        for patch in kust.get("patches") or []:
            _apply_patch(objects, comp, patch)
    allow = "".join(f"{c}\n" for c in options.allow)
    # the agents read their token and allow list once, at start: a deploy that changes either
    # must replace the running pods (as a Helm chart's checksum annotation does)
    config_hash = hashlib.sha256(f"{options.token}\0{allow}".encode()).hexdigest()[:16]
    for obj in objects:
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == ALLOW_CONFIGMAP:
            obj["data"] = {"allow": allow}
        if obj["kind"] == "DaemonSet":
            template = obj["spec"]["template"]
            annotations = template.setdefault("metadata", {}).setdefault("annotations", {})
            annotations[CONFIG_ANNOTATION] = config_hash
            if options.image:
                for c in template["spec"]["containers"]:
                    c["image"] = options.image
    return objects


def to_yaml(objects: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False)
