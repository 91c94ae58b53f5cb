"""The guards, through the real app, against a real local HTTP target, on an injected clock.

Each scenario posts firings (distinct alerts or re-firings), moves the clock, and checks
how many requests reached the target and which guard stopped the rest, by its reason.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from receiver.flow.payload import parse_webhook
from receiver.store.values import Budget, Verdict
from receiver.windows import MaintenanceWindow, Weekly
from tests.conftest import ClientFactory, read_audit, rules_yaml, runtime_of
from tests.support.fakeclock import FakeClock
from tests.support.httptarget import ServerFactory, serve_target
from tests.support.webhooks import alert, body

JSON = {"Content-Type": "application/json"}


def guard_settings(make_settings: Any, base_url: str, *, rule: dict[str, Any] | None = None,
                   guards: dict[str, Any] | None = None, **extra: Any) -> Any:
    """A live rule that POSTs to /svc/cache/NAMESPACE (one subject per namespace)."""
    spec: dict[str, Any] = {
        "name": "invalidate", "approval": "auto",
        "match": ['alertname = "HighErrorRate"', 'namespace =~ ".+"'],
        "actions": [{"action": "http.request", "target": "api",
                     "params": {"method": "POST", "path": "/cache/{{ labels.namespace }}"}}],
        **(rule or {}),
    }
    return make_settings(rules=rules_yaml([spec]), dry_run=False,
                         targets={"api": {"kind": "http", "base_url": base_url, "timeout": 2}},
                         guards={"retries": 0, "blast_radius": None, **(guards or {})}, **extra)


async def fire(client: TestClient[Any, Any], *alerts: dict[str, Any]) -> None:
    resp = await client.post("/webhook", data=body(*alerts), headers=JSON)
    assert resp.status == 202, await resp.text()
    runtime = runtime_of(client)
    await asyncio.wait_for(_settled(runtime), 10)


async def _settled(runtime: Any) -> None:
    """Wait until every queued item was taken and finished."""
    while await runtime.state.backlog() or runtime.queue.unfinished:
        await runtime.queue.wait_idle()
        await asyncio.sleep(0)


async def drained(runtime: Any) -> None:
    """Wait (real time, bounded) until nothing is queued, in flight or deferred: the feeder queues
    deferred work again within about a second of its time on the injected clock."""
    async def empty() -> None:
        while True:
            state = runtime.state
            if not (await state.deferred() or await state.backlog() or runtime.queue.unfinished):
                return
            await asyncio.sleep(0.05)
    await asyncio.wait_for(empty(), 10)


def blocks(settings: Any) -> list[str]:
    return [r["reason"] for r in read_audit(settings.audit) if r["event"] == "guard.blocked"]


def deferrals(settings: Any) -> list[str]:
    return [r["reason"] for r in read_audit(settings.audit) if r["event"] == "guard.deferred"]


def starts(n: int) -> str:
    """The n-th firing's startsAt: a new firing of the same alert."""
    return f"2026-11-23T06:{n:02d}:00Z"


@dataclass
class Scenario:
    """Posts, each after advancing the clock; then the calls and guard reasons expected."""

    posts: list[tuple[float, list[dict[str, Any]]]]
    calls: int
    reasons: list[str]
    rule: dict[str, Any] = field(default_factory=dict)
    guards: dict[str, Any] = field(default_factory=dict)
    statuses: list[int] = field(default_factory=lambda: [200])
    deferred: list[str] = field(default_factory=list)
    """The reasons of ``guard.deferred`` records: work that waits rather than ends."""


SCENARIOS = [
    pytest.param(Scenario(
        posts=[(0, [alert(starts=starts(1))]), (60, [alert(starts=starts(2))])],
        calls=1, reasons=["cooldown"], rule={"cooldown": "10m"},
    ), id="cooldown-holds-a-refiring"),
    pytest.param(Scenario(
        posts=[(0, [alert(starts=starts(1))]), (601, [alert(starts=starts(2))])],
        calls=2, reasons=[], rule={"cooldown": "10m"},
    ), id="cooldown-over"),
    pytest.param(Scenario(
        posts=[(0, [alert(starts=starts(1))]), (60, [alert(starts=starts(2), namespace="staging")])],
        calls=2, reasons=[], rule={"cooldown": "10m"},
    ), id="cooldown-is-per-subject"),
    pytest.param(Scenario(
        posts=[(0, [alert(starts=starts(1))]), (60, [alert(starts=starts(2))])],
        calls=1, reasons=["cooldown"], guards={"default_cooldown": "5m"},
    ), id="default-cooldown"),
    pytest.param(Scenario(
        posts=[(0, [alert(namespace="a")]), (1, [alert(namespace="b")]), (1, [alert(namespace="c")])],
        calls=2, reasons=["rate_limited"], rule={"limit": {"max": 2, "per": "1h"}},
    ), id="rate-limit"),
    pytest.param(Scenario(
        posts=[(0, [alert(namespace="a")]), (1, [alert(namespace="b")]), (3600, [alert(namespace="c")])],
        calls=3, reasons=[], rule={"limit": {"max": 2, "per": "1h"}},
    ), id="rate-limit-window-slides"),
    pytest.param(Scenario(
        posts=[(0, [alert(namespace="a")]), (1, [alert(namespace="b")]), (1, [alert(namespace="c")]),
               (3600, [alert(namespace="d")])],
        calls=2, reasons=["blast_radius", "paused"], guards={"blast_radius": {"max": 2, "per": "10m"}},
    ), id="blast-radius-trips-and-stays-paused"),
    pytest.param(Scenario(
        posts=[(0, [alert(namespace="a")]), (1, [alert(namespace="b")]), (1, [alert(namespace="c")])],
        calls=2, reasons=[], statuses=[500], deferred=["circuit_open"],
        guards={"circuit_breaker": {"failures": 2, "cooloff": "30m"}},
    ), id="circuit-opens-after-failures-and-the-rest-waits"),
    pytest.param(Scenario(
        posts=[(0, [alert(namespace="a")]), (1, [alert(namespace="b")]), (1801, [alert(namespace="c")])],
        calls=3, reasons=[], statuses=[500],
        guards={"circuit_breaker": {"failures": 2, "cooloff": "30m"}},
    ), id="circuit-cools-off"),
    pytest.param(Scenario(
        posts=[(0, [alert(namespace="a")]), (1, [alert(namespace="b")])],
        calls=1, reasons=["maintenance"],
        guards={"maintenance": [{"name": "db-work", "matchers": ['namespace = "b"'],
                                 "start": "2026-01-01T00:00:00Z", "end": "2030-01-01T00:00:00Z"}]},
    ), id="maintenance-window-with-matchers"),
]


@pytest.mark.parametrize("case", SCENARIOS)
async def test_guard_scenarios(make_client: ClientFactory, make_settings: Any, clock: FakeClock,
                               aiohttp_server: ServerFactory, case: Scenario) -> None:
    """Each guard lets through exactly the executions it should and names why it stopped the rest."""
    target, base = await serve_target(aiohttp_server, case.statuses)
    settings = guard_settings(make_settings, base, rule=case.rule, guards=case.guards)
    client = await make_client(settings)
    for advance, alerts in case.posts:
        clock.advance(advance)
        await fire(client, *alerts)
    assert len(target.calls) == case.calls
    assert blocks(settings) == case.reasons
    assert deferrals(settings) == case.deferred


async def test_blast_radius_pause_is_announced_and_lifted_by_resume(
        make_client: ClientFactory, make_settings: Any, clock: FakeClock,
        aiohttp_server: ServerFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The blast radius pauses automation, tells the notifiers, and an admin's resume lifts it."""
    target, base = await serve_target(aiohttp_server)
    hook, hook_base = await serve_target(aiohttp_server)
    monkeypatch.setenv("TEST_HOOK_URL", hook_base + "/notify")
    settings = guard_settings(make_settings, base, guards={"blast_radius": {"max": 1, "per": "10m"}},
                              notifiers={"ops": {"kind": "webhook", "url": "env:TEST_HOOK_URL"}})
    client = await make_client(settings)
    await fire(client, alert(namespace="a"))
    await fire(client, alert(namespace="b"))
    assert len(target.calls) == 1
    assert [c[2]["title"] for c in hook.calls] == ["Escalation: remediator paused (blast_radius)"]
    [sent] = [r for r in read_audit(settings.audit) if r["event"] == "escalation.sent"]
    assert (sent["reason"], sent["notifiers"]) == ("blast_radius", ["ops"])
    assert [t.rsplit("/svc", 1)[-1] for t in sent["tried"]] == ["/cache/a: succeeded"]
    state = await (await client.get("/api/v1/pause")).json()
    assert (state["paused"], state["source"], state["actor"]) == (True, "blast_radius", "system")
    resumed = await client.post("/api/v1/resume")
    assert (await resumed.json())["changed"] is True
    clock.advance(601)
    await fire(client, alert(namespace="c"))
    assert len(target.calls) == 2
    events = [r["event"] for r in read_audit(settings.audit)]
    assert events.count("admin.pause") == 1
    assert events.count("admin.resume") == 1


async def test_kill_switch_pauses_every_live_action(
        make_client: ClientFactory, make_settings: Any, aiohttp_server: ServerFactory) -> None:
    """POST /api/v1/pause stops live actions (audited with the admin's reason) until resume."""
    target, base = await serve_target(aiohttp_server)
    settings = guard_settings(make_settings, base)
    client = await make_client(settings)
    resp = await client.post("/api/v1/pause", json={"reason": "incident 42: hands off"})
    assert (await resp.json())["changed"] is True
    again = await client.post("/api/v1/pause")
    assert (await again.json())["changed"] is False
    await fire(client, alert(namespace="a"))
    assert target.calls == []
    blocked = [r for r in read_audit(settings.audit) if r["event"] == "guard.blocked"]
    assert blocked[0]["guard"] == "kill_switch"
    assert "incident 42: hands off" in blocked[0]["detail"]
    await client.post("/api/v1/resume")
    await fire(client, alert(namespace="b"))
    assert len(target.calls) == 1


async def test_a_held_target_lock_makes_the_action_wait_until_it_frees(
        make_client: ClientFactory, make_settings: Any, clock: FakeClock,
        aiohttp_server: ServerFactory) -> None:
    """While another holder has the subject's lock, the action does not run: it waits (deferred,
    with a doubling delay) and runs once the lock is free, once."""
    target, base = await serve_target(aiohttp_server)
    settings = guard_settings(make_settings, base)
    client = await make_client(settings)
    runtime = runtime_of(client)
    subject = "api/POST /cache/prod"
    token = await runtime.state.acquire_lock(subject, "another-replica", ttl=600)
    assert token is not None
    await fire(client, alert())
    [(waiting, due)] = await runtime.state.deferred()
    assert (due - clock.now(), waiting.payload["deferred"]["attempts"]) == (1.0, 1)
    clock.advance(1)  # still held: deferred again, twice as long
    await asyncio.wait_for(_deferred_again(runtime, attempts=2), 10)
    assert [at - clock.now() for _, at in await runtime.state.deferred()] == [2.0]
    await runtime.state.release_lock(subject, token)
    clock.advance(2)
    await drained(runtime)
    assert len(target.calls) == 1
    assert (blocks(settings), deferrals(settings)) == ([], ["target_locked", "target_locked"])


async def _deferred_again(runtime: Any, *, attempts: int) -> None:
    while True:
        if [i for i, _ in await runtime.state.deferred() if i.payload["deferred"]["attempts"] == attempts]:
            return
        await asyncio.sleep(0.05)


async def test_dry_run_spends_no_budget(
        make_client: ClientFactory, make_settings: Any, aiohttp_server: ServerFactory) -> None:
    """Dry-run decisions plan and audit but spend no cooldown, so going live later is not held back."""
    target, base = await serve_target(aiohttp_server)
    settings = guard_settings(make_settings, base, rule={"dry_run": True, "cooldown": "1h"})
    client = await make_client(settings)
    await fire(client, alert(starts=starts(1)))
    await fire(client, alert(starts=starts(2)))
    assert target.calls == []
    assert blocks(settings) == []
    runtime = runtime_of(client)
    # The very cooldown a live run of this rule on this subject would spend is untouched…
    probe = Budget(member="probe", cooldown_key="invalidate\x1fapi/POST /cache/prod", cooldown=3600)
    assert (await runtime.state.admit(probe, spend=False)).verdict is Verdict.OK
    await client.close()
    # …while after a live run (same state file) the same probe is refused: the check can fail.
    live_client = await make_client(guard_settings(make_settings, base, rule={"cooldown": "1h"}))
    await fire(live_client, alert(starts=starts(3)))
    assert len(target.calls) == 1
    assert (await runtime_of(live_client).state.admit(probe, spend=False)).verdict is Verdict.COOLDOWN


async def test_fifty_concurrent_identical_webhooks_run_once(
        make_client: ClientFactory, make_settings: Any, aiohttp_server: ServerFactory) -> None:
    """However often Alertmanager sends one firing at once, the target sees one request."""
    target, base = await serve_target(aiohttp_server)
    settings = guard_settings(make_settings, base)
    client = await make_client(settings)
    payload = body(alert())
    answers = await asyncio.gather(*(client.post("/webhook", data=payload, headers=JSON) for _ in range(50)))
    assert sorted({r.status for r in answers}) == [202]
    queued = [(await r.json())["queued"] for r in answers]
    assert sum(queued) == 1
    await asyncio.wait_for(_settled(runtime_of(client)), 10)
    assert len(target.calls) == 1


@pytest.mark.parametrize(("weekly", "when", "covered"), [
    pytest.param(Weekly(days=["sun"], start=time(2), end=time(4)), datetime(2026, 11, 22, 3, tzinfo=UTC),
                 True, id="inside-sunday"),
    pytest.param(Weekly(days=["sun"], start=time(2), end=time(4)), datetime(2026, 11, 22, 4, tzinfo=UTC),
                 False, id="end-is-exclusive"),
    pytest.param(Weekly(days=["sun"], start=time(2), end=time(4)), datetime(2026, 11, 23, 3, tzinfo=UTC),
                 False, id="other-day"),
    pytest.param(Weekly(days=["sat"], start=time(22), end=time(2)), datetime(2026, 11, 22, 1, tzinfo=UTC),
                 True, id="crosses-midnight-morning-after"),
    pytest.param(Weekly(days=["sat"], start=time(22), end=time(2)), datetime(2026, 11, 21, 23, tzinfo=UTC),
                 True, id="crosses-midnight-evening"),
    pytest.param(Weekly(days=["sat"], start=time(22), end=time(2)), datetime(2026, 11, 21, 1, tzinfo=UTC),
                 False, id="crosses-midnight-not-the-morning-of"),
    pytest.param(Weekly(days=["mon"], start=time(9), end=time(10), timezone="Europe/Berlin"),
                 datetime(2026, 11, 23, 8, 30, tzinfo=UTC), True, id="local-timezone"),
])
def test_weekly_windows(weekly: Weekly, when: datetime, covered: bool) -> None:
    """Weekly windows follow their timezone and may cross midnight."""
    assert weekly.covers(when) is covered


@pytest.mark.parametrize(("data", "problem"), [
    pytest.param({"name": "w"}, "either start and end, or weekly", id="neither"),
    pytest.param({"name": "w", "start": "2026-01-01T00:00:00Z"}, "start and end go together", id="no-end"),
    pytest.param({"name": "w", "start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
                 "end must be after start", id="backwards"),
    pytest.param({"name": "w", "start": "2026-01-01T00:00:00", "end": "2026-01-02T00:00:00"},
                 "need a timezone", id="naive"),
    pytest.param({"name": "w", "weekly": {"days": ["sun"], "start": "02:00", "end": "04:00",
                                          "timezone": "Mars/Olympus"}}, "unknown timezone", id="bad-zone"),
])
def test_bad_maintenance_windows_are_refused(data: dict[str, Any], problem: str) -> None:
    """A window that cannot be meant as written is a config error naming the problem."""
    with pytest.raises(ValueError, match=problem):
        MaintenanceWindow.model_validate(data)


def test_one_off_window_bounds() -> None:
    """A one-off window holds from start (inclusive) to end (exclusive)."""
    w = MaintenanceWindow.model_validate({"name": "w", "start": "2026-01-01T00:00:00Z",
                                          "end": "2026-01-01T01:00:00Z"})
    start = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    _, alerts = parse_webhook(body(alert()))
    assert w.applies(alerts[0], start)
    assert w.applies(alerts[0], start + timedelta(minutes=59).total_seconds())
    assert not w.applies(alerts[0], start + 3600)
    assert not w.applies(alerts[0], start - 1)


async def test_two_steps_of_one_decision_on_one_subject_both_run(
        make_client: ClientFactory, make_settings: Any, aiohttp_server: ServerFactory) -> None:
    """The decision pays the cooldown once: its second step on the same subject is not held back."""
    target, base = await serve_target(aiohttp_server)
    step = {"action": "http.request", "target": "api",
            "params": {"method": "POST", "path": "/cache/{{ labels.namespace }}"}}
    settings = guard_settings(make_settings, base, rule={"actions": [step, step], "cooldown": "1h",
                                                         "limit": {"max": 1, "per": "1h"}})
    client = await make_client(settings)
    await fire(client, alert())
    assert len(target.calls) == 2
    assert blocks(settings) == []


async def test_a_locked_target_spends_no_budget(
        make_client: ClientFactory, make_settings: Any, clock: FakeClock,
        aiohttp_server: ServerFactory) -> None:
    """Held back by the lock, a decision leaves the cooldown unspent: once the lock frees it acts
    itself, and the firing after it meets the cooldown it spent then."""
    target, base = await serve_target(aiohttp_server)
    settings = guard_settings(make_settings, base, rule={"cooldown": "1h"})
    client = await make_client(settings)
    runtime = runtime_of(client)
    token = await runtime.state.acquire_lock("api/POST /cache/prod", "another-replica", ttl=60)
    assert token is not None
    await fire(client, alert(starts=starts(1)))
    probe = Budget(member="probe", cooldown_key="invalidate\x1fapi/POST /cache/prod", cooldown=3600)
    assert (await runtime.state.admit(probe, spend=False)).verdict is Verdict.OK
    await runtime.state.release_lock("api/POST /cache/prod", token)
    clock.advance(1)
    await drained(runtime)
    assert len(target.calls) == 1
    await fire(client, alert(starts=starts(2)))
    assert len(target.calls) == 1
    assert (blocks(settings), deferrals(settings)) == (["cooldown"], ["target_locked"])


async def test_a_pause_during_the_backoff_stops_the_retries(
        make_client: ClientFactory, make_settings: Any, aiohttp_server: ServerFactory) -> None:
    """An admin pausing while an action waits to retry: the retry does not go out."""
    runtime_box: list[Any] = []

    async def refuse_and_pause(request: web.Request) -> web.Response:
        calls.append(request.path)
        await runtime_box[0].killswitch.pause(actor="sre", detail="hands off")
        return web.json_response({}, status=503)

    calls: list[str] = []
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", refuse_and_pause)
    server = await aiohttp_server(app)
    settings = guard_settings(make_settings, str(server.make_url("/svc")).rstrip("/"),
                              guards={"retries": 3})
    client = await make_client(settings)
    runtime_box.append(runtime_of(client))
    await fire(client, alert())
    assert calls == ["/svc/cache/prod"]
    assert blocks(settings) == ["paused"]


async def test_a_circuit_that_fails_again_after_its_cooloff_is_announced_again(
        make_client: ClientFactory, make_settings: Any, clock: FakeClock,
        aiohttp_server: ServerFactory) -> None:
    """The trial attempt after the cool-off failing re-opens the circuit, audited again."""
    _, base = await serve_target(aiohttp_server, [500])
    settings = guard_settings(make_settings, base,
                              guards={"circuit_breaker": {"failures": 1, "cooloff": "10m"}})
    client = await make_client(settings)
    await fire(client, alert(namespace="a"))
    clock.advance(601)
    await fire(client, alert(namespace="b"))
    opened = [r for r in read_audit(settings.audit) if r["event"] == "circuit.opened"]
    assert [r["failures"] for r in opened] == [1, 2]


@pytest.mark.parametrize("escalate", [True, False])
async def test_an_open_circuit_is_escalated_once_per_opening(
        make_client: ClientFactory, make_settings: Any, aiohttp_server: ServerFactory,
        monkeypatch: pytest.MonkeyPatch, escalate: bool) -> None:
    """Opening a circuit is an escalation (reason circuit_open, with the failed attempt in
    "tried"); with ``escalation.circuit_open: false`` it is the plain announcement instead."""
    _, base = await serve_target(aiohttp_server, [500])
    hook, hook_base = await serve_target(aiohttp_server)
    monkeypatch.setenv("TEST_HOOK_URL", hook_base + "/notify")
    breaker = {"circuit_breaker": {"failures": 1, "cooloff": "10m"}}
    settings = guard_settings(make_settings, base, guards=breaker,
                              notifiers={"ops": {"kind": "webhook", "url": "env:TEST_HOOK_URL"}},
                              escalation={"circuit_open": escalate})
    client = await make_client(settings)
    await fire(client, alert(namespace="a"))
    await fire(client, alert(namespace="b"))  # held by the open circuit: no second notice
    sent = [r for r in read_audit(settings.audit) if r["event"] == "escalation.sent"]
    [notice] = hook.calls
    if escalate:
        assert notice[2]["title"] == "Escalation: circuit open for target api"
        assert [(r["reason"], r["about"]) for r in sent] == [("circuit_open", {"target": "api"})]
        assert [t.rsplit("/svc", 1)[-1] for t in sent[0]["tried"]] == ["/cache/a: failed (temporary_failure)"]
    else:
        assert notice[2]["title"] == "remediator: circuit open for target api"
        assert sent == []
