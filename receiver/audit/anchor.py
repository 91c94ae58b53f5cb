"""The anchor: a keyed log's last seal, kept outside the log so a cut tail shows.

Seals prove what is in the file; they cannot prove that nothing came after the last one. The
anchor, ``<log>.anchor`` (``receiver.audit.files.anchor_path``), holds a copy of the newest seal
line, rewritten in place after every group commit (one ``pwrite``, fsynced at rotation and
close). A log that ends before the anchor's ``seq``, or whose record at that ``seq`` is not the
anchored one, was cut or rewritten. :class:`receiver.audit.log.AuditLog` checks it when it
opens a keyed log (and records what it finds), ``receiver.audit.verify`` whenever it is given a
key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from receiver.audit.chain import check_line
from receiver.audit.events import AuditEvent, Damage
from receiver.audit.files import AuditSet, lines_from_end
from receiver.audit.seal import KeyRing

ANCHOR_BYTES = 512
_SCAN_LIMIT = 4 * 1024 * 1024  # how far back the writer looks for the anchored seq


def padded(line: bytes) -> bytes:
    """The anchor file's bytes for a seal line (with its newline): always ANCHOR_BYTES long, so
    rewriting it in place never leaves a longer old line's end behind."""
    return line[:-1].ljust(ANCHOR_BYTES - 1) + b"\n"


def read_anchor(path: Path, ring: KeyRing) -> tuple[dict[str, Any] | None, str | None]:
    """(the anchored seal, None), (None, None) when there is no anchor (absent or empty), or
    (None, what is wrong with it)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"cannot read anchor {path}: {exc.strerror}"
    text = raw.rstrip(b" \n")
    if not text:
        return None, None
    rec, why = check_line(text)
    if rec is None:
        return None, f"anchor {path} is not a seal ({why})"
    if rec.get("event") != AuditEvent.AUDIT_SEALED:
        return None, f"anchor {path} is not a seal"
    why = ring.check(rec)
    if why is not None:
        return None, f"anchor {path}: {why}"
    return rec, None


@dataclass(frozen=True)
class Finding:
    """What the writer records when the log does not reach or match its anchor."""

    reason: Damage
    detail: str
    fields: dict[str, Any]


def check_at_open(aset: AuditSet, last: dict[str, Any] | None, ring: KeyRing) -> list[Finding]:
    """Compare a keyed log's end (``last``: its last record, None when empty) with its anchor
    and with its seals; what is wrong, for ``admin.audit_recovered`` records."""
    anchored, why = read_anchor(aset.anchor, ring)
    if why is not None:
        return [Finding(Damage.ANCHOR_FORGED, why, {})]
    if anchored is None:
        if last is None:
            return []
        return [Finding(Damage.NO_ANCHOR, f"no anchor beside the log: records up to seq {last['seq']} "
                        "are sealed from here on; whether the log was cut before cannot be told",
                        {"last_seq": last["seq"], "last_hash": last["hash"]})]
    a_seq, a_hash = anchored["seq"], anchored["hash"]
    if last is None or last["seq"] < a_seq:
        end = last["seq"] if last is not None else 0
        return [Finding(Damage.CUT, f"the log ends at seq {end} but its anchor sealed seq {a_seq}: "
                        f"at least {a_seq - end} records were cut off",
                        {"last_seq": end, "anchor_seq": a_seq, "anchor_hash": a_hash})]
    found: dict[str, Any] | None = None
    sealed_upto: int | None = None
    for rec in _tail_records(aset):
        if sealed_upto is None and rec["event"] == AuditEvent.AUDIT_SEALED and ring.check(rec) is None:
            sealed_upto = rec["seq"]
        if rec["seq"] == a_seq:
            found = rec
        if rec["seq"] <= a_seq:
            break
    findings = []
    if found is None or found["hash"] != a_hash:
        what = "is not the one" if found is not None else "was not found (within 4 MB of the end)"
        findings.append(Finding(Damage.REWRITTEN, f"the record at seq {a_seq} {what} its anchor sealed",
                                {"anchor_seq": a_seq, "anchor_hash": a_hash}))
    elif last["seq"] > (sealed_upto or a_seq):
        first = (sealed_upto or a_seq) + 1
        findings.append(Finding(Damage.UNSEALED, f"records {first}..{last['seq']} were not sealed: "
                                "written just before a crash, or appended without the key",
                                {"first_seq": first, "last_seq": last["seq"]}))
    return findings


def _tail_records(aset: AuditSet) -> Any:
    """The set's records from the end (live file, then rotated ones), within _SCAN_LIMIT."""
    budget = _SCAN_LIMIT
    for path in reversed(aset.files):
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            for _, line in lines_from_end(f.fileno(), size, limit=budget):
                rec, _why = check_line(line)
                if rec is None:
                    return
                yield rec
            budget -= size
        if budget <= 0:
            return
