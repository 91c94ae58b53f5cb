"""The approval notice: what the on-call reads (and presses) when a plan waits for a human.

Built by ``receiver.flow.guards.approvals`` when it requests an approval, and again by
``receiver.http.slackreply`` to update the Slack message once the approval is decided and
once its plan ran. It carries the alert, the priority, the plan's exact steps and the
diagnosis; with Slack interactions configured (``slack:``), Approve / Reject buttons; with
``console.external_url``, a link to the approval's console page. The CLI commands stay in
the text for those who prefer a terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from receiver.flow.codec import ApprovalRequest
from receiver.store.values import Approval, ApprovalStatus
from remediations.notify.blocks import APPROVE, REJECT
from remediations.notify.notice import Button, Notice, web_link
from rules.alert import Alert

_DIAGNOSIS_EXCERPT = 600


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def console_link(base: str | None, path: str) -> str | None:
    """``base`` (``console.external_url``) joined with a console path, or None without one."""
    return None if not base else f"{base.rstrip('/')}/ui/{path.lstrip('/')}"


def diagnosis_lines(request: ApprovalRequest) -> list[str]:
    """One line per diagnostic step that ran before the request: its action and what it found."""
    lines = []
    for diag in request.diagnostics:
        summary = diag.result.summary
        if len(summary) > _DIAGNOSIS_EXCERPT:
            summary = summary[:_DIAGNOSIS_EXCERPT - 1] + "…"
        lines.append(f"{diag.action}: {summary}")
    return lines


def alert_source(alert: Alert) -> str | None:
    """The alert's ``generatorURL`` when it is a link worth following (absolute http(s) only,
    encoded so it cannot name itself or end a link: ``remediations.notify.notice.web_link``)."""
    return web_link(alert.generator_url)


def _alert_text(alert: Alert) -> str:
    summary = alert.annotations.get("summary") or alert.annotations.get("description")
    parts = [", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))]
    if summary:
        parts.append(summary)
    return "\n".join(p for p in parts if p)


def approval_notice(approval: Approval, *, buttons: bool, console: str | None,
                    outcome: Sequence[str] = ()) -> Notice:
    """The notice of ``approval``; ``outcome`` lines (decided, ran) replace the buttons."""
    request = ApprovalRequest.of_approval(approval)
    name = request.alert.name or approval.fingerprint
    priority = request.priority
    pending = approval.status is ApprovalStatus.PENDING and not outcome
    head = "Approval needed" if pending else f"Approval {approval.status.value}"
    text = "\n".join([
        f"Approve: remediator approvals approve {approval.id}",
        f"Reject:  remediator approvals reject {approval.id}",
        f"Expires: {iso(approval.expires_at)}",
    ]) if pending else ""
    sections = [("Alert", _alert_text(request.alert) or approval.fingerprint),
                ("Plan", "\n".join(f"{n}. {step}" for n, step in enumerate(request.plan_lines(), start=1))
                 or "(no action steps)")]
    diagnosis = diagnosis_lines(request)
    if diagnosis:
        sections.append(("Diagnosis", "\n".join(diagnosis)))
    if outcome:
        sections.append(("Outcome", "\n".join(outcome)))
    links: dict[str, str] = {}
    page = console_link(console, f"approvals/{approval.id}")
    if page:
        links["Open in the console"] = page
    source = alert_source(request.alert)
    if source is not None:
        links["Alert source"] = source
    actions: list[Button] = []
    if pending and buttons:
        actions = [Button("Approve", APPROVE, approval.id, style="primary",
                          confirm=f"Run the plan of {approval.rule} now?"),
                   Button("Reject", REJECT, approval.id, style="danger")]
    if pending and page:
        actions.append(Button("Open in the console", "remediator.open", approval.id, url=page))
    return Notice(
        title=f"{head}: {approval.rule} ({priority}) for {name}",
        severity="critical" if request.urgent else "warning",  # the first of the configured levels
        text=text,
        dedup_key=f"remediator-approval-{approval.id}",
        fields={"approval": approval.id, "rule": approval.rule, "priority": str(priority),
                "fingerprint": approval.fingerprint},
        links=links, sections=tuple(sections), buttons=tuple(actions),
    )
