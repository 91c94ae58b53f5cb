"""Every action in ``default_registry()`` keeps the catalogue's contract, whichever backend it belongs to.

Parametrized over the registry at collection time, so an action registered later is
checked with no change here. Only what holds for all actions lives in this file; each
backend's own tests cover its behaviour.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, Literal, get_args, get_origin

import pytest
from pydantic import TypeAdapter

from remediations.base import Action, ActionContext, PermanentError
from remediations.registry import default_registry
from remediations.targets import Target, TargetConfig
from rules.alert import Alert
from tests.support.sdkpool import SDK_CALLS

REGISTRY = default_registry()
NAMES = REGISTRY.names()

NAME = re.compile(r"^(?P<backend>[a-z][a-z0-9]*)\.(?P<verb>[a-z][a-z0-9_]*)$")
# A verb (or a word of it) that changes or removes something: such an action must say so.
CHANGING_VERB = re.compile(
    r"(?:^|_)(?:restart|scale|undo|delete|flush[a-z]*|terminate|cancel|set|purge|rollback)(?:_|$)")
BACKENDLESS = frozenset({"notify", "http"})  # touch no backend that grants permissions
KNOWN_KINDS = frozenset(get_args(cls.model_fields["kind"].annotation)[0] for cls in get_args(TargetConfig))

# One valid config per target kind, to hand an action a target of a kind it does not take.
TARGET_SAMPLES: dict[str, dict[str, Any]] = {
    "http": {"kind": "http", "base_url": "http://svc.internal:8080"},
    "kubernetes": {"kind": "kubernetes", "namespaces": ["prod"]},
    "docker": {"kind": "docker", "containers": "web-.*"},
    "postgres": {"kind": "postgres", "dsn": "env:CONFORMANCE_SECRET", "databases": ["app"]},
    "redis": {"kind": "redis", "url": "env:CONFORMANCE_SECRET"},
    "celery": {"kind": "celery", "broker": "env:CONFORMANCE_SECRET", "queues": ["celery"]},
    "argocd": {"kind": "argocd", "base_url": "https://argocd.internal", "token": "env:CONFORMANCE_SECRET",
               "applications": ["shop"]},
}

# Gaps in files this suite does not own, each to be fixed there (strict: a fix makes it XPASS-fail
# until the entry is removed).

ALERT = Alert(fingerprint="f", status="firing", labels={"alertname": "A"}, annotations={},
              starts_at=datetime(2026, 1, 1, tzinfo=UTC), starts_at_raw="2026-01-01T00:00:00Z")


def action_of(name: str) -> Action[Any]:
    action = REGISTRY.get(name)
    assert action is not None
    return action


def overrides_is_destructive(action: Action[Any]) -> bool:
    return type(action).is_destructive is not Action.is_destructive


def placeholder(annotation: Any) -> Any:
    """A value of a plausible type for a required field (the wrong-kind check never gets past the kind)."""
    options = [a for a in get_args(annotation) if a is not type(None)] or [annotation]
    first = options[0]
    if get_origin(annotation) is Literal:
        return first
    simple: dict[Any, Any] = {int: 1, float: 1.0, str: "x", bool: False}
    if first in simple:
        return simple[first]
    origin = get_origin(first)
    return {list: [], dict: {}, tuple: (), set: set(), frozenset: frozenset()}.get(origin)


def unvalidated_params(action: Action[Any]) -> Any:
    """Params with defaults and placeholders for required fields, built without validation."""
    model = action.params_model
    required = {name: placeholder(f.annotation) for name, f in model.model_fields.items() if f.is_required()}
    return model.model_construct(**required)


def test_the_catalogue_is_not_empty() -> None:
    """The registry has actions to check (an import failure would otherwise pass silently)."""
    assert "notify.log" in NAMES


def test_samples_cover_every_target_kind() -> None:
    """Each target kind in remediations.targets has a sample here, so a new kind is checked too."""
    assert set(TARGET_SAMPLES) == KNOWN_KINDS


@pytest.mark.parametrize("name", NAMES)
def test_name_description_and_module(name: str) -> None:
    """The name is backend.verb, it lives in its backend's module or package, the description is one line."""
    action = action_of(name)
    match = NAME.match(action.name)
    assert match, f"{action.name!r} is not backend.verb"
    backend = match["backend"]
    module = type(action).__module__
    assert module == f"remediations.{backend}" or module.startswith(f"remediations.{backend}."), module
    assert action.description.strip()
    assert "\n" not in action.description
    assert action.timeout > 0


@pytest.mark.parametrize("name", NAMES)
def test_params_model_is_strict_and_schema_is_an_object(name: str) -> None:
    """Params are a frozen model that forbids unknown keys; its JSON schema is an object with properties."""
    model = action_of(name).params_model
    assert model.model_config.get("frozen") is True
    assert model.model_config.get("extra") == "forbid"
    schema = model.model_json_schema(by_alias=True)
    assert schema["type"] == "object"
    assert isinstance(schema.get("properties"), dict)
    assert schema["properties"]
    json.dumps(schema)


@pytest.mark.parametrize("name", NAMES)
def test_every_param_is_described(name: str) -> None:
    """Every params field carries a description (the rule schema and `actions list --json` show it)."""
    schema = action_of(name).params_model.model_json_schema(by_alias=True)
    missing = [field for field, prop in schema["properties"].items() if not prop.get("description")]
    assert missing == [], f"{name}: no description on {', '.join(missing)}"


@pytest.mark.parametrize("name", NAMES)
def test_destructive_flag_is_honest(name: str) -> None:
    """A changing verb is destructive (or decides per params); a read-only action is never destructive."""
    action = action_of(name)
    verb = action.name.partition(".")[2]
    if CHANGING_VERB.search(verb):
        assert action.destructive or overrides_is_destructive(action), (
            f"{name}: '{verb}' changes something; set destructive = True or override is_destructive")
    if action.read_only:
        assert not action.destructive
        assert not overrides_is_destructive(action)
        assert not action.approval_always


@pytest.mark.parametrize("name", NAMES)
def test_target_kinds_and_permissions(name: str) -> None:
    """target_kinds name real target kinds; permissions are strings, present when a backend grants them."""
    action = action_of(name)
    assert isinstance(action.target_kinds, frozenset)
    assert action.target_kinds <= KNOWN_KINDS, sorted(action.target_kinds - KNOWN_KINDS)
    assert isinstance(action.permissions, tuple)
    assert all(isinstance(p, str) and p.strip() for p in action.permissions)
    if action.name.partition(".")[0] not in BACKENDLESS:
        assert action.permissions, f"{name}: list what it needs from its backend in `permissions`"


@pytest.mark.parametrize("name", NAMES)
def test_a_target_of_the_wrong_kind_is_refused(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """check_allowed with a target of a kind the action does not take raises a PermanentError.

    The params are placeholders built without validation (any backend's valid params cannot
    be known here), so the kind must be checked before anything depends on param values; an
    action that takes no target refuses any.
    """
    monkeypatch.setenv("CONFORMANCE_SECRET", "redis://127.0.0.1:1/0")
    action = action_of(name)
    params = unvalidated_params(action)
    for kind in sorted(KNOWN_KINDS - action.target_kinds):
        target = TypeAdapter(Target).validate_python(TARGET_SAMPLES[kind])
        ctx = ActionContext(calls=SDK_CALLS, decision_id="d", rule="r", alert=ALERT, target_name=f"a-{kind}",
                            target=target, dry_run=True)
        try:
            action.check_allowed(ctx, params)
        except PermanentError:
            continue
        except Exception as exc:
            pytest.fail(f"{name} with a {kind} target raised {exc!r}, not a PermanentError "
                        "(check the target's kind before reading params)")
        pytest.fail(f"{name} accepted a {kind} target")


def test_describe_covers_every_action_as_json() -> None:
    """`remediator actions list --json` can print every action: describe() is JSON, one entry each."""
    described = REGISTRY.describe()
    assert [d["name"] for d in described] == NAMES
    json.dumps(described)
