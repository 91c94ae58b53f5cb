"""``argocd.diagnose``: an Argo CD application as ``argocd app get`` and ``argocd app history`` show it.

Run by ``receiver.flow.workers``, usually under a rule's ``diagnose:`` (the runbook's "check
ArgoCD sync status" before a rollback): sync status and revision, health, the running or
last operation, whether automated sync and self-heal are on (a ``kubectl rollout undo``
would be reverted), and the most recent deployments. One ``GET`` through
``remediations.argocd.api``; changes nothing.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from remediations.argocd.api import ArgoCdApi
from remediations.argocd.rollback import APPLICATION, argocd_target, check_application
from remediations.base import Action, ActionContext, Plan, Result


class DiagnoseParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    application: str = Field(pattern=APPLICATION,
                             description="The Argo CD application (must be in the target's applications)")
    history: int = Field(default=5, ge=0, le=50, description="How many of the latest deployments to report")


class ArgoCdDiagnose(Action[DiagnoseParams]):
    """``argocd app get`` and ``argocd app history``: status, sync policy, latest deployments; read-only."""

    name = "argocd.diagnose"
    description = ("An Argo CD application's sync and health status, sync policy and latest deployments "
                   "(read-only)")
    params_model = DiagnoseParams
    read_only = True
    target_kinds = frozenset({"argocd"})
    timeout = 30.0
    permissions = ("argocd RBAC: applications get",)

    def check_allowed(self, ctx: ActionContext, params: DiagnoseParams) -> None:
        check_application(self.name, ctx, params.application)

    def subject(self, ctx: ActionContext, params: DiagnoseParams) -> str:
        return f"{ctx.target_name}/application/{params.application}"

    async def plan(self, ctx: ActionContext, params: DiagnoseParams) -> Plan:
        argocd_target(self.name, ctx)
        return Plan(action=self.name, target=ctx.target_name, destructive=False,
                    details={"application": params.application, "history": params.history}, steps=(
                        f"GET /api/v1/applications/{params.application}",
                        f"report its sync and health status, sync policy, operation and the {params.history} "
                        "latest deployments; change nothing"))

    async def execute(self, ctx: ActionContext, params: DiagnoseParams, plan: Plan) -> Result:
        app = await ArgoCdApi(argocd_target(self.name, ctx)).get_application(params.application)
        spec, status = app.get("spec") or {}, app.get("status") or {}
        automated = (spec.get("syncPolicy") or {}).get("automated")
        sync, health = status.get("sync") or {}, status.get("health") or {}
        operation = status.get("operationState") or {}
        history = [e for e in status.get("history") or [] if isinstance(e, dict)]
        latest = [{"id": e.get("id"), "revision": e.get("revision"), "deployed_at": e.get("deployedAt")}
                  for e in history[-params.history:]][::-1] if params.history else []
        details: dict[str, Any] = {
            "application": params.application, "sync_status": sync.get("status"),
            "revision": sync.get("revision"), "health": health.get("status"),
            "health_message": health.get("message"), "auto_sync": automated is not None,
            "self_heal": bool((automated or {}).get("selfHeal")),
            "prune": bool((automated or {}).get("prune")),
            "operation": {"phase": operation.get("phase"), "message": operation.get("message"),
                          "finished_at": operation.get("finishedAt")},
            "history": latest, "deployments": len(history),
            "conditions": [{"type": c.get("type"), "message": c.get("message")}
                           for c in status.get("conditions") or [] if isinstance(c, dict)],
        }
        policy = ("automated sync with self-heal" if details["self_heal"] else "automated sync"
                  if details["auto_sync"] else "manual sync")
        summary = (f"{params.application}: {details['sync_status']} at {details['revision']}, health "
                   f"{details['health']}, {policy}, last operation {details['operation']['phase']}; "
                   f"{len(history)} deployment(s)")
        return Result(summary=summary, details=details)
