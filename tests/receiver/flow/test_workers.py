"""Live execution through the real app against a real local HTTP target."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from tests.conftest import ClientFactory, fixture_body, read_audit, rules_yaml, runtime_of
from tests.support.fakeclock import FakeClock
from tests.support.httptarget import Target, serve_target

ServerFactory = Callable[..., Awaitable[TestServer]]


@pytest.fixture
async def target(aiohttp_server: ServerFactory, request: pytest.FixtureRequest) -> tuple[Target, str]:
    statuses, delay = getattr(request, "param", ([200], 0.0))
    return await serve_target(aiohttp_server, statuses, delay=delay)


def live_settings(make_settings: Any, base_url: str, *, approval: Any = "auto",
                  path: str = "/cache/{{ labels.namespace }}", **extra: Any) -> Any:
    monkey_token = "X-Token"
    rule: dict[str, Any] = {
        "name": "invalidate",
        "match": ['alertname = "HighErrorRate"', 'namespace =~ ".+"', 'service =~ ".+"'],
        "actions": [{"action": "http.request", "target": "api",
                     "params": {"method": "POST", "path": path,
                                "headers": {monkey_token: "fp-{{ alert.fingerprint }}"},
                                "json": {"service": "{{ labels.service }}"}}}],
    }
    if approval is not None:
        rule["approval"] = approval
    return make_settings(rules=rules_yaml([rule]), dry_run=False,
                         targets={"api": {"kind": "http", "base_url": base_url, "timeout": 2}}, **extra)


async def run_once(make_client: ClientFactory, settings: Any) -> list[dict[str, Any]]:
    client = await make_client(settings)
    resp = await client.post("/webhook", data=fixture_body("04_firing_single_HighErrorRate"),
                             headers={"Content-Type": "application/json"})
    assert resp.status == 202
    runtime = runtime_of(client)
    await asyncio.wait_for(runtime.queue.wait_idle(), 10)
    await runtime.audit.sync()
    return read_audit(settings.audit)


def kinds(records: list[dict[str, Any]]) -> list[str]:
    return [r["event"] for r in records if r["event"].startswith(("action.", "decision.", "guard."))]


async def test_live_request_runs_once_with_rendered_params(
        make_client: ClientFactory, make_settings: Any, target: tuple[Target, str]) -> None:
    """A live decision sends exactly the rendered request and audits started before succeeded."""
    t, base = target
    records = await run_once(make_client, live_settings(make_settings, base))
    assert t.calls == [("POST", "/svc/cache/prod", {"service": "api"}, "fp-f1c6aba1a3d1b3d8")]
    assert kinds(records) == ["action.planned", "action.started", "action.succeeded"]
    assert records[-1]["result"]["details"]["status"] == 200


@pytest.mark.parametrize("target", [([503, 429, 200], 0.0)], indirect=True)
async def test_temporary_failures_are_retried_with_backoff(
        make_client: ClientFactory, make_settings: Any, target: tuple[Target, str], clock: FakeClock) -> None:
    """Answers that say the request was not taken on (503, 429) are retried with doubling
    backoff on the injected clock, then succeed."""
    t, base = target
    records = await run_once(make_client, live_settings(make_settings, base))
    assert len(t.calls) == 3
    assert clock.slept == [2.0, 4.0]
    assert kinds(records) == ["action.planned", "action.started", "action.failed", "action.started",
                              "action.failed", "action.started", "action.succeeded"]


@pytest.mark.parametrize(("target", "method", "calls"), [
    pytest.param(([500, 200], 0.0), "POST", 1, id="post-500-may-have-happened"),
    pytest.param(([502, 200], 0.0), "POST", 1, id="post-502-may-have-happened"),
    pytest.param(([500, 200], 0.0), "GET", 2, id="get-500-is-retried"),
], indirect=["target"])
async def test_destructive_action_with_unknown_outcome_is_not_repeated(
        make_client: ClientFactory, make_settings: Any, target: tuple[Target, str], method: str,
        calls: int) -> None:
    """A 5xx to a POST may come after the change happened, so it is not sent again; a GET is."""
    t, base = target
    settings = live_settings(make_settings, base)
    rules = settings.audit.parent / "rules.yaml"
    rules.write_text(rules.read_text().replace("method: POST", f"method: {method}"))
    records = await run_once(make_client, settings)
    assert len(t.calls) == calls
    if calls == 1:
        assert kinds(records)[-1] == "decision.failed"
        assert "not repeated: the change may have happened" in records[-1]["detail"]


@pytest.mark.parametrize("target", [([404], 0.0)], indirect=True)
async def test_permanent_failure_is_not_retried(
        make_client: ClientFactory, make_settings: Any, target: tuple[Target, str]) -> None:
    """A 404 fails the decision at once, audited with its reason."""
    t, base = target
    records = await run_once(make_client, live_settings(make_settings, base))
    assert len(t.calls) == 1
    assert kinds(records)[-1] == "decision.failed"
    assert records[-2]["reason"] == "permanent_failure"


@pytest.mark.parametrize("target", [([200], 5.0)], indirect=True)
async def test_destructive_timeout_is_never_repeated(
        make_client: ClientFactory, make_settings: Any, target: tuple[Target, str]) -> None:
    """A POST that times out may have happened, so it is not sent again."""
    t, base = target
    settings = live_settings(make_settings, base)
    rules = settings.audit.parent / "rules.yaml"
    rules.write_text(rules.read_text().replace("target: api", "target: api\n    timeout: 200ms"))
    records = await run_once(make_client, settings)
    assert len(t.calls) == 1
    failed = [r for r in records if r["event"] == "decision.failed"]
    assert failed[0]["reason"] == "timeout"


async def test_approval_required_blocks_destructive_action(
        make_client: ClientFactory, make_settings: Any, target: tuple[Target, str]) -> None:
    """With no ``approval: auto`` a POST is destructive, so it is planned and blocked, never sent."""
    t, base = target
    records = await run_once(make_client, live_settings(make_settings, base, approval=None))
    assert t.calls == []
    blocked = [r for r in records if r["event"] == "guard.blocked"]
    assert [(b["guard"], b["reason"]) for b in blocked] == [("approval", "approval_required")]


async def test_missing_label_fails_the_decision(
        make_client: ClientFactory, make_settings: Any, target: tuple[Target, str]) -> None:
    """A template naming an annotation the alert lacks fails the decision, audited, sends nothing."""
    t, base = target
    settings = live_settings(make_settings, base, path="/cache/{{ annotations.nope_missing }}")
    records = await run_once(make_client, settings)
    failed = [r for r in records if r["event"] == "decision.failed"]
    assert t.calls == []
    assert [f["reason"] for f in failed] == ["template_error"]


@pytest.mark.parametrize("dry_run", [pytest.param(False, id="live"), pytest.param(True, id="dry-run")])
async def test_unknown_target_is_planned_in_dry_run_and_refused_live(
        make_client: ClientFactory, make_settings: Any, dry_run: bool) -> None:
    """A target the config lacks loads with a warning; dry-run renders the plan, live does nothing."""
    settings = make_settings(
        rules=rules_yaml([{"name": "r", "match": ['alertname = "HighErrorRate"'], "approval": "auto",
                           "actions": [{"action": "http.request", "target": "ghost",
                                        "params": {"method": "GET",
                                                   "path": "/x/{{ alert.fingerprint }}"}}]}]),
        dry_run=dry_run)
    records = await run_once(make_client, settings)
    plans = [r for r in records if r["event"] == "action.planned"]
    failed = [r for r in records if r["event"] == "decision.failed"]
    if not dry_run:
        assert (plans, [f["reason"] for f in failed]) == ([], ["target_unknown"])
        return
    assert failed == []
    assert plans[0]["plan"]["details"]["target_missing"] is True
    assert plans[0]["plan"]["details"]["params"]["path"] == "/x/f1c6aba1a3d1b3d8"


