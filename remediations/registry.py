"""The registry of actions: one object, built by ``default_registry()``, never a global.

``receiver.http.app`` builds one and passes it down; the rule loader sees it as an
``ActionCatalogue``; tests build their own with the actions they need.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from remediations.base import Action, PermanentError
from rules.catalogue import ActionInfo
from rules.errors import RuleError
from rules.templating import compile_value, is_templated


class Registry:
    """Actions by name (``backend.verb``); implements ``rules.catalogue.ActionCatalogue``."""

    def __init__(self, actions: list[Action[Any]] | None = None) -> None:
        self._actions: dict[str, Action[Any]] = {}
        for action in actions or []:
            self.register(action)

    def register(self, action: Action[Any]) -> None:
        """Add an action; a second action with the same name is a programming error."""
        if action.name in self._actions:
            raise ValueError(f"action {action.name!r} is registered twice")
        self._actions[action.name] = action

    def get(self, name: str) -> Action[Any] | None:
        return self._actions.get(name)

    def close(self) -> None:
        """Close every action's cached clients (at shutdown)."""
        for action in self._actions.values():
            action.close()

    def names(self) -> list[str]:
        return sorted(self._actions)

    def info(self, name: str) -> ActionInfo | None:
        action = self._actions.get(name)
        if action is None:
            return None
        return ActionInfo(
            name=action.name,
            params=action.params_model,
            destructive=action.destructive,
            read_only=action.read_only,
            target_kinds=action.target_kinds,
            approval_always=action.approval_always,
            destructive_with=partial(_destructive_with, action),
        )

    def describe(self) -> list[dict[str, Any]]:
        """Every action, sorted by name, with its flags and params schema (``remediator actions list``)."""
        return [
            {
                "name": a.name,
                "description": a.description,
                "destructive": a.destructive,
                "approval_always": a.approval_always,
                "read_only": a.read_only,
                "target_kinds": sorted(a.target_kinds),
                "timeout": a.timeout,
                "permissions": list(a.permissions),
                "params": a.params_model.model_json_schema(by_alias=True),
            }
            for a in (self._actions[n] for n in self.names())
        ]


def _destructive_with(action: Action[Any], params: Mapping[str, Any]) -> bool:
    """``action.is_destructive`` with params as a rule writes them: a templated param is left to
    its default unless it is one ``is_destructive`` reads (then, or when invalid, the flag)."""
    try:
        templated = {k for k, v in params.items() if is_templated(compile_value(v))}
        if templated & action.destructive_by:
            return action.destructive
        literal = {k: v for k, v in params.items() if k not in templated}
        return action.is_destructive(action.parse_params(literal))
    except (PermanentError, RuleError):
        return action.destructive


def default_registry() -> Registry:
    """The built-in catalogue (``remediator actions list``; reference in docs/actions/)."""
    # Imported here so `rules lint` and the layering test do not load every backend SDK.
    from remediations.argocd.diagnose import ArgoCdDiagnose  # noqa: PLC0415
    from remediations.argocd.rollback import ArgoCdRollback  # noqa: PLC0415
    from remediations.celery.inspect import CeleryInspect  # noqa: PLC0415
    from remediations.celery.purge import CeleryPurge  # noqa: PLC0415
    from remediations.docker.compose import DockerComposeScale  # noqa: PLC0415
    from remediations.docker.diagnose import DockerDiagnose  # noqa: PLC0415
    from remediations.docker.limits import DockerSetLimits  # noqa: PLC0415
    from remediations.docker.restart import DockerRestart  # noqa: PLC0415
    from remediations.http import HttpCheck, HttpRequest  # noqa: PLC0415
    from remediations.kubernetes.diagnose import KubernetesDiagnose  # noqa: PLC0415
    from remediations.kubernetes.env import KubernetesSetEnv  # noqa: PLC0415
    from remediations.kubernetes.memory import KubernetesSetMemoryLimit  # noqa: PLC0415
    from remediations.kubernetes.rollout import KubernetesDeletePod, KubernetesRolloutRestart  # noqa: PLC0415
    from remediations.kubernetes.scale import KubernetesScale  # noqa: PLC0415
    from remediations.kubernetes.undo import KubernetesRolloutUndo  # noqa: PLC0415
    from remediations.notify.actions import (  # noqa: PLC0415
        NotifyLog,
        NotifyPagerDuty,
        NotifySlack,
        NotifyWebhook,
    )
    from remediations.postgres.activity import Activity  # noqa: PLC0415
    from remediations.postgres.cancel_long_queries import CancelLongQueries  # noqa: PLC0415
    from remediations.postgres.terminate_idle import TerminateIdle  # noqa: PLC0415
    from remediations.redis import RedisDiagnose, RedisFlushDb  # noqa: PLC0415

    return Registry([
        NotifyLog(), NotifySlack(), NotifyPagerDuty(), NotifyWebhook(), HttpRequest(), HttpCheck(),
        KubernetesRolloutRestart(), KubernetesScale(), KubernetesRolloutUndo(), KubernetesDeletePod(),
        KubernetesSetMemoryLimit(), KubernetesSetEnv(), KubernetesDiagnose(),
        DockerRestart(), DockerComposeScale(), DockerSetLimits(), DockerDiagnose(),
        TerminateIdle(), CancelLongQueries(), Activity(),
        RedisDiagnose(), RedisFlushDb(),
        CeleryInspect(), CeleryPurge(), ArgoCdRollback(), ArgoCdDiagnose(),
    ])
