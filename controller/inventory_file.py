"""Read an Ansible YAML inventory into groups and hosts, remembering every line.

The file is composed into YAML nodes rather than loaded into dicts, because nodes keep
their marks: every error then names the file and the line, and duplicate keys (which a
plain load silently collapses to the last one) are caught.  Anchors and ``<<`` merge
keys work as in any YAML file.

The shape is Ansible's::

    all:
      vars: {...}                 # variables of every host
      hosts:
        name: {...}               # host variables, or nothing
        web[01:03]: {...}         # a range: web01, web02, web03
      children:
        group:                    # the same three keys, nested at will
          hosts: ...
          vars: ...
          children: ...

A group named in several places is one group: its hosts and children are united and
its variables merged, later ones winning.  Top-level groups beside ``all`` are
children of ``all``, as in Ansible.
"""

from __future__ import annotations

import contextlib
import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from controller.errors import InventoryError
from controller.inventory_vars import FIELD_OF_VARIABLE, Located, VariableChecker

ALL = "all"
GROUP_KEYS = ("hosts", "vars", "children")
_RANGE = re.compile(r"^(?P<head>[^\[]*)\[(?P<start>[^:\]]+):(?P<end>[^:\]]+)"
                    r"(?::(?P<step>\d+))?\](?P<tail>.*)$")


@dataclass(slots=True)
class RawGroup:
    """A group as written: its own variables, direct hosts and direct children."""

    name: str
    line: int
    variables: dict[str, Located] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)
    children: dict[str, int] = field(default_factory=dict)  # child -> line named on


@dataclass(slots=True)
class RawHost:
    """A host as written: where it first appears and its own variables, merged."""

    name: str
    line: int
    variables: dict[str, Located] = field(default_factory=dict)


@dataclass(slots=True)
class RawInventory:
    """Everything an inventory file says, before inheritance is applied."""

    path: Path
    checker: VariableChecker
    groups: dict[str, RawGroup]
    hosts: dict[str, RawHost]


def read_inventory_file(path: Path) -> RawInventory:
    """Read and check the structure of the inventory at ``path``.

    Raises InventoryError naming the file and line of the first problem found.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InventoryError(
            "no such inventory file; pass -i FILE or set HOTCONF_INVENTORY", path=path
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"cannot read the inventory: {exc}", path=path) from exc
    return parse_inventory(text, path)


def parse_inventory(text: str, path: Path) -> RawInventory:
    """Parse inventory ``text``; ``path`` names it in errors and anchors relative paths."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise InventoryError(f"not valid YAML: {exc.problem}", path=path, line=line) from exc
    except yaml.YAMLError as exc:
        raise InventoryError(f"not valid YAML: {exc}", path=path) from exc
    finally:
        loader.dispose()

    reader = _NodeReader(path, loader)
    reader.read_root(root)
    return RawInventory(path, reader.checker, reader.groups, reader.hosts)


class _NodeReader:
    def __init__(self, path: Path, loader: yaml.SafeLoader) -> None:
        self.path = path
        self.loader = loader
        self.checker = VariableChecker(path)
        self.groups: dict[str, RawGroup] = {}
        self.hosts: dict[str, RawHost] = {}
        self._open_nodes: set[int] = set()

    def error(self, node: yaml.Node | None, message: str) -> InventoryError:
        line = node.start_mark.line + 1 if node is not None else None
        return InventoryError(message, path=self.path, line=line)

    def read_root(self, root: yaml.Node | None) -> None:
        entries = self._mapping(root, "the top level") if _is_mapping(root) else []
        if root is None or ALL not in [name for name, _, _ in entries]:
            raise self.error(
                root,
                "no `all:` at the top level; an inventory starts with `all:` "
                "and lists hosts:, vars: and children: under it",
            )

        all_group = self._group(ALL, root)
        for name, key_node, value_node in entries:
            self._read_group(name, key_node, value_node)
            if name != ALL:
                all_group.children.setdefault(name, key_node.start_mark.line + 1)

    def _read_group(self, name: str, name_node: yaml.Node, node: yaml.Node) -> None:
        group = self._group(name, name_node)
        if _is_null(node):
            return

        with self._entered(node):
            for key, key_node, value in self._mapping(node, f"group {name!r}"):
                if key == "hosts":
                    self._read_hosts(group, value)
                elif key == "vars":
                    self._read_variables(group.variables, value, f"vars of group {name!r}")
                elif key == "children":
                    self._read_children(group, value)
                else:
                    raise self.error(key_node, _unknown_key(key, f"group {name!r}"))

    def _read_hosts(self, group: RawGroup, node: yaml.Node) -> None:
        if _is_null(node):
            return
        where = f"hosts of group {group.name!r}"
        seen: dict[str, int] = {}
        for written, key_node, value in self._mapping(node, where, duplicate="host"):
            for name in self._expand_range(written, key_node):
                line = key_node.start_mark.line + 1
                if name in seen:
                    raise self.error(
                        key_node,
                        f"duplicate host {name!r} in {where} (first at line {seen[name]}); "
                        "list each host once per group",
                    )
                seen[name] = line
                host = self.hosts.setdefault(name, RawHost(name, line))
                if name not in group.hosts:
                    group.hosts.append(name)
                if not _is_null(value):
                    self._read_variables(host.variables, value, f"host {name!r}")

    def _read_children(self, group: RawGroup, node: yaml.Node) -> None:
        if _is_null(node):
            return
        where = f"children of group {group.name!r}"
        for name, key_node, value in self._mapping(node, where, duplicate="group"):
            group.children.setdefault(name, key_node.start_mark.line + 1)
            self._read_group(name, key_node, value)

    def _read_variables(self, into: dict[str, Located], node: yaml.Node, where: str) -> None:
        if _is_null(node):
            return

        # Two spellings of one field in the same mapping would make the winner depend on
        # the order of lines, so that is an error rather than a silent choice.
        set_here: dict[str, str] = {}
        for variable, key_node, value_node in self._mapping(node, where, duplicate="variable"):
            line = key_node.start_mark.line + 1
            value = self._construct(value_node) if _may_read(variable) else None
            checked = self.checker.check(variable, value, line)
            if checked is None:
                continue
            field_name, located = checked
            if field_name in set_here:
                raise self.error(
                    key_node,
                    f"{variable} and {set_here[field_name]} both set {field_name} in {where}; "
                    "keep one",
                )
            set_here[field_name] = variable
            into[field_name] = located

    def _mapping(
        self, node: yaml.Node | None, where: str, *, duplicate: str = "key"
    ) -> list[tuple[str, yaml.Node, yaml.Node]]:
        """The entries of a mapping node as (text key, key node, value node), checked."""
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, f"{where} must be a mapping (name: value lines)")

        # Duplicates are checked on the keys written here; keys merged in with `<<` may
        # be overridden, as YAML intends.
        first_line: dict[str, int] = {}
        for key_node, _ in node.value:
            key = self._key_text(key_node, where)
            if key == "<<":
                continue
            if key in first_line:
                raise self.error(
                    key_node,
                    f"duplicate {duplicate} {key!r} in {where} (first at line "
                    f"{first_line[key]}); keep one",
                )
            first_line[key] = key_node.start_mark.line + 1

        try:
            self.loader.flatten_mapping(node)
        except yaml.MarkedYAMLError as exc:
            raise self.error(node, f"bad `<<` merge in {where}: {exc.problem}") from exc

        entries: dict[str, tuple[str, yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = self._key_text(key_node, where)
            entries[key] = (key, key_node, value_node)
        return list(entries.values())

    def _key_text(self, key_node: yaml.Node, where: str) -> str:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "":
            raise self.error(key_node, f"a key in {where} must be a plain name")
        return str(key_node.value)

    def _construct(self, node: yaml.Node) -> object:
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise self.error(node, f"cannot read this value: {exc}") from exc

    def _expand_range(self, written: str, key_node: yaml.Node) -> list[str]:
        match = _RANGE.match(written)
        if match is None:
            return [written]
        try:
            middles = _range_values(match["start"], match["end"], int(match["step"] or 1))
        except ValueError as exc:
            raise self.error(key_node, f"host range {written!r}: {exc}") from exc
        tails = self._expand_range(match["tail"], key_node)
        return [match["head"] + middle + tail for middle in middles for tail in tails]

    def _group(self, name: str, node: yaml.Node) -> RawGroup:
        if name in self.groups:
            return self.groups[name]
        group = RawGroup(name, node.start_mark.line + 1)
        self.groups[name] = group
        return group

    @contextlib.contextmanager
    def _entered(self, node: yaml.Node) -> Iterator[None]:
        """Refuse a YAML alias that contains itself: it would nest groups forever."""
        if id(node) in self._open_nodes:
            raise self.error(node, "a YAML alias refers to itself; remove the loop")
        self._open_nodes.add(id(node))
        try:
            yield
        finally:
            self._open_nodes.discard(id(node))


def _range_values(start: str, end: str, step: int) -> list[str]:
    if step < 1:
        raise ValueError("the step must be 1 or more")
    if start.isdigit() and end.isdigit():
        first, last = int(start), int(end)
        if first > last:
            raise ValueError(f"{start} is after {end}")
        width = len(start) if start.startswith("0") else 0
        return [str(number).zfill(width) for number in range(first, last + 1, step)]
    if len(start) == 1 and len(end) == 1 and start.isalpha() and end.isalpha():
        if start > end:
            raise ValueError(f"{start} is after {end}")
        return [chr(code) for code in range(ord(start), ord(end) + 1, step)]
    raise ValueError("use [1:5], [01:10], [a:f] or [1:9:2]")


def _unknown_key(key: str, where: str) -> str:
    close = difflib.get_close_matches(key, GROUP_KEYS, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return (
        f"unknown key {key!r} in {where}; {hint}"
        "a group holds only hosts:, vars: and children: (host variables go under the host)"
    )


def _is_mapping(node: yaml.Node | None) -> bool:
    return isinstance(node, yaml.MappingNode)


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _may_read(variable: str) -> bool:
    # Values of variables hotconf ignores are never constructed: they may carry tags
    # such as Ansible's !vault that plain YAML cannot build.
    return variable in FIELD_OF_VARIABLE
