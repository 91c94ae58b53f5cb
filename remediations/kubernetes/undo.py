"""``kubernetes.rollout_undo``: a Deployment or StatefulSet back to its previous revision, as kubectl does it.

Run by ``receiver.flow.workers``; shares ``remediations.kubernetes.api`` with the other
Kubernetes actions. The write is the one ``kubectl rollout undo`` makes (k8s.io/kubectl
``polymorphichelpers/rollback.go``): for a Deployment, a JSON patch that puts the previous
ReplicaSet's pod template back; for a StatefulSet, the previous ControllerRevision's
``data`` (a strategic merge patch that replaces ``spec.template``). A workload that Argo CD
tracks is refused: its self-heal would put the newer template back, so the rollback
belongs to Argo CD (the ``argocd.rollback`` action).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from remediations.base import ActionContext, PermanentError, Plan, Result
from remediations.kubernetes.api import KubernetesAction, WorkloadParams, label_selector
from remediations.kubernetes.rollout import refuse_paused

REVISION = "deployment.kubernetes.io/revision"
POD_TEMPLATE_HASH = "pod-template-hash"
ARGOCD_TRACKING = "argocd.argoproj.io/tracking-id"
# Deployment annotations kubectl keeps on rollback rather than copying from the ReplicaSet.
_ANNOTATIONS_TO_SKIP = frozenset({
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
})


def revision(obj: Mapping[str, Any]) -> int | None:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION)
    return int(value) if isinstance(value, str) and value.isdigit() else None


def controlled_by(obj: Mapping[str, Any], owner_uid: str) -> bool:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("controller") and ref.get("uid") == owner_uid for ref in refs)


def _without_hash(template: Mapping[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = copy.deepcopy(dict(template))
    copied.pop("$patch", None)
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


def argocd_tracker(workload: Mapping[str, Any], label: str | None) -> str | None:
    """How Argo CD tracks this workload (``annotation … (application x)``), None when it does not."""
    meta = workload.get("metadata") or {}
    tracking = (meta.get("annotations") or {}).get(ARGOCD_TRACKING)
    if isinstance(tracking, str) and tracking:
        return f"annotation {ARGOCD_TRACKING} (application {tracking.split(':', 1)[0]})"
    instance = (meta.get("labels") or {}).get(label) if label else None
    if isinstance(instance, str) and instance:
        return f"label {label} (application {instance})"
    return None


@dataclass(frozen=True, slots=True)
class Revision:
    """One entry of a workload's history: a ReplicaSet or a ControllerRevision."""

    number: int
    name: str
    template: dict[str, Any]
    source: dict[str, Any]  # the ReplicaSet or ControllerRevision itself

    def brief(self, template: Mapping[str, Any]) -> dict[str, Any]:
        return {"revision": self.number, "source": self.name, "images": images(template)}


def history(kind: str, workload: dict[str, Any], owned: list[dict[str, Any]]) -> list[Revision]:
    """The workload's revisions, newest first (ReplicaSets by annotation, ControllerRevisions by field)."""
    uid = (workload.get("metadata") or {}).get("uid", "")
    found: list[Revision] = []
    for obj in owned:
        if not controlled_by(obj, uid):
            continue
        name = str((obj.get("metadata") or {}).get("name", ""))
        if kind == "deployment":
            number = revision(obj)
            template = (obj.get("spec") or {}).get("template") or {}
        else:
            raw = obj.get("revision")
            number = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
            template = ((obj.get("data") or {}).get("spec") or {}).get("template") or {}
        if number is not None:
            found.append(Revision(number, name, template, obj))
    return sorted(found, key=lambda r: r.number, reverse=True)


def undo_patch(kind: str, workload: Mapping[str, Any], to: Revision) -> Any:
    """kubectl's patch: a Deployment's JSON patch, or a StatefulSet's ControllerRevision data."""
    if kind == "statefulset":
        return copy.deepcopy(to.source.get("data"))
    template = _without_hash(to.template)
    current = (workload.get("metadata") or {}).get("annotations") or {}
    annotations = {k: v for k, v in current.items() if k in _ANNOTATIONS_TO_SKIP}
    rs_annotations = (to.source.get("metadata") or {}).get("annotations") or {}
    annotations.update({k: v for k, v in rs_annotations.items() if k not in _ANNOTATIONS_TO_SKIP})
    return [
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]


class KubernetesRolloutUndo(KubernetesAction[WorkloadParams]):
    """``kubectl rollout undo deployment/NAME`` (or ``statefulset/NAME``): back to the previous revision."""

    name = "kubernetes.rollout_undo"
    description = ("Roll a Deployment or StatefulSet back to its previous revision, as kubectl rollout "
                   "undo does; refused when Argo CD tracks it")
    params_model = WorkloadParams
    destructive = True
    execute_is_idempotent = True  # re-reads the object; does nothing when it already matches
    permissions = ("get apps/deployments", "list apps/replicasets", "patch apps/deployments",
                   "get apps/statefulsets", "list apps/controllerrevisions", "patch apps/statefulsets")

    async def _history(self, ctx: ActionContext, params: WorkloadParams,
                       ) -> tuple[dict[str, Any], list[Revision]]:
        api = await self.api(ctx)
        workload = await api.read_workload(params.kind, params.namespace, params.name)
        tracker = argocd_tracker(workload, self.target(ctx).argocd_instance_label)
        if tracker is not None:
            raise PermanentError(
                f"{params.kind} {self.where(params)} is tracked by Argo CD ({tracker}): its self-heal would "
                "put the newer template back, so a rollout undo is refused; roll back through Argo CD "
                "(argocd.rollback) or revert the change in Git")
        refuse_paused(workload, "roll back")
        selector = label_selector((workload.get("spec") or {}).get("selector"))
        if params.kind == "deployment":
            owned = await api.list_replica_sets(params.namespace, selector)
        else:
            owned = await api.list_controller_revisions(params.namespace, selector)
        return workload, history(params.kind, workload, owned)

    def _latest_and_previous(self, params: WorkloadParams,
                             revisions: list[Revision]) -> tuple[Revision, Revision]:
        if len(revisions) < 2:
            source = "ReplicaSets" if params.kind == "deployment" else "ControllerRevisions"
            raise PermanentError(f"no previous revision to roll back to: {params.kind} {params.name} has "
                                 f"{len(revisions)} revision(s) in its {source}")
        return revisions[0], revisions[1]

    async def plan(self, ctx: ActionContext, params: WorkloadParams) -> Plan:
        workload, revisions = await self._history(ctx, params)
        current, previous = self._latest_and_previous(params, revisions)
        where, kind = self.where(params), params.kind
        template = (workload.get("spec") or {}).get("template") or {}
        details: dict[str, Any] = {
            "namespace": params.namespace, kind: params.name,
            "from": current.brief(template), "to": previous.brief(previous.template),
        }
        if kind == "deployment":  # the names plans have always carried
            details["from"]["replicaset"] = details["from"].pop("source")
            details["to"]["replicaset"] = details["to"].pop("source")
        if same_template(template, previous.template):
            details["patch"] = None
            return Plan(action=self.name, target=ctx.target_name, destructive=True, details=details, steps=(
                f"{kind} {where} already has the pod template of revision {previous.number} "
                f"({previous.name}): nothing to do",))
        details["patch"] = undo_patch(kind, workload, previous)
        old, new = images(template), images(previous.template)
        changes = [f"{c} {old.get(c, '-')} → {new.get(c, '-')}" for c in sorted({*old, *new})
                   if old.get(c) != new.get(c)]
        if kind == "deployment":
            write = (f"PATCH deployment {where} (JSON patch): replace /spec/template with the pod template "
                     f"of ReplicaSet {previous.name} minus its {POD_TEMPLATE_HASH} label, and replace "
                     "/metadata/annotations with the ReplicaSet's annotations (keeping the deployment's "
                     "revision ones)")
        else:
            write = (f"PATCH statefulset {where} (strategic merge patch): the data of ControllerRevision "
                     f"{previous.name}, which replaces spec.template")
        controller = "Deployment" if kind == "deployment" else "StatefulSet"
        return Plan(action=self.name, target=ctx.target_name, destructive=True, details=details, steps=(
            f"roll back {kind} {where} from revision {current.number} ({current.name}) "
            f"to revision {previous.number} ({previous.name}), as `kubectl rollout undo` does",
            "images: " + ("; ".join(changes) if changes else "unchanged (other pod template fields differ)"),
            write,
            f"the {controller} controller then rolls its pods to that template",
        ))

    async def execute(self, ctx: ActionContext, params: WorkloadParams, plan: Plan) -> Result:
        where, kind = self.where(params), params.kind
        if plan.details.get("patch") is None:
            return Result(summary=f"{kind} {where} already at the planned template; nothing done",
                          details={"patched": False})
        key = "replicaset" if kind == "deployment" else "source"
        planned_from, planned_to = plan.details["from"], plan.details["to"]
        workload, revisions = await self._history(ctx, params)
        template = (workload.get("spec") or {}).get("template") or {}
        target = next((r for r in revisions if r.name == planned_to[key]), None)
        if target is not None and same_template(template, target.template):
            return Result(summary=f"{kind} {where} already has the pod template of {planned_to[key]}; "
                                  "nothing done", details={"patched": False})
        current, previous = self._latest_and_previous(params, revisions)
        now = (current.number, current.name, previous.number, previous.name)
        planned = (planned_from["revision"], planned_from[key], planned_to["revision"], planned_to[key])
        if now != planned:
            raise PermanentError(f"{kind} {where} changed since the plan: revision {now[0]} "
                                 f"({now[1]}), previous {now[2]} ({now[3]}); planned {planned[0]} "
                                 f"({planned[1]}) back to {planned[2]} ({planned[3]}); nothing done")
        api = await self.api(ctx)
        await api.patch_workload(kind, params.namespace, params.name, undo_patch(kind, workload, previous))
        return Result(
            summary=f"rolled back {kind} {where} from revision {current.number} to {previous.number} "
                    f"({previous.name})",
            details={"patched": True, "from": planned_from, "to": planned_to},
        )
