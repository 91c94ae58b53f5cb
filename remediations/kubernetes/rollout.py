"""Kubernetes rollouts and pods: ``rollout_restart``, ``rollout_undo``, ``delete_pod``.

Run by ``receiver.flow.workers`` like any action; the client, errors and allow-list live in
``remediations.kubernetes.api``. Each write is the one ``kubectl`` makes for the same
command, so a plan reads like the runbook step it replaces: ``rollout restart`` is a
strategic merge patch of the ``restartedAt`` template annotation, ``rollout undo`` a JSON
patch that puts the previous ReplicaSet's pod template back (k8s.io/kubectl
``polymorphichelpers/rollback.go``). The other actions: ``remediations.kubernetes.scale``,
``remediations.kubernetes.memory``, ``remediations.kubernetes.diagnose``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from remediations.base import ActionContext, PermanentError, Plan, Result
from remediations.kubernetes.api import (
    DeploymentParams,
    KubernetesAction,
    NamespacedParams,
    ObjectName,
    label_selector,
)

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
REVISION = "deployment.kubernetes.io/revision"
POD_TEMPLATE_HASH = "pod-template-hash"
# Deployment annotations kubectl keeps on rollback rather than copying from the ReplicaSet.
_ANNOTATIONS_TO_SKIP = frozenset({
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
})


def restart_patch(restarted_at: str) -> dict[str, Any]:
    """The strategic merge patch ``kubectl rollout restart`` sends."""
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: restarted_at}}}}}


def refuse_paused(deployment: Mapping[str, Any], doing: str) -> None:
    if (deployment.get("spec") or {}).get("paused"):
        name = deployment.get("metadata", {}).get("name", "")
        raise PermanentError(f"cannot {doing} a paused deployment; resume it first "
                             f"(kubectl rollout resume deployment/{name})")


class KubernetesRolloutRestart(KubernetesAction[DeploymentParams]):
    """``kubectl rollout restart deployment/NAME``: new pods by a template annotation."""

    name = "kubernetes.rollout_restart"
    description = "Restart a Deployment's pods as kubectl rollout restart does (restartedAt annotation)"
    params_model = DeploymentParams
    destructive = True
    permissions = ("get apps/deployments", "patch apps/deployments")

    def __init__(self, *, request_timeout: float = 10.0, now: Callable[[], datetime] | None = None) -> None:
        super().__init__(request_timeout=request_timeout)
        self._now = now or (lambda: datetime.now(UTC))

    async def plan(self, ctx: ActionContext, params: DeploymentParams) -> Plan:
        api = await self.api(ctx)
        deployment = await api.read_deployment(params.namespace, params.deployment)
        refuse_paused(deployment, "restart")
        spec = deployment.get("spec") or {}
        replicas = spec.get("replicas", 1)
        strategy = (spec.get("strategy") or {}).get("type", "RollingUpdate")
        return Plan(
            action=self.name, target=ctx.target_name, destructive=True,
            steps=(
                f"PATCH deployment {self.where(params)} (strategic merge patch): set the pod template "
                f"annotation {RESTARTED_AT} to the time of execution, as `kubectl rollout restart` does",
                f"the Deployment controller then replaces its {replicas} pod(s) ({strategy})",
            ),
            details={"namespace": params.namespace, "deployment": params.deployment,
                     "replicas": replicas, "strategy": strategy,
                     "patch": restart_patch("<time of execution, RFC 3339>")},
        )

    async def execute(self, ctx: ActionContext, params: DeploymentParams, plan: Plan) -> Result:
        api = await self.api(ctx)
        refuse_paused(await api.read_deployment(params.namespace, params.deployment), "restart")
        restarted_at = self._now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        updated = await api.patch_deployment(params.namespace, params.deployment, restart_patch(restarted_at))
        return Result(
            summary=f"restarted deployment {self.where(params)} (restartedAt {restarted_at})",
            details={"restartedAt": restarted_at,
                     "generation": (updated.get("metadata") or {}).get("generation")},
        )


def revision(obj: Mapping[str, Any]) -> int | None:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION)
    return int(value) if isinstance(value, str) and value.isdigit() else None


def controlled_by(obj: Mapping[str, Any], owner_uid: str) -> bool:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("controller") and ref.get("uid") == owner_uid for ref in refs)


def _without_hash(template: Mapping[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = copy.deepcopy(dict(template))
    labels = (copied.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH, None)
    return copied


def _pruned(value: Any) -> Any:
    """Drop empty maps, lists and nulls, as Go's semantic equality treats them as absent."""
    if isinstance(value, dict):
        pruned = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def same_template(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """kubectl's ``equalIgnoreHash``: equal apart from the pod-template-hash label."""
    return bool(_pruned(_without_hash(a)) == _pruned(_without_hash(b)))


def images(template: Mapping[str, Any]) -> dict[str, str]:
    containers = (template.get("spec") or {}).get("containers") or []
    return {c.get("name", "?"): c.get("image", "?") for c in containers}


class History:
    """A Deployment's ReplicaSets by revision: the current one and the one before it."""

    def __init__(self, deployment: dict[str, Any], replica_sets: list[dict[str, Any]]) -> None:
        self.deployment = deployment
        uid = (deployment.get("metadata") or {}).get("uid", "")
        owned = [(rev, rs) for rs in replica_sets
                 if controlled_by(rs, uid) and (rev := revision(rs)) is not None]
        owned.sort(key=lambda pair: pair[0], reverse=True)
        self.owned = owned

    def latest_and_previous(self) -> tuple[tuple[int, dict[str, Any]], tuple[int, dict[str, Any]]]:
        name = (self.deployment.get("metadata") or {}).get("name", "")
        if len(self.owned) < 2:
            raise PermanentError(f"no previous revision to roll back to: deployment {name} has "
                                 f"{len(self.owned)} revision(s) in its ReplicaSets")
        return self.owned[0], self.owned[1]

    def named(self, rs_name: str) -> dict[str, Any] | None:
        return next((rs for _, rs in self.owned if rs["metadata"].get("name") == rs_name), None)


def undo_patch(deployment: Mapping[str, Any], replica_set: Mapping[str, Any]) -> list[dict[str, Any]]:
    """kubectl's ``getDeploymentPatch``: the ReplicaSet's template, deployment annotations merged."""
    template = _without_hash((replica_set.get("spec") or {}).get("template") or {})
    current = (deployment.get("metadata") or {}).get("annotations") or {}
    annotations = {k: v for k, v in current.items() if k in _ANNOTATIONS_TO_SKIP}
    rs_annotations = (replica_set.get("metadata") or {}).get("annotations") or {}
    annotations.update({k: v for k, v in rs_annotations.items() if k not in _ANNOTATIONS_TO_SKIP})
    return [
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]


class KubernetesRolloutUndo(KubernetesAction[DeploymentParams]):
    """``kubectl rollout undo deployment/NAME``: back to the previous ReplicaSet revision."""

    name = "kubernetes.rollout_undo"
    description = "Roll a Deployment back to its previous ReplicaSet revision, as kubectl rollout undo does"
    params_model = DeploymentParams
    destructive = True
    execute_is_idempotent = True  # re-reads the object; does nothing when it already matches
    permissions = ("get apps/deployments", "list apps/replicasets", "patch apps/deployments")

    async def _history(self, ctx: ActionContext, params: DeploymentParams) -> History:
        api = await self.api(ctx)
        deployment = await api.read_deployment(params.namespace, params.deployment)
        selector = label_selector((deployment.get("spec") or {}).get("selector"))
        return History(deployment, await api.list_replica_sets(params.namespace, selector))

    async def plan(self, ctx: ActionContext, params: DeploymentParams) -> Plan:
        history = await self._history(ctx, params)
        refuse_paused(history.deployment, "roll back")
        (cur_rev, cur_rs), (prev_rev, prev_rs) = history.latest_and_previous()
        where = self.where(params)
        template = (history.deployment.get("spec") or {}).get("template") or {}
        target = (prev_rs.get("spec") or {}).get("template") or {}
        details: dict[str, Any] = {
            "namespace": params.namespace, "deployment": params.deployment,
            "from": {"revision": cur_rev, "replicaset": cur_rs["metadata"]["name"],
                     "images": images(template)},
            "to": {"revision": prev_rev, "replicaset": prev_rs["metadata"]["name"],
                   "images": images(target)},
        }
        if same_template(template, target):
            details["patch"] = None
            return Plan(action=self.name, target=ctx.target_name, destructive=True, details=details, steps=(
                f"deployment {where} already has the pod template of revision {prev_rev} "
                f"({prev_rs['metadata']['name']}): nothing to do",))
        details["patch"] = undo_patch(history.deployment, prev_rs)
        old, new = images(template), images(target)
        changes = [f"{c} {old.get(c, '-')} → {new.get(c, '-')}" for c in sorted({*old, *new})
                   if old.get(c) != new.get(c)]
        return Plan(action=self.name, target=ctx.target_name, destructive=True, details=details, steps=(
            f"roll back deployment {where} from revision {cur_rev} ({cur_rs['metadata']['name']}) "
            f"to revision {prev_rev} ({prev_rs['metadata']['name']}), as `kubectl rollout undo` does",
            "images: " + ("; ".join(changes) if changes else "unchanged (other pod template fields differ)"),
            f"PATCH deployment {where} (JSON patch): replace /spec/template with the pod template of "
            f"ReplicaSet {prev_rs['metadata']['name']} minus its {POD_TEMPLATE_HASH} label, and replace "
            "/metadata/annotations with the ReplicaSet's annotations (keeping the deployment's "
            "revision ones)",
            "the Deployment controller then rolls its pods to that template",
        ))

    async def execute(self, ctx: ActionContext, params: DeploymentParams, plan: Plan) -> Result:
        if plan.details.get("patch") is None:
            return Result(summary=f"deployment {self.where(params)} already at the planned template; "
                                  "nothing done", details={"patched": False})
        history = await self._history(ctx, params)
        planned_from, planned_to = plan.details["from"], plan.details["to"]
        target_rs = history.named(planned_to["replicaset"])
        template = (history.deployment.get("spec") or {}).get("template") or {}
        if target_rs is not None and same_template(template, target_rs["spec"]["template"]):
            return Result(summary=f"deployment {self.where(params)} already has the pod template of "
                                  f"{planned_to['replicaset']}; nothing done", details={"patched": False})
        refuse_paused(history.deployment, "roll back")
        (cur_rev, cur_rs), (prev_rev, prev_rs) = history.latest_and_previous()
        now = (cur_rev, cur_rs["metadata"]["name"], prev_rev, prev_rs["metadata"]["name"])
        planned = (planned_from["revision"], planned_from["replicaset"],
                   planned_to["revision"], planned_to["replicaset"])
        if now != planned:
            raise PermanentError(f"deployment {self.where(params)} changed since the plan: revision {now[0]} "
                                 f"({now[1]}), previous {now[2]} ({now[3]}); planned {planned[0]} "
                                 f"({planned[1]}) back to {planned[2]} ({planned[3]}); nothing done")
        api = await self.api(ctx)
        patch = undo_patch(history.deployment, prev_rs)
        await api.patch_deployment(params.namespace, params.deployment, patch)
        return Result(
            summary=f"rolled back deployment {self.where(params)} from revision {cur_rev} to {prev_rev} "
                    f"({prev_rs['metadata']['name']})",
            details={"patched": True, "from": planned_from, "to": planned_to},
        )


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
        fate = (f"its controller {owner.get('kind')} {owner.get('name')} will replace it" if owner
                else "it has no controller: nothing will recreate it")
        return Plan(
            action=self.name, target=ctx.target_name, destructive=True,
            steps=(f"DELETE pod {self.where(params)} (phase {phase}, node {spec.get('nodeName', '-')}, "
                   f"grace period {grace}s)", fate),
            details={"namespace": params.namespace, "pod": params.pod, "uid": meta.get("uid"),
                     "phase": phase, "node": spec.get("nodeName"), "grace_period_seconds": grace,
                     "owner": owner and {"kind": owner.get("kind"), "name": owner.get("name")}},
        )

    async def execute(self, ctx: ActionContext, params: PodParams, plan: Plan) -> Result:
        api = await self.api(ctx)
        await api.delete_pod(params.namespace, params.pod, uid=plan.details.get("uid"))
        return Result(summary=f"deleted pod {self.where(params)}",
                      details={"uid": plan.details.get("uid")})
