"""``kubernetes.diagnose``: read-only evidence about a Deployment or one pod.

Run by ``receiver.flow.workers`` as a rule's ``diagnose:`` step (its findings go to the audit
log and the approval request); shares ``remediations.kubernetes.api`` with the other
Kubernetes actions. It reports what ``kubectl get pods`` and ``kubectl get events | grep
OOM`` would: pod phases, restart counts, containers OOMKilled, the most recent events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, model_validator

from remediations.base import ActionContext, Plan, Result
from remediations.kubernetes.api import (
    KubeApi,
    KubernetesAction,
    NamespacedParams,
    ObjectName,
    label_selector,
)

MAX_PODS_WITH_EVENTS = 10
_EPOCH = datetime.min.replace(tzinfo=UTC)


class DiagnoseParams(NamespacedParams):
    deployment: ObjectName | None = Field(default=None, description="Deployment name (or give pod)")
    pod: ObjectName | None = Field(default=None, description="Pod name (or give deployment)")
    events: int = Field(default=20, ge=0, le=200, description="How many of the most recent events to report")

    @model_validator(mode="after")
    def _one_object(self) -> DiagnoseParams:
        if (self.deployment is None) == (self.pod is None):
            raise ValueError("give exactly one of deployment or pod")
        return self


def pod_findings(pod: Mapping[str, Any]) -> dict[str, Any]:
    """One pod as the findings show it: phase, readiness, restarts, each container's state."""
    status = pod.get("status") or {}
    containers = []
    for cs in status.get("containerStatuses") or []:
        state, last = cs.get("state") or {}, (cs.get("lastState") or {}).get("terminated") or {}
        now = next(iter(state), "unknown")
        containers.append({
            "name": cs.get("name"), "ready": bool(cs.get("ready")),
            "restarts": int(cs.get("restartCount") or 0),
            "state": now, "reason": (state.get(now) or {}).get("reason"),
            "last_terminated_reason": last.get("reason"), "last_exit_code": last.get("exitCode"),
            "oom_killed": "OOMKilled" in (last.get("reason"), (state.get("terminated") or {}).get("reason")),
        })
    return {
        "name": (pod.get("metadata") or {}).get("name"), "phase": status.get("phase", "Unknown"),
        "node": (pod.get("spec") or {}).get("nodeName"),
        "ready": bool(containers) and all(c["ready"] for c in containers),
        "restarts": sum(c["restarts"] for c in containers), "containers": containers,
    }


def _when(event: Mapping[str, Any]) -> datetime:
    """When an event last happened: lastTimestamp, eventTime, firstTimestamp or its creation."""
    for value in (event.get("lastTimestamp"), event.get("eventTime"), event.get("firstTimestamp"),
                  (event.get("metadata") or {}).get("creationTimestamp")):
        if isinstance(value, str) and value:
            try:
                when = datetime.fromisoformat(value)
            except ValueError:
                continue
            return when if when.tzinfo else when.replace(tzinfo=UTC)
    return _EPOCH


def event_findings(events: list[dict[str, Any]], keep: int) -> list[dict[str, Any]]:
    """The ``keep`` most recent events, oldest first, as ``kubectl get events`` lists them."""
    recent = sorted(events, key=_when)[-keep:] if keep else []
    found = []
    for e in recent:
        involved = e.get("involvedObject") or {}
        found.append({
            "time": _when(e).isoformat() if _when(e) != _EPOCH else None, "type": e.get("type"),
            "reason": e.get("reason"), "count": e.get("count"), "message": e.get("message"),
            "object": f"{involved.get('kind')}/{involved.get('name')}",
        })
    return found


def _unhealthy_first(pod: Mapping[str, Any]) -> tuple[bool, int]:
    found = pod_findings(pod)
    return found["ready"] and found["phase"] == "Running", -found["restarts"]


class KubernetesDiagnose(KubernetesAction[DiagnoseParams]):
    """Pod phases, restarts, OOMKilled containers and recent events; changes nothing."""

    name = "kubernetes.diagnose"
    description = "Read pod phases, restart counts, OOMKilled containers and recent events (read-only)"
    params_model = DiagnoseParams
    read_only = True
    permissions = ("get apps/deployments", "get pods", "list pods", "list events")

    def object_ref(self, params: DiagnoseParams) -> tuple[str, str]:
        if params.pod is not None:
            return "pod", params.pod
        return "deployment", params.deployment or ""

    async def plan(self, ctx: ActionContext, params: DiagnoseParams) -> Plan:
        self.target(ctx)
        where = self.where(params)
        if params.pod is not None:
            reads: tuple[str, ...] = (f"GET pod {where}",
                                      f"LIST events in {params.namespace} of pod {params.pod}")
        else:
            reads = (f"GET deployment {where}",
                     f"LIST pods in {params.namespace} matching the deployment's selector",
                     f"LIST events in {params.namespace} of the deployment and of its pods "
                     f"(at most {MAX_PODS_WITH_EVENTS} pods, unhealthy first)")
        if not params.events:
            reads = reads[:-1]
        return Plan(
            action=self.name, target=ctx.target_name, destructive=False,
            steps=(*reads, f"report pod phases, restarts, OOMKilled containers and the {params.events} "
                           "most recent events; change nothing"),
            details={"namespace": params.namespace, "object": self.object_ref(params)[0],
                     "name": self.object_ref(params)[1], "events": params.events},
        )

    async def execute(self, ctx: ActionContext, params: DiagnoseParams, plan: Plan) -> Result:
        api = await self.api(ctx)
        ns = params.namespace
        details: dict[str, Any] = {}
        if params.pod is not None:
            pods = [await api.read_pod(ns, params.pod)]
            events = await api.list_events(ns, "Pod", params.pod) if params.events else []
        else:
            assert params.deployment is not None  # the model validator guarantees one of the two
            pods, events, details["deployment"] = await self._deployment(api, ns, params.deployment,
                                                                         with_events=params.events > 0)
        found = [pod_findings(p) for p in pods]
        oom = [f"{p['name']}/{c['name']}" for p in found for c in p["containers"] if c["oom_killed"]]
        recent = event_findings(events, params.events)
        details |= {"pods": found, "oom_killed": oom, "events": recent}
        phases = Counter(p["phase"] for p in found)
        warnings = sum(1 for e in recent if e["type"] == "Warning")
        summary = (f"{self.where(params)}: {len(found)} pod(s) ("
                   + (", ".join(f"{n} {phase}" for phase, n in sorted(phases.items())) or "none")
                   + f"), {sum(p['restarts'] for p in found)} restart(s), OOMKilled: "
                   + (", ".join(oom) or "none") + f"; {len(recent)} recent event(s), {warnings} warning(s)")
        return Result(summary=summary, details=details)

    async def _deployment(self, api: KubeApi, ns: str, name: str, *, with_events: bool,
                          ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
        deployment = await api.read_deployment(ns, name)
        spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
        pods = await api.list_pods(ns, label_selector(spec.get("selector")))
        events = await api.list_events(ns, "Deployment", name) if with_events else []
        for pod in sorted(pods, key=_unhealthy_first)[:MAX_PODS_WITH_EVENTS] if with_events else []:
            events += await api.list_events(ns, "Pod", pod["metadata"]["name"])
        conditions = [{k: c.get(k) for k in ("type", "status", "reason", "message")}
                      for c in status.get("conditions") or []]
        summary = {"replicas": spec.get("replicas"), "ready": status.get("readyReplicas", 0),
                   "updated": status.get("updatedReplicas", 0),
                   "available": status.get("availableReplicas", 0),
                   "paused": bool(spec.get("paused")), "conditions": conditions}
        return pods, events, summary
