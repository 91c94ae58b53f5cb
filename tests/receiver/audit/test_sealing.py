"""Seals and the anchor: a keyed log proves itself against anyone who can write it but lacks the key.

Each attack is what someone with the code, write access to the files and no key can do. Each
fails ``verify`` with the key, and (the point of the key) passes the keyless chain check.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from receiver.audit import AuditEvent, AuditLog, Damage, KeyRing, verify_file
from receiver.audit.files import anchor_path
from tests.receiver.audit.support import (
    KEY,
    OLD_KEY,
    Clock,
    append_forged_approval,
    append_forged_approval_and_seal,
    lines,
    records,
    rehash,
    rewrite_middle,
    rewrite_middle_and_drop_later_seals,
    rewrite_whole_log_from_scratch,
    write,
    write_groups,
)

RING = KeyRing([KEY])


@pytest.fixture
async def log(tmp_path: Path) -> Path:
    """Five group commits of three records, each group sealed: 20 lines."""
    path = tmp_path / "audit.jsonl"
    await write_groups(path, 5, key=KEY)
    return path


async def test_every_group_commit_ends_in_a_seal_and_the_anchor_holds_the_last(log: Path) -> None:
    recs = records(lines(log))
    assert [r["event"] for r in recs] == (["rule.matched"] * 3 + ["audit.sealed"]) * 5
    assert all(r["key"] == KEY.kid for r in recs if r["event"] == "audit.sealed")
    anchor = anchor_path(log).read_bytes()
    assert len(anchor) == 512
    assert json.loads(anchor) == recs[-1]
    report = verify_file(log, RING)
    assert (report.ok, report.records, report.seals, report.key_ids) == (True, 20, 5, {KEY.kid})


def _cut_last_group(data: list[bytes]) -> list[bytes]:
    """Cut back to the seal before: the file still ends in a valid seal."""
    return data[:-4]


@pytest.mark.parametrize(("attack", "failure"), [
    pytest.param(_cut_last_group, r"audit\.jsonl\.anchor: truncated: the anchor sealed seq 20 .*ends at "
                 r"seq 16", id="tail-cut-at-a-seal"),
    pytest.param(lambda d: d[:-6], r"audit\.jsonl:13: records 13\.\.14 are not sealed",
                 id="tail-cut-mid-group"),
    pytest.param(append_forged_approval, r"audit\.jsonl:21: records 21\.\.21 are not sealed",
                 id="forged-approval-appended"),
    pytest.param(append_forged_approval_and_seal, r"audit\.jsonl:22: forged seal",
                 id="forged-approval-sealed"),
    pytest.param(rewrite_middle, r"audit\.jsonl:8: forged seal: its mac does not match",
                 id="middle-rewritten-hashes-recomputed"),
    pytest.param(rewrite_middle_and_drop_later_seals, r"audit\.jsonl:5: records 5\.\.16 are not sealed",
                 id="middle-rewritten-later-seals-dropped"),
    pytest.param(rewrite_whole_log_from_scratch, r"audit\.jsonl:1: records 1\.\.15 are not sealed",
                 id="whole-log-rewritten"),
])
def test_attacks_without_the_key_fail_verify(
        log: Path, attack: Callable[[list[bytes]], list[bytes]], failure: str) -> None:
    """Each attack leaves a valid hash chain (the keyless check passes) and fails with the key."""
    log.write_bytes(b"".join(attack(lines(log))))
    assert verify_file(log).ok  # the chain alone cannot tell
    report = verify_file(log, RING)
    assert not report.ok
    assert any(re.search(failure, str(p)) for p in report.failures), report.failures


@pytest.mark.parametrize(("anchor", "failure"), [
    pytest.param(None, "no anchor", id="anchor-deleted"),
    pytest.param(b"garbage", "is not a seal", id="anchor-garbage"),
    pytest.param("forged", "forged seal", id="anchor-forged"),
])
def test_cut_tail_with_the_anchor_removed_or_forged_fails(log: Path, anchor: bytes | str | None,
                                                         failure: str) -> None:
    data = lines(log)[:-4]
    log.write_bytes(b"".join(data))
    if anchor is None:
        anchor_path(log).unlink()
    elif anchor == "forged":
        seal = json.loads(data[-1]) | {"mac": "1" * 64}
        anchor_path(log).write_bytes(rehash([seal], seal["prev"])[0])
    else:
        assert isinstance(anchor, bytes)
        anchor_path(log).write_bytes(anchor)
    report = verify_file(log, RING)
    assert not report.ok
    assert failure in " ".join(str(p) for p in report.failures)


def test_an_untouched_log_passes_and_the_key_matters(log: Path) -> None:
    assert verify_file(log, RING).ok
    wrong = verify_file(log, KeyRing([OLD_KEY]))
    assert (wrong.ok, wrong.line) == (False, 4)
    assert wrong.error == f"sealed with key {KEY.kid}, which was not given"


async def test_key_rotation_old_seals_verify_with_the_old_key(tmp_path: Path) -> None:
    """Sealed with OLD_KEY, then reopened with KEY (OLD_KEY kept for verifying): both verify
    together; the new key alone cannot vouch for the old seals."""
    path = tmp_path / "audit.jsonl"
    await write_groups(path, 2, key=OLD_KEY)
    await write_groups(path, 2, key=KEY, verify_keys=[OLD_KEY])
    both = verify_file(path, KeyRing([KEY, OLD_KEY]))
    assert (both.ok, both.key_ids) == (True, {KEY.kid, OLD_KEY.kid})
    assert not verify_file(path, KeyRing([KEY])).ok


async def test_an_unkeyed_log_says_so_and_fails_with_a_key(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    await write_groups(path, 2)
    assert not anchor_path(path).exists()
    assert verify_file(path).ok
    report = verify_file(path, RING)
    assert [str(p) for p in report.failures] == [
        f"{path}:1: records 1..6 are not sealed: appended without the key, or the writer stopped "
        "before sealing them",
        f"{path.parent / 'audit.jsonl.anchor'}: no anchor: a log cut back to one of its seals cannot "
        "be told from a whole one"]


async def test_keying_an_unkeyed_log_seals_its_history_from_then_on(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    await write_groups(path, 2)
    await write_groups(path, 1, key=KEY)
    recs = records(lines(path))
    assert (recs[6]["event"], recs[6]["reason"]) == ("admin.audit_recovered", Damage.NO_ANCHOR)
    report = verify_file(path, RING)
    assert report.ok, report.failures
    assert report.notes == [f"{path}:7: sealing began here; the records before it were written without a "
                            "key and are sealed only from here on"]


@pytest.mark.parametrize(("tamper", "reason", "detail", "failure"), [
    pytest.param(_cut_last_group, Damage.CUT, "ends at seq 16 but its anchor sealed seq 20",
                 ":17: when it reopened the log the writer found it cut", id="cut"),
    pytest.param(append_forged_approval, Damage.UNSEALED, "records 21..21 were not sealed",
                 ":22: when it reopened the log the writer found it unsealed tail", id="appended"),
    pytest.param(rewrite_middle, Damage.REWRITTEN, "the record at seq 20 is not the one",
                 ":8: forged seal", id="rewritten"),
])
async def test_reopening_a_tampered_log_records_it_and_verify_keeps_failing(
        log: Path, tamper: Callable[[list[bytes]], list[bytes]], reason: Damage, detail: str,
        failure: str) -> None:
    """The service restarts on a log tampered with while it was stopped: it does not launder it
    (it records what it found, sealed) and `verify` names that record ever after."""
    write(log, tamper(lines(log)))
    reopened = AuditLog(log, clock=Clock(), fsync=False, key=KEY)
    reopened.record(AuditEvent.ADMIN_STARTED)
    await reopened.close()
    found = [r for r in records(lines(log)) if r["event"] == "admin.audit_recovered"]
    assert [r["reason"] for r in found] == [reason]
    assert detail in found[0]["detail"]
    report = verify_file(log, RING)
    assert failure in str(report.failures[0]), report.failures


async def test_reopening_an_intact_log_records_nothing(log: Path) -> None:
    reopened = AuditLog(log, clock=Clock(), fsync=False, key=KEY)
    assert reopened.pending == 0
    reopened.record(AuditEvent.ADMIN_STARTED)
    await reopened.close()
    assert [r["event"] for r in records(lines(log))[-2:]] == ["admin.started", "audit.sealed"]
    assert verify_file(log, RING).ok


async def test_a_torn_group_after_a_crash_is_a_note_not_a_failure(log: Path) -> None:
    data = lines(log)
    write(log, [*data, data[0][:30]])  # a crash mid-write of the next group
    await AuditLog(log, clock=Clock(), fsync=False, key=KEY).close()
    report = verify_file(log, RING)
    assert report.ok, report.failures
    assert "a torn last line was cut" in report.notes[0]


def test_a_hostile_label_cannot_skip_a_seal(tmp_path: Path) -> None:
    """A record whose fields spell a seal's event is still sealed after."""
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, clock=Clock(), fsync=False, key=KEY)
    log.record(AuditEvent.ALERT_RECEIVED, labels={"event": "audit.sealed"})
    asyncio.run(log.close())
    assert verify_file(path, RING).ok
