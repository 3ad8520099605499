"""Layering: defaults, then config.yaml, then settings.json, then the environment.

Mappings merge key by key; lists and scalars are replaced whole. Every value set
remembers its ``Origin``, and every value a later layer replaced is kept beneath
it, so ``hotconf explain`` can show the whole stack for one path.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from hotconf.sources import Document, KeyPath

LayerKind = Literal["default", "file", "env"]


class Origin(NamedTuple):
    """Where a value came from: the schema default, a file and line, or a variable.

    A tuple rather than a dataclass: a large file creates one per key.
    """

    kind: LayerKind
    name: str
    line: int | None = None
    key_path: KeyPath = ()

    def __str__(self) -> str:
        if self.kind == "file":
            if self.line is not None:
                return f"{self.name}:{self.line}"
            return f"{self.name}:{'.'.join(self.key_path)}" if self.key_path else self.name
        return self.name


DEFAULT_ORIGIN = Origin("default", "default")


def _plain_copy(value: Any) -> Any:
    """A copy of the mappings and lists of a value (items of a list have no origins)."""
    if isinstance(value, dict):
        return {key: _plain_copy(child) for key, child in value.items()}
    if isinstance(value, list):
        return [_plain_copy(item) for item in value]
    return value


def file_origin(document: Document, path: KeyPath) -> Origin:
    return Origin("file", document.name, document.lines.get(path), path)


@dataclass(slots=True)
class Layered:
    """The merged tree, the origin of every node, and what each value shadows."""

    tree: dict[str, Any] = field(default_factory=dict)
    origins: dict[KeyPath, Origin] = field(default_factory=dict)
    shadowed: dict[KeyPath, list[tuple[Any, Origin]]] = field(default_factory=dict)

    def apply_defaults(self, defaults: dict[str, Any]) -> None:
        self._merge(self.tree, copy.deepcopy(defaults), (), lambda _path: DEFAULT_ORIGIN)

    def apply_document(self, document: Document) -> None:
        self._merge(self.tree, document.tree, (), lambda path: file_origin(document, path))

    def set_value(self, path: KeyPath, value: Any, origin: Origin) -> str | None:
        """Set one leaf (an environment override); returns why it could not be set."""
        node = self.tree
        for depth, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
                self.origins.setdefault(path[: depth + 1], origin)
            elif not isinstance(child, dict):
                return f"{'.'.join(path[: depth + 1])} is not a mapping"
            node = child
        self._replace(node, path, value, lambda _path: origin)
        return None

    def get(self, path: KeyPath) -> Any:
        """The value at ``path``; raises KeyError when a part is missing."""
        node: Any = self.tree
        for part in path:
            if not isinstance(node, dict):
                raise KeyError(".".join(path))
            node = node[part]
        return node

    def _merge(self, target: dict[str, Any], incoming: dict[str, Any], prefix: KeyPath,
               origin_of: Any) -> None:
        for key, value in incoming.items():
            path = (*prefix, key)
            current = target.get(key)
            if isinstance(value, dict) and isinstance(current, dict):
                self.origins.setdefault(path, origin_of(path))
                self._merge(current, value, path, origin_of)
            else:
                self._replace(target, path, value, origin_of)

    def _replace(self, parent: dict[str, Any], path: KeyPath, value: Any,
                 origin_of: Any) -> None:
        key = path[-1]
        if key in parent:
            previous = parent[key]
            if isinstance(previous, dict):
                self._forget_below(path)
            else:
                self.shadowed.setdefault(path, []).insert(0, (previous, self.origins[path]))
        self.origins[path] = origin_of(path)
        parent[key] = self._adopt(value, path, origin_of)

    def _adopt(self, value: Any, prefix: KeyPath, origin_of: Any) -> Any:
        """A copy of a layer's value, noting the origin of every key below it.

        A copy, because later layers merge into this tree: the documents must stay as
        read (sync-to-base folds them), and a YAML alias must not tie two paths together.
        """
        if isinstance(value, dict):
            adopted = {}
            for key, child in value.items():
                path = (*prefix, key)
                self.origins[path] = origin_of(path)
                adopted[key] = self._adopt(child, path, origin_of)
            return adopted
        if isinstance(value, list):
            return [_plain_copy(item) for item in value]
        return value

    def _forget_below(self, prefix: KeyPath) -> None:
        depth = len(prefix)
        for path in [path for path in self.origins if path[:depth] == prefix and
                     len(path) > depth]:
            del self.origins[path]
            self.shadowed.pop(path, None)
