"""``docker.diagnose``: read-only evidence about containers, as ``docker ps/inspect/logs/stats`` give it.

Run by ``receiver.flow.workers``, usually as a rule's ``diagnose:`` step: each container's
state, restart count, OOM kill, exit code, health, last log lines (those matching a
pattern, when one is given: ``docker compose logs --tail 30 nginx | grep -i error``) and
(when running) memory and CPU computed as ``docker stats --no-stream`` does; with
``engine: true`` also the host as the engine sees it (``docker info``: memory, CPUs; ``docker
system df``: what images, containers and volumes take on disk). Containers are chosen as
``remediations.docker.containers`` chooses them; at most ``_DIAGNOSE_MAX`` are read, the
others named in ``details["omitted"]``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from remediations.base import ActionContext, PermanentError, Plan, Result
from remediations.docker.containers import (
    ContainerAction,
    ContainerSelector,
    brief,
    container_state,
    describe,
)

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

_DIAGNOSE_MAX = 10  # containers one diagnose reads; more are named in details["omitted"]
_LOG_LINE_MAX = 2000  # characters kept of one log line


class DiagnoseParams(ContainerSelector):
    log_lines: int = Field(default=50, ge=1, le=1000, description="Last log lines to read per container")
    log_pattern: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="Keep only the log lines matching this regex (case-insensitive), as grep -iE does")
    engine: bool = Field(default=False, description="Also read docker info and docker system df (host view)")

    @field_validator("log_pattern")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regex: {exc}") from None
        return value


def _stats(raw: dict[str, Any]) -> dict[str, Any]:
    """Memory and CPU from one ``/stats?stream=false`` answer, computed as ``docker stats`` does."""
    memory = raw.get("memory_stats") or {}
    usage = memory.get("usage")
    limit = memory.get("limit")
    inner = memory.get("stats") or {}
    cache = inner.get("total_inactive_file", inner.get("inactive_file", 0))
    used = usage - cache if isinstance(usage, int) and isinstance(cache, int) and usage >= cache else usage
    cpu = raw.get("cpu_stats") or {}
    pre = raw.get("precpu_stats") or {}
    cpu_delta = ((cpu.get("cpu_usage") or {}).get("total_usage", 0)
                 - (pre.get("cpu_usage") or {}).get("total_usage", 0))
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    cpus = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    cpu_percent = cpu_delta / system_delta * cpus * 100 if system_delta > 0 and cpu_delta >= 0 else 0.0
    return {
        "memory_usage_bytes": used,
        "memory_limit_bytes": limit,
        "memory_percent": round(used / limit * 100, 2) if used and limit else None,
        "cpu_percent": round(cpu_percent, 2),
        "pids": (raw.get("pids_stats") or {}).get("current"),
    }


def _diagnose(container: Container, log_lines: int, pattern: str | None) -> dict[str, Any]:
    state = container_state(container)
    raw_logs = container.logs(stdout=True, stderr=True, tail=log_lines, timestamps=True)
    logs = [line[:_LOG_LINE_MAX] for line in raw_logs.decode("utf-8", "replace").splitlines()[-log_lines:]]
    read = len(logs)
    if pattern is not None:
        found = re.compile(pattern, re.IGNORECASE)
        logs = [line for line in logs if found.search(line)]
    running = bool(state.get("Running"))
    return {
        **brief(container),
        "image": (container.attrs.get("Config") or {}).get("Image"),
        "running": running,
        "restarting": bool(state.get("Restarting")),
        "restart_count": container.attrs.get("RestartCount", 0),
        "oom_killed": bool(state.get("OOMKilled")),
        "exit_code": state.get("ExitCode"),
        "error": state.get("Error") or None,
        "finished_at": state.get("FinishedAt"),
        "health": (state.get("Health") or {}).get("Status"),
        "logs": logs,
        "log_lines_read": read,
        # A stopped container has no live usage; /stats would only answer zeros.
        "stats": _stats(_one_stats(container)) if running else None,
    }


def _one_stats(container: Container) -> dict[str, Any]:
    raw = container.stats(stream=False)  # one answer (two samples apart, for CPU), not a stream
    if not isinstance(raw, dict):
        raise PermanentError(f"stats of {container.name}: expected one JSON object")
    return raw


def _engine(client: docker.DockerClient) -> dict[str, Any]:
    """``docker info`` and ``docker system df``, as far as they describe the host's resources."""
    info = client.info()
    df = client.df()
    images = sum(int(i.get("Size") or 0) for i in df.get("Images") or [])
    containers = sum(int(c.get("SizeRw") or 0) for c in df.get("Containers") or [])
    volumes = sum(int((v.get("UsageData") or {}).get("Size") or 0) for v in df.get("Volumes") or []
                  if int((v.get("UsageData") or {}).get("Size") or 0) > 0)
    cache = sum(int(b.get("Size") or 0) for b in df.get("BuildCache") or [])
    return {
        "mem_total_bytes": int(info.get("MemTotal") or 0), "cpus": info.get("NCPU"),
        "containers": info.get("Containers"), "containers_running": info.get("ContainersRunning"),
        "containers_stopped": info.get("ContainersStopped"), "docker_root_dir": info.get("DockerRootDir"),
        "storage_driver": info.get("Driver"), "server_version": info.get("ServerVersion"),
        "disk": {"images_bytes": images, "containers_bytes": containers, "volumes_bytes": volumes,
                 "build_cache_bytes": cache, "total_bytes": images + containers + volumes + cache},
    }


class DockerDiagnose(ContainerAction[DiagnoseParams]):
    """Read a container's state, restarts, OOM kill, exit code, last log lines and usage."""

    name = "docker.diagnose"
    description = "State, restart count, OOMKilled, exit code, last log lines, memory and CPU of containers"
    params_model = DiagnoseParams
    read_only = True
    timeout = 60.0
    permissions = ("containers:list", "containers:inspect", "containers:logs", "containers:stats",
                   "system:info", "system:df")

    async def plan(self, ctx: ActionContext, params: DiagnoseParams) -> Plan:
        target = self._target(ctx)

        def read(client: docker.DockerClient) -> list[dict[str, Any]]:
            return [brief(c) for c in self._select(client, target, params, limit=None)]

        chosen = await self._in_thread(ctx, read)
        read_now, omitted = chosen[:_DIAGNOSE_MAX], chosen[_DIAGNOSE_MAX:]
        grep = f" (keeping those matching /{params.log_pattern}/i)" if params.log_pattern else ""
        steps = [f"inspect {describe(b)}, read its last {params.log_lines} log lines{grep}"
                 + (" and its memory and CPU stats" if b["state"] == "running" else "")
                 for b in read_now]
        if params.engine:
            steps.append("read docker info (host memory, CPUs, containers) and docker system df (disk used "
                         "by images, containers, volumes, build cache)")
        if omitted:
            steps.append(f"skip {len(omitted)} more (at most {_DIAGNOSE_MAX} per diagnose): "
                         + ", ".join(b["name"] for b in omitted))
        return Plan(
            action=self.name,
            target=ctx.target_name,
            steps=tuple(steps),
            destructive=False,
            details={"containers": read_now, "omitted": [b["name"] for b in omitted],
                     "log_lines": params.log_lines, "log_pattern": params.log_pattern,
                     "engine": params.engine},
        )

    async def execute(self, ctx: ActionContext, params: DiagnoseParams, plan: Plan) -> Result:
        target = self._target(ctx)

        def read(client: docker.DockerClient) -> dict[str, Any]:
            chosen = self._select(client, target, params, limit=None)
            found = {"containers": [_diagnose(c, params.log_lines, params.log_pattern)
                                    for c in chosen[:_DIAGNOSE_MAX]],
                     "omitted": [c.name for c in chosen[_DIAGNOSE_MAX:]]}
            if params.engine:
                found["engine"] = _engine(client)
            return found

        details = await self._in_thread(ctx, read)
        summary = "; ".join(
            f"{d['name']}: {d['state']}, restarts {d['restart_count']}, OOMKilled {d['oom_killed']}, "
            f"exit code {d['exit_code']}"
            for d in details["containers"]
        )
        if params.engine:
            host = details["engine"]
            summary += (f"; engine: {host['containers_running']} running of {host['containers']}, "
                        f"{host['mem_total_bytes'] // 2**20}Mi memory, {host['cpus']} CPUs, "
                        f"{host['disk']['total_bytes'] // 2**20}Mi on disk")
        return Result(summary=summary, details=details)
