"""The fault suite's judge on hand-made trails: what counts as lost, duplicated or settled.

Table-driven and pure (``tests.faults.ledger``): the fault cases pass only if the judge
can fail, so each verdict is shown to come out of the records and hits that mean it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.faults.ledger import escalations, read_records, trails
from tests.faults.sender import Firing
from tests.support.webhooks import alert

FIRING = Firing("case-0001", alert(firing="case-0001"))
FP = FIRING.fingerprint


def rec(event: str, **fields: Any) -> dict[str, Any]:
    return {"event": event, "ts": "2026-12-06T00:00:00.000Z", "_replica": "r0", **fields}


MATCHED = rec("rule.matched", fingerprint=FP, decision="d1")
CASES = [
    # (what, records, hits, lost, duplicated, settled)
    ("acted once", [MATCHED, rec("action.succeeded", fingerprint=FP, decision="d1")], 1, False, False, True),
    ("hit once, then failed", [MATCHED, rec("action.failed", fingerprint=FP)], 1, False, False, True),
    ("skipped as started but never sent",
     [MATCHED, rec("action.skipped", fingerprint=FP, reason="already_started")], 0, True, False, False),
    ("dropped by an open circuit", [MATCHED, rec("guard.blocked", fingerprint=FP, reason="circuit_open")],
     0, True, False, False),
    ("held by a cooldown", [MATCHED, rec("guard.blocked", fingerprint=FP, reason="cooldown")],
     0, False, False, True),
    ("waiting for approval", [MATCHED, rec("guard.blocked", fingerprint=FP, reason="approval_required")],
     0, False, False, True),
    ("escalated by decision id only",
     [MATCHED, rec("escalation.sent", decision="d1", reason="verify_failed")],
     0, False, False, True),
    ("another firing's ending", [MATCHED, rec("action.succeeded", fingerprint="0" * 16, decision="d9")],
     0, True, False, False),
    ("acted twice", [MATCHED, rec("action.succeeded", fingerprint=FP)], 2, False, True, True),
    ("nothing recorded", [], 0, True, False, False),
]


@pytest.mark.parametrize(("records", "hits", "lost", "duplicated", "settled"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_verdicts(records: list[dict[str, Any]], hits: int, lost: bool, duplicated: bool,
                  settled: bool) -> None:
    [trail] = trails([FIRING], lambda firing: hits if firing == FIRING.id else 0, records)
    assert (trail.lost, trail.duplicated, trail.settled) == (lost, duplicated, settled)
    assert FIRING.id in trail.show()


def test_records_are_read_from_every_log_torn_lines_skipped(tmp_path: Path) -> None:
    """A SIGKILL can leave a torn last line: it is skipped, the rest read and tagged by replica."""
    (tmp_path / "a.jsonl").write_text(json.dumps(rec("escalation.sent", reason="circuit_open")) + "\n{\"ev")
    (tmp_path / "b.jsonl").write_text(json.dumps(rec("escalation.sent", reason="circuit_open")) + "\n")
    records = read_records([("a", tmp_path / "a.jsonl"), ("b", tmp_path / "b.jsonl"),
                            ("gone", tmp_path / "none.jsonl")])
    assert [r["_replica"] for r in records] == ["a", "b"]
    assert escalations(records) == {"circuit_open": 2}
