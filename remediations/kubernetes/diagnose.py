"""``kubernetes.diagnose``: read-only evidence about a Deployment, a StatefulSet or one pod.

Run by ``receiver.flow.workers`` as a rule's ``diagnose:`` step (its findings go to the audit
log and the approval request); shares ``remediations.kubernetes.api`` with the other
Kubernetes actions. It reports what ``kubectl get pods``, ``kubectl get events | grep OOM``,
``kubectl logs --tail=N | grep PATTERN`` and ``kubectl top pods`` would: pod phases, restart
counts, containers OOMKilled, the most recent events, the last log lines (those matching a
pattern, when one is given) and CPU and memory from metrics.k8s.io. Logs and metrics are
evidence, not preconditions: a container that has no log yet or a cluster without
metrics-server is recorded as such, and the rest is still reported.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from remediations.base import ActionContext, Plan, RemediationError, Result
from remediations.kubernetes.api import (
    KubernetesAction,
    NamespacedParams,
    ObjectName,
    drop_unset_choices,
    label_selector,
)
from remediations.kubernetes.calls import KubeApi
from remediations.kubernetes.evidence import MAX_PODS_WITH_LOGS, read_logs, top_line, usage

MAX_PODS_WITH_EVENTS = 10
_EPOCH = datetime.min.replace(tzinfo=UTC)


class DiagnoseParams(NamespacedParams):
    deployment: ObjectName | None = Field(default=None, description="Deployment name (or statefulset or pod)")
    statefulset: ObjectName | None = Field(default=None,
                                           description="StatefulSet name (or deployment or pod)")
    pod: ObjectName | None = Field(default=None, description="Pod name (or deployment, or statefulset)")
    events: int = Field(default=20, ge=0, le=200, description="How many of the most recent events to report")
    log_lines: int = Field(default=0, ge=0, le=1000,
                           description="Last log lines to read per container (kubectl logs --tail); 0: none")
    log_pattern: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="Keep only the log lines matching this regex (case-insensitive), as grep -iE does")
    metrics: bool = Field(default=False, description="Read CPU and memory from metrics.k8s.io (kubectl top)")

    @model_serializer(mode="wrap")
    def _only_the_object_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return drop_unset_choices(handler(self), ("deployment", "statefulset", "pod", "log_pattern"))

    @model_validator(mode="after")
    def _one_object(self) -> DiagnoseParams:
        if sum(x is not None for x in (self.deployment, self.statefulset, self.pod)) != 1:
            raise ValueError("give exactly one of deployment, statefulset or pod")
        if self.log_pattern is not None:
            try:
                re.compile(self.log_pattern)
            except re.error as exc:
                raise ValueError(f"log_pattern is not a valid regex: {exc}") from None
            if not self.log_lines:
                raise ValueError("log_pattern needs log_lines above 0 (the lines it filters)")
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
    """Pod phases, restarts, OOMKilled containers, recent events, logs and usage; changes nothing."""

    name = "kubernetes.diagnose"
    description = ("Read pod phases, restarts, OOMKilled containers, recent events, log lines and "
                   "CPU/memory usage (read-only)")
    params_model = DiagnoseParams
    read_only = True
    permissions = ("get apps/deployments", "get apps/statefulsets", "get pods", "list pods", "list events",
                   "get pods/log", "list metrics.k8s.io/pods")

    def object_ref(self, params: DiagnoseParams) -> tuple[str, str]:
        if params.pod is not None:
            return "pod", params.pod
        if params.statefulset is not None:
            return "statefulset", params.statefulset
        return "deployment", params.deployment or ""

    async def plan(self, ctx: ActionContext, params: DiagnoseParams) -> Plan:
        self.target(ctx)
        where, (kind, name) = self.where(params), self.object_ref(params)
        if params.pod is not None:
            reads: list[str] = [f"GET pod {where}"]
            if params.events:
                reads.append(f"LIST events in {params.namespace} of pod {params.pod}")
        else:
            reads = [f"GET {kind} {where}", f"LIST pods in {params.namespace} matching the {kind}'s selector"]
            if params.events:
                reads.append(f"LIST events in {params.namespace} of the {kind} and of its pods "
                             f"(at most {MAX_PODS_WITH_EVENTS} pods, unhealthy first)")
        if params.log_lines:
            grep = f", keeping those matching /{params.log_pattern}/i" if params.log_pattern else ""
            reads.append(f"GET the last {params.log_lines} log lines of each container{grep} (at most "
                         f"{MAX_PODS_WITH_LOGS} pods, unhealthy first; a restarted container's previous "
                         "instance too)")
        if params.metrics:
            reads.append(f"LIST metrics.k8s.io pods in {params.namespace}: CPU and memory per container")
        report = ["pod phases, restarts", "OOMKilled containers", f"the {params.events} most recent events"]
        report += ["log lines"] * bool(params.log_lines) + ["CPU and memory"] * params.metrics
        return Plan(
            action=self.name, target=ctx.target_name, destructive=False,
            steps=(*reads, "report " + ", ".join(report[:-1]) + " and " + report[-1] + "; change nothing"),
            details={"namespace": params.namespace, "object": kind, "name": name, "events": params.events,
                     "log_lines": params.log_lines, "log_pattern": params.log_pattern,
                     "metrics": params.metrics},
        )

    async def execute(self, ctx: ActionContext, params: DiagnoseParams, plan: Plan) -> Result:
        api = await self.api(ctx)
        ns, (kind, name) = params.namespace, self.object_ref(params)
        details: dict[str, Any] = {}
        if params.pod is not None:
            pods = [await api.read_pod(ns, params.pod)]
            self.check_pod(ctx, pods[0])
            events = await api.list_events(ns, "Pod", params.pod) if params.events else []
        else:
            pods, events, details[kind] = await self._workload(api, ns, kind, name,
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
        ordered = sorted(pods, key=_unhealthy_first)
        if params.log_lines:
            details["logs"] = await read_logs(api, ns, ordered, lines=params.log_lines,
                                              pattern=params.log_pattern)
            kept = sum(len(entry["lines"]) for entry in details["logs"])
            summary += f"; {kept} log line(s)" + (f" matching /{params.log_pattern}/i" if params.log_pattern
                                                   else "")
        if params.metrics:
            try:
                details["usage"] = usage(await api.list_pod_metrics(ns, None), pods)
                details["metrics_error"] = None
                summary += "; " + top_line(details["usage"])
            except RemediationError as exc:
                details |= {"usage": [], "metrics_error": str(exc)}
                summary += "; metrics unavailable"
        return Result(summary=summary, details=details)

    async def _workload(self, api: KubeApi, ns: str, kind: str, name: str, *, with_events: bool,
                        ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
        workload = await api.read_workload(kind, ns, name)
        spec, status = workload.get("spec") or {}, workload.get("status") or {}
        pods = await api.list_pods(ns, label_selector(spec.get("selector")))
        events = await api.list_events(ns, "Deployment" if kind == "deployment" else "StatefulSet",
                                       name) if with_events else []
        for pod in sorted(pods, key=_unhealthy_first)[:MAX_PODS_WITH_EVENTS] if with_events else []:
            events += await api.list_events(ns, "Pod", pod["metadata"]["name"])
        conditions = [{k: c.get(k) for k in ("type", "status", "reason", "message")}
                      for c in status.get("conditions") or []]
        summary = {"replicas": spec.get("replicas"), "ready": status.get("readyReplicas", 0),
                   "updated": status.get("updatedReplicas", 0),
                   "available": status.get("availableReplicas", 0) if kind == "deployment"
                   else status.get("availableReplicas", status.get("readyReplicas", 0)),
                   "paused": bool(spec.get("paused")), "conditions": conditions}
        if kind == "statefulset":
            summary |= {"current_revision": status.get("currentRevision"),
                        "update_revision": status.get("updateRevision")}
        return pods, events, summary
