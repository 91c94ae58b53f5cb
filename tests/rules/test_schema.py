"""The JSON Schema of rule files: generated from the model, per-action with a catalogue."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict

from remediations.registry import default_registry
from rules.catalogue import ActionInfo
from rules.durations import DURATION_PATTERN
from rules.matchers import MATCHER_PATTERN
from rules.schema import DRAFT, SCHEMA_ID, rule_file_schema, schema_json
from tests.support.paths import REPO

SHIPPED = REPO / "rules" / "rule-file.schema.json"


class _Level(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str
    level: Literal["info", "error"] = "info"


class _Probe(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = "/"
    inner: _Level | None = None


class FakeCatalogue:
    """One action without a target, one read-only action with one."""

    actions = {
        "notify.log": ActionInfo("notify.log", _Level, False, False, frozenset()),
        "http.probe": ActionInfo("http.probe", _Probe, False, True, frozenset({"http"})),
    }

    def info(self, name: str) -> ActionInfo | None:
        return self.actions.get(name)

    def names(self) -> list[str]:
        return sorted(self.actions)


def _patterns(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        return own + [p for v in node.values() for p in _patterns(v)]
    if isinstance(node, list):
        return [p for v in node for p in _patterns(v)]
    return []


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param("$schema", DRAFT, id="draft-2020-12"),
        pytest.param("$id", SCHEMA_ID, id="id"),
        pytest.param("title", "remediator rule file", id="title"),
        pytest.param("additionalProperties", False, id="strict-top-level"),
    ],
)
def test_header(key: str, value: object) -> None:
    """The schema names its draft, its $id and title, and forbids unknown top-level keys."""
    assert rule_file_schema()[key] == value


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param(("Rule", "properties", "for", "default"), "0s", id="for-default-spelled"),
        pytest.param(("Rule", "properties", "match", "items", "pattern"), MATCHER_PATTERN,
                     id="matcher-pattern"),
        pytest.param(("Rule", "properties", "cooldown", "anyOf", 0, "pattern"), DURATION_PATTERN,
                     id="duration-pattern"),
        pytest.param(("Rule", "additionalProperties"), False, id="rule-strict"),
        pytest.param(("ActionSpec", "additionalProperties"), False, id="action-strict"),
    ],
)
def test_rule_definitions(path: tuple[str | int, ...], expected: object) -> None:
    """The rule parts say what the loader enforces, spelled as rule files spell them."""
    node: Any = rule_file_schema()["$defs"]
    for part in path:
        node = node[part]
    assert node == expected


@pytest.mark.parametrize("catalogue", [pytest.param(None, id="plain"),
                                       pytest.param(FakeCatalogue(), id="catalogue")])
def test_patterns_are_portable(catalogue: FakeCatalogue | None) -> None:
    """Every pattern compiles, and none uses Python-only syntax ECMA-262 editors reject."""
    for pattern in _patterns(rule_file_schema(catalogue)):
        re.compile(pattern)
        assert "(?P" not in pattern, pattern


@pytest.mark.parametrize("catalogue", [pytest.param(None, id="plain"),
                                       pytest.param(FakeCatalogue(), id="catalogue")])
def test_refs_resolve(catalogue: FakeCatalogue | None) -> None:
    """Every $ref points at a definition the schema holds."""
    schema = rule_file_schema(catalogue)
    for ref in _refs(schema):
        assert ref.startswith("#/$defs/"), ref
        assert ref.removeprefix("#/$defs/") in schema["$defs"], ref


def test_without_catalogue_any_action_name() -> None:
    """Without a catalogue, action names and params are left open."""
    spec = rule_file_schema()["$defs"]["ActionSpec"]
    assert "enum" not in spec["properties"]["action"]
    assert "allOf" not in spec


def test_catalogue_adds_action_names_and_read_only_diagnose() -> None:
    """A catalogue adds the enum of action names, and diagnose takes read-only ones only."""
    defs = rule_file_schema(FakeCatalogue())["$defs"]
    assert defs["ActionSpec"]["properties"]["action"]["enum"] == ["http.probe", "notify.log"]
    assert defs["Rule"]["properties"]["diagnose"]["items"]["properties"]["action"]["enum"] == [
        "http.probe"
    ]


@pytest.mark.parametrize(
    ("action", "target", "required"),
    [
        pytest.param("notify.log", {"type": "null"}, ["params"], id="no-target-params-required"),
        pytest.param("http.probe", {"type": "string"}, ["target"], id="target-required"),
    ],
)
def test_per_action_constraints(action: str, target: dict[str, str], required: list[str]) -> None:
    """Each action gets if/then: its params model, and target required or forbidden."""
    schema = rule_file_schema(FakeCatalogue())
    (rule,) = [r for r in schema["$defs"]["ActionSpec"]["allOf"]
               if r["if"]["properties"]["action"]["const"] == action]
    then = rule["then"]
    assert then["required"] == required
    assert then["properties"]["target"]["type"] == target["type"]
    params = schema["$defs"][then["properties"]["params"]["$ref"].removeprefix("#/$defs/")]
    assert params["additionalProperties"] is False


def test_templated_params_are_strings_with_braces() -> None:
    """Like the loader, a params field may hold a template instead of its own type."""
    params = rule_file_schema(FakeCatalogue())["$defs"]["notify.log:params"]
    level = params["properties"]["level"]
    assert level["anyOf"][1] == {"type": "string", "pattern": r"\{\{",
                                 "description": "a template, checked per alert"}


def test_nested_param_models_are_prefixed() -> None:
    """A params model's own $defs move to the top, prefixed with the action name."""
    defs = rule_file_schema(FakeCatalogue())["$defs"]
    assert "http.probe:_Level" in defs


def test_schema_json_is_stable_json() -> None:
    """schema_json prints sorted, indented JSON with a final newline (as the CLI does)."""
    text = schema_json(FakeCatalogue())
    assert text.endswith("}\n")
    assert json.loads(text) == rule_file_schema(FakeCatalogue())


def test_shipped_schema_is_current() -> None:
    """rules/rule-file.schema.json equals the schema generated from the real catalogue."""
    assert SHIPPED.is_file(), f"{SHIPPED} is missing"
    generated = json.loads(schema_json(default_registry()))
    assert json.loads(SHIPPED.read_text()) == generated, (
        "rules/rule-file.schema.json is stale; regenerate it with:"
        " remediator rules schema > rules/rule-file.schema.json"
    )
