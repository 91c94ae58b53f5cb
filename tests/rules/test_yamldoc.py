"""The YAML reader: the line of every value, duplicate keys and bad YAML reported with theirs.

Run with libyaml's parser (what ``rules.yamldoc`` uses when PyYAML has it) and with the
pure-Python one: the data, the lines and the problems' lines must be the same; libyaml
words a few syntax errors differently, so those messages are matched by their start.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

import rules.yamldoc
from rules.yamldoc import Loc, located_errors, read_yaml

LOADERS = [pytest.param(yaml.SafeLoader, id="python")]
if yaml.__with_libyaml__:
    LOADERS.append(pytest.param(yaml.CSafeLoader, id="libyaml"))


@pytest.fixture(params=LOADERS)
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rules.yamldoc, "_Loader", request.param)


def test_libyaml_is_used_when_pyyaml_has_it() -> None:
    assert rules.yamldoc._Loader is (yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader)


@pytest.mark.usefixtures("loader")
@pytest.mark.parametrize(("text", "data", "lines", "problems"), [
    pytest.param("a:\n  b: [1, 2]\n  c:\n    - x: 1\n",
                 {"a": {"b": [1, 2], "c": [{"x": 1}]}},
                 {(): 1, ("a",): 1, ("a", "b"): 2, ("a", "b", 1): 2, ("a", "c"): 3, ("a", "c", 0): 4,
                  ("a", "c", 0, "x"): 4}, [], id="nested"),
    pytest.param("a: 1\nb: 2\na: 3\n", {"a": 3, "b": 2}, {("a",): 3, ("b",): 2},
                 [(3, "duplicate key 'a' (first at line 1): YAML would silently keep only the last one")],
                 id="duplicate-key"),
    pytest.param("x:\n  a: 1\n  a: 2\n  a: 3\n", {"x": {"a": 3}}, {("x", "a"): 4},
                 [(3, "duplicate key 'a' (first at line 2)"), (4, "duplicate key 'a' (first at line 2)")],
                 id="duplicate-key-twice"),
    pytest.param("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\n",
                 {"base": {"x": 1, "y": 2}, "use": {"x": 1, "y": 3}}, {("use",): 2, ("use", "y"): 4}, [],
                 id="merge-key-is-no-duplicate"),
    pytest.param("# nothing here\n", None, {}, [], id="empty"),
    pytest.param("a: [1, 2\nb: 3\n", None, {},
                 [(2, "YAML: while parsing a flow sequence (line 1): ")], id="bad-yaml"),
    pytest.param("a:\n\tb: 1\n", None, {}, [(2, "YAML: while scanning for the next token")], id="tab"),
    pytest.param("a: 1\n---\nb: 2\n", None, {},
                 [(2, "YAML: expected a single document in the stream (line 1): but found another document")],
                 id="two-documents"),
    pytest.param("a: &r\n  - *r\n", None, {}, [(1, "YAML: recursive alias")], id="recursive-alias"),
    pytest.param("? [a, b]\n: 1\n", None, {}, [(1, "YAML: a key must be a plain value")], id="key-not-plain"),
])
def test_read_yaml(text: str, data: Any, lines: dict[Loc, int], problems: list[tuple[int, str]]) -> None:
    """Data as yaml.safe_load builds it, the line of each path, every problem with its line."""
    document = read_yaml(text, "f.yaml")
    assert document.data == data
    if data is not None:
        assert document.data == yaml.safe_load(text)
    assert {loc: document.lines.get(loc) for loc in lines} == lines
    found = document.problems()
    expected = [("f.yaml", line, "error") for line, _ in problems]
    assert [(p.file, p.line, p.severity) for p in found] == expected
    for problem, (_, start) in zip(found, problems, strict=True):
        assert problem.message.startswith(start), problem.message


@pytest.mark.parametrize(("loc", "line"), [
    (("a", "c", 0, "x"), 4),
    (("a", "c", 0, "missing", 3), 4),  # the closest ancestor that has a line
    (("a", "nothing"), 1),
    (("elsewhere",), 1),  # the document's own line
])
def test_line_of_a_path(loc: Loc, line: int) -> None:
    assert read_yaml("a:\n  b: [1, 2]\n  c:\n    - x: 1\n", "f.yaml").line(loc) == line


def test_a_broken_document_has_no_line() -> None:
    assert read_yaml("a: [\n", "f.yaml").line(("a",)) is None


class _Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    port: int


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    inner: _Inner
    weights: dict[int, str] = {}


@pytest.mark.parametrize(("text", "errors"), [
    ("name: x\ninner:\n  port: eighty\n",
     ["c.yaml:3: inner.port: Input should be a valid integer, unable to parse string as an integer"]),
    ("name: x\ninner:\n  port: 80\n  host: h\n", ["c.yaml:4: inner.host: unknown key 'host'"]),
    ("inner:\n  port: 80\n", ["c.yaml:1: name: Field required"]),  # missing: the mapping's line
    ("# empty\n", ["c.yaml: name: Field required", "c.yaml: inner: Field required"]),
    ("name: x\ninner: {port: 80}\nweights:\n  heavy: a\n",
     [re.escape("c.yaml:4: weights.heavy: invalid key 'heavy': Input should be a valid integer")]),
])
def test_located_errors(text: str, errors: list[str]) -> None:
    """A model's errors on the data read, as NAME:LINE: key.path: message (no LINE without lines)."""
    document = read_yaml(text, "c.yaml")
    with pytest.raises(ValidationError) as caught:
        _Config.model_validate(document.data or {})
    found = located_errors(caught.value, "c.yaml", document.line)
    assert len(found) == len(errors)
    for line, expected in zip(found, errors, strict=True):
        assert re.match(expected, line), line


def _laughs(levels: int, width: int = 10) -> str:
    lines = ['l0: &l0 "lol"']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


SHARED = "common: &m ['alertname = \"X\"', 'namespace =~ \"prod|staging\"']\nrules:\n" + "".join(
    f"  - {{name: r{i}, match: *m, actions: [{{action: notify.log, params: {{text: t}}}}]}}\n"
    for i in range(3000))


@pytest.mark.usefixtures("loader")
@pytest.mark.parametrize(("text", "problem"), [
    pytest.param(_laughs(4), None, id="laughs-4-within-the-floor"),
    pytest.param(_laughs(5), (6, "aliases expand this document past 100,000 values"), id="laughs-5"),
    pytest.param(_laughs(9), (6, "aliases expand this document past 100,000 values"), id="laughs-9"),
    pytest.param(SHARED, None, id="3000-rules-sharing-one-anchor"),
    pytest.param("a: " + "[" * 63 + "]" * 63 + "\n", None, id="nested-64-levels-is-read"),
    pytest.param("a: " + "[" * 64 + "]" * 64 + "\n", (1, "nested 65 levels deep"), id="nested-65-is-not"),
    pytest.param("x0: &x0 [1]\n" + "".join(f"x{i}: &x{i} [*x{i - 1}]\n" for i in range(1, 70)),
                 (None, "nested 71 levels deep (aliases expanded)"), id="nested-through-anchors"),
    pytest.param("a: !!python/tuple [1, 2]\n", (1, "the tag tag:yaml.org,2002:python/tuple is not read here"),
                 id="tagged-list"),
    pytest.param("a: !!omap [{x: 1}]\n", (1, "is not read here"), id="omap"),
])
def test_aliases_and_nesting_are_read_within_a_budget(text: str,
                                                      problem: tuple[int | None, str] | None) -> None:
    """A document builds at most ten values per node it has (at least 100,000) and nests at
    most 64 levels: a billion laughs is a problem at its line, long before it is big."""
    document = read_yaml(text, "f.yaml")
    found = [(p.line, p.message) for p in document.problems()]
    if problem is None:
        assert found == []
        assert document.data is not None
    else:
        line, words = problem
        assert len(found) == 1, found
        assert words in found[0][1]
        assert line is None or found[0][0] == line
        assert document.data is None
