"""An in-test Slack: incoming webhook, Web API (``usergroups.users.list``) and response URLs.

Driven by the real Slack SDK inside remediator (``AsyncWebClient`` with its ``base_url`` here,
``AsyncWebhookClient`` posting to the response URLs), it records every request so tests
assert the exact calls. ``sign`` makes a request as Slack signs it (HMAC-SHA256 of
``v0:TIMESTAMP:BODY``), written out here rather than taken from the SDK under test.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from tests.support.httptarget import ServerFactory

SIGNING_SECRET = "slack-signing-s3cret"
BOT_TOKEN = "xoxb-test-bot-token"


class SlackApi:
    """What Slack received from remediator."""

    def __init__(self, groups: dict[str, list[str]]) -> None:
        self.groups = groups
        self.messages: list[dict[str, Any]] = []  # incoming-webhook posts
        self.api_calls: list[tuple[str, dict[str, str], str | None]] = []  # method, params, Authorization
        self.responses: list[dict[str, Any]] = []  # posts to response URLs
        self.base = ""

    async def hook(self, request: web.Request) -> web.Response:
        self.messages.append(await request.json())
        return web.Response(text="ok")

    async def api(self, request: web.Request) -> web.Response:
        params = dict(request.query) | dict(await request.post())
        method = request.match_info["method"]
        self.api_calls.append((method, {k: str(v) for k, v in params.items()},
                               request.headers.get("Authorization")))
        if method == "usergroups.users.list":
            users = self.groups.get(str(params.get("usergroup")))
            if users is None:
                return web.json_response({"ok": False, "error": "no_such_subteam"})
            return web.json_response({"ok": True, "users": users})
        return web.json_response({"ok": False, "error": "unknown_method"})

    async def respond(self, request: web.Request) -> web.Response:
        self.responses.append(await request.json())
        return web.Response(text="ok")

    @property
    def response_url(self) -> str:
        return f"{self.base}/response/1"


async def serve_slack(aiohttp_server: ServerFactory, groups: dict[str, list[str]] | None = None) -> SlackApi:
    slack = SlackApi(groups or {})
    app = web.Application()
    app.router.add_post("/hook", slack.hook)
    app.router.add_route("*", "/api/{method}", slack.api)
    app.router.add_post("/response/{n}", slack.respond)
    server = await aiohttp_server(app)
    slack.base = str(server.make_url("")).rstrip("/")
    return slack


def interaction(approval_id: str, *, action: str = "remediator.approve", user: str = "U0ALICE",
                username: str = "alice", response_url: str) -> bytes:
    """A ``block_actions`` payload as Slack posts it when a button is pressed."""
    payload = {
        "type": "block_actions", "api_app_id": "A0REMED", "token": "legacy-unused",
        "user": {"id": user, "username": username, "name": username, "team_id": "T0ACME"},
        "team": {"id": "T0ACME", "domain": "acme"}, "channel": {"id": "C0ONCALL", "name": "oncall"},
        "container": {"type": "message", "message_ts": "1795000000.000100", "channel_id": "C0ONCALL",
                      "is_ephemeral": False},
        "trigger_id": "1.2.3", "response_url": response_url,
        "actions": [{"type": "button", "action_id": action, "block_id": "remediator-actions",
                     "text": {"type": "plain_text", "text": "Approve"}, "value": approval_id,
                     "action_ts": "1795000001.000200"}],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def sign(body: bytes, timestamp: int, secret: str = SIGNING_SECRET) -> dict[str, str]:
    """The headers Slack sends with ``body`` at ``timestamp``."""
    base = f"v0:{timestamp}:".encode() + body
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded"}
