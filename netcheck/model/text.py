"""Reading text that users and remote programs hand us, with bounds: YAML, numbers, one-liners.

Everything here is pure (no I/O). Bounds are what no real input comes near, so hitting one means
the input is broken or hostile, and the caller names it instead of running out of time or memory.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

MAX_YAML_NODES = 200_000  # nodes after aliases are expanded (a kubeconfig of 300 contexts: ~20 k)
MAX_YAML_DEPTH = 64
MAX_INT_DIGITS = 30  # ports, counts, generations, heartbeats: nothing real is longer
_ASCII_INT = re.compile(rf"[+-]?[0-9]{{1,{MAX_INT_DIGITS}}}")


class YamlLimitError(yaml.YAMLError):
    """A YAML document beyond the bounds (alias bomb, nesting, huge numbers)."""


def ascii_int(text: str | None, max_digits: int = MAX_INT_DIGITS) -> int | None:
    """An integer written with ASCII digits only, at most max_digits of them; else None.

    `str.isdigit()` accepts '²' and other digits `int()` rejects or reads differently, and an
    unbounded digit run makes `int()` slow or raise: both are garbage, not numbers.
    """
    if text is None:
        return None
    text = text.strip()
    if not _ASCII_INT.fullmatch(text) or len(text.lstrip("+-")) > max_digits:
        return None
    return int(text)


def one_line(text: str, limit: int = 300) -> str:
    """Text fit for a one-line message: control characters escaped, length bounded."""
    out = []
    for ch in text[: limit + 1]:
        if ch.isprintable():
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    line = "".join(out)
    return line if len(line) <= limit else line[: limit - 3] + "..."


class _BoundedLoader(yaml.SafeLoader):
    """yaml.SafeLoader with a bound on nesting, on the expanded size, and on integer digits."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise YamlLimitError(f"nested deeper than {MAX_YAML_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    digits = sum(ch.isdigit() for ch in str(node.value))
    if digits > MAX_INT_DIGITS:
        raise YamlLimitError(f"a number of {digits} digits (line {node.start_mark.line + 1})")
    return yaml.SafeLoader.construct_yaml_int(loader, node)


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _expanded_size(root: yaml.Node) -> int:
    """Nodes of the document once every alias is expanded, counted without expanding it."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in open_nodes:
            raise YamlLimitError("an alias refers to a value that contains it (recursive)")
        open_nodes.add(id(node))
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(n) for n in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        total = min(total, MAX_YAML_NODES + 1)  # enough to refuse; keeps the sums small
        sizes[id(node)] = total
        open_nodes.discard(id(node))
        return total

    return size(root)


def load_yaml(text: str) -> Any:
    """One YAML document, safely, or YAMLError (YamlLimitError beyond the bounds)."""
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node) > MAX_YAML_NODES:
            raise YamlLimitError(
                f"more than {MAX_YAML_NODES} values once its aliases are expanded (alias bomb?)"
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()
