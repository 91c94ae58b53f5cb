"""Approving from Slack, end to end: a live rule requests an approval, the notice reaches an
in-test Slack as Block Kit with buttons, and signed interactions approve or reject it through
the same transition as the API. The in-test Slack is driven by the real Slack SDK inside
remediator; signatures are made here, by Slack's documented algorithm.

Forged, stale, replayed (on this replica or another one sharing the Redis store) and
unauthorized requests change nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from receiver.errors import ConfigError
from receiver.flow.notices import approval_notice
from receiver.http.slack import SLACK
from receiver.settings import settings_from_mapping
from receiver.store.values import Approval, ApprovalStatus
from remediations.notify.blocks import slack_body
from tests.conftest import ClientFactory, read_audit, rules_yaml, runtime_of
from tests.support.approvals import AM, TOKENS, pending, settle, stored_request
from tests.support.fakeclock import FakeClock
from tests.support.httptarget import ServerFactory, Target, serve_target
from tests.support.redisdb import REDIS_URL, drop_prefix
from tests.support.slackapi import BOT_TOKEN, SIGNING_SECRET, SlackApi, interaction, serve_slack, sign
from tests.support.webhooks import alert, body


@pytest.fixture(autouse=True)
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in TOKENS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TEST_SLACK_SIGNING", SIGNING_SECRET)
    monkeypatch.setenv("TEST_SLACK_BOT", BOT_TOKEN)


def slack_settings(make_settings: Any, target: str, slack: SlackApi, monkeypatch: pytest.MonkeyPatch,
                   **extra: Any) -> Any:
    monkeypatch.setenv("TEST_SLACK_HOOK", f"{slack.base}/hook")
    rule = {"name": "purge-cache", "match": ['alertname = "HighErrorRate"', 'namespace =~ ".+"'],
            "actions": [{"action": "http.request", "target": "api",
                         "params": {"method": "POST", "path": "/purge/{{ labels.namespace }}"}}]}
    return make_settings(
        rules=rules_yaml([rule]), dry_run=False,
        targets={"api": {"kind": "http", "base_url": target, "timeout": 2}},
        notifiers={"chat": {"kind": "slack", "url": "env:TEST_SLACK_HOOK"}},
        auth={"tokens": [{"name": "alertmanager", "role": "webhook", "token": "env:TEST_AM_TOKEN"},
                         {"name": "oncall-alice", "role": "approver", "token": "env:TEST_ONCALL_TOKEN"}]},
        guards={"retries": 0, "blast_radius": None},
        slack={"signing_secret": "env:TEST_SLACK_SIGNING", "bot_token": "env:TEST_SLACK_BOT",
               "api_url": f"{slack.base}/api/",
               "approvers": {"users": ["U0ALICE"], "usergroups": ["S0ONCALL"]}},
        console={"external_url": "https://remediator.example.com"},
        **extra,
    )


Setup = tuple[TestClient[Any, Any], Target, SlackApi, Any]


@pytest.fixture
async def setup(make_client: ClientFactory, make_settings: Any, aiohttp_server: ServerFactory,
                monkeypatch: pytest.MonkeyPatch) -> Setup:
    target, base = await serve_target(aiohttp_server)
    slack = await serve_slack(aiohttp_server, {"S0ONCALL": ["U0BOB", "U0CAROL"]})
    settings = slack_settings(make_settings, base, slack, monkeypatch)
    client = await make_client(settings)
    resp = await client.post("/webhook", data=body(alert()), headers=AM)
    assert resp.status == 202
    await settle(client)
    return client, target, slack, settings


async def press(client: TestClient[Any, Any], payload: bytes, headers: dict[str, str]) -> int:
    resp = await client.post("/slack/interactions", data=payload, headers=headers)
    await settle(client)
    return resp.status


def decisions(settings: Any) -> list[tuple[str, str]]:
    return [(r["event"], r["actor"]) for r in read_audit(settings.audit)
            if r["event"] in ("approval.approved", "approval.rejected")]


def texts(message: dict[str, Any]) -> str:
    """Every text of a Slack message's blocks, joined."""
    found = [message.get("text", "")]
    for block in message.get("blocks", []):
        found.append((block.get("text") or {}).get("text", ""))
        found += [e["text"] for e in block.get("elements", []) if isinstance(e.get("text"), str)]
    return "\n".join(found)


async def test_the_approval_notice_is_block_kit_with_buttons(setup: Setup) -> None:
    """The alert, the priority, the exact plan, Approve / Reject carrying the id, a console link."""
    client, target, slack, _ = setup
    [approval] = await pending(client)
    [message] = slack.messages
    blocks = message["blocks"]
    assert blocks[0]["text"]["text"] == "Approval needed: purge-cache (P3) for HighErrorRate"
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b]
    assert any(s.startswith("*Plan*\n1. POST ") and "/svc/purge/prod" in s for s in sections)
    assert any(s.startswith("*Alert*\n") and "namespace=prod" in s for s in sections)
    [actions] = [b for b in blocks if b["type"] == "actions"]
    buttons = {e["action_id"]: e for e in actions["elements"]}
    assert buttons["remediator.approve"]["value"] == approval["id"]
    assert buttons["remediator.approve"]["style"] == "primary"
    assert "confirm" in buttons["remediator.approve"]
    assert buttons["remediator.reject"]["value"] == approval["id"]
    assert buttons["remediator.open"]["url"] == f"https://remediator.example.com/ui/approvals/{approval['id']}"
    assert target.calls == []


async def test_a_signed_approval_runs_once_names_the_user_and_updates_the_message(
        setup: Setup, clock: FakeClock) -> None:
    client, target, slack, settings = setup
    [approval] = await pending(client)
    payload = interaction(approval["id"], response_url=slack.response_url)
    headers = sign(payload, int(clock.now()))
    assert await press(client, payload, headers) == 200
    assert [c[1] for c in target.calls] == ["/svc/purge/prod"]
    assert decisions(settings) == [("approval.approved", "slack:U0ALICE (alice)")]
    decided, result = slack.responses
    assert decided["replace_original"] is True
    assert "Approved in Slack by alice (U0ALICE): running the plan" in texts(decided)
    assert not [b for b in decided["blocks"] if b["type"] == "actions"]  # the buttons are gone
    assert result["replace_original"] is True
    assert "The plan ran: every step succeeded." in texts(result)
    # the same request again (a replay) changes nothing
    assert await press(client, payload, headers) == 409
    assert len(target.calls) == 1
    assert len(decisions(settings)) == 1
    assert len(slack.responses) == 2


@pytest.mark.parametrize(("case", "make_headers"), [
    pytest.param("forged", lambda p, now: sign(p, now, secret="not-the-secret"), id="forged-signature"),
    pytest.param("stale", lambda p, now: sign(p, now - 301), id="older-than-5-minutes"),
    pytest.param("future", lambda p, now: sign(p, now + 301), id="more-than-5-minutes-ahead"),
    pytest.param("tampered", lambda p, now: sign(p.replace(b"U0ALICE", b"U0MALLORY"), now),
                 id="body-changed-after-signing"),
    pytest.param("missing", lambda p, now: {"Content-Type": "application/x-www-form-urlencoded"},
                 id="no-signature"),
    pytest.param("garbled", lambda p, now: {**sign(p, now), "X-Slack-Request-Timestamp": "soon"},
                 id="timestamp-not-a-number"),
])
async def test_requests_not_signed_by_slack_change_nothing(setup: Setup, clock: FakeClock, case: str,
                                                           make_headers: Any) -> None:
    client, target, slack, settings = setup
    [approval] = await pending(client)
    payload = interaction(approval["id"], response_url=slack.response_url)
    headers = make_headers(payload, int(clock.now()))
    resp = await client.post("/slack/interactions", data=payload, headers=headers)
    await settle(client)
    assert resp.status == 401, case
    assert (await resp.json())["error"] == "unauthorized"
    assert [a["id"] for a in await pending(client)] == [approval["id"]]
    assert target.calls == []
    assert decisions(settings) == []
    assert slack.responses == []


async def test_someone_not_an_approver_is_told_so_and_nothing_changes(setup: Setup, clock: FakeClock) -> None:
    client, target, slack, settings = setup
    [approval] = await pending(client)
    payload = interaction(approval["id"], user="U0MALLORY", username="mallory",
                          response_url=slack.response_url)
    assert await press(client, payload, sign(payload, int(clock.now()))) == 200
    [told] = slack.responses
    assert (told["response_type"], told["replace_original"]) == ("ephemeral", False)
    assert told["text"] == "Not allowed: you are not an approver. Nothing was changed."
    assert [a["id"] for a in await pending(client)] == [approval["id"]]
    assert (target.calls, decisions(settings)) == ([], [])
    # the group was read through the Web API with the bot token
    assert slack.api_calls == [("usergroups.users.list", {"usergroup": "S0ONCALL"}, f"Bearer {BOT_TOKEN}")]


async def test_a_member_of_an_approver_group_may_reject(setup: Setup, clock: FakeClock) -> None:
    client, target, slack, settings = setup
    [approval] = await pending(client)
    payload = interaction(approval["id"], action="remediator.reject", user="U0BOB", username="bob",
                          response_url=slack.response_url)
    assert await press(client, payload, sign(payload, int(clock.now()))) == 200
    assert decisions(settings) == [("approval.rejected", "slack:U0BOB (bob)")]
    assert target.calls == []
    [shown] = slack.responses
    assert "Rejected in Slack by bob (U0BOB)." in texts(shown)
    assert "Approval rejected: purge-cache" in shown["blocks"][0]["text"]["text"]


async def test_pressing_after_it_was_decided_elsewhere_is_answered_in_slack(
        setup: Setup, clock: FakeClock) -> None:
    """Approved over the API first: the Slack press is a conflict, said in Slack; one run."""
    client, target, slack, settings = setup
    [approval] = await pending(client)
    resp = await client.post(f"/api/v1/approvals/{approval['id']}/approve",
                             headers={"Authorization": "Bearer oncall-secret"})
    assert resp.status == 200
    await settle(client)
    payload = interaction(approval["id"], response_url=slack.response_url)
    assert await press(client, payload, sign(payload, int(clock.now()))) == 200
    told, shown = slack.responses
    assert told["response_type"] == "ephemeral"
    assert f"approval {approval['id']} is approved by oncall-alice, not pending" in told["text"]
    assert "Approval approved" in shown["blocks"][0]["text"]["text"]
    assert len(target.calls) == 1
    assert decisions(settings) == [("approval.approved", "oncall-alice")]


async def test_a_replay_to_another_replica_is_refused(make_client: ClientFactory, make_settings: Any,
                                                      aiohttp_server: ServerFactory, tmp_path: Any,
                                                      clock: FakeClock,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Two replicas on one Redis store: the same signed request to each is carried out once."""
    target, base = await serve_target(aiohttp_server)
    slack = await serve_slack(aiohttp_server)
    prefix = f"test-slack-{uuid.uuid4().hex[:8]}"
    try:
        replicas = []
        for n in range(2):
            settings = slack_settings(make_settings, base, slack, monkeypatch, state=REDIS_URL,
                                      state_prefix=prefix, audit=str(tmp_path / f"audit-{n}.jsonl"))
            replicas.append(await make_client(settings))
        first, second = replicas
        assert (await first.post("/webhook", data=body(alert()), headers=AM)).status == 202
        await settle(first)
        [approval] = await pending(first)
        payload = interaction(approval["id"], response_url=slack.response_url)
        headers = sign(payload, int(clock.now()))
        assert await press(second, payload, headers) == 200
        assert await press(first, payload, headers) == 409
        for replica in replicas:
            await settle(replica)
        assert len(target.calls) == 1
        assert runtime_of(first).state is not runtime_of(second).state
    finally:
        await drop_prefix(prefix)


SECRET = "env:TEST_SLACK_SIGNING"


@pytest.mark.parametrize(("slack", "problem"), [
    pytest.param({"signing_secret": SECRET}, "name users or usergroups", id="no-approvers"),
    pytest.param({"signing_secret": SECRET, "approvers": {"usergroups": ["S0X"]}}, "needs slack.bot_token",
                 id="groups-without-a-bot-token"),
    pytest.param({"signing_secret": "plain", "approvers": {"users": ["U0X"]}}, "signing_secret",
                 id="secret-not-a-reference"),
    pytest.param({"signing_secret": SECRET, "approvers": {"users": ["alice"]}}, "users", id="not-a-user-id"),
])
def test_slack_settings_are_checked(slack: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        settings_from_mapping({"slack": slack})


async def test_a_plan_that_could_not_run_says_why(setup: Setup, clock: FakeClock) -> None:
    """Approved from Slack while automation is paused: the message says it was not run."""
    client, target, slack, _ = setup
    [approval] = await pending(client)
    await runtime_of(client).killswitch.pause(actor="sre-admin", detail="change freeze")
    payload = interaction(approval["id"], response_url=slack.response_url)
    assert await press(client, payload, sign(payload, int(clock.now()))) == 200
    assert target.calls == []
    _, result = slack.responses
    assert "⛔ Not run (paused)" in texts(result)


async def test_no_result_within_the_reply_window_is_said_once(setup: Setup, clock: FakeClock) -> None:
    """A reply owed and no run ending within 30 minutes: the timer says so, once."""
    client, _, slack, _ = setup
    [approval] = await pending(client)
    runtime = runtime_of(client)
    found = await runtime.approvals.get(approval["id"])
    assert client.app is not None
    replies = client.app[SLACK].replies
    await replies.owe(found, slack.response_url, "✅ Approved in Slack by alice (U0ALICE)")
    clock.advance(1799)
    assert await runtime.timers.fire_due() == 0
    clock.advance(2)
    assert await runtime.timers.fire_due() == 1
    assert await runtime.timers.fire_due() == 0
    [said] = slack.responses
    assert "not reported within 30 minutes" in texts(said)


def test_the_notice_carries_the_diagnosis_and_links_only_what_is_safe() -> None:
    approval = Approval(
        id="a1", status=ApprovalStatus.PENDING, created_at=0.0, expires_at=60.0, decision="d1", rule="r",
        fingerprint="f00d",
        payload=stored_request(priority="P1", labels={"alertname": "DiskFull", "host": "<!channel>"},
                               annotations={"summary": "disk 99%"}, generator_url="javascript:alert(1)",
                               plan=("delete /tmp/x", "restart y"), diagnosis="x" * 700, urgent=True))
    notice = approval_notice(approval, buttons=False, console=None)
    sections = dict(notice.sections)
    assert sections["Plan"] == "1. delete /tmp/x\n2. restart y"
    assert sections["Diagnosis"].startswith("docker.diagnose: xxx")
    assert len(sections["Diagnosis"]) < 650
    assert sections["Alert"] == "alertname=DiskFull, host=<!channel>\ndisk 99%"
    assert notice.links == {}  # neither a console nor a generatorURL that is http(s)
    assert notice.buttons == ()
    assert notice.severity == "critical"
    rendered = str(slack_body(notice))
    assert "<!channel>" not in rendered
    assert "&lt;!channel&gt;" in rendered
