"""``docker.set_limits``: raise a container's memory and/or CPU limit in place, bounded, never lower.

Run by ``receiver.flow.workers`` against a ``kind: docker`` target: ``docker update --memory
… --memory-swap … --cpus …`` (``POST /containers/{id}/update``), which changes the running
container's cgroup without a restart, as the runbooks' "short-term: increase memory
limits" asks. Containers are chosen as ``remediations.docker.containers`` chooses them,
capped by ``max_containers``. Quantities are Kubernetes quantities (``remediations.quantity``:
``512Mi``, ``2Gi``), CPUs a number of cores (``1.5``). A container with no limit (unlimited)
is left alone: setting one would lower it. Execute re-reads each container and does nothing
where the limit already is the planned one.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from remediations.base import ActionContext, PermanentError, Plan, Result
from remediations.docker.containers import ContainerAction, ContainerSelector
from remediations.docker.engine import engine_error, transport_errors
from remediations.quantity import format_bytes, parse_quantity

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

_MIB = 2**20
_NANO = 10**9


def _positive_quantity(text: str) -> str:
    if parse_quantity(text) <= 0:
        raise ValueError(f"{text!r} must be above 0")
    return text.strip()


Quantity = Annotated[str, AfterValidator(_positive_quantity)]


class LimitsParams(ContainerSelector):
    memory: Quantity | None = Field(default=None, description="Raise the memory limit to this (2Gi)")
    memory_factor: Decimal | None = Field(default=None, gt=1, le=10,
                                          description="Multiply the memory limit (1.5), up to whole Mi")
    memory_max: Quantity | None = Field(default=None, description="Never a memory limit above this (4Gi)")
    cpus: Decimal | None = Field(default=None, gt=0, le=256, description="Raise the CPU limit to these cores")
    cpus_factor: Decimal | None = Field(default=None, gt=1, le=10, description="Multiply the CPU limit (2)")
    cpus_max: Decimal | None = Field(default=None, gt=0, le=256, description="Never a CPU limit above this")
    max_containers: int = Field(default=1, ge=1, le=20,
                                description="Refuse when the label chooses more containers than this")

    @model_validator(mode="after")
    def _consistent(self) -> LimitsParams:
        memory, cpus = (self.memory, self.memory_factor), (self.cpus, self.cpus_factor)
        if memory == (None, None) and cpus == (None, None):
            raise ValueError("give memory or memory_factor, and/or cpus or cpus_factor")
        for (value, factor), ceiling, what in ((memory, self.memory_max, "memory"),
                                               (cpus, self.cpus_max, "cpus")):
            if value is not None and factor is not None:
                raise ValueError(f"give one of {what} and {what}_factor")
            if (value is not None or factor is not None) and ceiling is None:
                raise ValueError(f"{what}_max is required with {what} or {what}_factor")
        return self


def _memory_change(host: dict[str, Any], params: LimitsParams) -> dict[str, Any] | None:
    """From/to of the memory limit (and swap), None when memory is not asked or would not rise."""
    if params.memory is None and params.memory_factor is None:
        return None
    current = int(host.get("Memory") or 0)
    change: dict[str, Any] = {"from": current, "to": current, "swap_from": host.get("MemorySwap"),
                              "swap_to": host.get("MemorySwap"), "why": None}
    if current <= 0:
        return change | {"why": "no memory limit (unlimited); setting one would lower it"}
    if params.memory_factor is not None:
        wanted, how = math.ceil(current * params.memory_factor / _MIB) * _MIB, f"x{params.memory_factor}"
    else:
        wanted, how = math.ceil(parse_quantity(str(params.memory))), str(params.memory)
    ceiling = math.floor(parse_quantity(str(params.memory_max)))
    if wanted > ceiling:
        wanted, how = ceiling, f"{how}, capped at max {params.memory_max}"
    if wanted <= current:
        return change | {"why": f"memory limit {format_bytes(current)} is not below {format_bytes(wanted)} "
                                f"(asked {how}); a limit is never lowered"}
    swap = int(host.get("MemorySwap") or 0)
    # Keep the swap allowance: the engine refuses a memory limit above the swap limit.
    new_swap = wanted + (swap - current) if swap > 0 else swap
    return change | {"to": wanted, "swap_to": new_swap if swap else None, "how": how}


def _cpus(host: dict[str, Any]) -> Decimal | None:
    if host.get("NanoCpus"):
        return Decimal(int(host["NanoCpus"])) / _NANO
    quota, period = int(host.get("CpuQuota") or 0), int(host.get("CpuPeriod") or 0) or 100_000
    return Decimal(quota) / period if quota > 0 else None


def _cpu_change(host: dict[str, Any], params: LimitsParams) -> dict[str, Any] | None:
    if params.cpus is None and params.cpus_factor is None:
        return None
    current = _cpus(host)
    change: dict[str, Any] = {"from": str(current) if current is not None else None, "to": None, "why": None}
    if current is None:
        return change | {"why": "no CPU limit (unlimited); setting one would lower it"}
    wanted = current * params.cpus_factor if params.cpus_factor is not None else Decimal(str(params.cpus))
    how = f"x{params.cpus_factor}" if params.cpus_factor is not None else str(params.cpus)
    assert params.cpus_max is not None  # the model validator guarantees it
    if wanted > params.cpus_max:
        wanted, how = params.cpus_max, f"{how}, capped at max {params.cpus_max}"
    wanted = wanted.quantize(Decimal("0.001"))
    if wanted <= current:
        change["to"] = str(current)
        return change | {"why": f"CPU limit {current} is not below {wanted} (asked {how}); never lowered"}
    if host.get("NanoCpus"):
        body = {"NanoCpus": int(wanted * _NANO)}
    else:  # set as --cpu-quota/--cpu-period: the engine refuses NanoCpus beside them
        period = int(host.get("CpuPeriod") or 0) or 100_000
        body = {"CpuQuota": math.ceil(wanted * period), "CpuPeriod": period}
    return change | {"to": str(wanted), "how": how, "body": body}


def limits_plan(container: Container, params: LimitsParams) -> dict[str, Any]:
    """One container's planned change: names, from/to and the update body (empty: nothing to do)."""
    host: dict[str, Any] = container.attrs.get("HostConfig") or {}
    memory, cpus = _memory_change(host, params), _cpu_change(host, params)
    body: dict[str, Any] = {}
    if memory is not None and memory["why"] is None:
        body["Memory"] = memory["to"]
        if memory["swap_to"] is not None:
            body["MemorySwap"] = memory["swap_to"]
    if cpus is not None and cpus["why"] is None:
        body |= cpus.pop("body")
    before = {key: host.get(key) for key in body}
    return {"name": container.name, "id": container.id, "memory": memory, "cpus": cpus, "update": body,
            "before": before}


def describe(entry: dict[str, Any]) -> list[str]:
    """A container's planned change in a plan's words."""
    steps = []
    memory, cpus = entry["memory"], entry["cpus"]
    if memory is not None:
        steps.append(f"{entry['name']}: memory limit stays {format_bytes(memory['from'])}: {memory['why']}"
                     if memory["why"] else
                     f"{entry['name']}: raise the memory limit from {format_bytes(memory['from'])} to "
                     f"{format_bytes(memory['to'])} (asked {memory['how']})"
                     + (f", swap limit {format_bytes(memory['swap_from'])} → "
                        f"{format_bytes(memory['swap_to'])}"
                        if memory["swap_to"] not in (None, -1) else ""))
    if cpus is not None:
        steps.append(f"{entry['name']}: CPU limit stays {cpus['from']}: {cpus['why']}" if cpus["why"] else
                     f"{entry['name']}: raise the CPU limit from {cpus['from']} to {cpus['to']} cores "
                     f"(asked {cpus['how']})")
    if entry["update"]:
        steps.append(f"POST /containers/{entry['name']}/update {entry['update']} (docker update: in place, "
                     "no restart)")
    return steps


def post_update(client: docker.DockerClient, container_id: str, body: dict[str, Any]) -> None:
    """``POST /containers/{id}/update`` (docker-py's ``update_container`` cannot send ``NanoCpus``)."""
    import requests  # noqa: PLC0415 - loaded with the SDK
    from docker.errors import create_api_error_from_http_exception  # noqa: PLC0415

    api = client.api
    url = f"{api.base_url}/v{api.api_version}/containers/{container_id}/update"
    response = api.post(url, json=body)
    try:
        response.raise_for_status()
    except requests.exceptions.HTTPError as exc:
        create_api_error_from_http_exception(exc)  # raises docker.errors.APIError with the engine's message


class DockerSetLimits(ContainerAction[LimitsParams]):
    """``docker update --memory/--memory-swap/--cpus``: raise limits in place, bounded, never lower."""

    name = "docker.set_limits"
    description = "Raise a container's memory and/or CPU limit in place (docker update), bounded; never lower"
    params_model = LimitsParams
    destructive = True
    execute_is_idempotent = True  # re-reads each container; does nothing where the limit already is
    timeout = 60.0
    permissions = ("containers:list", "containers:inspect", "containers:update")

    async def plan(self, ctx: ActionContext, params: LimitsParams) -> Plan:
        target = self._target(ctx)

        def read(client: docker.DockerClient) -> list[dict[str, Any]]:
            return [limits_plan(c, params) for c in self._select(client, target, params,
                                                                   limit=params.max_containers)]

        entries = await self._in_thread(ctx, read)
        steps = [step for entry in entries for step in describe(entry)]
        changing = any(entry["update"] for entry in entries)
        if not changing:
            steps.append("nothing to do")
        return Plan(action=self.name, target=ctx.target_name, steps=tuple(steps), destructive=changing,
                    details={"containers": entries, "label": params.label})

    async def execute(self, ctx: ActionContext, params: LimitsParams, plan: Plan) -> Result:
        target = self._target(ctx)
        planned = {entry["id"]: entry for entry in plan.details.get("containers", [])}

        def update(client: docker.DockerClient) -> list[dict[str, Any]]:
            chosen = self._select(client, target, params, limit=params.max_containers)
            if sorted(str(c.id) for c in chosen) != sorted(planned):
                raise PermanentError("the containers changed since the plan: planned "
                                     + ", ".join(e["name"] for e in planned.values()) + ", now "
                                     + ", ".join(str(c.name) for c in chosen) + "; nothing was updated")
            done = []
            for container in chosen:
                was = planned[str(container.id)]
                host = container.attrs.get("HostConfig") or {}
                now = {key: host.get(key) for key in was["update"]}
                if not was["update"] or now == was["update"]:  # nothing asked, or already done
                    done.append({"name": container.name, "updated": False, "limits": was["update"]})
                    continue
                if now != was["before"]:
                    raise PermanentError(f"the limits of {container.name} changed since the plan (now {now}, "
                                         f"planned from {was['before']}); nothing more was updated "
                                         f"(already: {', '.join(d['name'] for d in done) or 'none'})")
                try:
                    post_update(client, str(container.id), was["update"])
                except transport_errors() as exc:
                    raise engine_error(exc, f"update of {container.name}") from None
                done.append({"name": container.name, "updated": True, "limits": was["update"]})
            return done

        done = await self._in_thread(ctx, update)
        summary = "; ".join(
            f"{d['name']}: " + ("updated " + ", ".join(f"{k}={v}" for k, v in d["limits"].items())
                                if d["updated"] else "nothing to do") for d in done)
        return Result(summary=summary, details={"containers": done})
