"""``Registry.describe()``: one entry per action with its flags and params schema, sorted by name."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from remediations.base import Action, ActionContext, Plan, Result
from remediations.registry import Registry


class _Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    body: str = Field(default="", alias="json", description="An aliased field")


class _Fake(Action[_Params]):
    name = "fake.flush"
    description = "A fake for the registry test"
    params_model = _Params
    destructive = True
    approval_always = True
    target_kinds = frozenset({"redis", "http"})
    timeout = 7.5
    permissions: ClassVar[tuple[str, ...]] = ("flushdb",)

    async def plan(self, ctx: ActionContext, params: _Params) -> Plan:
        raise NotImplementedError

    async def execute(self, ctx: ActionContext, params: _Params, plan: Plan) -> Result:
        raise NotImplementedError


class _Other(_Fake):
    name = "alpha.read"
    destructive = False
    approval_always = False
    read_only = True
    target_kinds = frozenset()
    permissions = ()


def test_describe_lists_actions_sorted_with_flags_and_schema() -> None:
    """Each entry carries name, description, flags, sorted kinds, timeout, permissions, aliased schema."""
    described = Registry([_Fake(), _Other()]).describe()
    assert [d["name"] for d in described] == ["alpha.read", "fake.flush"]
    fake: dict[str, Any] = described[1]
    assert {k: v for k, v in fake.items() if k != "params"} == {
        "name": "fake.flush",
        "description": "A fake for the registry test",
        "destructive": True,
        "approval_always": True,
        "read_only": False,
        "target_kinds": ["http", "redis"],
        "timeout": 7.5,
        "permissions": ["flushdb"],
    }
    assert fake["params"] == _Params.model_json_schema(by_alias=True)
    assert "json" in fake["params"]["properties"]
    assert described[0]["read_only"] is True
    assert described[0]["target_kinds"] == []
