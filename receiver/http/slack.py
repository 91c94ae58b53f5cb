"""``POST /slack/interactions``: Approve / Reject pressed under an approval notice in Slack.

Registered by ``receiver.http.app.create_app`` when the config has ``slack:``. Every request
is checked before anything else with the Slack SDK's ``SignatureVerifier`` (HMAC-SHA256 of
``v0:timestamp:body`` with the signing secret, the timestamp within 5 minutes of the
injected clock); a missing, forged or stale signature is a 401. A request already seen is
a 409: its signature is claimed in the state store for 10 minutes (longer than the window),
so a replay is refused by every replica. Then the Slack user must be an approver
(``slack.approvers``: user IDs, or members of user groups read with ``usergroups.users.list``
through the SDK's ``AsyncWebClient``); anyone else gets an ephemeral "not allowed" and
nothing changes. An approver's press goes through ``receiver.flow.guards.approvals`` exactly
as ``POST /api/v1/approvals/{id}/approve`` does (once, atomically, across replicas), with
``slack:USER (name)`` as the actor in the audit. Answers to the user (the updated message,
an approval already decided, an unknown one) go to the interaction's ``response_url``
(``receiver.http.slackreply``); Slack itself is answered 200 with an empty body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import structlog
from aiohttp import web
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.signature import Clock as SlackClock
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from receiver.clock import Clock
from receiver.errors import Conflict, NotFound, StateError
from receiver.flow.timers import TimerKind
from receiver.http.keys import RUNTIME
from receiver.http.middlewares import error_response
from receiver.http.slackreply import SlackReplies
from receiver.oncall import SlackSettings
from receiver.runtime import Runtime
from receiver.store.values import ApprovalStatus
from remediations.notify.blocks import APPROVE, REJECT

_log = structlog.get_logger("remediator.slack")
WINDOW = 300  # seconds a signed request is good for, either side of now
_SEEN_TTL = 2 * WINDOW + 60.0  # a signature is remembered longer than it can be valid


class _InjectedClock(SlackClock):
    """The service's clock, as the SDK's verifier wants one."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def now(self) -> float:
        return self._clock.now()


class SlackInteractions:
    """Verifies, authorizes and carries out one interaction."""

    def __init__(self, settings: SlackSettings, runtime: Runtime) -> None:
        self._runtime = runtime
        self._clock = runtime.clock
        self._verifier = SignatureVerifier(settings.signing_secret.reveal(),
                                           clock=_InjectedClock(runtime.clock))
        self._users = frozenset(settings.approvers.users)
        self._groups = list(settings.approvers.usergroups)
        token = settings.bot_token.reveal() if settings.bot_token is not None else None
        self._web = AsyncWebClient(token=token, base_url=settings.api_url, timeout=5) if token else None
        self.replies = SlackReplies(runtime)

    def check_signature(self, body: bytes, headers: Mapping[str, str]) -> str | None:
        """Why the request is not Slack's (None when it is)."""
        timestamp = headers.get("X-Slack-Request-Timestamp")
        signature = headers.get("X-Slack-Signature")
        if not timestamp or not signature:
            return "missing X-Slack-Request-Timestamp or X-Slack-Signature"
        if not timestamp.isdigit() or len(timestamp) > 12:
            return "X-Slack-Request-Timestamp is not a Unix time"
        if abs(self._clock.now() - int(timestamp)) > WINDOW:
            return "stale Slack request: its timestamp is more than 5 minutes away"
        if not self._verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
            return "the Slack signature does not match"
        return None

    async def may_approve(self, user: str) -> bool | None:
        """Whether ``user`` is an approver; None when a user group could not be read."""
        if user in self._users:
            return True
        for group in self._groups:
            assert self._web is not None  # the settings require a bot token for groups
            try:
                answer = await self._web.usergroups_users_list(usergroup=group)
            except (SlackApiError, SlackClientError, OSError, TimeoutError) as exc:
                _log.warning("slack.usergroup_unreadable", usergroup=group, error=str(exc))
                return None
            if user in (answer.get("users") or []):
                return True
        return False

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        problem = self.check_signature(body, request.headers)
        if problem is not None:
            _log.warning("slack.refused", reason=problem)
            return error_response(401, "unauthorized", problem)
        try:
            [first] = await self._runtime.state.claim(
                [f"slack-request\x1f{request.headers['X-Slack-Signature']}"], ttl=_SEEN_TTL)
        except StateError as exc:
            response = error_response(503, "unavailable", f"state store unavailable: {exc}")
            response.headers["Retry-After"] = "5"
            return response
        if not first:
            _log.warning("slack.refused", reason="replayed")
            return error_response(409, "replayed", "this Slack request was handled before; ignored")
        payload = _payload(body)
        if payload is None:
            return error_response(400, "bad_request",
                                  "expected a form with a JSON payload of type block_actions")
        pressed = next((a for a in payload.get("actions") or []
                        if isinstance(a, dict) and a.get("action_id") in (APPROVE, REJECT)), None)
        user = payload.get("user") or {}
        response_url = payload.get("response_url")
        if pressed is None or not isinstance(user, dict) or not isinstance(response_url, str):
            return web.Response(status=200)  # another button (a link) or nothing for us
        await self._press(str(user.get("id") or ""), str(user.get("username") or user.get("name") or ""),
                          approve=pressed["action_id"] == APPROVE,
                          approval_id=str(pressed.get("value") or ""), response_url=response_url)
        return web.Response(status=200)

    async def _press(self, user: str, name: str, *, approve: bool, approval_id: str,
                     response_url: str) -> None:
        verb = "approve" if approve else "reject"
        allowed = await self.may_approve(user)
        if not allowed:
            why = ("your user group membership could not be checked; try again" if allowed is None
                   else "you are not an approver")
            _log.warning("slack.not_allowed", user=user, approval=approval_id, verb=verb, why=why)
            await self.replies.ephemeral(response_url, f"Not allowed: {why}. Nothing was changed.")
            return
        actor = f"slack:{user} ({name})" if name else f"slack:{user}"
        approvals = self._runtime.approvals
        decided = f"{'✅ Approved' if approve else '❌ Rejected'} in Slack by {name or user} ({user})"
        try:
            current = await approvals.get(approval_id)
            owed = approve and current.status is ApprovalStatus.PENDING
            if owed:  # said before the run can end, so the result's update comes after this one
                await self.replies.owe(current, response_url, decided)
                await self.replies.show(response_url, current, [f"{decided}: running the plan…"])
            try:
                approval = await approvals.decide(approval_id, approve=approve, actor=actor, comment=None)
            except Conflict as exc:
                if owed:
                    await self.replies.forgive(current)
                await self.replies.ephemeral(response_url, f"Nothing was changed: {exc}")
                await self.replies.show(response_url, await approvals.get(approval_id), [str(exc)])
                return
            except StateError:
                if owed:  # the message said approved: put the buttons back
                    await self.replies.show(response_url, current, [], buttons=True)
                raise
        except NotFound:
            await self.replies.ephemeral(response_url,
                                         f"No approval {approval_id!r} here; nothing was changed.")
            return
        except StateError as exc:
            await self.replies.ephemeral(response_url, f"remediator's state store is unavailable ({exc}); "
                                         "nothing was changed, press again in a moment.")
            return
        _log.info("slack.decided", approval=approval_id, verb=verb, actor=actor)
        if not owed:
            await self.replies.show(response_url, approval, [f"{decided}."])


def _payload(body: bytes) -> dict[str, Any] | None:
    try:
        form = dict(_parse_form(body.decode("utf-8")))
        data = json.loads(form["payload"])
    except (UnicodeDecodeError, KeyError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("type") != "block_actions":
        return None
    return data


def _parse_form(text: str) -> list[tuple[str, str]]:
    return parse_qsl(text, keep_blank_values=True, strict_parsing=False, max_num_fields=20)


SLACK = web.AppKey("slack", SlackInteractions)


async def interactions(request: web.Request) -> web.Response:
    """``POST /slack/interactions``: signed by Slack, so no role is asked."""
    return await request.app[SLACK].handle(request)


def add_slack_routes(app: web.Application, settings: SlackSettings) -> None:
    runtime = app[RUNTIME]
    slack = SlackInteractions(settings, runtime)
    app[SLACK] = slack
    runtime.approvals.on_ran(slack.replies.ran)
    runtime.timers.on(TimerKind.SLACK_REPLY, slack.replies.expired)
    app.router.add_post("/slack/interactions", interactions)
