"""The storm's audit summary, read from a real audit log."""

from __future__ import annotations

from pathlib import Path

from bench.server import read_audit
from receiver.audit import AuditEvent, AuditLog


async def test_read_audit_counts_what_the_storm_checks(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl", fsync=False)
    for fp in ("aa", "bb", "aa"):
        log.record(AuditEvent.ALERT_RECEIVED, fingerprint=fp, labels={"alertname": "X"})
    log.record(AuditEvent.ADMIN_PAUSE, actor="system", source="blast_radius", detail="20 per 600s")
    log.record(AuditEvent.GUARD_BLOCKED, decision="d1", reason="paused", detail="paused")
    log.record(AuditEvent.GUARD_BLOCKED, decision="d2", reason="duplicate", detail="seen")
    log.record(AuditEvent.INTAKE_FAILED, reason="work queue full (2)", fingerprints=["cc", "dd"],
               answered=503)
    log.record(AuditEvent.INTAKE_FAILED, reason="audit log unavailable", decisions=[], answered=503)
    await log.close()
    summary = read_audit(tmp_path / "audit.jsonl")
    assert summary.events == {"alert.received": 3, "admin.pause": 1, "guard.blocked": 2, "intake.failed": 2}
    assert summary.refused == {"cc", "dd"}
    assert summary.received == {"aa", "bb"}
    assert summary.blast_paused
    assert summary.paused_blocks == 1


async def test_a_pause_by_an_admin_is_not_the_blast_radius(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl", fsync=False)
    log.record(AuditEvent.ADMIN_PAUSE, actor="oncall", source="admin", detail="by hand")
    await log.close()
    assert not read_audit(tmp_path / "audit.jsonl").blast_paused
