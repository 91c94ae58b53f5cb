"""``kubernetes.set_env``: set one environment variable of one container, from an allow-list of names.

Run by ``receiver.flow.workers``; shares ``remediations.kubernetes.api`` with the other
Kubernetes actions. The runbooks' ``kubectl set env deployment/backend PYTHONTRACEMALLOC=1``
and "increase the pool size: DB_POOL_SIZE=20": a strategic merge patch of the container's
``env`` (merged by name, so the other variables stay), which replaces every pod. The name
must be on the target's ``env_names`` or the rule's ``allowed_names`` (on both, when both
say), checked after templating; approval is always asked, whatever the rule says.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator

from remediations.base import ActionContext, PermanentError, Plan, Result, TargetNotAllowed
from remediations.kubernetes.api import KubernetesAction, LabelName, WorkloadParams
from remediations.kubernetes.rollout import WORKLOAD_PERMISSIONS, refuse_on_delete, refuse_paused

_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
EnvName = Annotated[str, Field(pattern=_NAME, max_length=128)]


class SetEnvParams(WorkloadParams):
    container: LabelName = Field(description="Container name in the pod template")
    env: EnvName = Field(description="Variable name (letters, digits, _); must be allowed by target or rule")
    value: str = Field(max_length=1024, description="The value to set (at most 1024 characters, one line)")
    allowed_names: list[EnvName] | None = Field(
        default=None, min_length=1, max_length=50,
        description="This rule's allow-list of variable names (with the target's env_names, both must allow)")

    @field_validator("value")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if any(ord(c) < 0x20 and c != "\t" for c in value):
            raise ValueError("value must not contain line breaks or control characters")
        return value


def env_entry(workload: dict[str, Any], container: str, name: str) -> dict[str, Any] | None:
    """The container's ``env`` entry for ``name`` (None when unset); a missing container is permanent."""
    containers = (((workload.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")
    for item in containers or []:
        if item.get("name") == container:
            return next((e for e in item.get("env") or [] if e.get("name") == name), None)
    names = ", ".join(str(c.get("name")) for c in containers or []) or "none"
    kind = str(workload.get("kind") or "workload").lower()
    raise PermanentError(f"{kind} {(workload.get('metadata') or {}).get('name')} has no container "
                         f"{container!r} (containers: {names})")


def describe(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "unset"
    if "valueFrom" in entry:
        source = next(iter(entry["valueFrom"] or {}), "a reference")
        return f"from {source}"
    return repr(entry.get("value", ""))


def env_patch(container: str, name: str, value: str, *, drop_value_from: bool) -> dict[str, Any]:
    """Strategic merge: containers and env merge by name; a ``valueFrom`` is removed with null."""
    entry: dict[str, Any] = {"name": name, "value": value}
    if drop_value_from:
        entry["valueFrom"] = None
    return {"spec": {"template": {"spec": {"containers": [{"name": container, "env": [entry]}]}}}}


class KubernetesSetEnv(KubernetesAction[SetEnvParams]):
    """``kubectl set env deployment/NAME -c C NAME=VALUE`` (or a StatefulSet): one allowed variable."""

    name = "kubernetes.set_env"
    description = ("Set one environment variable of a container (kubectl set env), only names the target "
                   "or rule allows; always asks approval")
    params_model = SetEnvParams
    destructive = True
    approval_always = True  # a changed variable changes what the service does, for every pod
    execute_is_idempotent = True  # re-reads the object; does nothing when it already matches
    permissions = WORKLOAD_PERMISSIONS

    def check_allowed(self, ctx: ActionContext, params: SetEnvParams) -> None:
        super().check_allowed(ctx, params)
        target = self.target(ctx)
        lists = [("the target's env_names", target.env_names)] if target.env_names else []
        if params.allowed_names is not None:
            lists.append(("the rule's allowed_names", params.allowed_names))
        if not lists:
            raise TargetNotAllowed(f"{self.name}: target {ctx.target_name!r} has no env_names and the rule "
                                   "gives no allowed_names: no variable may be set")
        for what, names in lists:
            if params.env not in names:
                raise TargetNotAllowed(f"{self.name}: variable {params.env!r} is not in {what} "
                                       f"({', '.join(names)})")

    async def plan(self, ctx: ActionContext, params: SetEnvParams) -> Plan:
        api = await self.api(ctx)
        workload = await api.read_workload(params.kind, params.namespace, params.name)
        refuse_paused(workload, "set a variable of")
        refuse_on_delete(params.kind, workload, "set a variable of")
        entry = env_entry(workload, params.container, params.env)
        where, c, kind = self.where(params), params.container, params.kind
        details: dict[str, Any] = {"namespace": params.namespace, kind: params.name, "container": c,
                                   "env": params.env, "from": describe(entry), "to": params.value}
        if entry is not None and "valueFrom" not in entry and entry.get("value", "") == params.value:
            details["patch"] = None
            return Plan(action=self.name, target=ctx.target_name, destructive=False, details=details, steps=(
                f"{params.env} of container {c} in {kind} {where} is already {params.value!r}: "
                "nothing to do",))
        details["patch"] = env_patch(c, params.env, params.value,
                                     drop_value_from=entry is not None and "valueFrom" in entry)
        controller = "Deployment" if kind == "deployment" else "StatefulSet"
        return Plan(action=self.name, target=ctx.target_name, destructive=True, details=details, steps=(
            f"set {params.env} of container {c} in {kind} {where} from {describe(entry)} to "
            f"{params.value!r}, as `kubectl set env` does",
            f"PATCH {kind} {where} (strategic merge patch): containers[name={c}].env[name={params.env}]"
            + (" (its valueFrom removed)" if details["patch"] and entry and "valueFrom" in entry else ""),
            f"the {controller} controller then replaces its pods with the new environment",
        ))

    async def execute(self, ctx: ActionContext, params: SetEnvParams, plan: Plan) -> Result:
        where, c, name = self.where(params), params.container, params.env
        if plan.details.get("patch") is None:
            return Result(summary=f"{name} of {c} in {where} is already {params.value!r}; nothing done",
                          details={"patched": False})
        api = await self.api(ctx)
        workload = await api.read_workload(params.kind, params.namespace, params.name)
        entry = env_entry(workload, c, name)
        if entry is not None and "valueFrom" not in entry and entry.get("value", "") == params.value:
            return Result(summary=f"{name} of {c} in {where} is already {params.value!r}; nothing done",
                          details={"patched": False})
        if describe(entry) != plan.details["from"]:
            raise PermanentError(f"{name} of {c} in {where} changed since the plan: {describe(entry)}, "
                                 f"planned from {plan.details['from']} to {params.value!r}; nothing done")
        patch = env_patch(c, name, params.value, drop_value_from=entry is not None and "valueFrom" in entry)
        await api.patch_workload(params.kind, params.namespace, params.name, patch)
        return Result(summary=f"set {name} of {c} in {params.kind} {where} to {params.value!r} "
                              f"(was {plan.details['from']})",
                      details={"patched": True, "from": plan.details["from"], "to": params.value})
