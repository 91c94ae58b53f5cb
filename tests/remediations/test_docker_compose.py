"""``docker.scale`` (a Compose service's replicas), ``docker.set_limits`` and ``docker.diagnose``'s log
filter and engine view, against the real private Docker engine (tests.support.dockerd).

Compose services are containers carrying Compose's labels, made here the way Compose makes
them (name ``PROJECT-SERVICE-N``, project/service/container-number/oneoff labels), so the
test needs no Compose binary; each test's project starts with its own prefix and its
containers are force-removed at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import docker
import pytest
from docker.models.containers import Container

from remediations.base import InvalidParams, PermanentError, Plan, TargetNotAllowed
from remediations.docker.compose import DockerComposeScale
from remediations.docker.diagnose import DockerDiagnose
from remediations.docker.limits import DockerSetLimits
from tests.remediations.test_docker import (  # the engine's client and the per-test prefix
    SERVICE,
    client,
    context,
    docker_target,
    prefix,
)
from tests.support.dockerd import IMAGE, Engine, wait_until

__all__ = ["client", "prefix"]  # fixtures, used by name
WAIT = 20.0


@pytest.fixture
def scale() -> Iterator[DockerComposeScale]:
    action = DockerComposeScale()
    yield action
    action.close()


@pytest.fixture
def limits() -> Iterator[DockerSetLimits]:
    action = DockerSetLimits()
    yield action
    action.close()


def compose_container(client: docker.DockerClient, project: str, service: str, n: int, *,
                      oneoff: bool = False, start: bool = True, **kwargs: Any) -> Container:
    """A container as Compose makes one (created only, with ``start=False``)."""
    labels = {"com.docker.compose.project": project, "com.docker.compose.service": service,
              "com.docker.compose.container-number": str(n), "com.docker.compose.oneoff": str(oneoff),
              "com.docker.compose.config-hash": "abc123"}
    name = kwargs.pop("name", f"{project}-{service}-{n}")
    env = {"ROLE": service, "POOL": "5"}
    if start:
        return client.containers.run(IMAGE, SERVICE, name=name, network_mode="none", labels=labels,
                                     environment=env, detach=True, **kwargs)
    return client.containers.create(IMAGE, SERVICE, name=name, network_mode="none", labels=labels,
                                    environment=env, **kwargs)


def names(client: docker.DockerClient, project: str, service: str) -> list[str]:
    found = client.containers.list(all=True, filters={"label": [f"com.docker.compose.project={project}",
                                                               f"com.docker.compose.service={service}"]})
    return sorted(str(c.name) for c in found)


async def plan_and_run(action: Any, ctx: Any, raw: dict[str, Any]) -> tuple[Plan, Any]:
    params = action.parse_params(raw)
    action.check_allowed(ctx, params)
    plan = await action.plan(ctx, params)
    return plan, await action.execute(ctx, params, plan)


# ---- docker.scale -------------------------------------------------------------------------------

async def test_scale_up_creates_replicas_from_the_first_ones_configuration(
        engine: Engine, client: docker.DockerClient, prefix: str, scale: DockerComposeScale) -> None:
    """`docker compose up -d --scale web=3`: web-2 and web-3 made like web-1 (image, env, labels), started."""
    project = f"{prefix}app"
    compose_container(client, project, "web", 1, mem_limit="64m")
    # a `docker compose run` container: not a replica
    compose_container(client, project, "web", 7, oneoff=True, name=f"{project}-web-run-1")
    ctx = context(docker_target(engine.url, f"{prefix}app-web-[0-9]+"))
    raw = {"project": project, "service": "web", "replicas": "+2", "max": 3}
    params = scale.parse_params(raw)
    plan = await scale.plan(ctx, params)
    assert names(client, project, "web") == [f"{project}-web-1", f"{project}-web-run-1"]  # plan made none
    assert plan.steps == (
        f"scale {project}/web from 1 to 3 container(s) (asked +2), as "
        "`docker compose up -d --scale web=3` does",
        f"create {project}-web-2 from {project}-web-1's configuration (same image, networks, volumes, "
        "environment; com.docker.compose.container-number=2) and start it",
        f"create {project}-web-3 from {project}-web-1's configuration (same image, networks, volumes, "
        "environment; com.docker.compose.container-number=3) and start it",
    )
    assert plan.destructive is False
    result = await scale.execute(ctx, params, plan)
    assert result.summary == (f"scaled {project}/web from 1 to 3 container(s): created {project}-web-2, "
                              f"created {project}-web-3")
    for n in (2, 3):
        made = client.api.inspect_container(f"{project}-web-{n}")
        assert made["State"]["Running"] is True
        assert made["Config"]["Image"] == IMAGE
        assert "ROLE=web" in made["Config"]["Env"]
        assert made["Config"]["Labels"]["com.docker.compose.container-number"] == str(n)
        assert made["Config"]["Labels"]["com.docker.compose.service"] == "web"
        assert made["HostConfig"]["Memory"] == 64 * 2**20
        assert made["Config"]["Hostname"] == made["Id"][:12]  # its own, not web-1's
    again = await scale.execute(ctx, params, plan)
    assert again.summary == f"{project}/web already has 3 container(s); nothing done"


async def test_scale_down_removes_the_highest_numbers(
        engine: Engine, client: docker.DockerClient, prefix: str, scale: DockerComposeScale) -> None:
    """Down to 1: the highest-numbered containers are stopped and removed, web-1 stays."""
    project = f"{prefix}app"
    for n in (1, 2, 3):
        compose_container(client, project, "worker", n)
    ctx = context(docker_target(engine.url, f"{prefix}.*"))
    plan, result = await plan_and_run(scale, ctx, {"project": project, "service": "worker", "replicas": 1,
                                                    "max": 5, "timeout": 1})
    assert plan.destructive is True
    assert plan.steps[1:] == tuple(f"stop {project}-worker-{n} (SIGTERM, SIGKILL after 1s) and remove it "
                                   "(volumes kept)" for n in (3, 2))
    assert names(client, project, "worker") == [f"{project}-worker-1"]
    assert result.details["removed"] == [f"{project}-worker-3", f"{project}-worker-2"]


@pytest.mark.parametrize(("replicas", "bounds", "to"), [
    pytest.param("+5", {"max": 3}, 3, id="clamped-to-max"),
    pytest.param("-5", {"max": 3, "min": 2}, 2, id="clamped-to-min"),
    pytest.param(2, {"max": 3}, 2, id="already-there"),
])
async def test_scale_is_bounded(engine: Engine, client: docker.DockerClient, prefix: str,
                                scale: DockerComposeScale, replicas: Any, bounds: dict[str, int],
                                to: int) -> None:
    project = f"{prefix}app"
    for n in (1, 2):
        compose_container(client, project, "web", n)
    ctx = context(docker_target(engine.url, f"{prefix}.*"))
    params = scale.parse_params({"project": project, "service": "web", "replicas": replicas, **bounds})
    plan = await scale.plan(ctx, params)
    assert plan.details["to"] == to


async def test_scale_refuses_what_compose_refuses_and_what_the_pattern_forbids(
        engine: Engine, client: docker.DockerClient, prefix: str, scale: DockerComposeScale) -> None:
    """A fixed host port, a container_name, new names outside the pattern, no replica: refused, none made."""
    project = f"{prefix}app"
    compose_container(client, project, "nginx", 1, start=False, ports={"80/tcp": 18080})
    compose_container(client, project, "beat", 1, name=f"{project}-scheduler")
    compose_container(client, project, "web", 9)
    wide = context(docker_target(engine.url, f"{prefix}.*"))
    cases = [
        (wide, "nginx", PermanentError, "publishes fixed host port"),
        (wide, "beat", PermanentError, "sets container_name"),
        (context(docker_target(engine.url, f"{prefix}app-web-[0-9]")), "web", TargetNotAllowed,
         f"{project}-web-10 would fall outside"),
        (wide, "missing", PermanentError, "no container of service missing"),
    ]
    for ctx, service, error, words in cases:
        params = scale.parse_params({"project": project, "service": service, "replicas": "+1", "max": 3})
        with pytest.raises(error, match=words):
            await scale.plan(ctx, params)
    assert len(client.containers.list(all=True, filters={"name": prefix})) == 3


@pytest.mark.parametrize(("raw", "field"), [
    pytest.param({"max": 51}, "max", id="max-too-big"),
    pytest.param({"max": None}, "max", id="max-required"),
    pytest.param({"min": 4, "max": 3}, "params", id="min-above-max"),
    pytest.param({"replicas": 0}, "params", id="zero-needs-allow-zero"),
    pytest.param({"service": "Web"}, "service", id="service-upper"),
    pytest.param({"project": "a/b"}, "project", id="project-slash"),
])
def test_scale_params_are_strict(raw: dict[str, Any], field: str) -> None:
    base = {"project": "app", "service": "web", "replicas": 2, "max": 3}
    with pytest.raises(InvalidParams, match=rf"docker\.scale: {field}"):
        DockerComposeScale().parse_params({k: v for k, v in {**base, **raw}.items() if v is not None})


# ---- docker.set_limits --------------------------------------------------------------------------

async def test_set_limits_raises_memory_and_cpus_in_place(
        engine: Engine, client: docker.DockerClient, prefix: str, limits: DockerSetLimits) -> None:
    """docker update: memory ×1.5 (swap allowance kept), CPUs to 1; no restart; a retry does nothing."""
    web = compose_container(client, f"{prefix}app", "web", 1, mem_limit="64m", nano_cpus=500_000_000)
    started = client.api.inspect_container(str(web.id))["State"]["StartedAt"]
    ctx = context(docker_target(engine.url, f"{prefix}.*"))
    raw = {"container": web.name, "memory_factor": "1.5", "memory_max": "1Gi", "cpus": "1", "cpus_max": 2}
    params = limits.parse_params(raw)
    plan = await limits.plan(ctx, params)
    assert plan.steps == (
        f"{web.name}: raise the memory limit from 64Mi to 96Mi (asked x1.5), swap limit 128Mi → 160Mi",
        f"{web.name}: raise the CPU limit from 0.5 to 1.000 cores (asked 1)",
        f"POST /containers/{web.name}/update {{'Memory': 100663296, 'MemorySwap': 167772160, "
        "'NanoCpus': 1000000000} (docker update: in place, no restart)",
    )
    result = await limits.execute(ctx, params, plan)
    host = client.api.inspect_container(str(web.id))
    limits_now = [host["HostConfig"][key] for key in ("Memory", "MemorySwap", "NanoCpus")]
    assert limits_now == [96 * 2**20, 160 * 2**20, 1_000_000_000]
    assert host["State"]["StartedAt"] == started
    assert result.details["containers"][0]["updated"] is True
    again = await limits.execute(ctx, params, plan)
    assert again.summary == f"{web.name}: nothing to do"


async def test_set_limits_never_lowers_and_leaves_unlimited_alone(
        engine: Engine, client: docker.DockerClient, prefix: str, limits: DockerSetLimits) -> None:
    capped = compose_container(client, f"{prefix}app", "web", 1, mem_limit="512m")
    free = compose_container(client, f"{prefix}app", "web", 2)
    ctx = context(docker_target(engine.url, f"{prefix}.*"))
    for container, words in (
            (capped, "memory limit 512Mi is not below 256Mi (asked 1Gi, capped at max 256Mi)"),
            (free, "no memory limit (unlimited)")):
        params = limits.parse_params({"container": container.name, "memory": "1Gi", "memory_max": "256Mi"})
        plan = await limits.plan(ctx, params)
        assert words in plan.steps[0]
        assert plan.steps[-1] == "nothing to do"
        assert plan.destructive is False
    assert client.api.inspect_container(str(capped.id))["HostConfig"]["Memory"] == 512 * 2**20


async def test_set_limits_refuses_a_container_changed_since_the_plan(
        engine: Engine, client: docker.DockerClient, prefix: str, limits: DockerSetLimits) -> None:
    web = compose_container(client, f"{prefix}app", "web", 1, mem_limit="64m", memswap_limit=-1)
    ctx = context(docker_target(engine.url, f"{prefix}.*"))
    params = limits.parse_params({"container": web.name, "memory": "128Mi", "memory_max": "1Gi"})
    plan = await limits.plan(ctx, params)
    web.update(mem_limit="100m", memswap_limit=-1)
    with pytest.raises(PermanentError, match="changed since the plan"):
        await limits.execute(ctx, params, plan)
    assert client.api.inspect_container(str(web.id))["HostConfig"]["Memory"] == 100 * 2**20


@pytest.mark.parametrize(("raw", "field"), [
    pytest.param({}, "params", id="nothing-asked"),
    pytest.param({"memory": "1Gi"}, "params", id="memory-without-max"),
    pytest.param({"memory": "1Gi", "memory_factor": 2, "memory_max": "2Gi"}, "params", id="memory-both"),
    pytest.param({"memory": "1GB", "memory_max": "2Gi"}, "memory", id="not-a-quantity"),
    pytest.param({"cpus": 300, "cpus_max": 2}, "cpus", id="cpus-too-many"),
    pytest.param({"cpus_factor": 1, "cpus_max": 2}, "cpus_factor", id="factor-not-raising"),
    pytest.param({"memory": "1Gi", "memory_max": "2Gi", "max_containers": 21}, "max_containers", id="cap"),
])
def test_set_limits_params_are_strict(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParams, match=rf"docker\.set_limits: {field}"):
        DockerSetLimits().parse_params({"container": "web-1", **raw})


# ---- docker.diagnose: log pattern, engine view -------------------------------------------------

async def test_diagnose_filters_log_lines_and_reads_the_engine(
        engine: Engine, client: docker.DockerClient, prefix: str) -> None:
    """`logs --tail 30 | grep -i error`, and docker info / system df for memory, CPUs and disk."""
    script = "echo ok; echo 'ERROR db down'; echo fine; echo error 2; trap 'exit 0' TERM; sleep 3600 & wait"
    noisy = client.containers.run(IMAGE, ["sh", "-c", script],
                                  name=f"{prefix}nginx", detach=True, network_mode="none")
    wait_until(lambda: b"error 2" in noisy.logs(), "the container's log", WAIT)
    action = DockerDiagnose()
    try:
        ctx = context(docker_target(engine.url, f"{prefix}.*"))
        plan, result = await plan_and_run(action, ctx, {"container": noisy.name, "log_lines": 3,
                                                         "log_pattern": "error", "engine": True})
    finally:
        action.close()
    assert plan.steps[0].endswith("read its last 3 log lines (keeping those matching /error/i) and its "
                                  "memory and CPU stats")
    (found,) = result.details["containers"]
    assert [line.split(" ", 1)[1] for line in found["logs"]] == ["ERROR db down", "error 2"]
    assert found["log_lines_read"] == 3
    host = result.details["engine"]
    assert host["mem_total_bytes"] > 0
    assert host["cpus"] >= 1
    assert host["disk"]["images_bytes"] > 0
    assert result.summary.split("; engine: ")[1].startswith(f"{host['containers_running']} running of ")
