"""``argocd.rollback``: an Argo CD application back to an earlier deployment, as ``argocd app rollback`` does.

Run by ``receiver.flow.workers`` against a ``kind: argocd`` target; always asks approval.
The plan reads the application (``GET /api/v1/applications/{name}``): its history, the
revision deployed now, its sync policy and any running operation. Without an ``id`` the
rollback goes to the deployment before the current one, as the CLI does without one.
Argo CD refuses a rollback while automated sync is on (its self-heal would sync forward
again): the action refuses too, unless ``disable_auto_sync`` is set, in which case execute
first turns automated sync off (``PATCH`` with ``{"spec":{"syncPolicy":{"automated":null}}}``,
what ``argocd app set APP --sync-policy none`` does) and says so in the plan; the
application then shows OutOfSync until Git is reverted. Execute reads the application
again and does nothing when the planned revision is already deployed.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from remediations.argocd.api import ArgoCdApi
from remediations.base import Action, ActionContext, PermanentError, Plan, Result, TargetNotAllowed
from remediations.targets import ArgoCdTarget

_AUTOMATED_OFF = {"spec": {"syncPolicy": {"automated": None}}}
APPLICATION = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
"""An Application's name: a DNS-1123 subdomain."""


def argocd_target(action: str, ctx: ActionContext) -> ArgoCdTarget:
    """The context's target, which must be an argocd target."""
    if not isinstance(ctx.target, ArgoCdTarget):
        raise PermanentError(f"{action} needs an argocd target, got {ctx.target_name!r}")
    return ctx.target


def check_application(action: str, ctx: ActionContext, application: str) -> None:
    """Refuse an application outside the target's ``applications``."""
    target = argocd_target(action, ctx)
    if application not in target.applications:
        raise TargetNotAllowed(f"{action}: application {application!r} is not in the applications of target "
                               f"{ctx.target_name!r} ({', '.join(target.applications)})")


class RollbackParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    application: str = Field(pattern=APPLICATION,
                             description="The Argo CD application (must be in the target's applications)")
    id: int | None = Field(default=None, ge=0, le=1_000_000,
                           description="History ID to roll back to (argocd app history); default: previous")
    prune: bool = Field(default=False, description="Delete resources the earlier revision does not have")
    disable_auto_sync: bool = Field(default=False,
                                    description="Turn automated sync off first when it is on (else refused)")


def _history(app: dict[str, Any]) -> list[dict[str, Any]]:
    entries = (app.get("status") or {}).get("history") or []
    return [e for e in entries if isinstance(e, dict) and isinstance(e.get("id"), int)]


def _brief(entry: dict[str, Any]) -> dict[str, Any]:
    return {"id": entry.get("id"), "revision": entry.get("revision"), "deployed_at": entry.get("deployedAt")}


def _running(app: dict[str, Any]) -> str | None:
    state = (app.get("status") or {}).get("operationState") or {}
    if app.get("operation") or state.get("phase") in ("Running", "Terminating"):
        return str(state.get("message") or "an operation is running")
    return None


class ArgoCdRollback(Action[RollbackParams]):
    """``argocd app rollback APP [ID]``: Argo CD syncs the application to an earlier deployed revision."""

    name = "argocd.rollback"
    description = ("Roll an Argo CD application back to an earlier deployment (argocd app rollback); "
                   "always asks approval")
    params_model = RollbackParams
    destructive = True
    approval_always = True  # the cluster leaves what Git says until Git is reverted
    execute_is_idempotent = True  # re-reads the application; does nothing when the revision is deployed
    target_kinds = frozenset({"argocd"})
    timeout = 60.0
    permissions = ("argocd RBAC: applications get", "argocd RBAC: applications sync",
                   "argocd RBAC: applications update (only with disable_auto_sync)")

    def _target(self, ctx: ActionContext) -> ArgoCdTarget:
        return argocd_target(self.name, ctx)

    def check_allowed(self, ctx: ActionContext, params: RollbackParams) -> None:
        check_application(self.name, ctx, params.application)

    def subject(self, ctx: ActionContext, params: RollbackParams) -> str:
        return f"{ctx.target_name}/application/{params.application}"

    def _choose(self, app: dict[str, Any], params: RollbackParams) -> tuple[dict[str, Any], dict[str, Any]]:
        """The deployment now (the newest history entry) and the one to roll back to."""
        history = _history(app)
        name = params.application
        if not history:
            raise PermanentError(f"application {name} has no deployment history")
        current = history[-1]
        if params.id is None:
            if len(history) < 2:
                raise PermanentError(f"application {name} should have at least two successful deployments "
                                     "to roll back without an id")
            return current, history[-2]
        chosen = next((e for e in history if e["id"] == params.id), None)
        if chosen is None:
            ids = ", ".join(str(e["id"]) for e in history)
            raise PermanentError(f"application {name} does not have deployment id {params.id} in its history "
                                 f"(ids: {ids})")
        return current, chosen

    async def plan(self, ctx: ActionContext, params: RollbackParams) -> Plan:
        api, name = ArgoCdApi(self._target(ctx)), params.application
        app = await api.get_application(name)
        current, chosen = self._choose(app, params)
        policy = (app.get("spec") or {}).get("syncPolicy") or {}
        automated = policy.get("automated")
        self_heal = bool((automated or {}).get("selfHeal"))
        details: dict[str, Any] = {"application": name, "from": _brief(current), "to": _brief(chosen),
                                   "auto_sync": automated is not None, "self_heal": self_heal,
                                   "disable_auto_sync": False, "prune": params.prune}
        if chosen.get("revision") == current.get("revision"):
            return Plan(action=self.name, target=ctx.target_name, destructive=False, details=details, steps=(
                f"application {name} already runs revision {chosen.get('revision')} (history id "
                f"{current['id']}): nothing to do",))
        running = _running(app)
        if running:
            raise PermanentError(f"application {name} has an operation in progress ({running}); "
                                 "a rollback now would be refused")
        steps = []
        if automated is not None:
            how = "automated sync with self-heal" if self_heal else "automated sync"
            if not params.disable_auto_sync:
                raise PermanentError(
                    f"application {name} has {how} on: Argo CD refuses a rollback then (it would sync "
                    "forward again); revert the change in Git, or set disable_auto_sync: true to turn it off "
                    "first")
            details["disable_auto_sync"] = True
            steps.append(f"PATCH application {name} (merge patch "
                         '{"spec":{"syncPolicy":{"automated":null}}}): '
                         f"turn {how} off, as `argocd app set {name} --sync-policy none` does")
        steps += [
            f"POST /api/v1/applications/{name}/rollback {{\"id\": {chosen['id']}, \"prune\": "
            f"{str(params.prune).lower()}}}: roll back from revision {current.get('revision')} (history id "
            f"{current['id']}, deployed {current.get('deployedAt')}) to {chosen.get('revision')} (history id "
            f"{chosen['id']}, deployed {chosen.get('deployedAt')}), as `argocd app rollback {name} "
            f"{chosen['id']}` does",
            f"Argo CD then syncs {name} to that revision; it shows OutOfSync until Git is reverted, and "
            "automated sync stays off",
        ]
        return Plan(action=self.name, target=ctx.target_name, destructive=True, details=details,
                    steps=tuple(steps))

    async def execute(self, ctx: ActionContext, params: RollbackParams, plan: Plan) -> Result:
        api, name = ArgoCdApi(self._target(ctx)), params.application
        planned_from, planned_to = plan.details["from"], plan.details["to"]
        if planned_from.get("revision") == planned_to.get("revision"):
            return Result(summary=f"application {name} already runs {planned_to.get('revision')}; "
                                  "nothing done", details={"rolled_back": False})
        app = await api.get_application(name)
        current, _ = self._choose(app, params)
        if current.get("revision") == planned_to.get("revision"):
            return Result(summary=f"application {name} already runs {planned_to.get('revision')}; "
                                  "nothing done", details={"rolled_back": False})
        if current["id"] != planned_from["id"]:
            raise PermanentError(f"application {name} deployed again since the plan (history id "
                                 f"{current['id']}, revision {current.get('revision')}; planned from id "
                                 f"{planned_from['id']}); nothing done")
        running = _running(app)
        if running:
            raise PermanentError(f"application {name} has an operation in progress ({running}); nothing done")
        disabled = False
        if ((app.get("spec") or {}).get("syncPolicy") or {}).get("automated") is not None:
            if not plan.details.get("disable_auto_sync"):
                raise PermanentError(f"application {name} turned automated sync on since the plan; "
                                     "nothing done")
            await api.patch_application(name, _AUTOMATED_OFF)
            disabled = True
        answer = await api.rollback(name, int(planned_to["id"]), prune=params.prune)
        phase = ((answer.get("status") or {}).get("operationState") or {}).get("phase")
        return Result(
            summary=f"rolled back application {name} from {planned_from.get('revision')} to "
                    f"{planned_to.get('revision')} (history id {planned_to['id']})"
                    + ("; automated sync turned off" if disabled else ""),
            details={"rolled_back": True, "auto_sync_disabled": disabled, "from": planned_from,
                     "to": planned_to,
                     "operation": (answer.get("operation") or {}).get("sync"), "phase": phase},
        )
