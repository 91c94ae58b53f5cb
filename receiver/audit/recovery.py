"""Opening a log: where its chain ends, what to cut, and what to record about it.

Called once by :class:`receiver.audit.log.AuditLog` when it opens. Reads only the ends of
files: the live file's last complete line (and whatever torn bytes follow it), its first line
(the file's first seq and age, for rotation), the newest rotated file's last line when the
live file is new or empty (a rotation that crashed between its steps), and -- keyed -- the
anchor and the records after it (``receiver.audit.anchor.check_at_open``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from receiver.audit.anchor import Finding, check_at_open
from receiver.audit.chain import check_line
from receiver.audit.events import AuditError
from receiver.audit.files import audit_set, lines_from_end
from receiver.audit.seal import KeyRing

_TAIL = 64 * 1024


@dataclass
class End:
    """Where a log ends, as :meth:`receiver.audit.log.AuditLog._recover` needs it."""

    last: dict[str, Any] | None = None  # the last complete record of the set
    file_bytes: int = 0  # the live file's size once cut
    first_seq: int = 1  # seq of the live file's first record (or of its next one)
    started: float | None = None  # when the live file's first record was made
    cut_to: int | None = None  # where a torn tail starts (it is cut there)
    torn: bytes = b""
    previous: Path | None = None  # the rotated file a new live file continues
    findings: list[Finding] = field(default_factory=list)

    @property
    def torn_sha256(self) -> str:
        return hashlib.sha256(self.torn).hexdigest()


def _refuse(path: Path, what: str) -> AuditError:
    return AuditError(f"audit log {path} {what}. Run `remediator audit verify {path}` and move "
                      "the file aside.")


def _last_line(fd: int, size: int, path: Path) -> tuple[dict[str, Any] | None, int]:
    """The last complete record of a file and where it ends (0, None for none)."""
    for offset, line in lines_from_end(fd, size, limit=size):
        rec, why = check_line(line)
        if rec is None:
            raise _refuse(path, f"ends in a record that is unreadable ({why}); refusing to continue "
                          "its chain")
        return rec, offset + len(line) + 1
    return None, 0


def read_end(fd: int, path: Path, ring: KeyRing | None) -> End:
    """Read the end of the live file open at ``fd`` and of its set."""
    size = os.fstat(fd).st_size
    end = End()
    last, good = _last_line(fd, size, path)
    torn = os.pread(fd, size - good, good) if size > good else b""
    # a torn record of ours starts like one (or is NULs) and does not parse unless whole
    if torn and (torn[:1] not in (b"{", b"\0") or check_line(torn)[1] not in (None, "not JSON")):
        raise _refuse(path, f"ends in {len(torn)} bytes that are not a torn record")
    if torn:
        end.cut_to, end.torn = good, torn
    end.file_bytes = good
    if last is not None:
        first = _first_record(fd)
        end.first_seq = first["seq"] if first is not None else last["seq"]
        end.started = _epoch(first.get("ts")) if first is not None else None
    else:
        aset = audit_set(path)
        if aset.rotated:  # the live file is new: continue the newest rotated one
            newest = aset.rotated[-1]
            with newest.open("rb") as f:
                last, _ = _last_line(f.fileno(), os.fstat(f.fileno()).st_size, newest)
            end.previous = newest if last is not None else None
    end.last = last
    if last is not None:
        end.first_seq = end.first_seq if end.file_bytes else last["seq"] + 1
    if ring is not None:
        end.findings = check_at_open(audit_set(path), last, ring)
    return end


def _first_record(fd: int) -> dict[str, Any] | None:
    """The live file's first record (its seq names the file when it is rotated), if readable
    within its first 64 KiB; verify, not open, judges the rest."""
    head = os.pread(fd, _TAIL, 0)
    return check_line(head[:head.find(b"\n")])[0] if b"\n" in head else None


def _epoch(ts: object) -> float | None:
    try:
        return datetime.fromisoformat(str(ts).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
