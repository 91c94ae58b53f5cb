"""``docker.restart`` and ``docker.diagnose``: the Docker Engine actions of the catalogue.

Run by ``receiver.flow.workers`` against a ``kind: docker`` target (``remediations.targets.
DockerTarget``). A container is chosen by its exact name or by a label (``key`` or
``key=value``, e.g. ``com.docker.compose.service=superset-web``); every container acted on
must have a name that fully matches the target's ``containers`` pattern, checked against
the rendered name before anything runs and against the actual containers when planning and
executing, so neither a label value nor a label selector can reach another container.

The ``docker`` SDK is synchronous: every call runs in a worker thread with one
``DockerClient`` per engine URL, cached on the action instance and closed by
:meth:`close`. A missing container, 4xx and a refused container are permanent; 5xx,
timeouts and an unreachable engine are temporary, so the executor retries them. The SDK
is imported on first use, so start-up and ``rules lint`` do not pay for it.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from remediations.base import (
    Action,
    ActionContext,
    PermanentError,
    Plan,
    RemediationError,
    Result,
    TargetNotAllowed,
    TemporaryError,
)
from remediations.targets import DockerTarget

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

__all__ = ["DiagnoseParams", "DockerDiagnose", "DockerRestart", "RestartParams"]

# Docker's own rule for container names (daemon/names: RestrictedNamePattern).
_CONTAINER_NAME = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$"
# ``key`` or ``key=value``; no spaces, commas or control characters, so a label value
# rendered from an alert stays one exact-match filter.
_LABEL = r"^[A-Za-z0-9][A-Za-z0-9._/-]*(=[A-Za-z0-9._:/@+-]+)?$"
_CLIENT_TIMEOUT = 20  # seconds per Engine API call; a restart adds its stop timeout
_DIAGNOSE_MAX = 10  # containers one diagnose reads; more are named in details["omitted"]
_LOG_LINE_MAX = 2000  # characters kept of one log line
_TEMPORARY_STATUSES = frozenset({408, 429})

T = TypeVar("T")
P = TypeVar("P", bound="_Selector")


class _Selector(BaseModel):
    """Exactly one of ``container`` and ``label``: what the action acts on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    container: str | None = Field(
        default=None, max_length=255, pattern=_CONTAINER_NAME,
        description="Exact container name (not an id); must fully match the target's pattern",
    )
    label: str | None = Field(
        default=None, max_length=512, pattern=_LABEL,
        description="Label selector, 'key' or 'key=value'; every container carrying it is chosen",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> _Selector:
        if (self.container is None) == (self.label is None):
            raise ValueError("give exactly one of container and label")
        return self


class RestartParams(_Selector):
    timeout: int = Field(default=10, ge=0, le=120,
                         description="Seconds to wait after SIGTERM before SIGKILL")
    max_containers: int = Field(default=1, ge=1, le=20,
                                description="Refuse when the label chooses more containers than this")


class DiagnoseParams(_Selector):
    log_lines: int = Field(default=50, ge=1, le=1000, description="Last log lines to read per container")


def _transport_errors() -> tuple[type[BaseException], ...]:
    """What an SDK call raises when the engine or the way to it fails (the SDK is loaded by then)."""
    import requests  # noqa: PLC0415 - the SDK is imported on first use
    from docker.errors import DockerException  # noqa: PLC0415

    return (DockerException, requests.exceptions.RequestException, OSError)


def _classify(exc: BaseException, what: str) -> RemediationError:
    """An SDK or transport failure as the executor's Permanent/Temporary error."""
    import requests  # noqa: PLC0415 - the SDK is imported on first use
    from docker.errors import APIError, DockerException, NotFound  # noqa: PLC0415

    if isinstance(exc, RemediationError):
        return exc
    if isinstance(exc, NotFound):
        return PermanentError(f"{what}: not found: {exc.explanation or exc}")
    if isinstance(exc, APIError):
        status = exc.status_code
        message = f"{what}: engine answered {status}: {exc.explanation or exc}"
        if status is None or status >= 500 or status in _TEMPORARY_STATUSES:
            return TemporaryError(message)
        return PermanentError(message)
    if isinstance(exc, requests.exceptions.Timeout):
        return TemporaryError(f"{what}: engine did not answer in time ({exc.__class__.__name__})")
    if isinstance(exc, (requests.exceptions.ConnectionError, OSError)):
        return TemporaryError(f"{what}: engine unreachable ({exc.__class__.__name__})")
    if isinstance(exc, DockerException):
        # Building a client asks the engine for its API version and wraps a transport
        # failure in a bare DockerException; anything else (a malformed URL) is permanent.
        if isinstance(exc.__cause__, (requests.exceptions.RequestException, OSError)):
            return TemporaryError(f"{what}: engine unreachable: {exc}")
        return PermanentError(f"{what}: {exc}")
    return PermanentError(f"{what}: {exc.__class__.__name__}: {exc}")


def _probe_unix_socket(path: str) -> None:
    """Connect once and close, so a missing engine is found without the SDK.

    docker-py's unix adapter leaves the socket of a failed connect unclosed; probing
    here keeps the common case (no engine at that path) from leaking one per attempt.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(_CLIENT_TIMEOUT)
        probe.connect(path)


def _state(container: Container) -> dict[str, Any]:
    state: dict[str, Any] = container.attrs.get("State") or {}
    return state


def _brief(container: Container) -> dict[str, Any]:
    """Name, ids, state and start time: how a plan names one container."""
    state = _state(container)
    return {
        "name": container.name,
        "id": container.id,
        "short_id": container.short_id,
        "state": state.get("Status"),
        "started_at": state.get("StartedAt"),
    }


def _describe(brief: dict[str, Any]) -> str:
    return f"{brief['name']} (id {brief['short_id']}, {brief['state']}, started {brief['started_at']})"


class _DockerAction(Action[P]):
    """What both actions share: the target check, the client cache, container selection."""

    target_kinds: ClassVar[frozenset[str]] = frozenset({"docker"})

    def __init__(self) -> None:
        self._clients: dict[str, docker.DockerClient] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close every cached client (at shutdown, or when a test is done with the action)."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def _target(self, ctx: ActionContext) -> DockerTarget:
        if not isinstance(ctx.target, DockerTarget):
            raise PermanentError(f"{self.name} needs a docker target, got {ctx.target_name!r}")
        return ctx.target

    def check_allowed(self, ctx: ActionContext, params: P) -> None:
        target = self._target(ctx)
        if params.container is not None and not re.fullmatch(target.containers, params.container):
            raise TargetNotAllowed(f"container {params.container!r} does not match the target's "
                                   f"pattern {target.containers!r}")

    def subject(self, ctx: ActionContext, params: P) -> str:
        if params.container is not None:
            return f"{ctx.target_name}/container/{params.container}"
        return f"{ctx.target_name}/label/{params.label}"

    def _client(self, url: str) -> docker.DockerClient:
        with self._lock:
            client = self._clients.get(url)
            if client is None:
                if url.startswith("unix://"):
                    _probe_unix_socket(url.removeprefix("unix://"))
                import docker  # noqa: PLC0415 - the SDK is imported on first use

                # version "auto" asks the engine, so this call already needs it reachable.
                client = docker.DockerClient(base_url=url, version="auto", timeout=_CLIENT_TIMEOUT)
                self._clients[url] = client
            return client

    async def _in_thread(self, ctx: ActionContext, fn: Callable[[docker.DockerClient], T]) -> T:
        """Run ``fn`` with the target's client in a worker thread; classify what it raises."""
        target = self._target(ctx)
        what = f"{self.name} on {ctx.target_name}"

        def call() -> T:
            return fn(self._client(target.url))

        try:
            return await asyncio.to_thread(call)
        except _transport_errors() as exc:
            raise _classify(exc, what) from None

    def _select(self, client: docker.DockerClient, target: DockerTarget, params: P, *,
                limit: int | None) -> list[Container]:
        """The containers ``params`` choose, every one allowed by the target, at most ``limit``."""
        from docker.errors import NotFound  # noqa: PLC0415 - loaded with the client

        if params.container is not None:
            try:
                found = client.containers.get(params.container)
            except NotFound:
                raise PermanentError(f"no container named {params.container!r}") from None
            # get() also resolves ids and id prefixes: only an exact name counts.
            if found.name != params.container:
                raise PermanentError(f"no container named {params.container!r}")
            chosen = [found]
        else:
            label = str(params.label)
            chosen = sorted(
                client.containers.list(all=True, filters={"label": label}, ignore_removed=True),
                key=lambda c: c.name or "",
            )
            if not chosen:
                raise PermanentError(f"no container carries label {params.label!r}")
        refused = [c.name for c in chosen if not re.fullmatch(target.containers, c.name or "")]
        if refused:
            raise TargetNotAllowed(
                f"label {params.label!r} chooses container(s) {', '.join(map(str, refused))} outside the "
                f"target's pattern {target.containers!r}; nothing was done"
                if params.label is not None else
                f"container {params.container!r} does not match the target's pattern {target.containers!r}"
            )
        if limit is not None and len(chosen) > limit:
            names = ", ".join(str(c.name) for c in chosen)
            raise PermanentError(f"label {params.label!r} chooses {len(chosen)} containers ({names}), "
                                 f"more than max_containers={limit}; nothing was done")
        return chosen


class DockerRestart(_DockerAction[RestartParams]):
    """Restart one container, or every allowed container carrying a label, up to a cap."""

    name = "docker.restart"
    description = "Restart a container by name or label (docker restart), within the target's pattern"
    params_model = RestartParams
    destructive = True
    timeout = 120.0
    permissions = ("containers:list", "containers:inspect", "containers:restart")

    async def plan(self, ctx: ActionContext, params: RestartParams) -> Plan:
        target = self._target(ctx)

        def read(client: docker.DockerClient) -> list[dict[str, Any]]:
            return [_brief(c) for c in self._select(client, target, params, limit=params.max_containers)]

        chosen = await self._in_thread(ctx, read)
        steps = [f"restart {_describe(b)}: SIGTERM, SIGKILL after {params.timeout}s, then start"
                 for b in chosen]
        if params.label is not None:
            steps.insert(0, f"containers with label {params.label}: "
                            + ", ".join(b["name"] for b in chosen))
        return Plan(
            action=self.name,
            target=ctx.target_name,
            steps=tuple(steps),
            destructive=True,
            details={"containers": chosen, "timeout": params.timeout, "label": params.label},
        )

    async def execute(self, ctx: ActionContext, params: RestartParams, plan: Plan) -> Result:
        target = self._target(ctx)
        planned = [(c["name"], c["id"]) for c in plan.details.get("containers", [])]

        def restart(client: docker.DockerClient) -> list[dict[str, Any]]:
            chosen = self._select(client, target, params, limit=params.max_containers)
            now = [(c.name, c.id) for c in chosen]
            if now != planned:
                raise PermanentError(
                    "the containers changed since the plan: planned "
                    + (", ".join(f"{n} ({i[:12]})" for n, i in planned) or "none") + ", now "
                    + ", ".join(f"{n} ({str(i)[:12]})" for n, i in now) + "; nothing was restarted"
                )
            done: list[dict[str, Any]] = []
            for container in chosen:
                before = _brief(container)
                try:
                    container.restart(timeout=params.timeout)
                    container.reload()
                except _transport_errors() as exc:
                    already = ", ".join(d["name"] for d in done) or "none"
                    raise _classify(exc, f"restart of {container.name} (already restarted: {already})") \
                        from None
                after = _brief(container)
                done.append({"name": after["name"], "id": after["id"], "state": after["state"],
                             "started_at_before": before["started_at"], "started_at": after["started_at"]})
            return done

        done = await self._in_thread(ctx, restart)
        summary = "restarted " + ", ".join(f"{d['name']} ({d['state']}, started {d['started_at']})"
                                           for d in done)
        return Result(summary=summary, details={"containers": done})


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


def _diagnose(container: Container, log_lines: int) -> dict[str, Any]:
    state = _state(container)
    raw_logs = container.logs(stdout=True, stderr=True, tail=log_lines, timestamps=True)
    logs = [line[:_LOG_LINE_MAX] for line in raw_logs.decode("utf-8", "replace").splitlines()[-log_lines:]]
    running = bool(state.get("Running"))
    return {
        **_brief(container),
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
        # A stopped container has no live usage; /stats would only answer zeros.
        "stats": _stats(_one_stats(container)) if running else None,
    }


def _one_stats(container: Container) -> dict[str, Any]:
    raw = container.stats(stream=False)  # one answer (two samples apart, for CPU), not a stream
    if not isinstance(raw, dict):
        raise PermanentError(f"stats of {container.name}: expected one JSON object")
    return raw


class DockerDiagnose(_DockerAction[DiagnoseParams]):
    """Read a container's state, restarts, OOM kill, exit code, last log lines and usage."""

    name = "docker.diagnose"
    description = "State, restart count, OOMKilled, exit code, last log lines, memory and CPU of containers"
    params_model = DiagnoseParams
    read_only = True
    timeout = 60.0
    permissions = ("containers:list", "containers:inspect", "containers:logs", "containers:stats")

    async def plan(self, ctx: ActionContext, params: DiagnoseParams) -> Plan:
        target = self._target(ctx)

        def read(client: docker.DockerClient) -> list[dict[str, Any]]:
            return [_brief(c) for c in self._select(client, target, params, limit=None)]

        chosen = await self._in_thread(ctx, read)
        read_now, omitted = chosen[:_DIAGNOSE_MAX], chosen[_DIAGNOSE_MAX:]
        steps = [f"inspect {_describe(b)}, read its last {params.log_lines} log lines"
                 + (" and its memory and CPU stats" if b["state"] == "running" else "")
                 for b in read_now]
        if omitted:
            steps.append(f"skip {len(omitted)} more (at most {_DIAGNOSE_MAX} per diagnose): "
                         + ", ".join(b["name"] for b in omitted))
        return Plan(
            action=self.name,
            target=ctx.target_name,
            steps=tuple(steps),
            destructive=False,
            details={"containers": read_now, "omitted": [b["name"] for b in omitted],
                     "log_lines": params.log_lines},
        )

    async def execute(self, ctx: ActionContext, params: DiagnoseParams, plan: Plan) -> Result:
        target = self._target(ctx)

        def read(client: docker.DockerClient) -> dict[str, Any]:
            chosen = self._select(client, target, params, limit=None)
            return {"containers": [_diagnose(c, params.log_lines) for c in chosen[:_DIAGNOSE_MAX]],
                    "omitted": [c.name for c in chosen[_DIAGNOSE_MAX:]]}

        details = await self._in_thread(ctx, read)
        summary = "; ".join(
            f"{d['name']}: {d['state']}, restarts {d['restart_count']}, OOMKilled {d['oom_killed']}, "
            f"exit code {d['exit_code']}"
            for d in details["containers"]
        )
        return Result(summary=summary, details=details)
