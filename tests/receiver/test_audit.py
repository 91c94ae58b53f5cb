"""Tests of receiver.audit: the hash chain, recovery at open, group commit and verify_file.

Real files in tmp_path; failures come from a write seam (``AuditLog._write``) or from a
real RLIMIT_FSIZE, never from a mocked filesystem; the clock is injected.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import re
import resource
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from receiver.audit import AuditError, AuditEvent, AuditLog, VerifyReport, verify_file
from receiver.audit.chain import ZERO_HASH
from receiver.errors import ReceiverError

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


class FakeClock:
    """Starts at T0 and moves 1.5 ms per reading."""

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 0.0015
        return self.now


class CountingLog(AuditLog):
    """Counts write(2) calls through the seam."""

    writes = 0

    def _write(self, fd: int, data: memoryview) -> int:
        self.writes += 1
        return super()._write(fd, data)


class FillingLog(AuditLog):
    """A disk that fills up: after ``budget`` more bytes, ENOSPC (short writes first)."""

    budget: int | None = None

    def _write(self, fd: int, data: memoryview) -> int:
        if self.budget is None:
            return super()._write(fd, data)
        if self.budget == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = super()._write(fd, data[: self.budget])
        self.budget -= n
        return n


class GatedLog(AuditLog):
    """Holds every write in the worker thread until ``gate`` is set."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, clock=FakeClock(), fsync=False)
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.writes: list[bytes] = []

    def _write(self, fd: int, data: memoryview) -> int:
        self.writes.append(bytes(data))
        self.entered.set()
        assert self.gate.wait(10)
        return super()._write(fd, data)


def seal(rec: dict[str, Any]) -> bytes:
    """An independent verifier's idea of a record's line: canonical JSON plus its hash."""
    body = {k: v for k, v in rec.items() if k != "hash"}
    canon = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    digest = hashlib.sha256(canon).hexdigest()
    return canon[:-1] + b',"hash":"' + digest.encode() + b'"}\n'


def brief(report: VerifyReport) -> tuple[bool, int, int | None, str | None]:
    """A report as (ok, records verified, line of the first failure, what failed)."""
    return report.ok, report.records, report.line, report.error


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


async def write_log(path: Path, n: int, *, start: int = 0) -> None:
    log = AuditLog(path, clock=FakeClock(), fsync=False)
    for i in range(start, start + n):
        log.record(AuditEvent.RULE_MATCHED, decision=f"d-{i}", rule="restart-web",
                   labels={"alertname": "HighLatency", "instance": f"web-{i}", "note": "héllo ✓"},
                   dry_run=i % 2 == 0, attempt=i)
    await log.close()


@pytest.fixture
async def chain(tmp_path: Path) -> list[bytes]:
    """The lines (with newlines) of a valid six-record log."""
    await write_log(tmp_path / "audit.jsonl", 6)
    return (tmp_path / "audit.jsonl").read_bytes().splitlines(keepends=True)


# --- the chain ---------------------------------------------------------------------------


async def test_chain_verifies_and_lines_are_canonical(tmp_path: Path) -> None:
    """A fresh log verifies; each line is exactly what an independent verifier recomputes."""
    path = tmp_path / "audit.jsonl"
    await write_log(path, 5)
    assert brief(verify_file(path)) == (True, 5, None, None)
    prev = ZERO_HASH
    for seq, line in enumerate(path.read_bytes().splitlines(keepends=True), start=1):
        rec = json.loads(line)
        assert (rec["seq"], rec["prev"]) == (seq, prev)
        assert seal(rec) == line
        prev = rec["hash"]


async def test_record_returns_the_record_and_is_not_durable_until_sync(tmp_path: Path) -> None:
    """record() returns seq/ts/event/prev/hash, touches no file; sync() writes it."""
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, clock=lambda: T0 + 0.1234)
    rec = log.record(AuditEvent.ALERT_RECEIVED, fingerprint="abc")
    assert rec == {"seq": 1, "ts": "2023-11-14T22:13:20.123Z", "event": "alert.received",
                   "fingerprint": "abc", "prev": ZERO_HASH, "hash": log.last_hash}
    assert (log.pending, path.stat().st_size) == (1, 0)
    await log.sync()
    assert log.pending == 0
    assert records(path) == [rec]
    await log.close()


@pytest.mark.parametrize(
    ("now", "ts"),
    [
        (T0, "2023-11-14T22:13:20.000Z"),
        (T0 + 0.9999, "2023-11-14T22:13:20.999Z"),
        (T0 + 86400.5, "2023-11-15T22:13:20.500Z"),
    ],
    ids=["whole-second", "floors-not-rounds", "next-day"],
)
async def test_timestamp_is_rfc3339_utc_with_milliseconds(
    tmp_path: Path, now: float, ts: str
) -> None:
    """ts comes from the injected clock, UTC, millisecond precision."""
    log = AuditLog(tmp_path / "audit.jsonl", clock=lambda: now, fsync=False)
    log.record(AuditEvent.ADMIN_STARTED)  # primes the per-second cache with another second
    assert log.record(AuditEvent.ADMIN_STOPPED)["ts"] == ts
    await log.close()


# --- tampering -----------------------------------------------------------------------------


def _flip(line: int, field: bytes, delta: int = 1) -> Callable[[list[bytes]], list[bytes]]:
    """Change one byte: the first byte after ``field`` on ``line`` (1-based)."""

    def mutate(lines: list[bytes]) -> list[bytes]:
        raw = bytearray(lines[line - 1])
        at = raw.index(field) + len(field)
        raw[at] ^= delta
        return [*lines[: line - 1], bytes(raw), *lines[line:]]

    return mutate


def _delete(lines: list[bytes]) -> list[bytes]:
    return lines[:2] + lines[3:]


def _swap(lines: list[bytes]) -> list[bytes]:
    return [lines[0], lines[2], lines[1], *lines[3:]]


def _forge_insert(lines: list[bytes]) -> list[bytes]:
    """A line 4 with the right seq and its own hash recomputed, chained to line 2."""
    rec = json.loads(lines[3]) | {"detail": "forged", "prev": json.loads(lines[1])["hash"]}
    return [*lines[:3], seal(rec), *lines[3:]]


def _reseal(lines: list[bytes]) -> list[bytes]:
    """Line 3 rewritten and its own hash recomputed: the next line's prev gives it away."""
    rec = json.loads(lines[2]) | {"rule": "something-else"}
    return [*lines[:2], seal(rec), *lines[3:]]


def _cut_newline(lines: list[bytes]) -> list[bytes]:
    return [*lines[:-1], lines[-1][:-1]]


def _blank(lines: list[bytes]) -> list[bytes]:
    return [*lines[:4], b"\n", *lines[4:]]


@pytest.mark.parametrize(
    ("mutate", "line", "error"),
    [
        (_flip(3, b'"seq":'), 3, "hash mismatch"),
        (_flip(2, b'"ts":"'), 2, "hash mismatch"),
        (_flip(4, b'"event":"'), 4, "hash mismatch"),
        (_flip(5, b'"instance":"'), 5, "hash mismatch"),
        (_flip(5, "héllo".encode()[:2], 0x40), 5, "not JSON"),  # inside a UTF-8 sequence
        (_flip(3, b'"attempt":'), 3, "hash mismatch"),
        (_flip(2, b'"prev":"'), 2, "hash mismatch"),
        (_flip(6, b'"hash":"'), 6, "hash mismatch"),
        (_flip(1, b"", 0x05), 1, "not JSON"),
        (_flip(3, b',"ha'), 3, "no hash"),
        (_delete, 3, "seq out of order: expected 3, found 4"),
        (_swap, 2, "seq out of order: expected 2, found 3"),
        (_forge_insert, 4, "prev does not match the hash of line 3"),
        (_reseal, 4, "prev does not match the hash of line 3"),
        (_cut_newline, 6, "torn last line"),
        (_blank, 5, "not JSON"),
    ],
    ids=["seq", "ts", "event", "label", "utf8", "number", "prev", "hash", "first-brace",
         "hash-key", "delete-line", "swap-lines", "forged-insert", "resealed-line",
         "torn-last", "blank-line"],
)
def test_tampering_is_found_at_its_line(
    chain: list[bytes], tmp_path: Path, mutate: Callable[[list[bytes]], list[bytes]],
    line: int, error: str,
) -> None:
    """Each tampering is reported at the first line it breaks, with what is wrong."""
    path = tmp_path / "tampered.jsonl"
    path.write_bytes(b"".join(mutate(chain)))
    assert brief(verify_file(path)) == (False, line - 1, line, error)


@pytest.mark.parametrize("delta", [0x01, 0x20, 0x80], ids=["bit0", "bit5", "bit7"])
def test_every_single_byte_change_is_found(
    chain: list[bytes], tmp_path: Path, delta: int
) -> None:
    """Changing any one byte of line 3 (newline included) breaks the chain at line 3."""
    path = tmp_path / "tampered.jsonl"
    for at in range(len(chain[2])):
        raw = bytearray(chain[2])
        raw[at] ^= delta
        path.write_bytes(b"".join([*chain[:2], bytes(raw), *chain[3:]]))
        report = verify_file(path)
        assert (report.ok, report.line, report.records) == (False, 3, 2), (at, report)


def test_verify_empty_file_is_ok(tmp_path: Path) -> None:
    """An empty log is a valid chain of no records."""
    (tmp_path / "audit.jsonl").touch()
    assert brief(verify_file(tmp_path / "audit.jsonl")) == (True, 0, None, None)


def test_verify_missing_file_raises(tmp_path: Path) -> None:
    """A log that is not there is an AuditError naming it, not a report."""
    with pytest.raises(AuditError, match=r"absent\.jsonl"):
        verify_file(tmp_path / "absent.jsonl")


def test_verify_first_record_must_chain_from_zeros(tmp_path: Path) -> None:
    """A self-consistent first line whose prev is not 64 zeros is a break at line 1."""
    path = tmp_path / "audit.jsonl"
    path.write_bytes(seal({"seq": 1, "ts": "x", "event": "admin.started", "prev": "a" * 64}))
    report = verify_file(path)
    assert brief(report) == (False, 0, 1, "prev of the first record is not 64 zeros")


# --- open, reopen, recovery ----------------------------------------------------------------


async def test_reopen_continues_the_chain(tmp_path: Path) -> None:
    """A second AuditLog on the same file continues seq and prev; the whole file verifies."""
    path = tmp_path / "audit.jsonl"
    await write_log(path, 3)
    last = records(path)[-1]
    log = AuditLog(path, clock=FakeClock(T0 + 3600))
    assert log.last_hash == last["hash"]
    rec = log.record(AuditEvent.ADMIN_STARTED, actor="ops")
    assert (rec["seq"], rec["prev"]) == (4, last["hash"])
    await log.close()
    await write_log(path, 2, start=3)
    assert [r["seq"] for r in records(path)] == [1, 2, 3, 4, 5, 6]
    assert brief(verify_file(path)) == (True, 6, None, None)


async def test_open_reads_only_the_tail(tmp_path: Path) -> None:
    """Open continues from the last line without reading the (here: broken) rest of the file."""
    path = tmp_path / "audit.jsonl"
    last = seal({"seq": 3, "ts": "x", "event": "admin.started", "prev": "b" * 64})
    path.write_bytes(b"x" * 300_000 + b"\n" + b"y" * 200_000 + b"\n" + last)
    log = AuditLog(path, fsync=False)
    assert log.record(AuditEvent.ADMIN_STOPPED)["seq"] == 4
    assert log.last_hash != json.loads(last)["hash"]
    await log.close()
    assert brief(verify_file(path)) == (False, 0, 1, "not JSON")


@pytest.mark.parametrize(
    ("keep", "tail"),
    [
        (3, lambda line: line[:1]),
        (3, lambda line: line[: len(line) // 2]),
        (3, lambda line: line[:-1]),
        (3, lambda line: b"\0" * 4096),
        (3, lambda line: line[:40] + b"\0" * 100),
        (0, lambda line: line[:50]),
    ],
    ids=["one-byte", "half-line", "all-but-newline", "nul-tail", "partial-then-nul",
         "only-a-torn-line"],
)
async def test_torn_last_line_is_cut_and_recorded(
    tmp_path: Path, keep: int, tail: Callable[[bytes], bytes]
) -> None:
    """A torn tail is cut off, an admin.audit_recovered record says what went; it verifies."""
    path = tmp_path / "audit.jsonl"
    await write_log(path, keep + 1)
    lines = path.read_bytes().splitlines(keepends=True)
    good, torn = b"".join(lines[:keep]), tail(lines[keep])
    path.write_bytes(good + torn)
    log = AuditLog(path, clock=FakeClock())
    assert log.pending == 0  # the recovery record is already durable
    await log.close()
    data = path.read_bytes()
    assert data.startswith(good)
    rec = json.loads(data[len(good):])
    assert rec["event"] == AuditEvent.ADMIN_AUDIT_RECOVERED
    assert (rec["seq"], rec["offset"], rec["dropped_bytes"]) == (keep + 1, len(good), len(torn))
    assert rec["dropped_sha256"] == hashlib.sha256(torn).hexdigest()
    assert brief(verify_file(path)) == (True, keep + 1, None, None)


@pytest.mark.parametrize(
    "tail",
    [b"garbage\n", b'{"seq":4}\n', b"\n", b"[1,2]\n", b"garbage-without-newline",
     b'{"a":1}'],
    ids=["not-json", "no-hash", "empty-line", "not-an-object", "foreign-tail", "foreign-json-tail"],
)
async def test_unreadable_last_line_refuses_to_open(tmp_path: Path, tail: bytes) -> None:
    """A last line that is not a record: AuditError pointing at `audit verify`; file untouched."""
    path = tmp_path / "audit.jsonl"
    await write_log(path, 2)
    path.write_bytes(path.read_bytes() + tail)
    before = path.read_bytes()
    with pytest.raises(AuditError, match="remediator audit verify"):
        AuditLog(path)
    assert path.read_bytes() == before
    AuditLog(tmp_path / "other.jsonl")  # the lock of the refused log was released with it


async def test_last_line_with_a_wrong_hash_refuses_to_open(
    chain: list[bytes], tmp_path: Path
) -> None:
    """The last line's own hash is checked at open (one line, so open stays fast)."""
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"".join(chain).replace(b'"attempt":5', b'"attempt":7'))
    with pytest.raises(AuditError, match=r"hash mismatch.*remediator audit verify"):
        AuditLog(path)


def test_missing_parent_directory(tmp_path: Path) -> None:
    """Open does not create directories: AuditError naming the path."""
    path = tmp_path / "nope" / "audit.jsonl"
    with pytest.raises(AuditError, match=re.escape(str(path.parent))) as info:
        AuditLog(path)
    assert isinstance(info.value, ReceiverError)


async def test_second_writer_is_refused(tmp_path: Path) -> None:
    """Two AuditLogs never append to one file at once; after close it opens again."""
    first = AuditLog(tmp_path / "audit.jsonl")
    with pytest.raises(AuditError, match="already open"):
        AuditLog(tmp_path / "audit.jsonl")
    await first.close()
    await AuditLog(tmp_path / "audit.jsonl").close()


async def test_close_is_idempotent_and_final(tmp_path: Path) -> None:
    """close() syncs, a second close is a no-op, record() after close raises."""
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, fsync=False)
    log.record(AuditEvent.ADMIN_STOPPED)
    await log.close()
    await log.close()
    await log.sync()
    assert len(records(path)) == 1
    with pytest.raises(AuditError, match="closed"):
        log.record(AuditEvent.ADMIN_STARTED)


# --- group commit -------------------------------------------------------------------------


async def test_concurrent_syncs_group_commit(tmp_path: Path) -> None:
    """50 tasks record+sync: each returns with its record on disk, fewer writes than syncs."""
    path = tmp_path / "audit.jsonl"
    log = CountingLog(path, clock=FakeClock())

    async def worker(i: int) -> None:
        for _ in range(i % 4):
            await asyncio.sleep(0)
        log.record(AuditEvent.ACTION_STARTED, task=i)
        await log.sync()
        assert f'"task":{i},'.encode() in path.read_bytes()

    await asyncio.gather(*(worker(i) for i in range(50)))
    assert log.pending == 0
    assert sorted(r["task"] for r in records(path)) == list(range(50))
    assert brief(verify_file(path)) == (True, 50, None, None)
    assert 1 <= log.writes < 50
    await log.close()


async def test_one_write_in_flight_and_late_records_go_in_the_next(tmp_path: Path) -> None:
    """Records made during a write wait for it, then share the next write, in order."""
    log = GatedLog(tmp_path / "audit.jsonl")
    log.record(AuditEvent.ACTION_PLANNED, step=1)
    first = asyncio.create_task(log.sync())
    assert await asyncio.to_thread(log.entered.wait, 10)
    log.record(AuditEvent.ACTION_STARTED, step=2)
    log.record(AuditEvent.ACTION_SUCCEEDED, step=3)
    later = [asyncio.create_task(log.sync()) for _ in range(3)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(log.writes) == 1
    assert not any(t.done() for t in [first, *later])
    log.gate.set()
    await asyncio.gather(first, *later)
    assert [w.count(b"\n") for w in log.writes] == [1, 2]
    assert [r["step"] for r in records(log.path)] == [1, 2, 3]
    await log.close()


async def test_cancelled_sync_does_not_tear_the_chain(tmp_path: Path) -> None:
    """Cancelling a waiting caller leaves its write to finish; nothing is written twice."""
    log = GatedLog(tmp_path / "audit.jsonl")
    log.record(AuditEvent.ACTION_STARTED, step=1)
    first = asyncio.create_task(log.sync())
    assert await asyncio.to_thread(log.entered.wait, 10)
    first.cancel()
    log.record(AuditEvent.ACTION_FAILED, step=2)
    log.gate.set()
    await log.sync()
    assert first.cancelled()
    assert len(log.writes) == 2
    assert brief(verify_file(log.path)) == (True, 2, None, None)
    await log.close()


# --- write failures -----------------------------------------------------------------------


async def test_write_failure_keeps_records_pending_and_the_file_clean(tmp_path: Path) -> None:
    """ENOSPC after a short write: AuditError, file cut back, records kept; the retry lands."""
    path = tmp_path / "audit.jsonl"
    log = FillingLog(path, clock=FakeClock())
    log.record(AuditEvent.ALERT_RECEIVED, fingerprint="a")
    await log.sync()
    durable = path.read_bytes()
    log.record(AuditEvent.RULE_MATCHED, rule="r")
    log.record(AuditEvent.ACTION_STARTED, rule="r")
    log.budget = 10
    with pytest.raises(AuditError, match="No space left on device"):
        await log.sync()
    assert log.budget == 0  # the short write really happened
    assert log.pending == 2
    assert path.read_bytes() == durable
    assert verify_file(path).ok
    log.budget = None
    log.record(AuditEvent.ACTION_SUCCEEDED, rule="r")
    await log.sync()
    assert log.pending == 0
    assert [r["seq"] for r in records(path)] == [1, 2, 3, 4]
    assert brief(verify_file(path)) == (True, 4, None, None)
    await log.close()


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE/SIGXFSZ semantics are Linux's")
async def test_real_file_size_limit(tmp_path: Path) -> None:
    """A real kernel short write + EFBIG (RLIMIT_FSIZE) is cut back and retried cleanly."""
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, clock=FakeClock())
    log.record(AuditEvent.ADMIN_STARTED)
    await log.sync()
    size = path.stat().st_size
    log.record(AuditEvent.ADMIN_RELOAD, detail="x" * 500)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 100, hard))
        with pytest.raises(AuditError, match="File too large"):
            await log.sync()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
    assert (path.stat().st_size, log.pending) == (size, 1)
    await log.close()
    assert brief(verify_file(path)) == (True, 2, None, None)


# --- field values -------------------------------------------------------------------------


class Colour(Enum):
    RED = 2


class Severity(StrEnum):
    CRITICAL = "critical"


class Target(BaseModel):
    name: str
    when: datetime


@dataclass
class Step:
    action: str
    retries: tuple[int, ...]


WHEN = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (True, True),
        (1.25, 1.25),
        ("ünïcødé ✓", "ünïcødé ✓"),
        ("\ud800 lone surrogate", "\ud800 lone surrogate"),
        ([1, "a"], [1, "a"]),
        (WHEN, "2024-05-01T10:00:00+00:00"),
        (date(2024, 5, 1), "2024-05-01"),
        (timedelta(minutes=1, milliseconds=500), 60.5),
        (Colour.RED, 2),
        (Severity.CRITICAL, "critical"),
        ({"b", "a"}, ["a", "b"]),
        (frozenset({3, 1}), [1, 3]),
        ((1, "x"), [1, "x"]),
        (Target(name="web", when=WHEN), {"name": "web", "when": "2024-05-01T10:00:00Z"}),
        (Step("restart", (1, 2)), {"action": "restart", "retries": [1, 2]}),
        ({"steps": [Step("a", ())], "at": {WHEN}}, {"steps": [{"action": "a", "retries": []}],
                                                     "at": ["2024-05-01T10:00:00+00:00"]}),
        ({10: "a", 9: "b"}, {"10": "a", "9": "b"}),
    ],
    ids=["null", "bool", "float", "unicode", "lone-surrogate", "list", "datetime", "date",
         "timedelta", "enum", "str-enum", "set", "frozenset", "tuple", "pydantic", "dataclass",
         "nested", "int-keys"],
)
async def test_supported_values_serialise(tmp_path: Path, value: object, expected: object) -> None:
    """Each supported type is written as documented, and the line still verifies."""
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, fsync=False)
    log.record(AuditEvent.ACTION_PLANNED, value=value)
    await log.close()
    assert records(path)[0]["value"] == expected
    assert verify_file(path).ok


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (object(), TypeError),
        (b"bytes", TypeError),
        (Path("/etc"), TypeError),
        (1j, TypeError),
        ({"deep": [{"x": object()}]}, TypeError),
        (float("nan"), ValueError),
    ],
    ids=["object", "bytes", "path", "complex", "nested-object", "nan"],
)
async def test_unsupported_values_raise_and_leave_no_trace(
    tmp_path: Path, value: object, error: type[Exception]
) -> None:
    """A value JSON cannot carry raises at record time and does not advance the chain."""
    log = AuditLog(tmp_path / "audit.jsonl", fsync=False)
    with pytest.raises(error):
        log.record(AuditEvent.ACTION_PLANNED, value=value)
    assert (log.pending, log.last_hash) == (0, ZERO_HASH)
    assert log.record(AuditEvent.ACTION_PLANNED)["seq"] == 1
    await log.close()


@pytest.mark.parametrize("name", ["seq", "ts", "event", "prev", "hash"])
async def test_reserved_field_names_are_rejected(tmp_path: Path, name: str) -> None:
    """Fields may not overwrite the chain's own keys."""
    log = AuditLog(tmp_path / "audit.jsonl", fsync=False)
    with pytest.raises(ValueError, match=name):
        log.record(AuditEvent.ADMIN_PAUSE, **{name: "x"})
    assert log.pending == 0
    await log.close()
