"""Audit search reads streaming: pages by position add up to the whole filtered log, a
record still being written is left for later, and searching a log of tens of MB keeps the
process's memory bounded (measured with tracemalloc in a subprocess, not timed).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from receiver.tools.auditview import AuditReadError, Cursor, Filter, incident_entries, scan, search

BIG_MB = 40


def record(seq: int, **fields: Any) -> bytes:
    ts = f"2026-11-23T06:{(seq // 60) % 60:02d}:{seq % 60:02d}.000Z"
    rec = {"seq": seq, "ts": ts, "event": "alert.received", "fingerprint": f"{seq % 97:016x}", **fields,
           "prev": "0" * 64, "hash": "f" * 64}
    return json.dumps(rec, separators=(",", ":")).encode() + b"\n"


def write_log(path: Path, n: int, *, every: int = 10) -> None:
    with path.open("wb") as out:
        for seq in range(1, n + 1):
            extra = {"event": "rule.matched", "rule": "purge-cache"} if seq % every == 0 else {}
            out.write(record(seq, **extra))


@pytest.mark.parametrize("limit", [1, 3, 7, 100])
def test_pages_add_up_to_the_whole_filtered_log(tmp_path: Path, limit: int) -> None:
    log = tmp_path / "audit.jsonl"
    write_log(log, 95)
    keep = Filter(rules=["purge-cache"])
    seen: list[int] = []
    at: Cursor | None = Cursor()
    pages = 0
    while at is not None:
        page = search([log], keep, start=Cursor.parse(str(at)), limit=limit)
        seen += [e.record["seq"] for e in page.entries]
        assert [e.line for e in page.entries] == [e.record["seq"] for e in page.entries]
        at = page.next
        pages += 1
    assert seen == list(range(10, 91, 10))
    assert pages == len(seen) // limit + 1


def test_the_line_being_written_is_left_for_later(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    write_log(log, 3)
    with log.open("ab") as out:
        out.write(record(4)[:-10])  # a writer midway through its line
    entries = [e.record["seq"] for e, _ in scan([log])]
    assert entries == [1, 2, 3]
    *_, (_, last) = scan([log])
    with log.open("ab") as out:
        out.write(record(4)[-10:])
    assert [e.record["seq"] for e, _ in scan([log], last)] == [4]


def test_lines_that_are_not_records_are_named_and_skipped(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    log.write_bytes(record(1) + b"not json\n" + b'{"seq": 2}\n' + record(3))
    problems: list[str] = []
    assert [e.record["seq"] for e, _ in scan([log], problems=problems)] == [1, 3]
    assert problems == [f"{log}:2: not an audit record; skipped", f"{log}:3: not an audit record; skipped"]


@pytest.mark.parametrize("text", ["", "1", "1.2", "a.b.c", "-1.0.1", "0.0.0", "1.2.3.4"])
def test_a_page_position_that_is_not_one_is_refused(text: str) -> None:
    with pytest.raises(AuditReadError, match="not a page position"):
        Cursor.parse(text)


def test_an_incident_is_its_fingerprint_and_its_decisions(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    log.write_bytes(record(1, fingerprint="aa11") + record(2, fingerprint="aa11", decision="d1")
                    + record(3, fingerprint="", decision="d1", event="action.succeeded")
                    + record(4, fingerprint="bb22", decision="d2"))
    assert [e.record["seq"] for e in incident_entries([log], ["aa11"])] == [1, 2, 3]


PROBE = """
import json, sys, tracemalloc
from pathlib import Path
from receiver.tools.auditview import Cursor, Filter, incident_entries, search
path = [Path(sys.argv[1])]
tracemalloc.start()
page = search(path, Filter(rules=["rare-rule"]), limit=100)
incident = incident_entries(path, ["00000000000000ff"])
again = search(path, Filter(), start=Cursor(), limit=100)
_, peak = tracemalloc.get_traced_memory()
print(json.dumps({"peak": peak, "found": len(page.entries), "scanned": page.scanned,
                  "incident": len(incident), "first_page": len(again.entries)}))
"""


def test_searching_a_big_log_keeps_memory_bounded(tmp_path: Path) -> None:
    """A log of ~40 MB: a search that reads all of it, and an incident page, peak under 4 MB."""
    log = tmp_path / "audit.jsonl"
    line = record(1, rule="noise", detail="x" * 200)
    count = BIG_MB * 1024 * 1024 // len(line)
    with log.open("wb") as out:
        for seq in range(1, count + 1):
            fields: dict[str, Any] = {"rule": "noise", "detail": "x" * 200}
            if seq % 50_000 == 0:
                fields = {"rule": "rare-rule", "event": "rule.matched", "fingerprint": "00000000000000ff"}
            out.write(record(seq, **fields))
    size = log.stat().st_size
    assert size > (BIG_MB - 1) * 1024 * 1024
    run = subprocess.run([sys.executable, "-c", PROBE, str(log)], capture_output=True, text=True, timeout=300,
                         check=False)
    assert run.returncode == 0, run.stderr
    measured = json.loads(run.stdout)
    assert measured["found"] == count // 50_000
    assert measured["scanned"] == count
    assert measured["incident"] == count // 50_000
    assert measured["first_page"] == 100
    assert measured["peak"] < 4 * 1024 * 1024, f"peak {measured['peak']} bytes for a {size}-byte log"
