"""Containers chosen by exact name or by label, never outside the target's pattern.

The base of ``remediations.docker.restart`` and ``remediations.docker.diagnose``, and of
any Docker action that acts on containers: params derived from :class:`ContainerSelector`,
the class from :class:`ContainerAction`. A container is chosen by its exact name or by a
label (``key`` or ``key=value``, e.g. ``com.docker.compose.service=superset-web``); every
container acted on must have a name that fully matches the target's ``containers``
pattern, checked against the rendered name before anything runs (``check_allowed``) and
against the actual containers when planning and executing (``_select``), so neither a
label value nor a label selector can reach another container.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from remediations.base import ActionContext, PermanentError, TargetNotAllowed
from remediations.docker.engine import DockerAction
from remediations.targets import DockerTarget

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

# Docker's own rule for container names (daemon/names: RestrictedNamePattern).
_CONTAINER_NAME = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$"
# ``key`` or ``key=value``; no spaces, commas or control characters, so a label value
# rendered from an alert stays one exact-match filter.
_LABEL = r"^[A-Za-z0-9][A-Za-z0-9._/-]*(=[A-Za-z0-9._:/@+-]+)?$"


class ContainerSelector(BaseModel):
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
    def _exactly_one(self) -> ContainerSelector:
        if (self.container is None) == (self.label is None):
            raise ValueError("give exactly one of container and label")
        return self


S = TypeVar("S", bound=ContainerSelector)


def container_state(container: Container) -> dict[str, Any]:
    """``docker inspect``'s ``State`` of ``container`` (empty when the engine gave none)."""
    state: dict[str, Any] = container.attrs.get("State") or {}
    return state


def brief(container: Container) -> dict[str, Any]:
    """Name, ids, state and start time: how a plan names one container."""
    state = container_state(container)
    return {
        "name": container.name,
        "id": container.id,
        "short_id": container.short_id,
        "state": state.get("Status"),
        "started_at": state.get("StartedAt"),
    }


def describe(brief: dict[str, Any]) -> str:
    """A :func:`brief` in a plan step's words."""
    return f"{brief['name']} (id {brief['short_id']}, {brief['state']}, started {brief['started_at']})"


class ContainerAction(DockerAction[S]):
    """A Docker action on containers chosen by name or label: the allow-list, the subject, the choice."""

    def check_allowed(self, ctx: ActionContext, params: S) -> None:
        target = self._target(ctx)
        if params.container is not None and not re.fullmatch(target.containers, params.container):
            raise TargetNotAllowed(f"container {params.container!r} does not match the target's "
                                   f"pattern {target.containers!r}")

    def subject(self, ctx: ActionContext, params: S) -> str:
        if params.container is not None:
            return f"{ctx.target_name}/container/{params.container}"
        return f"{ctx.target_name}/label/{params.label}"

    def _select(self, client: docker.DockerClient, target: DockerTarget, params: S, *,
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
