"""The codec (``receiver.flow.codec``): everything the flow keeps in the state store goes to
JSON data one way and comes back the other, unchanged.

Every kind of work item, an approval's request and both timer payloads make the round
trip through JSON text (as a store keeps them); the data each writes is pinned, since
stores hold data an earlier version wrote and ``/api/v1/approvals`` shows an approval's;
data written before a field existed still reads.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from receiver.decisions import Decision
from receiver.flow.codec import (
    ApprovalRequest,
    ApprovedWork,
    Diagnostic,
    P1Watch,
    RuleGone,
    SavedStep,
    VerifyWatch,
    decision_item,
    read_work,
)
from receiver.store.values import Approval, ApprovalStatus, WorkItem
from remediations.base import Plan, Result
from remediations.registry import default_registry
from rules.alert import Alert
from rules.engine import RuleIndex
from rules.loader import default_pack_paths, load_rules
from rules.model import Rule
from rules.priority import Priority

INDEX = RuleIndex(load_rules(default_pack_paths(), catalogue=default_registry(), targets=None).ruleset)


def _rule(name: str) -> Rule:
    rule = INDEX.rule(name)
    assert rule is not None
    return rule


LADDER = _rule("high-cpu-scale-up")  # two rungs
PLAIN = _rule("high-error-rate-after-rollout-undo")

FIRING = Alert(fingerprint="f1c6aba1a3d1b3d8", status="firing",
               labels={"alertname": "HighCPU", "namespace": "prod", "deployment": "web"},
               annotations={"summary": "CPU über 90 %"},
               starts_at=datetime(2026, 11, 23, 6, 42, 28, 909000, tzinfo=UTC),
               starts_at_raw="2026-11-23T06:42:28.909Z", generator_url="http://prometheus:9090/graph?g0.expr=up")
RESOLVED = Alert(fingerprint="0a0b", status="resolved", labels={"alertname": "HighCPU"}, annotations={},
                 starts_at=datetime(2026, 11, 23, 8, 0, tzinfo=timezone(timedelta(hours=2))),
                 starts_at_raw="2026-11-23T08:00:00+02:00",
                 ends_at=datetime(2026, 11, 23, 7, 30, 15, 123456, tzinfo=UTC))
PLAN = Plan(action="http.request", target="api",
            steps=("POST http://api/purge/prod", "expect status any 2xx"), destructive=True,
            details={"method": "POST", "nested": {"a": [1, 2]}})
STEP = SavedStep(number=2, action="http.request", target="api",
                 params={"method": "POST", "path": "/purge/prod"}, plan=PLAN, subject="api/purge/prod",
                 timeout=10.0, priority="P2")
LOG_STEP = SavedStep(number=3, action="notify.log", target=None, params={"text": "x"},
                     plan=Plan("notify.log", None, ("log x",), False), subject="log", timeout=5.0)


def decision(rule: Any, alert: Alert, *, dry_run: bool = False, rung: int = 0,
             priority: Priority = "P2") -> Decision:
    return Decision(id="d1", dedup_key="k\x1fd1", rule=rule, alert=alert, priority=priority,
                    response_target=timedelta(minutes=15), dry_run=dry_run, rung=rung)


def through_json(data: Any) -> Any:
    """What a store gives back: the data as JSON text, parsed again."""
    return json.loads(json.dumps(data, separators=(",", ":")))


@pytest.mark.parametrize("d", [
    pytest.param(decision(PLAIN, FIRING), id="live-firing"),
    pytest.param(decision(PLAIN, FIRING, dry_run=True, priority="P1"), id="dry-run-P1"),
    pytest.param(decision(LADDER, RESOLVED), id="resolved-with-ends-at"),
    pytest.param(decision(LADDER, FIRING, rung=1), id="ladder-rung-1"),
])
def test_a_decision_comes_back_as_it_was_queued(d: Decision) -> None:
    item = decision_item(d)
    stored = WorkItem(id=item.id, payload=through_json(item.payload), dedup_key=item.dedup_key, ref="7")
    assert read_work(stored, INDEX) == d
    assert ("rung" in item.payload) is bool(d.rung)  # a plain decision's item is as before ladders


def test_an_approved_plan_comes_back_as_it_was_queued() -> None:
    work = ApprovedWork(approval="a1b2", decision="d1")
    item = work.item()
    assert (item.id, item.payload) == ("d1:a1b2", {"kind": "approved", "approval": "a1b2", "decision": "d1"})
    assert read_work(WorkItem(id=item.id, payload=through_json(item.payload)), INDEX) == work


def test_a_decision_whose_rule_is_gone_says_which() -> None:
    item = decision_item(decision(PLAIN, FIRING))
    gone = WorkItem(id=item.id, payload={**item.payload, "rule": "removed-by-a-reload"})
    with pytest.raises(RuleGone) as caught:
        read_work(gone, INDEX)
    assert caught.value.rule == "removed-by-a-reload"


REQUEST = ApprovalRequest(steps=(STEP, LOG_STEP),
                          diagnostics=(Diagnostic(step=1, action="kubernetes.diagnose",
                                                  result=Result("3 pods", {"pods": ["a", "b", "c"]})),),
                          alert=FIRING, priority="P1", dry_run=False, rung=1,
                          response_target=timedelta(minutes=15))


@pytest.mark.parametrize(("value", "kind"), [
    pytest.param(REQUEST, ApprovalRequest, id="approval-request"),
    pytest.param(ApprovalRequest(steps=(STEP,), diagnostics=(), alert=RESOLVED, priority="P4",
                                 dry_run=False, rung=0, response_target=timedelta(hours=24)), ApprovalRequest,
                 id="approval-request-no-diagnostics"),
    pytest.param(STEP, SavedStep, id="saved-step"),
    pytest.param(REQUEST.diagnostics[0], Diagnostic, id="diagnostic"),
    pytest.param(VerifyWatch(decision="d1", rule="high-cpu-scale-up", rung=0, alert=FIRING,
                             priority="P2", response_target=3600.0, started_at=1_795_000_000.5,
                             window=600.0, otherwise="next"),
                 VerifyWatch, id="verify-watch"),
    pytest.param(VerifyWatch(decision="d2", rule="r", rung=1, alert=RESOLVED, priority="P3",
                             response_target=14400.0, started_at=1.0, window=60.0, otherwise="escalate"),
                 VerifyWatch, id="verify-watch-last-rung"),
    pytest.param(P1Watch(rule="r", decision="d1", alert=FIRING, priority="P1", response_target=900.0,
                         first_at=1_795_000_000.0, after=1800.0), P1Watch, id="p1-timer"),
])
def test_a_payload_comes_back_as_it_was_stored(value: Any, kind: Any) -> None:
    assert kind.from_data(through_json(value.as_data())) == value


def test_an_approval_request_rebuilds_its_decision() -> None:
    d = decision(LADDER, FIRING, rung=1, priority="P1")
    request = ApprovalRequest.of(d, (STEP,), ())
    approval = Approval(id="a1", status=ApprovalStatus.APPROVED, created_at=0.0, expires_at=1.0,
                        decision="d1", rule=LADDER.name, fingerprint=FIRING.fingerprint,
                        payload=through_json(request.as_data()))
    back = ApprovalRequest.from_data(approval.payload).decision(approval, LADDER)
    assert back == Decision(id="d1", dedup_key="", rule=LADDER, alert=FIRING, priority="P1",
                            response_target=timedelta(minutes=15), dry_run=False, rung=1)


ALERT_DATA = {"fingerprint": "0a0b", "status": "resolved", "labels": {"alertname": "HighCPU"},
              "annotations": {}, "starts_at": "2026-11-23T08:00:00+02:00",
              "starts_at_raw": "2026-11-23T08:00:00+02:00",
              "ends_at": "2026-11-23T07:30:15.123456+00:00", "generator_url": ""}
STEP_DATA = {"number": 2, "action": "http.request", "target": "api",
             "params": {"method": "POST", "path": "/purge/prod"},
             "plan": {"action": "http.request", "target": "api",
                      "steps": ["POST http://api/purge/prod", "expect status any 2xx"], "destructive": True,
                      "details": {"method": "POST", "nested": {"a": [1, 2]}}},
             "subject": "api/purge/prod", "timeout": 10.0, "priority": "P2"}


@pytest.mark.parametrize(("data", "expected"), [
    pytest.param(lambda: decision_item(decision(LADDER, RESOLVED, rung=1)).payload,
                 {"kind": "decision", "rule": "high-cpu-scale-up", "alert": ALERT_DATA, "priority": "P2",
                  "response_target": 900.0, "dry_run": False, "rung": 1}, id="decision"),
    pytest.param(lambda: ApprovalRequest(steps=(STEP,), diagnostics=(Diagnostic(1, "docker.diagnose",
                                                                                 Result("ok", {"n": 1})),),
                                         alert=RESOLVED, priority="P2", dry_run=False, rung=0,
                                         response_target=timedelta(hours=1)).as_data(),
                 {"steps": [STEP_DATA],
                  "diagnostics": [{"step": 1, "action": "docker.diagnose",
                                   "result": {"summary": "ok", "details": {"n": 1}}}],
                  "alert": ALERT_DATA, "priority": "P2", "alertname": "HighCPU",
                  "labels": {"alertname": "HighCPU"}, "dry_run": False, "rung": 0,
                  "response_target": 3600.0, "urgent": False}, id="approval-request"),
    pytest.param(lambda: VerifyWatch("d1", "r", 0, RESOLVED, "P2", 3600.0, 5.0, 600.0,
                                     "next").as_data(),
                 {"decision": "d1", "rule": "r", "rung": 0, "alert": ALERT_DATA, "priority": "P2",
                  "response_target": 3600.0, "started_at": 5.0, "window": 600.0, "otherwise": "next"},
                 id="verify-watch"),
    pytest.param(lambda: P1Watch("r", "d1", RESOLVED, "P1", 900.0, 5.0, 1800.0).as_data(),
                 {"rule": "r", "decision": "d1", "alert": ALERT_DATA, "priority": "P1",
                  "response_target": 900.0, "first_at": 5.0, "after": 1800.0}, id="p1-timer"),
])
def test_the_data_written_is_the_data_stores_already_hold(data: Any, expected: dict[str, Any]) -> None:
    """Key for key and in the same order (the approvals API shows the request as stored)."""
    written = data()
    assert written == expected
    assert json.dumps(written) == json.dumps(expected)


@pytest.mark.parametrize(("kind", "data", "field", "value"), [
    pytest.param(SavedStep, {k: v for k, v in STEP_DATA.items() if k != "priority"}, "priority", None,
                 id="step-without-priority"),
    pytest.param(ApprovalRequest, {"steps": [], "diagnostics": [], "alert": ALERT_DATA, "priority": "P2",
                                   "alertname": "HighCPU", "labels": {}, "dry_run": False}, "rung", 0,
                 id="request-without-rung"),
    pytest.param(ApprovalRequest, {"steps": [], "diagnostics": [], "alert": ALERT_DATA, "priority": "P2",
                                   "alertname": "HighCPU", "labels": {}, "dry_run": False}, "response_target",
                 timedelta(0), id="request-without-response-target"),
    pytest.param(ApprovalRequest, {"steps": [], "diagnostics": [], "alert": ALERT_DATA, "priority": "P1",
                                   "alertname": "HighCPU", "labels": {}, "dry_run": False}, "urgent", True,
                 id="request-without-urgent-p1"),
    pytest.param(ApprovalRequest, {"steps": [], "diagnostics": [], "alert": ALERT_DATA, "priority": "P2",
                                   "alertname": "HighCPU", "labels": {}, "dry_run": False}, "urgent", False,
                 id="request-without-urgent-p2"),
])
def test_data_written_before_a_field_existed_still_reads(kind: Any, data: dict[str, Any], field: str,
                                                         value: Any) -> None:
    assert getattr(kind.from_data(data), field) == value


def test_a_decision_item_written_before_ladders_reads_as_rung_0() -> None:
    payload = {"kind": "decision", "rule": PLAIN.name, "alert": ALERT_DATA, "priority": "P3",
               "response_target": 14400.0, "dry_run": True}
    d = read_work(WorkItem(id="d9", payload=payload, dedup_key="k"), INDEX)
    assert isinstance(d, Decision)
    assert (d.rung, d.priority, d.response_target, d.dry_run, d.dedup_key) == (
        0, "P3", timedelta(hours=4), True, "k")
