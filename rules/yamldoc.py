"""YAML documents read with the line of every value, and every problem with its line.

Used by ``rules.loader`` for rule files, and wherever other YAML is read the same way:
``receiver.cli.config`` (``config check``), ``receiver.tools.ruletest`` (rule test files)
and ``receiver.tools.rulelint`` (the lines of rules and steps). The text is composed into
nodes first, with libyaml's parser when PyYAML has it (``CSafeLoader``: ten times faster
on big files, same nodes and marks; a few syntax errors are worded differently) and the
pure-Python one otherwise, so each value keeps its line; duplicate keys, which PyYAML
would silently overwrite, are reported. Values are built as ``yaml.safe_load`` builds
them (``<<: *anchor`` merges included); a recursive alias or a key that is not a plain
value is a problem. Reads only the text it is given.

Aliases are expanded within a budget: a document may build at most :data:`EXPANSION`
times as many values as it has nodes (and at least :data:`FLOOR_VALUES`), and nest at most
:data:`MAX_DEPTH` levels. A 700-byte "billion laughs" file (nine anchors, each a list of
ten aliases of the one before) is a problem at its line after a few hundred thousand
values, not gigabytes later; so is a document nested deeper than anyone writes by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.constructor import ConstructorError

from rules.errors import Problem

Loc = tuple[Any, ...]
"""A data path: keys and list indexes from the top (``("rules", 0, "actions", 1)``)."""



def dotted(loc: Loc) -> str:
    """A data path as messages spell it: ``rules[0].actions[1].params``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out


_MERGE_TAG = "tag:yaml.org,2002:merge"
_PLAIN_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})
EXPANSION = 10
"""How many values a document may build per node it has (aliases build their node again)."""
FLOOR_VALUES = 100_000
"""Values any document may build, however few nodes it has."""
MAX_DEPTH = 64
"""Levels of nesting (mappings and lists, aliases expanded) a document may have."""
_AnyLoader = yaml.SafeLoader | yaml.CSafeLoader
_Loader: type[_AnyLoader] = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader


@dataclass(frozen=True, slots=True)
class Found:
    """A problem met while reading: the data path it concerns, its line when known, what."""

    loc: Loc
    line: int | None
    message: str


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """One document read: its data (None when empty or broken), lines by path, problems."""

    name: str
    data: Any
    lines: Mapping[Loc, int]
    found: tuple[Found, ...]

    def line(self, loc: Loc) -> int | None:
        """The line of ``loc``, or of its closest ancestor that has one."""
        return next((self.lines[loc[:n]] for n in range(len(loc), -1, -1)
                     if loc[:n] in self.lines), None)

    def problems(self) -> list[Problem]:
        """What :attr:`found` holds as problems of the file :attr:`name`, by line."""
        out = [Problem(self.name, f.line or self.line(f.loc), None, f.message) for f in self.found]
        return sorted(out, key=lambda p: p.line or 0)


def read_yaml(text: str, name: str) -> YamlDocument:
    """Read one YAML document; ``name`` (its file) is what its problems are reported against."""
    reader = _Reader()
    data = reader.read(text)
    return YamlDocument(name, data, reader.lines, tuple(reader.found))


def read_yaml_bytes(raw: bytes, name: str) -> YamlDocument:
    """:func:`read_yaml` of a file's bytes: bytes that are not UTF-8 are a problem at their line
    and column (not a decoding error that names no line)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return YamlDocument(name, None, {}, (Found((), line, f"not UTF-8: byte 0x{raw[exc.start]:02x} at "
                                                          f"column {column}; YAML files are UTF-8 text"),))
    return read_yaml(text, name)


class _OverBudget(Exception):
    def __init__(self, node: yaml.Node, message: str, loc: Loc = ()) -> None:
        super().__init__(message)
        self.node = node
        self.message = message
        self.loc = loc


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _shape(root: yaml.Node) -> tuple[int, int, yaml.Node]:
    """The nodes of a composed document (each once, however many aliases name it), how many
    mappings and lists deep it nests with aliases expanded, and its deepest node; without
    recursion (a document may nest deeper than Python's stack)."""
    depth: dict[int, tuple[int, yaml.Node]] = {}  # node → (levels below and with it, its deepest)
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            below = [depth[id(c)] for c in _children(node) if id(c) in depth]
            levels, deepest = max(below, key=lambda d: d[0], default=(0, node))
            depth[key] = (0, node) if isinstance(node, yaml.ScalarNode) else (levels + 1, deepest)
        elif key not in depth and key not in on_path:  # a recursive alias is reported by build
            on_path.add(key)
            stack.append((node, True))
            stack.extend((c, False) for c in _children(node) if id(c) not in depth)
    levels, deepest = depth[id(root)]
    return len(depth), levels, deepest


@dataclass
class _Reader:
    lines: dict[Loc, int] = field(default_factory=dict)
    found: list[Found] = field(default_factory=list)
    budget: int = 0
    allowed: int = 0

    def read(self, text: str) -> Any:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            nodes, levels, deepest = _shape(node)
            if levels > MAX_DEPTH:
                raise _OverBudget(deepest, f"YAML: nested {levels} levels deep (aliases expanded); "
                                           f"at most {MAX_DEPTH} are read")
            self.allowed = self.budget = max(FLOOR_VALUES, EXPANSION * nodes)
            return self.build(node, (), loader, set())
        except _OverBudget as exc:  # the line of the top-level key whose value grew past the budget
            line = self.lines.get(exc.loc[:1]) or exc.node.start_mark.line + 1
            self.found.append(Found((), line, exc.message))
        except RecursionError:  # the pure-Python composer nests a call per level
            self.found.append(Found((), None, f"YAML: nested too deeply; at most {MAX_DEPTH} levels "
                                              "are read"))
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f" (line {exc.context_mark.line + 1})" if exc.context_mark else ""
            what = f"{exc.context}{where}: {exc.problem}" if exc.context else exc.problem
            self.found.append(Found((), mark.line + 1 if mark else None, f"YAML: {what}"))
        except yaml.reader.ReaderError as exc:  # a control character: at its line, without PyYAML's
            line = text.count("\n", 0, exc.position) + 1  # "<unicode string>" and offset
            self.found.append(Found((), line, f"YAML: character #x{exc.character:04x}: control "
                                              "characters are not allowed"))
        except yaml.YAMLError as exc:
            self.found.append(Found((), None, f"YAML: {exc}"))
        finally:
            loader.dispose()
        return None

    def build(self, node: yaml.Node, loc: Loc, loader: _AnyLoader, stack: set[int]) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _OverBudget(node, f"YAML: aliases expand this document past {self.allowed:,} values "
                              f"({EXPANSION} per node it has, at least {FLOOR_VALUES:,}): a small file that "
                              "grows this much is a 'billion laughs'; write the values out, or use fewer "
                              "aliases of aliases", loc)
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if id(node) in stack:
            raise ConstructorError(None, None, "recursive alias", node.start_mark)
        if not isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            return loader.construct_object(node, deep=True)
        if node.tag not in _PLAIN_TAGS:  # a tagged list would be read as a plain one, the tag lost
            raise ConstructorError(None, None, f"the tag {node.tag} is not read here", node.start_mark)
        stack.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            out: Any = [self.build(v, (*loc, i), loader, stack) for i, v in enumerate(node.value)]
        else:
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key, line = loader.construct_object(key_node, deep=True), key_node.start_mark.line + 1
                if not isinstance(key, (str, int, float, bool, type(None))):
                    raise ConstructorError(None, None, "a key must be a plain value",
                                           key_node.start_mark)
                if key in first:
                    self.found.append(Found((*loc, key), line, f"duplicate key {key!r} (first at line"
                                            f" {first[key]}): YAML would silently keep only the last one"))
                first.setdefault(key, line)
            loader.flatten_mapping(node)  # "<<: *anchor" merges, as PyYAML resolves them
            out = {}
            for key_node, value_node in node.value:
                key = loader.construct_object(key_node, deep=True)
                self.lines[(*loc, key)] = key_node.start_mark.line + 1
                out[key] = self.build(value_node, (*loc, key), loader, stack)
        stack.discard(id(node))
        return out


def located_errors(exc: ValidationError, name: str, line_of: Callable[[Loc], int | None]) -> list[str]:
    """A model's validation errors on data :func:`read_yaml` read, as ``NAME:LINE: key.path: msg``
    (``rules test`` files, ``config check``); ``line_of`` is :meth:`YamlDocument.line`."""
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if loc and loc[-1] == "[key]":  # pydantic's mark: the mapping key itself is wrong
            loc = loc[:-1]
            msg = f"invalid key {loc[-1]!r}: {msg}"
        where = ".".join(str(p) for p in loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            msg = f"unknown key {loc[-1]!r}"
        at = line_of(loc)
        out.append(f"{name}:{at}: {where}: {msg}" if at else f"{name}: {where}: {msg}")
    return out
