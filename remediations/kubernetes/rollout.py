"""Kubernetes rollouts and pods: ``rollout_restart`` and ``delete_pod``.

Run by ``receiver.flow.workers`` like any action; the client, errors and allow-list live in
``remediations.kubernetes.api``. Each write is the one ``kubectl`` makes for the same
command, so a plan reads like the runbook step it replaces: ``rollout restart`` of a
Deployment or a StatefulSet is a strategic merge patch of the ``restartedAt`` template
annotation. The other actions: ``remediations.kubernetes.undo`` (``rollout_undo``),
``remediations.kubernetes.scale``, ``remediations.kubernetes.memory``,
``remediations.kubernetes.env``, ``remediations.kubernetes.diagnose``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from remediations.base import ActionContext, PermanentError, Plan, ReadBack, Result
from remediations.kubernetes.api import (
    KubernetesAction,
    NamespacedParams,
    ObjectName,
    WorkloadParams,
)

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
WORKLOAD_PERMISSIONS = ("get apps/deployments", "patch apps/deployments",
                        "get apps/statefulsets", "patch apps/statefulsets")
"""What an action that reads and patches a Deployment or a StatefulSet needs."""


def restart_patch(restarted_at: str) -> dict[str, Any]:
    """The strategic merge patch ``kubectl rollout restart`` sends."""
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: restarted_at}}}}}


def refuse_paused(workload: Mapping[str, Any], doing: str) -> None:
    """A paused Deployment is refused, as kubectl refuses it (a StatefulSet cannot be paused)."""
    if (workload.get("spec") or {}).get("paused"):
        name = workload.get("metadata", {}).get("name", "")
        raise PermanentError(f"cannot {doing} a paused deployment; resume it first "
                             f"(kubectl rollout resume deployment/{name})")


def update_strategy(kind: str, workload: Mapping[str, Any]) -> str:
    """``RollingUpdate``, ``Recreate`` or ``OnDelete``, as the workload's spec says (or its default)."""
    spec = workload.get("spec") or {}
    key = "strategy" if kind == "deployment" else "updateStrategy"
    return str((spec.get(key) or {}).get("type", "RollingUpdate"))


def refuse_on_delete(kind: str, workload: Mapping[str, Any], doing: str) -> None:
    """A StatefulSet with ``OnDelete`` would take a template change and replace no pod."""
    if update_strategy(kind, workload) == "OnDelete":
        name = workload.get("metadata", {}).get("name", "")
        raise PermanentError(f"cannot {doing} statefulset {name}: its updateStrategy is OnDelete, so a "
                             "template change replaces no pod until each is deleted")


class KubernetesRolloutRestart(KubernetesAction[WorkloadParams]):
    """``kubectl rollout restart deployment/NAME`` (or a StatefulSet): new pods by a template annotation."""

    name = "kubernetes.rollout_restart"
    description = ("Restart a Deployment's or StatefulSet's pods as kubectl rollout restart does "
                   "(restartedAt annotation)")
    params_model = WorkloadParams
    destructive = True
    permissions = WORKLOAD_PERMISSIONS

    def __init__(self, *, request_timeout: float = 10.0, now: Callable[[], datetime] | None = None) -> None:
        super().__init__(request_timeout=request_timeout)
        self._now = now or (lambda: datetime.now(UTC))

    async def _read(self, ctx: ActionContext, params: WorkloadParams) -> dict[str, Any]:
        api = await self.api(ctx)
        workload = await api.read_workload(params.kind, params.namespace, params.name)
        refuse_paused(workload, "restart")
        refuse_on_delete(params.kind, workload, "restart")
        return workload

    async def plan(self, ctx: ActionContext, params: WorkloadParams) -> Plan:
        workload = await self._read(ctx, params)
        replicas = (workload.get("spec") or {}).get("replicas", 1)
        strategy = update_strategy(params.kind, workload)
        controller = "Deployment" if params.kind == "deployment" else "StatefulSet"
        order = "" if params.kind == "deployment" else ", one at a time from the highest ordinal"
        return Plan(
            action=self.name, target=ctx.target_name, destructive=True,
            steps=(
                f"PATCH {params.kind} {self.where(params)} (strategic merge patch): set the pod template "
                f"annotation {RESTARTED_AT} to the time of execution, as `kubectl rollout restart` does",
                f"the {controller} controller then replaces its {replicas} pod(s) ({strategy}{order})",
            ),
            details={"namespace": params.namespace, params.kind: params.name,
                     "replicas": replicas, "strategy": strategy,
                     "patch": restart_patch("<time of execution, RFC 3339>")},
        )

    async def execute(self, ctx: ActionContext, params: WorkloadParams, plan: Plan) -> Result:
        await self._read(ctx, params)
        api = await self.api(ctx)
        restarted_at = self._now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        updated = await api.patch_workload(params.kind, params.namespace, params.name,
                                           restart_patch(restarted_at))
        return Result(
            summary=f"restarted {params.kind} {self.where(params)} (restartedAt {restarted_at})",
            details={"restartedAt": restarted_at,
                     "generation": (updated.get("metadata") or {}).get("generation")},
        )

    async def read_back(self, ctx: ActionContext, params: WorkloadParams, plan: Plan, *,
                        since: float) -> ReadBack | None:
        """The pod template's ``restartedAt`` now (the value execute would have written): a time
        at or after ``since`` (to the second, as it is written) is a restart that happened then;
        an older one, or none, is not."""
        api = await self.api(ctx)
        workload = await api.read_workload(params.kind, params.namespace, params.name)
        template = (workload.get("spec") or {}).get("template") or {}
        value = ((template.get("metadata") or {}).get("annotations") or {}).get(RESTARTED_AT)
        evidence = {RESTARTED_AT: value,
                    "sending_since": datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        if not value:
            return ReadBack(False, evidence)
        try:
            at = datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
        except ValueError:
            return ReadBack(None, evidence)
        return ReadBack(at >= math.floor(since), evidence)


class PodParams(NamespacedParams):
    pod: ObjectName = Field(description="Pod name")


class KubernetesDeletePod(KubernetesAction[PodParams]):
    """``kubectl delete pod NAME``: one pod, with its own grace period."""

    name = "kubernetes.delete_pod"
    description = "Delete one pod (its controller, if any, replaces it)"
    params_model = PodParams
    destructive = True
    permissions = ("get pods", "delete pods")

    def object_ref(self, params: PodParams) -> tuple[str, str]:
        return "pod", params.pod

    async def plan(self, ctx: ActionContext, params: PodParams) -> Plan:
        api = await self.api(ctx)
        pod = await api.read_pod(params.namespace, params.pod)
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        phase = (pod.get("status") or {}).get("phase", "Unknown")
        grace = spec.get("terminationGracePeriodSeconds", 30)
        owner = next((ref for ref in meta.get("ownerReferences") or [] if ref.get("controller")), None)
        workload = self.check_pod(ctx, pod)
        of = f" (of deployment {workload[1]})" if owner and workload and workload[0] == "deployment" else ""
        fate = (f"its controller {owner.get('kind')} {owner.get('name')}{of} will replace it" if owner
                else "it has no controller: nothing will recreate it")
        return Plan(
            action=self.name, target=ctx.target_name, destructive=True,
            steps=(f"DELETE pod {self.where(params)} (phase {phase}, node {spec.get('nodeName', '-')}, "
                   f"grace period {grace}s)", fate),
            details={"namespace": params.namespace, "pod": params.pod, "uid": meta.get("uid"),
                     "phase": phase, "node": spec.get("nodeName"), "grace_period_seconds": grace,
                     "owner": owner and {"kind": owner.get("kind"), "name": owner.get("name")},
                     "workload": workload and f"{workload[0]}/{workload[1]}"},
        )

    async def execute(self, ctx: ActionContext, params: PodParams, plan: Plan) -> Result:
        api = await self.api(ctx)
        await api.delete_pod(params.namespace, params.pod, uid=plan.details.get("uid"))
        return Result(summary=f"deleted pod {self.where(params)}",
                      details={"uid": plan.details.get("uid")})
