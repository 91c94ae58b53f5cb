"""What remediator posts back to Slack after an interaction, through its ``response_url``.

Used by ``receiver.http.slack``: the original approval message is replaced by the same
notice (``receiver.flow.notices``) without buttons and with the outcome (approved by whom,
rejected, already decided); a refused user gets an ephemeral "not allowed". Once the plan of
an approval approved from Slack has run, the message is updated again with the result.

That last update may happen on another replica (the one that ran the plan), so the reply
owed is kept in the state store, as a timer of kind ``slack_reply`` keyed by the decision:
the replica that ends the run takes it (once, atomically) and posts; if no result came
within the 30 minutes Slack accepts posts to a ``response_url``, the timer fires and says
so instead.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import structlog
from slack_sdk.webhook.async_client import AsyncWebhookClient

from receiver.errors import NotFound, StateError
from receiver.flow.codec import SlackReply
from receiver.flow.notices import approval_notice
from receiver.flow.timers import TimerKind
from receiver.runtime import Runtime
from receiver.store.values import Approval, Timer
from remediations.notify.blocks import SLACK_SECTION_MAX, mrkdwn, slack_body

_log = structlog.get_logger("remediator.slack")
REPLY_WINDOW = 1800.0  # Slack takes posts to a response_url for 30 minutes
_KEEP = 3600.0  # how long a reply's tombstone stays once taken
_TIMEOUT = 5


def _key(decision: str) -> str:
    return f"slack-reply\x1f{decision}"


def result_line(outcome: str, reason: str, detail: str) -> str:
    """How the run of an approved plan ended, in one line."""
    if outcome == "succeeded":
        return "✅ The plan ran: every step succeeded."
    if outcome == "blocked":
        return f"⛔ Not run ({reason}): {detail}"
    return f"❌ Failed ({reason}): {detail}"


class SlackReplies:
    """Posts to ``response_url``s and keeps the replies owed until a run ends."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._console = runtime.settings.console.external_url

    async def _post(self, response_url: str, **message: Any) -> bool:
        client = AsyncWebhookClient(url=response_url, timeout=_TIMEOUT)
        try:
            answer = await client.send(**message)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            _log.warning("slack.reply_failed", error=f"{exc.__class__.__name__}: {exc}")
            return False
        if answer.status_code != 200:
            _log.warning("slack.reply_failed", status=answer.status_code, body=answer.body[:200])
            return False
        return True

    async def ephemeral(self, response_url: str, text: str) -> bool:
        """A message only the user who pressed the button sees; the original stays as it was.
        Its text is mrkdwn: escaped, as what it quotes (an approval id, an error) came with the press."""
        return await self._post(response_url, response_type="ephemeral", replace_original=False,
                                text=mrkdwn(text, SLACK_SECTION_MAX))

    async def show(self, response_url: str, approval: Approval, outcome: list[str], *,
                   buttons: bool = False) -> bool:
        """Replace the original message with the approval's notice and its outcome (no buttons,
        unless it is to be pressed again)."""
        body = slack_body(approval_notice(approval, buttons=buttons, console=self._console, outcome=outcome))
        return await self._post(response_url, replace_original=True, text=body["text"], blocks=body["blocks"])

    async def owe(self, approval: Approval, response_url: str, decided: str) -> None:
        """Keep a reply for the run's result (before approving: the run may end at once)."""
        now = self._runtime.clock.now()
        await self._runtime.timers.arm(Timer(
            id=f"slack-reply:{approval.id}", kind=TimerKind.SLACK_REPLY.value,
            fingerprint=_key(approval.decision),
            due_at=now + REPLY_WINDOW, expires_at=now + REPLY_WINDOW + _KEEP,
            payload=SlackReply(approval=approval.id, response_url=response_url, decided=decided).as_data()))

    async def forgive(self, approval: Approval) -> None:
        """Drop the reply kept for an approval this interaction did not approve after all."""
        await self._runtime.state.take_timers(_key(approval.decision), [TimerKind.SLACK_REPLY.value])

    async def ran(self, approval: Approval, outcome: str, reason: str, detail: str) -> None:
        """An approved plan's run ended (``Approvals.on_ran``): post the result if a reply is owed."""
        owed = await self._runtime.state.take_timers(_key(approval.decision), [TimerKind.SLACK_REPLY.value])
        for timer in owed:
            reply = SlackReply.from_data(timer.payload)
            lines = [reply.decided, result_line(outcome, reason, detail)]
            await self.show(reply.response_url, approval, lines)

    async def expired(self, timer: Timer) -> None:
        """No result within the reply window (``Timers`` handler of ``slack_reply``)."""
        try:
            reply = SlackReply.from_data(timer.payload)
            approval = await self._runtime.approvals.get(reply.approval)
        except (NotFound, StateError) as exc:
            _log.warning("slack.reply_dropped", timer=timer.id, error=str(exc))
            return
        await self.show(reply.response_url, approval,
                        [reply.decided,
                         "The run's result was not reported within 30 minutes: "
                         "see the console or the audit."])
