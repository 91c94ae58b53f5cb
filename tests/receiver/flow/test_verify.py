"""Verification and ladders end to end: the real app, a real local HTTP target and real local
HTTP receivers standing in for Slack and PagerDuty, on the injected clock.

Time moves by hand; the timers are fired as every replica's housekeeping fires them
(``runtime.timers.fire_due``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from receiver.errors import Conflict
from receiver.flow.timers import LEASE
from receiver.store.values import Approval, ApprovalStatus
from tests.conftest import ClientFactory, read_audit, rules_yaml, runtime_of
from tests.support.fakeclock import FakeClock
from tests.support.httptarget import ServerFactory, Target, serve_target
from tests.support.webhooks import alert, body

JSON = {"Content-Type": "application/json"}
STARTS = "2026-11-23T06:42:28.909Z"


def post(path: str) -> dict[str, Any]:
    return {"action": "http.request", "target": "api", "params": {"method": "POST", "path": path}}


class Setup:
    """A live service with a target, a Slack-compatible and a PagerDuty receiver."""

    def __init__(self, client: TestClient[Any, Any], settings: Any, target: Target, slack: Target,
                 pager: Target) -> None:
        self.client, self.settings, self.target = client, settings, target
        self.slack, self.pager = slack, pager
        self.runtime = runtime_of(client)

    async def fire(self, *alerts: dict[str, Any]) -> None:
        resp = await self.client.post("/webhook", data=body(*alerts), headers=JSON)
        assert resp.status == 202, await resp.text()
        await self.settle()

    async def settle(self) -> None:
        async def wait() -> None:
            while await self.runtime.state.backlog() or self.runtime.queue.unfinished:
                await self.runtime.queue.wait_idle()
                await asyncio.sleep(0)

        await asyncio.wait_for(wait(), 10)
        await self.runtime.audit.sync()

    async def tick(self) -> int:
        """What housekeeping does on every replica: fire the due timers."""
        fired = await self.runtime.timers.fire_due()
        await self.settle()
        return fired

    def records(self, event: str | None = None) -> list[dict[str, Any]]:
        records = read_audit(self.settings.audit)
        return records if event is None else [r for r in records if r["event"] == event]

    def paths(self) -> list[str]:
        return [c[1] for c in self.target.calls]


@pytest.fixture
def build(make_client: ClientFactory, make_settings: Any, aiohttp_server: ServerFactory,
          monkeypatch: pytest.MonkeyPatch) -> Any:
    async def make(rule: dict[str, Any], *, pager_statuses: tuple[int, ...] = (202,), **extra: Any) -> Setup:
        target, base = await serve_target(aiohttp_server)
        slack, slack_base = await serve_target(aiohttp_server)
        pager, pager_base = await serve_target(aiohttp_server, list(pager_statuses))
        monkeypatch.setenv("TEST_SLACK_URL", slack_base + "/slack")
        monkeypatch.setenv("TEST_PD_KEY", "pd-routing-key")
        spec = {"name": "fix-it", "approval": "auto", "priority": "P3",
                "match": ['alertname = "HighErrorRate"', 'namespace =~ ".+"'], **rule}
        extra.setdefault("dry_run", False)
        settings = make_settings(
            rules=rules_yaml([spec]),
            targets={"api": {"kind": "http", "base_url": base, "timeout": 2}},
            notifiers={"chat": {"kind": "slack", "url": "env:TEST_SLACK_URL"},
                       "pager": {"kind": "pagerduty", "routing_key": "env:TEST_PD_KEY",
                                 "url": pager_base + "/v2/enqueue"}},
            guards={"retries": 0, "blast_radius": None, "announce": ["chat"]}, **extra)
        return Setup(await make_client(settings), settings, target, slack, pager)

    return make


async def test_resolved_within_the_window_is_verified(build: Any, clock: FakeClock) -> None:
    """The action ran, the alert resolved 90 s later: verified, with the time to resolve, once."""
    s = await build({"actions": [post("/restart")], "verify": {"resolved_within": "5m"}})
    await s.fire(alert())
    [watching] = s.records("verify.watching")
    assert (watching["rung"], watching["resolved_within"], watching["otherwise"]) == (0, 300.0, "escalate")
    clock.advance(90)
    await s.fire(alert(status="resolved", ends="2026-11-23T06:50:00Z"))
    [verified] = s.records("verify.succeeded")
    assert (verified["time_to_resolve_seconds"], verified["decision"]) == (90.0, watching["decision"])
    clock.advance(3600)
    assert await s.tick() == 0
    assert s.records("verify.failed") == s.records("escalation.sent") == []
    metrics = await (await s.client.get("/metrics")).text()
    assert 'remediator_verify_time_to_resolve_seconds_count{rule="fix-it"} 1.0' in metrics
    assert 'remediator_verifications_total{outcome="succeeded"} 1.0' in metrics


async def test_unresolved_escalates_once_and_a_late_resolution_is_recorded(build: Any,
                                                                           clock: FakeClock) -> None:
    """No resolution in the window: verify.failed, one escalation to the rule's notifiers (chat
    and PagerDuty, with a stable dedup key), nothing more on later ticks; the resolution that
    comes afterwards is recorded as late."""
    s = await build({"actions": [post("/restart")], "verify": {"resolved_within": "5m", "else": "escalate"},
                     "escalate_to": ["chat", "pager"]})
    await s.fire(alert())
    clock.advance(299)
    assert await s.tick() == 0
    clock.advance(1)
    assert await s.tick() == 1
    [failed] = s.records("verify.failed")
    assert (failed["otherwise"], failed["resolved_within"]) == ("escalate", 300.0)
    [sent] = s.records("escalation.sent")
    assert (sent["reason"], sent["notifiers"], sent["priority"]) == ("verify_failed", ["chat", "pager"], "P3")
    assert paths_of(sent["tried"]) == ["/restart: succeeded"]
    [(_, _, slack, _)] = s.slack.calls
    assert slack["blocks"][0]["text"]["text"].startswith("Escalation: not resolved after remediation")
    assert "Response target: 4h" in slack["text"]
    [(_, path, page, _)] = s.pager.calls
    assert (path, page["event_action"]) == ("/svc/v2/enqueue", "trigger")
    assert page["dedup_key"] == sent["dedup_key"]
    assert page["routing_key"] == "pd-routing-key"
    assert "action.succeeded" in page["payload"]["custom_details"]["text"]  # the audit excerpt
    clock.advance(3600)
    assert await s.tick() == 0
    await s.fire(alert())  # Alertmanager's re-send: a duplicate, nothing new
    assert len(s.pager.calls) == 1
    assert len(s.target.calls) == 1
    await s.fire(alert(status="resolved", ends="2026-11-23T08:00:00Z"))
    [late] = s.records("verify.resolved_late")
    assert (late["time_to_resolve_seconds"], late["overdue_seconds"]) == (3900.0, 3600.0)
    assert s.records("verify.succeeded") == []


async def test_a_timer_whose_firer_died_fires_again_with_the_same_dedup_key(build: Any,
                                                                           clock: FakeClock) -> None:
    """A replica claimed the due watch and died before finishing it: after the lease it fires
    again, and PagerDuty gets the same dedup key, so the incident is paged once."""
    s = await build({"actions": [post("/restart")], "verify": {"resolved_within": "5m"},
                     "escalate_to": ["pager"]})
    await s.fire(alert())
    clock.advance(300)
    [claimed] = await s.runtime.state.claim_due_timers(lease=LEASE, limit=10)  # and then it died
    assert claimed.kind == "verify"
    assert await s.tick() == 0
    clock.advance(LEASE)
    assert await s.tick() == 1
    assert await s.tick() == 0
    keys = [c[2]["dedup_key"] for c in s.pager.calls]
    assert len(keys) == 1
    assert keys[0] == s.records("escalation.sent")[0]["dedup_key"]


async def test_an_escalation_a_notifier_refused_for_now_is_sent_again_after_the_lease(
        build: Any, clock: FakeClock) -> None:
    """PagerDuty answers 503 to the first page: the timer is not finished (nothing counts as sent,
    the failure is audited), and after the lease it is sent again with the same dedup key and
    taken; verify.failed is recorded once across both attempts. Chat, which took the first,
    hears it twice (at least once)."""
    s = await build({"actions": [post("/restart")], "verify": {"resolved_within": "5m"},
                     "escalate_to": ["chat", "pager"]}, pager_statuses=(503, 202))
    await s.fire(alert())
    clock.advance(300)
    assert await s.tick() == 0
    assert len(s.pager.calls) == 1
    assert s.records("escalation.sent") == []
    [failed] = s.records("notify.failed")
    assert failed["notifier"] == "pager"
    assert "503" in failed["error"]
    clock.advance(LEASE - 1)
    assert await s.tick() == 0  # still held
    assert len(s.pager.calls) == 1
    clock.advance(1)
    assert await s.tick() == 1
    assert await s.tick() == 0
    [sent] = s.records("escalation.sent")
    assert [c[2]["dedup_key"] for c in s.pager.calls] == [sent["dedup_key"]] * 2
    assert len(sent["sent"]) == 2
    assert len(s.slack.calls) == 2
    assert len(s.records("verify.failed")) == 1
    metrics = await (await s.client.get("/metrics")).text()
    assert 'remediator_verifications_total{outcome="failed"} 1.0' in metrics
    assert 'remediator_escalations_total{reason="verify_failed"} 1.0' in metrics


def paths_of(tried: list[str]) -> list[str]:
    """"POST http://127.0.0.1:PORT/svc/x: succeeded" -> "/x: succeeded"."""
    return [line.rsplit("/svc", 1)[-1] for line in tried]


def ladder(window: str = "5m") -> list[dict[str, Any]]:
    return [{"actions": [post("/restart")], "verify": {"resolved_within": window}},
            {"actions": [post("/scale")], "verify": {"resolved_within": window}},
            {"actions": [post("/page")], "verify": {"resolved_within": window}}]


@pytest.mark.parametrize("resolved_after", [0, 1, 2])
async def test_a_ladder_climbs_until_the_rung_that_worked(build: Any, clock: FakeClock,
                                                          resolved_after: int) -> None:
    """Each rung runs only when the one before did not resolve the alert in its window; the
    ladder stops at the rung after which the alert resolved."""
    s = await build({"ladder": ladder(), "cooldown": "1h"})
    await s.fire(alert())
    for _ in range(resolved_after):
        clock.advance(300)
        assert await s.tick() == 1
    clock.advance(60)
    await s.fire(alert(status="resolved", ends="2026-11-23T07:30:00Z"))
    clock.advance(3600)
    assert await s.tick() == 0  # the resolution took the late-resolution records too
    assert s.paths() == ["/svc/restart", "/svc/scale", "/svc/page"][:resolved_after + 1]
    assert [r["rung"] for r in s.records("verify.failed")] == list(range(resolved_after))
    assert [r["rung"] for r in s.records("rung.started")] == list(range(1, resolved_after + 1))
    [verified] = s.records("verify.succeeded")
    assert (verified["rung"], verified["time_to_resolve_seconds"]) == (resolved_after, 60.0)
    assert [r["rung"] for r in s.records("verify.resolved_late")] == list(range(resolved_after))
    assert s.records("escalation.sent") == []
    started = s.records("action.started")
    assert len({r["decision"] for r in started}) == resolved_after + 1  # a decision per rung


async def test_a_resolution_while_the_action_runs_verifies_it_and_nothing_climbs(build: Any,
                                                                                 clock: FakeClock) -> None:
    """The resolved notification comes while rung 0's action is still in flight (no watch to
    take yet): once the action ends the watch is verified at once, and no rung runs after it."""
    s = await build({"ladder": ladder(), "cooldown": "1h"})
    s.target.hold = asyncio.Event()
    assert (await s.client.post("/webhook", data=body(alert()), headers=JSON)).status == 202
    await asyncio.wait_for(s.target.entered.wait(), 10)
    clock.advance(30)
    resp = await s.client.post("/webhook", data=body(alert(status="resolved", ends="2026-11-23T06:43:00Z")),
                               headers=JSON)
    assert resp.status == 202
    s.target.hold.set()
    await s.settle()
    [verified] = s.records("verify.succeeded")
    assert (verified["rung"], verified["time_to_resolve_seconds"]) == (0, 0.0)
    for _ in range(4):
        clock.advance(300)
        assert await s.tick() == 0
    assert s.paths() == ["/svc/restart"]
    assert s.records("verify.failed") == s.records("rung.started") == s.records("escalation.sent") == []
    assert s.records("verify.resolved_late") == []


@pytest.mark.parametrize("rule", [
    {"ladder": ladder()},
    {"actions": [post("/restart")], "verify": {"resolved_within": "5m", "else": "escalate"}},
], ids=["climb", "escalate"])
async def test_a_resolution_while_the_due_watch_is_held_neither_climbs_nor_escalates(
        build: Any, clock: FakeClock, rule: dict[str, Any]) -> None:
    """A replica holds the due watch when the resolution comes (the take cannot have it): when
    the watch is handled, it is recorded as resolved late, once; no rung 1, no escalation."""
    s = await build({**rule, "escalate_to": ["pager"]})
    await s.fire(alert())
    clock.advance(300)
    [held] = await s.runtime.state.claim_due_timers(lease=LEASE, limit=10)  # and then it died
    assert held.kind == "verify"
    await s.fire(alert(status="resolved", ends="2026-11-23T06:48:00Z"))
    assert s.records("verify.succeeded") == s.records("verify.resolved_late") == []
    clock.advance(LEASE)
    assert await s.tick() == 1
    clock.advance(86_400 * 3)
    assert await s.tick() == 0
    [late] = s.records("verify.resolved_late")
    assert (late["rung"], late["decision"]) == (0, held.payload["decision"])
    assert s.paths() == ["/svc/restart"]
    assert s.records("verify.failed") == s.records("rung.started") == s.records("escalation.sent") == []
    assert s.pager.calls == []


async def test_a_resolution_the_store_fails_to_close_is_refused_and_comes_again(build: Any,
                                                                              clock: FakeClock) -> None:
    """The store fails while a resolution closes the watch: 503 (never a 202 that loses it), and
    Alertmanager's re-send verifies the watch."""
    s = await build({"ladder": ladder()})
    await s.fire(alert())
    clock.advance(60)
    resolved = body(alert(status="resolved", ends="2026-11-23T06:43:28Z"))
    await s.runtime.state.close()
    resp = await s.client.post("/webhook", data=resolved, headers=JSON)
    assert resp.status == 503
    assert "state store unavailable" in (await resp.json())["detail"]
    await s.runtime.state.open()
    assert (await s.client.post("/webhook", data=resolved, headers=JSON)).status == 202
    await s.settle()
    [failed] = s.records("intake.failed")
    fingerprint = s.records("verify.watching")[0]["fingerprint"]
    assert (failed["answered"], failed["fingerprints"]) == (503, [fingerprint])
    [verified] = s.records("verify.succeeded")
    assert verified["time_to_resolve_seconds"] == 60.0
    clock.advance(86_400)
    assert await s.tick() == 0
    assert s.records("verify.failed") == s.records("rung.started") == []


async def test_the_last_rung_unresolved_escalates(build: Any, clock: FakeClock) -> None:
    s = await build({"ladder": ladder(), "cooldown": "1h"})
    await s.fire(alert())
    for _ in range(3):
        clock.advance(300)
        assert await s.tick() == 1
    assert len(s.target.calls) == 3
    assert [r["otherwise"] for r in s.records("verify.failed")] == ["next", "next", "escalate"]
    [sent] = s.records("escalation.sent")
    assert (sent["reason"], sent["rung"], sent["notifiers"]) == ("verify_failed", 2, ["chat"])
    assert paths_of(sent["tried"]) == ["/restart: succeeded", "/scale: succeeded", "/page: succeeded"]
    assert len(s.slack.calls) == 1


async def test_a_rung_a_guard_stops_ends_the_ladder_audited_and_escalated(build: Any,
                                                                          clock: FakeClock) -> None:
    """Every rung passes every guard again: the rule's limit of one execution per hour stops
    the second rung, which is audited as blocked (with its rung) and escalated."""
    s = await build({"ladder": ladder(), "limit": {"max": 1, "per": "1h"}})
    await s.fire(alert())
    clock.advance(300)
    assert await s.tick() == 1
    assert s.paths() == ["/svc/restart"]
    [blocked] = s.records("guard.blocked")
    assert (blocked["guard"], blocked["reason"], blocked["rung"]) == ("rate_limit", "rate_limited", 1)
    [sent] = s.records("escalation.sent")
    assert (sent["reason"], sent["rung"]) == ("ladder_stopped", 1)
    assert "rate_limited" in sent["detail"]


async def test_climbing_to_the_same_subject_is_not_held_back_by_the_first_rungs_cooldown(
        build: Any, clock: FakeClock) -> None:
    """Each rung has its own cooldown on a subject: rung 1 acts on /svc/x after rung 0 did."""
    rungs = [{"actions": [post("/x")], "verify": {"resolved_within": "5m"}}, {"actions": [post("/x")]}]
    s = await build({"ladder": rungs, "cooldown": "1h"})
    await s.fire(alert())
    clock.advance(300)
    await s.tick()
    assert s.paths() == ["/svc/x", "/svc/x"]
    clock.advance(60)
    await s.fire(alert(starts="2026-11-23T07:00:00.000Z"))  # a new firing: rung 0 is cooling down
    assert len(s.target.calls) == 2
    assert [r["reason"] for r in s.records("guard.blocked")] == ["cooldown"]


async def test_a_rung_needing_approval_is_verified_once_approved(build: Any, clock: FakeClock) -> None:
    """Approval applies to each rung; an approved rung is watched like any other."""
    s = await build({"ladder": ladder()[:2], "approval": {"required_for": ["P3"]}})
    await s.fire(alert())
    [pending] = await s.runtime.approvals.list()
    await s.runtime.approvals.decide(pending.id, approve=True, actor="alice", comment=None)
    await s.settle()
    assert s.paths() == ["/svc/restart"]
    clock.advance(300)
    assert await s.tick() == 1
    second = [a for a in await s.runtime.approvals.list() if a.id != pending.id]
    assert [a.payload["rung"] for a in second] == [1]
    await s.runtime.approvals.decide(second[0].id, approve=True, actor="alice", comment=None)
    await s.settle()
    assert s.paths() == ["/svc/restart", "/svc/scale"]
    assert [r["rung"] for r in s.records("verify.watching")] == [0, 1]


async def test_dry_run_watches_nothing_and_says_so(build: Any, clock: FakeClock) -> None:
    s = await build({"ladder": ladder()}, dry_run=True)
    await s.fire(alert())
    [skipped] = s.records("verify.skipped")
    assert (skipped["reason"], skipped["rung"], skipped["dry_run"]) == ("dry_run", 0, True)
    clock.advance(86_400)
    assert await s.tick() == 0
    assert s.target.calls == []
    assert s.records("verify.watching") == []


def asks_on_rung_1() -> list[dict[str, Any]]:
    """Rung 0 runs on its own; rung 1 (the scale-up) waits for a human."""
    return [{"actions": [post("/restart")], "verify": {"resolved_within": "5m"}},
            {"actions": [post("/scale")], "approval": "required"}]


async def climb_to_the_approval(s: Setup, clock: FakeClock) -> Approval:
    await s.fire(alert())
    clock.advance(300)
    assert await s.tick() == 1  # rung 0 did not resolve it: rung 1 asks
    [pending] = await s.runtime.approvals.list([ApprovalStatus.PENDING])
    assert pending.payload["rung"] == 1
    return pending


def escalations_sent(s: Setup) -> list[Any]:
    return [c for c in s.slack.calls if c[2]["text"].startswith("Escalation:")]


@pytest.mark.parametrize("closed_by", ["housekeeping", "a late answer"])
async def test_a_climbed_rungs_approval_that_expires_stops_the_ladder_escalated_once(
        build: Any, clock: FakeClock, closed_by: str) -> None:
    """Rung 1's approval expires unanswered while the alert still fires: one ladder_stopped
    escalation, however many replicas' housekeeping or late answers meet the expiry."""
    s = await build({"ladder": asks_on_rung_1()})
    pending = await climb_to_the_approval(s, clock)
    clock.advance(30 * 60)
    for _ in range(2):
        if closed_by == "housekeeping":
            await s.runtime.approvals.expire_due()
        else:
            with pytest.raises(Conflict, match="expired"):
                await s.runtime.approvals.decide(pending.id, approve=True, actor="alice", comment=None)
    await s.settle()
    assert s.paths() == ["/svc/restart"]
    [expired] = s.records("approval.expired")
    [sent] = s.records("escalation.sent")
    assert (sent["reason"], sent["rung"], sent["rule"], sent["notifiers"]) == ("ladder_stopped", 1, "fix-it",
                                                                               ["chat"])
    assert sent["detail"] == (f"rung 1 of fix-it did not run to the end (expired): approval {pending.id} "
                              "expired unanswered after 30m")
    assert sent["sent"] == ["chat: slack 200"]
    [(_, _, slack, _)] = escalations_sent(s)
    assert slack["text"].startswith("Escalation: remediation ladder stopped: HighErrorRate (P3)")
    assert expired["decision"] == sent["decision"] == pending.decision


async def test_a_climbed_rungs_rejected_approval_stops_the_ladder_naming_the_rejecter(
        build: Any, clock: FakeClock) -> None:
    s = await build({"ladder": asks_on_rung_1()})
    pending = await climb_to_the_approval(s, clock)
    await s.runtime.approvals.decide(pending.id, approve=False, actor="bob", comment="scale needs a ticket")
    with pytest.raises(Conflict, match="rejected by bob"):
        await s.runtime.approvals.decide(pending.id, approve=False, actor="carol", comment=None)
    clock.advance(3600)
    await s.runtime.approvals.expire_due()
    await s.settle()
    assert s.paths() == ["/svc/restart"]
    [sent] = s.records("escalation.sent")
    assert (sent["reason"], sent["rung"]) == ("ladder_stopped", 1)
    assert sent["detail"] == (f"rung 1 of fix-it did not run to the end (rejected): approval {pending.id} "
                              "was rejected by bob: scale needs a ticket")
    [(_, _, slack, _)] = escalations_sent(s)
    assert "rejected by bob" in slack["text"]


async def test_an_approval_the_resolution_cancelled_does_not_escalate(build: Any, clock: FakeClock) -> None:
    """The alert resolved while rung 1 waited: the approval is cancelled and nobody is paged."""
    s = await build({"ladder": asks_on_rung_1()})
    await climb_to_the_approval(s, clock)
    clock.advance(60)
    await s.fire(alert(status="resolved", ends="2026-11-23T06:55:00Z"))
    [resolved] = s.records("alert.resolved")
    assert resolved["approvals_cancelled"] == 1
    clock.advance(3600)
    assert await s.runtime.approvals.expire_due() == 0
    await s.settle()
    assert [r["event"] for r in s.records() if r["event"].startswith("approval.")] == [
        "approval.requested", "approval.cancelled"]
    assert s.records("escalation.sent") == escalations_sent(s) == []


async def test_the_first_rungs_expired_approval_is_no_ladder_stopping(build: Any, clock: FakeClock) -> None:
    """Nothing climbed: the first rung's approval expiring is audited, not escalated."""
    s = await build({"ladder": [{**asks_on_rung_1()[0], "approval": "required"}, asks_on_rung_1()[1]]})
    await s.fire(alert())
    clock.advance(3600)
    assert await s.runtime.approvals.expire_due() == 1
    await s.settle()
    assert len(s.records("approval.expired")) == 1
    assert s.records("escalation.sent") == escalations_sent(s) == []
