"""Rotation by size and by age keeps one chain across files; verify reads a rotated set whole
and names a file that is missing or out of place; a crash between rotation steps recovers."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import pytest

from receiver.audit import AuditEvent, AuditLog, KeyRing, audit_sets, verify_file
from receiver.audit.files import anchor_path
from receiver.tools.auditview import Filter, audit_files, search
from tests.receiver.audit.support import KEY, Clock, lines, records, size, write, write_groups

RING = KeyRing([KEY])


def names(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def chain(path: Path) -> list[dict[str, Any]]:
    """Every record of the log at ``path``, in set order."""
    (aset,) = audit_sets([path])
    return [r for f in aset.files for r in records(lines(f))]


@pytest.mark.parametrize("key", [KEY, None], ids=["keyed", "unkeyed"])
async def test_rotation_by_size_keeps_the_chain(tmp_path: Path, key: Any) -> None:
    path = tmp_path / "audit.jsonl"
    await write_groups(path, 12, key=key, rotate_bytes=4096)
    rotated = [n for n in names(tmp_path) if n.startswith("audit.jsonl.0")]
    assert len(rotated) >= 2
    assert all(size(tmp_path / n) < 4096 + 2048 for n in rotated)
    recs = chain(path)
    assert [r["seq"] for r in recs] == list(range(1, len(recs) + 1))
    assert all(b["prev"] == a["hash"] for a, b in itertools.pairwise(recs))
    (aset,) = audit_sets([path])
    for before, after in itertools.pairwise(aset.files):
        first, last = records(lines(after))[0], records(lines(before))[-1]
        assert (first["event"], first["previous"]) == ("audit.rotated", before.name)
        assert first["prev"] == last["hash"]
        assert after.name.endswith(".jsonl") or int(after.name.rsplit(".", 1)[1]) == first["seq"]
        if key is not None:
            assert last["event"] == "audit.sealed"  # a rotated file ends sealed
    report = verify_file(path, RING if key else None)
    assert (report.ok, report.records) == (True, len(recs)), report.failures


async def test_rotation_by_age_on_the_fake_clock(tmp_path: Path) -> None:
    path, clock = tmp_path / "audit.jsonl", Clock()
    log = AuditLog(path, clock=clock, fsync=False, key=KEY, rotate_age=3600)
    log.record(AuditEvent.ADMIN_STARTED)
    await log.sync()
    clock.t += 3599
    log.record(AuditEvent.ADMIN_PAUSE, actor="bob")
    await log.sync()
    assert names(tmp_path) == ["audit.jsonl", "audit.jsonl.anchor"]
    clock.t += 1
    log.record(AuditEvent.ADMIN_RESUME, actor="bob")
    await log.sync()
    assert names(tmp_path) == ["audit.jsonl", "audit.jsonl.000000000001", "audit.jsonl.anchor"]
    assert [r["event"] for r in records(lines(path))] == ["audit.rotated", "admin.resume", "audit.sealed"]
    await log.close()
    # the age counts from the live file's first record, also across a restart
    clock.t += 3000
    log = AuditLog(path, clock=clock, fsync=False, key=KEY, rotate_age=3600)
    log.record(AuditEvent.ADMIN_STARTED)
    clock.t += 600
    log.record(AuditEvent.ADMIN_STOPPED)
    await log.close()
    assert len([n for n in names(tmp_path) if n.startswith("audit.jsonl.0")]) == 2
    assert verify_file(path, RING).ok


@pytest.fixture
async def rotated(tmp_path: Path) -> list[Path]:
    """A keyed log in four files or more: the rotated ones, then the live one."""
    path = tmp_path / "audit.jsonl"
    await write_groups(path, 16, key=KEY, rotate_bytes=4096)
    (aset,) = audit_sets([path])
    assert len(aset.files) >= 4
    return aset.files


def test_a_missing_middle_file_is_named(rotated: list[Path]) -> None:
    rotated[1].unlink()
    report = verify_file(rotated[-1], RING)
    assert not report.ok
    assert report.failures[0].file == str(rotated[2])
    assert report.error is not None
    assert f"continues {rotated[1].name}" in report.error
    assert "a file of the set is missing or out of order" in report.error


def test_a_missing_last_rotated_file_is_named(rotated: list[Path]) -> None:
    rotated[-2].unlink()
    report = verify_file(rotated[-1], RING)
    assert report.error is not None
    assert f"continues {rotated[-2].name}" in report.error


def test_swapped_files_are_found(rotated: list[Path]) -> None:
    a, b = rotated[1], rotated[2]
    tmp = a.with_name("swap")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)
    report = verify_file(rotated[-1], RING)
    assert not report.ok
    assert "missing or out of order" in str(report.error)


def test_the_oldest_files_gone_is_a_note(rotated: list[Path]) -> None:
    """Retention removes the oldest files: the set begins later, and says so."""
    rotated[0].unlink()
    report = verify_file(rotated[-1], RING)
    assert report.ok, report.failures
    begins = records(lines(rotated[1]))[0]["seq"]
    assert f"begins at seq {begins}, continuing {rotated[0].name}" in report.notes[0]


def test_the_live_file_gone_is_a_cut(rotated: list[Path]) -> None:
    rotated[-1].unlink()
    report = verify_file(rotated[-1], RING)
    assert "truncated: the anchor sealed seq" in str(report.failures)


def test_a_directory_is_every_log_in_it(rotated: list[Path], tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a log")
    sets = audit_sets([tmp_path])
    assert [s.base.name for s in sets] == ["audit.jsonl"]
    assert sets[0].files == rotated


async def _rotated_then_crashed(tmp_path: Path) -> tuple[Path, int]:
    """A log whose live file was renamed away, and the process died before making the next."""
    path = tmp_path / "audit.jsonl"
    await write_groups(path, 2, key=KEY)
    last = records(lines(path))[-1]
    os.rename(path, tmp_path / "audit.jsonl.000000000001")
    return path, last["seq"]


@pytest.mark.parametrize("live", [None, b"", b'{"seq":9,"ts":"2023-11'],
                         ids=["no-live-file", "empty", "torn"])
async def test_a_crash_between_rotation_steps_recovers(tmp_path: Path, live: bytes | None) -> None:
    path, last = await _rotated_then_crashed(tmp_path)
    if live is not None:
        write(path, [live])
    log = AuditLog(path, clock=Clock(), fsync=False, key=KEY)
    log.record(AuditEvent.ADMIN_STARTED)
    await log.close()
    recs = records(lines(path))
    assert (recs[0]["event"], recs[0]["previous"]) == ("audit.rotated", "audit.jsonl.000000000001")
    assert recs[0]["seq"] == last + 1
    recovered = ["admin.audit_recovered"] if live else []
    expected = ["audit.rotated", *recovered, "admin.started", "audit.sealed"]
    assert [r["event"] for r in recs if r["event"] != "audit.sealed" or r is recs[-1]] == expected
    report = verify_file(path, RING)
    assert report.ok, report.failures


async def test_a_crash_after_sealing_the_old_file_before_renaming_it(tmp_path: Path) -> None:
    """The old file ends in its seal and is still the live one: the next record rotates it."""
    path = tmp_path / "audit.jsonl"
    await write_groups(path, 8, key=KEY)
    assert size(path) > 4096
    await write_groups(path, 1, key=KEY, rotate_bytes=4096)
    assert names(tmp_path) == ["audit.jsonl", "audit.jsonl.000000000001", "audit.jsonl.anchor"]
    assert verify_file(path, RING).ok


async def test_the_anchor_follows_rotation(rotated: list[Path]) -> None:
    anchor = records([anchor_path(rotated[-1]).read_bytes().rstrip(b" \n") + b"\n"])[0]
    assert anchor == records(lines(rotated[-1]))[-1]


def test_the_console_and_the_cli_read_the_same_files(rotated: list[Path]) -> None:
    """auditview.audit_files (the console's search, the CLI) is the writer's rotated set, and a
    search pages through every file of it in chain order."""
    assert audit_files(rotated[-1]) == rotated
    page = search(audit_files(rotated[-1]), Filter(events=["rule.matched"]), limit=1000)
    assert [e.record["decision"] for e in page.entries] == [f"d-{g}-{i}" for g in range(16) for i in range(3)]
    assert page.next is None
