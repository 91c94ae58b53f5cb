"""``docker.scale``: a Compose service's replicas, as ``docker compose up -d --scale SERVICE=N`` sets them.

Run by ``receiver.flow.workers`` against a ``kind: docker`` target. A Compose service's
containers are those labelled ``com.docker.compose.project=P`` and
``com.docker.compose.service=S`` (one-off ``run`` containers excluded), numbered by
``com.docker.compose.container-number`` and named ``P-S-N`` (``P_S_N`` by Compose v1).
Scaling up creates containers from the configuration of the lowest-numbered one — its
``Config`` and ``HostConfig`` as the engine reports them, its networks and aliases, the
same image — under the next numbers, and starts them; scaling down stops and removes the
highest-numbered ones, as Compose does, keeping anonymous volumes. Every container, old or
new, must have a name the target's ``containers`` pattern fully matches. A service that
publishes a fixed host port, or sets ``container_name``, cannot have a second replica
(Compose refuses it too): the plan says so.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from remediations.base import ActionContext, PermanentError, Plan, Result, TargetNotAllowed
from remediations.docker.engine import DockerAction, engine_error, transport_errors
from remediations.replicas import Replicas, asked, compute, scales_down

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

PROJECT = "com.docker.compose.project"
SERVICE = "com.docker.compose.service"
NUMBER = "com.docker.compose.container-number"
ONEOFF = "com.docker.compose.oneoff"
_NAME = r"^[a-z0-9][a-z0-9_.-]{0,62}$"  # Compose's project and service names


class ComposeScaleParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    project: str = Field(pattern=_NAME, description="Compose project (label com.docker.compose.project)")
    service: str = Field(pattern=_NAME, description="Compose service (label com.docker.compose.service)")
    replicas: Replicas = Field(description='A count (3), a change ("+1", "-1") or a factor ("x2", round up)')
    min: int = Field(default=1, ge=0, le=50, description="Never fewer replicas than this")
    max: int = Field(ge=1, le=50, description="Never more replicas than this (required)")
    allow_zero: bool = Field(default=False, description="Allow scaling to 0 replicas")
    timeout: int = Field(default=10, ge=0, le=120, description="Seconds after SIGTERM before SIGKILL (down)")

    @model_validator(mode="after")
    def _consistent(self) -> ComposeScaleParams:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        if (self.replicas == 0 or self.min == 0) and not self.allow_zero:
            raise ValueError("0 replicas needs allow_zero: true")
        return self


def number(container: Container) -> int:
    raw = (container.labels or {}).get(NUMBER, "")
    return int(raw) if raw.isdigit() else 0


def replicas_of(client: docker.DockerClient, params: ComposeScaleParams) -> list[Container]:
    """The service's containers, lowest number first (one-off containers are not replicas)."""
    found = client.containers.list(all=True, ignore_removed=True, filters={
        "label": [f"{PROJECT}={params.project}", f"{SERVICE}={params.service}"]})
    return sorted((c for c in found if (c.labels or {}).get(ONEOFF, "False") != "True"),
                  key=lambda c: (number(c), c.name or ""))


def _separator(template: Container, params: ComposeScaleParams) -> str:
    name = template.name or ""
    for sep in ("-", "_"):
        if re.fullmatch(re.escape(f"{params.project}{sep}{params.service}{sep}") + r"\d+", name):
            return sep
    raise PermanentError(f"container {name!r} of service {params.service} is not named "
                         f"{params.project}-{params.service}-N: the service sets container_name, so it "
                         "cannot have a second replica (docker compose refuses to scale it too)")


def _fixed_ports(template: Container) -> list[str]:
    bindings = ((template.attrs.get("HostConfig") or {}).get("PortBindings") or {}).items()
    return sorted(f"{(b or {}).get('HostPort')}->{port}" for port, bound in bindings for b in bound or []
                  if (b or {}).get("HostPort") not in (None, "", "0"))


def _image(client: docker.DockerClient, template: Container) -> str:
    """The template's image by name if the name still means the same image, else by id."""
    from docker.errors import ImageNotFound  # noqa: PLC0415

    name, image_id = (template.attrs.get("Config") or {}).get("Image", ""), template.attrs.get("Image", "")
    try:
        return str(name) if name and client.images.get(name).id == image_id else str(image_id)
    except ImageNotFound:
        return str(image_id)


def create_config(client: docker.DockerClient, template: Container, name: str, n: int,
                  service: str) -> tuple[dict[str, Any], list[tuple[str, list[str]]]]:
    """The ``/containers/create`` body for replica ``n`` and the networks to connect it to after."""
    attrs = template.attrs
    config = {k: v for k, v in (attrs.get("Config") or {}).items() if k not in ("MacAddress",)}
    if config.get("Hostname") == str(template.id)[:12]:  # the engine's default, not the service's
        config.pop("Hostname")
    config["Image"] = _image(client, template)
    config["Labels"] = {**(config.get("Labels") or {}), NUMBER: str(n)}
    host = dict(attrs.get("HostConfig") or {})
    mode = str(host.get("NetworkMode") or "")
    networks: list[tuple[str, list[str]]] = []
    if mode not in ("none", "host", "") and not mode.startswith(("container:", "service:")):
        own = {template.name, str(template.id)[:12]}
        for net, endpoint in ((attrs.get("NetworkSettings") or {}).get("Networks") or {}).items():
            aliases = [a for a in (endpoint or {}).get("Aliases") or [] if a not in own] or [service]
            networks.append((net, aliases))
    body = {**config, "HostConfig": host}
    if networks:
        first, aliases = networks[0]
        body["NetworkingConfig"] = {"EndpointsConfig": {first: {"Aliases": aliases}}}
    return body, networks[1:]


class DockerComposeScale(DockerAction[ComposeScaleParams]):
    """``docker compose up -d --scale S=N``: replicas of one service, within bounds and the name pattern."""

    name = "docker.scale"
    description = "Scale a Compose service's containers (docker compose up --scale), bounded by min/max"
    params_model = ComposeScaleParams
    destructive = True
    execute_is_idempotent = True  # re-reads the replicas; does nothing when the count is already there
    timeout = 180.0
    permissions = ("containers:list", "containers:inspect", "images:inspect", "containers:create",
                   "containers:start", "networks:connect", "containers:stop", "containers:remove")

    destructive_by = frozenset({"replicas"})

    def is_destructive(self, params: ComposeScaleParams) -> bool:
        return scales_down(params.replicas)

    def subject(self, ctx: ActionContext, params: ComposeScaleParams) -> str:
        return f"{ctx.target_name}/compose/{params.project}/{params.service}"

    def _survey(self, client: docker.DockerClient, ctx: ActionContext,
                params: ComposeScaleParams) -> dict[str, Any]:
        """What a scale would do now: the replicas, the count asked, the names to create or remove."""
        pattern = self._target(ctx).containers
        replicas = replicas_of(client, params)
        where = f"service {params.service} of project {params.project}"
        if not replicas:
            raise PermanentError(f"no container of {where}: nothing to copy a replica from "
                                 "(docker compose up creates the first)")
        outside = [str(c.name) for c in replicas if not re.fullmatch(pattern, c.name or "")]
        if outside:
            raise TargetNotAllowed(f"{where} has container(s) {', '.join(outside)} outside the target's "
                                   f"pattern {pattern!r}; nothing was done")
        change = compute(len(replicas), params.replicas, low=params.min, high=params.max)
        if change.replicas == 0 and not params.allow_zero:
            raise PermanentError(f"scaling {where} to 0 needs allow_zero: true")
        survey: dict[str, Any] = {
            "project": params.project, "service": params.service, "from": len(replicas),
            "to": change.replicas, "asked": asked(params.replicas), "clamp": change.clamp,
            "replicas": [{"name": c.name, "id": c.id, "state": (c.attrs.get("State") or {}).get("Status")}
                         for c in replicas], "create": [], "remove": []}
        if change.replicas > len(replicas):
            template = replicas[0]
            ports = _fixed_ports(template)
            if ports:
                raise PermanentError(f"{where} publishes fixed host port(s) {', '.join(ports)}: a second "
                                     "replica cannot bind them (docker compose refuses too)")
            sep, top = _separator(template, params), max(number(c) for c in replicas)
            names = [(f"{params.project}{sep}{params.service}{sep}{n}", n)
                     for n in range(top + 1, top + 1 + change.replicas - len(replicas))]
            refused = [name for name, _ in names if not re.fullmatch(pattern, name)]
            if refused:
                raise TargetNotAllowed(f"new container name(s) {', '.join(refused)} would fall outside the "
                                       f"target's pattern {pattern!r}; nothing was done")
            survey |= {"template": template.name,
                       "create": [{"name": name, "number": n} for name, n in names]}
        elif change.replicas < len(replicas):
            survey["remove"] = [c.name for c in replicas[change.replicas:][::-1]]
        return survey

    async def plan(self, ctx: ActionContext, params: ComposeScaleParams) -> Plan:
        survey = await self._in_thread(ctx, lambda client: self._survey(client, ctx, params))
        where = f"{params.project}/{params.service}"
        note = f"asked {survey['asked']}" + (f", clamped to {survey['clamp']}" if survey["clamp"] else "")
        if survey["from"] == survey["to"]:
            return Plan(action=self.name, target=ctx.target_name, destructive=False, details=survey,
                        steps=(f"{where} already has {survey['from']} container(s) ({note}): nothing to do",))
        steps = [f"scale {where} from {survey['from']} to {survey['to']} container(s) ({note}), as "
                 f"`docker compose up -d --scale {params.service}={survey['to']}` does"]
        steps += [f"create {c['name']} from {survey['template']}'s configuration (same image, networks, "
                  f"volumes, environment; {NUMBER}={c['number']}) and start it" for c in survey["create"]]
        steps += [f"stop {name} (SIGTERM, SIGKILL after {params.timeout}s) and remove it (volumes kept)"
                  for name in survey["remove"]]
        return Plan(action=self.name, target=ctx.target_name, destructive=survey["to"] < survey["from"],
                    details=survey, steps=tuple(steps))

    async def execute(self, ctx: ActionContext, params: ComposeScaleParams, plan: Plan) -> Result:
        planned = plan.details
        where = f"{params.project}/{params.service}"

        def scale(client: docker.DockerClient) -> dict[str, Any]:
            replicas = replicas_of(client, params)
            if len(replicas) == planned["to"]:
                return {"created": [], "removed": [], "replicas": planned["to"], "changed": False}
            if len(replicas) != planned["from"]:
                raise PermanentError(f"{where} changed since the plan: {len(replicas)} container(s), planned "
                                     f"from {planned['from']} to {planned['to']}; nothing done")
            now = self._survey(client, ctx, params)
            if (now["create"], now["remove"]) != (planned["create"], planned["remove"]):
                raise PermanentError(f"{where} changed since the plan (now would create {now['create']}, "
                                     f"remove {now['remove']}); nothing done")
            created: list[str] = []
            removed: list[str] = []
            try:
                for new in planned["create"]:
                    template = next(c for c in replicas if c.name == planned["template"])
                    body, more = create_config(client, template, new["name"], new["number"], params.service)
                    made: dict[str, Any] = client.api.create_container_from_config(  # type: ignore[no-untyped-call]
                        body, name=new["name"])
                    for network, aliases in more:
                        client.api.connect_container_to_network(made["Id"], network, aliases=aliases)
                    client.api.start(made["Id"])
                    created.append(new["name"])
                for name in planned["remove"]:
                    container = next(c for c in replicas if c.name == name)
                    container.stop(timeout=params.timeout)
                    container.remove(v=False)
                    removed.append(name)
            except transport_errors() as exc:
                done = ", ".join(created + removed) or "nothing"
                raise engine_error(exc, f"scale of {where} (done so far: {done})") from None
            return {"created": created, "removed": removed, "replicas": planned["to"], "changed": True}

        done = await self._in_thread(ctx, scale)
        if not done["changed"]:
            return Result(summary=f"{where} already has {planned['to']} container(s); nothing done",
                          details=done)
        what = ", ".join([*(f"created {n}" for n in done["created"]),
                          *(f"removed {n}" for n in done["removed"])])
        return Result(summary=f"scaled {where} from {planned['from']} to {planned['to']} container(s): "
                              f"{what}",
                      details=done)
