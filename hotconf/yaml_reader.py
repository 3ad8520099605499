"""YAML files into documents, built straight from the parser's events.

Working from events rather than composed nodes keeps a 10,000-key file fast and
gives each key its line. Aliases are counted each time they are used, so an alias
bomb is refused before anything walks the tree it would expand into.
"""

from __future__ import annotations

from typing import Any

import yaml

from hotconf.document import (
    MAX_DEPTH,
    MAX_NODES,
    Document,
    KeyPath,
    critical,
    not_a_mapping,
)
from hotconf.findings import Finding, Level
from hotconf.secrets import is_secret_path

try:
    _YamlLoader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - libyaml is missing on this machine
    _YamlLoader = yaml.SafeLoader


def parse_yaml(name: str, text: str) -> Document:
    """Parse YAML text; raises UnusableSource when the file cannot be used."""
    loader = _YamlLoader(text)
    try:
        builder = _YamlBuilder(name, loader)
        root = builder.build()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        problem = exc.problem or exc.context or "cannot be parsed"
        raise critical(
            name, "syntax",
            f"{name} is not valid YAML at line {line}, column {column}: {problem}",
            line=line, column=column,
        ) from None
    except yaml.YAMLError as exc:
        raise critical(name, "syntax", f"{name} is not valid YAML: {exc}") from None
    finally:
        loader.dispose()

    if not isinstance(root, dict):
        raise not_a_mapping(name, root)
    builder.document.tree = root
    return builder.document


_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _YamlBuilder:
    """Builds plain values straight from the parser's events.

    Working from events rather than composed nodes keeps a 10,000-key file fast,
    and gives each key's line. An alias shares the anchored value, as PyYAML does;
    its size is counted each time it is used, so an alias bomb is refused before
    anything walks the tree it would expand into.
    """

    def __init__(self, name: str, loader: yaml.SafeLoader) -> None:
        self.name = name
        # PyYAML's parser methods carry no annotations; Any keeps strict mypy quiet.
        self.loader: Any = loader
        self.document = Document(name, {})
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.building: set[str] = set()
        self.expanded = 0

    def build(self) -> Any:
        self.loader.get_event()  # StreamStart
        if self.loader.check_event(yaml.StreamEndEvent):
            return None
        self.loader.get_event()  # DocumentStart
        value, _ = self._value((), 0)
        self.loader.get_event()  # DocumentEnd
        if not self.loader.check_event(yaml.StreamEndEvent):
            event = self.loader.peek_event()
            raise critical(
                self.name, "syntax",
                f"{self.name} holds more than one YAML document (a second '---' at "
                f"line {event.start_mark.line + 1}); keep one",
                line=event.start_mark.line + 1,
            )
        return value

    def _count(self, size: int, line: int) -> None:
        self.expanded += size
        if self.expanded > MAX_NODES:
            raise critical(
                self.name, "syntax",
                f"{self.name} expands to more than {MAX_NODES} values (YAML aliases "
                "repeated into a huge tree?): remove the aliases or split the file",
                line=line,
            )

    def _value(self, path: KeyPath, depth: int) -> tuple[Any, int]:
        """The next value and its size in values (aliases counted in full)."""
        event = self.loader.get_event()
        line = event.start_mark.line + 1
        if depth > MAX_DEPTH:
            raise critical(
                self.name, "syntax",
                f"{self.name} nests deeper than {MAX_DEPTH} levels at line {line}",
                line=line,
            )
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self.building:
                raise critical(self.name, "syntax",
                                f"alias *{event.anchor} at line {line} refers to the mapping "
                                "that contains it: a recursive alias cannot be a "
                                "configuration", line=line)
            try:
                value, size = self.anchors[str(event.anchor)]
            except KeyError:
                raise critical(self.name, "syntax",
                                f"alias *{event.anchor} at line {line} names no anchor",
                                line=line) from None
            self._count(size, line)
            return value, size

        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self.building.add(anchor)

        if isinstance(event, yaml.ScalarEvent):
            value = self._scalar(event, path)
            size = 1
        elif isinstance(event, yaml.SequenceStartEvent):
            items: list[Any] = []
            size = 1
            while not self.loader.check_event(yaml.SequenceEndEvent):
                item, item_size = self._value((*path, str(len(items))), depth + 1)
                items.append(item)
                size += item_size
            self.loader.get_event()
            value = items
        elif isinstance(event, yaml.MappingStartEvent):
            value, size = self._mapping(path, depth)
        else:  # pragma: no cover - the parser emits nothing else here
            raise critical(self.name, "syntax", f"unexpected {event} at line {line}",
                            line=line)

        self._count(1, line)
        if anchor is not None:
            self.building.discard(anchor)
            self.anchors[anchor] = (value, size)
        return value, size

    def _scalar(self, event: Any, path: KeyPath) -> Any:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag == _STR_TAG:
            return event.value
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            return self.loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            # Explicit tags such as `!!int five` or `!!python/name` end up here.
            line = event.start_mark.line + 1
            problem = getattr(exc, "problem", None) or str(exc)
            if is_secret_path(".".join(path)):
                # The text and the constructor's complaint would both quote the secret.
                raise critical(self.name, "syntax",
                                f"the value of {'.'.join(path)} at line {line} cannot be read "
                                f"as {tag}: check its tag", line=line) from None
            raise critical(self.name, "syntax",
                            f"{event.value!r} at line {line} cannot be read as {tag}: {problem}",
                            line=line) from None

    def _mapping(self, path: KeyPath, depth: int) -> tuple[dict[str, Any], int]:
        result: dict[str, Any] = {}
        merged: list[Any] = []
        size = 1
        lines = self.document.lines
        while not self.loader.check_event(yaml.MappingEndEvent):
            key_event = self.loader.peek_event()
            line = key_event.start_mark.line + 1
            if isinstance(key_event, yaml.ScalarEvent) and (
                    key_event.tag == _MERGE_TAG or (key_event.value == "<<"
                                                   and key_event.implicit[0])):
                self.loader.get_event()
                value, value_size = self._value(path, depth + 1)
                merged.extend(value if isinstance(value, list) else [value])
                size += value_size
                continue
            if not isinstance(key_event, (yaml.ScalarEvent, yaml.AliasEvent)):
                raise critical(
                    self.name, "syntax",
                    f"{self.name} uses a mapping or list as a key under "
                    f"{'.'.join(path) or 'the top level'}; keys must be plain names",
                    line=line,
                )
            key_value, _ = self._value(path, depth + 1)
            if isinstance(key_value, (dict, list)):
                raise critical(self.name, "syntax",
                                f"the key at line {line} is a mapping or list; keys must be "
                                "plain names", line=line)
            key = str(key_value)
            child = (*path, key)
            if key in result:
                self._note_duplicate(child, line)
            lines[child] = line
            value, value_size = self._value(child, depth + 1)
            result[key] = value
            size += value_size
        self.loader.get_event()

        for source in merged:
            if not isinstance(source, dict):
                raise critical(self.name, "syntax",
                                f"{self.name}: a '<<' merge under "
                                f"{'.'.join(path) or 'the top level'} must name a mapping")
            for key, value in source.items():
                result.setdefault(key, value)
        return result, size

    def _note_duplicate(self, path: KeyPath, line: int) -> None:
        first = self.document.lines.get(path)
        dotted = ".".join(path)
        self.document.duplicates.append(Finding(
            Level.WARNING, "syntax",
            f"{dotted} is set twice in {self.name} (lines {first} and {line}); "
            f"the value at line {line} wins: delete the other",
            path=dotted, details={"lines": [first, line]}, source=f"{self.name}:{line}",
        ))
