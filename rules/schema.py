"""The JSON Schema of rule files, for editors (yaml-language-server) and CI linters.

Called by ``remediator rules schema`` and by the test that keeps the shipped
``rules/rule-file.schema.json`` in step. Generated from the pydantic model
(``RuleFile``), so the schema never says something the loader does not; with an action
catalogue it also knows every action's name, its params and whether it takes a target.
The loader stays the authority: a schema cannot check that a template's label is
guaranteed by a matcher, nor the service config's targets.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from rules.catalogue import ActionCatalogue, ActionInfo
from rules.durations import format_duration
from rules.matchers import MATCHER_PATTERN
from rules.model import Rule, RuleFile

SCHEMA_ID = "https://remediator.dev/schema/rule-file.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
_TEMPLATED = {"type": "string", "pattern": r"\{\{", "description": "a template, checked per alert"}


def rule_file_schema(catalogue: ActionCatalogue | None = None) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a rule file; per-action params with a catalogue."""
    generated = RuleFile.model_json_schema(by_alias=True)
    schema: dict[str, Any] = {
        "$schema": DRAFT,
        "$id": SCHEMA_ID,
        "title": "remediator rule file",
        **{k: v for k, v in generated.items() if k != "title"},
    }
    defs: dict[str, Any] = schema["$defs"]
    rule = defs["Rule"]["properties"]
    # A timedelta default comes out as ISO 8601 ("PT0S"); rule files spell it "0s".
    rule["for"]["default"] = format_duration(Rule.model_fields["for_"].default)
    # The matcher grammar lives in rules.matchers (label names may hold ':').
    rule["match"]["items"]["pattern"] = MATCHER_PATTERN
    # The model's own check, said in schema terms: actions or ladder, exactly one.
    defs["Rule"]["oneOf"] = [{"required": ["actions"]}, {"required": ["ladder"]}]
    if catalogue is not None:
        _add_actions(defs, catalogue)
    return schema


def schema_json(catalogue: ActionCatalogue | None = None) -> str:
    """The schema as the shipped file spells it: two-space JSON, sorted keys, final newline."""
    return json.dumps(rule_file_schema(catalogue), indent=2, sort_keys=True) + "\n"


def _add_actions(defs: dict[str, Any], catalogue: ActionCatalogue) -> None:
    infos = [info for name in catalogue.names() if (info := catalogue.info(name)) is not None]
    spec = defs["ActionSpec"]
    spec["properties"]["action"]["enum"] = [info.name for info in infos]
    spec["allOf"] = [_action_rule(info, defs) for info in infos]
    read_only = [info.name for info in infos if info.read_only]
    diagnose = defs["Rule"]["properties"]["diagnose"]
    if read_only:
        diagnose["items"] = {
            "$ref": "#/$defs/ActionSpec",
            "properties": {"action": {"enum": read_only}},
            "description": "A read-only action whose output is evidence for the audit log",
        }
    else:
        diagnose["maxItems"] = 0


def _action_rule(info: ActionInfo, defs: dict[str, Any]) -> dict[str, Any]:
    """``if action == NAME then params/target as that action wants``."""
    prefix = f"{info.name}:"
    params = copy.deepcopy(info.params.model_json_schema(ref_template=f"#/$defs/{prefix}{{model}}"))
    for name, sub in params.pop("$defs", {}).items():
        defs[prefix + name] = sub
    for name, prop in params.get("properties", {}).items():
        # Like the loader: a field holding a template is validated once rendered.
        params["properties"][name] = {"anyOf": [prop, _TEMPLATED]}
    defs[f"{prefix}params"] = params
    then: dict[str, Any] = {
        "properties": {"params": {"$ref": f"#/$defs/{prefix}params"}},
        "required": ["params"] if params.get("required") else [],
    }
    if info.target_kinds:
        kinds = ", ".join(sorted(info.target_kinds))
        then["required"].append("target")
        then["properties"]["target"] = {
            "type": "string",
            "description": f"A target of kind {kinds} from the service config",
        }
    else:
        then["properties"]["target"] = {"type": "null", "description": "This action takes no target"}
    return {
        "if": {"properties": {"action": {"const": info.name}}, "required": ["action"]},
        "then": then,
    }
