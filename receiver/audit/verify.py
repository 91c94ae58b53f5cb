"""Verifying a log: the chain through every file of its set, and with a key its seals and anchor.

``remediator audit verify`` (``receiver.cli.audit``) calls :func:`verify_set` for each set
``receiver.audit.files.audit_sets`` names. Without keys it proves the chain only: every
record's hash over its bytes, each ``prev`` the hash before, ``seq`` counting on by one across
files, each rotated file's successor starting with the ``audit.rotated`` record that names it.
That catches damage, not an attacker who rewrites the file and recomputes the hashes. With
keys (``receiver.audit.seal.KeyRing``) it also proves that every record is covered by a seal
made with one of them, that the log reaches its anchor (``receiver.audit.anchor``) with the
anchored record, and reports what the writer recorded finding when it reopened the log. It
streams: memory does not grow with the log.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from receiver.audit.anchor import read_anchor
from receiver.audit.chain import ZERO_HASH, check_line
from receiver.audit.events import AuditError, AuditEvent, Damage
from receiver.audit.files import AuditSet, Progress, audit_sets, read_lines
from receiver.audit.seal import KeyRing


@dataclasses.dataclass(frozen=True)
class Problem:
    """One failure: where (file, line when it is one line) and what."""

    file: str
    line: int | None
    text: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.text}" if self.line else f"{self.file}: {self.text}"


@dataclasses.dataclass
class VerifyReport:
    """What :func:`verify_set` found: ``records`` verified (up to a break), the failures, notes."""

    records: int = 0
    failures: list[Problem] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    seals: int = 0
    key_ids: set[str] = dataclasses.field(default_factory=set)
    last_seq: int = 0
    keyed: bool = False

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def line(self) -> int | None:
        return self.failures[0].line if self.failures else None

    @property
    def error(self) -> str | None:
        return self.failures[0].text if self.failures else None


class _Break(Exception):  # control flow: the chain broke here, stop reading
    pass


class _Verifier:
    def __init__(self, aset: AuditSet, ring: KeyRing) -> None:
        self.aset, self.ring = aset, ring
        self.report = VerifyReport(keyed=bool(ring))
        self.prev: str | None = None
        self.file: Path | None = None  # the file the last record came from
        self.sealed_upto = 0
        self.unsealed_at: tuple[Path, int] | None = None  # first record after the last seal
        self.anchored: dict[str, Any] | None = None
        self.anchor_hit = False

    def fail(self, path: Path, line: int | None, text: str, *, stop: bool = True) -> None:
        self.report.failures.append(Problem(str(path), line, text))
        if stop:
            raise _Break

    def line(self, path: Path, n: int, raw: bytes) -> None:
        if not raw.endswith(b"\n"):
            self.fail(path, n, "torn last line")
        rec, why = check_line(raw[:-1])
        if rec is None:
            self.fail(path, n, str(why))
        assert rec is not None
        self.link(path, n, rec)
        self.judge(path, n, rec)
        self.prev, self.file = rec["hash"], path
        self.report.records += 1
        self.report.last_seq = rec["seq"]

    def link(self, path: Path, n: int, rec: dict[str, Any]) -> None:
        """seq and prev follow on from the record before, across files."""
        seq, rotated = rec["seq"], rec.get("event") == AuditEvent.AUDIT_ROTATED
        new_file = path != self.file
        if rotated and not (n == 1 and new_file):
            self.fail(path, n, "a rotation record that does not start a file")
        if self.prev is None:
            if rotated:
                self.report.notes.append(f"{path}: the set begins at seq {seq}, continuing "
                                         f"{rec['previous']}, which is not here (removed by retention, "
                                         "or by someone)")
            elif seq != 1:
                self.fail(path, n, f"the first record has seq {seq}, not 1, and does not start a "
                          "rotated file")
            elif rec["prev"] != ZERO_HASH:
                self.fail(path, n, "prev of the first record is not 64 zeros")
            return
        expected = self.report.last_seq + 1
        if new_file and (not rotated or rec["seq"] != expected or rec["prev"] != self.prev):
            assert self.file is not None
            if not rotated:
                self.fail(path, n, f"follows {self.file.name} but does not start with a rotation record")
            self.fail(path, n, f"continues {rec['previous']} (up to seq {seq - 1}), not {self.file.name} "
                      f"(up to seq {expected - 1}): a file of the set is missing or out of order")
        if seq != expected:
            self.fail(path, n, f"seq out of order: expected {expected}, found {seq}")
        if rec["prev"] != self.prev:
            self.fail(path, n, f"prev does not match the hash of line {n - 1}")
        if new_file and rec["previous"] != self.file.name:  # type: ignore[union-attr]
            self.fail(path, n, f"its rotation record names {rec['previous']}, not {self.file.name}",  # type: ignore[union-attr]
                      stop=False)

    def judge(self, path: Path, n: int, rec: dict[str, Any]) -> None:
        """Seals, the anchored record, and what the writer recorded finding."""
        event = rec.get("event")
        if event == AuditEvent.AUDIT_SEALED:
            self.report.seals += 1
            self.report.key_ids.add(str(rec.get("key")))
            if self.ring:
                why = self.ring.check(rec)
                if why is not None:
                    self.fail(path, n, why)
                self.sealed_upto, self.unsealed_at = rec["seq"], None
        elif self.unsealed_at is None:
            self.unsealed_at = (path, n)
        if self.anchored is not None and rec["seq"] == self.anchored["seq"]:
            self.anchor_hit = rec["hash"] == self.anchored["hash"]
        if event == AuditEvent.ADMIN_AUDIT_RECOVERED:
            reason = rec.get("reason")
            if reason == Damage.TORN:
                self.report.notes.append(f"{path}:{n}: a torn last line was cut when the log was reopened "
                                         "(a crash mid-write)")
            elif not self.ring:
                pass  # without the key nothing here can be judged
            elif reason == Damage.NO_ANCHOR and self.sealed_upto == 0:
                self.report.notes.append(f"{path}:{n}: sealing began here; the records before it were "
                                         "written without a key and are sealed only from here on")
            else:
                self.fail(path, n, f"when it reopened the log the writer found it {reason}: "
                          f"{rec.get('detail', '')}", stop=False)

    def run(self, progress: Progress | None) -> VerifyReport:
        checks_anchor = bool(self.ring) and not self.aset.lone
        anchor_why = None
        if checks_anchor:
            self.anchored, anchor_why = read_anchor(self.aset.anchor, self.ring)
        try:
            for path, n, raw in read_lines(self.aset.files, progress):
                self.line(path, n, raw)
        except _Break:
            return self.report
        except OSError as exc:
            raise AuditError(f"cannot read audit log {exc.filename}: {exc.strerror}") from exc
        if anchor_why is not None:
            self.report.failures.append(Problem(str(self.aset.anchor), None, anchor_why))
        elif self.ring:
            self.finish(checks_anchor)
        elif self.report.seals:
            self.report.notes.append(f"{self.report.seals} seals not checked: no key given")
        return self.report

    def finish(self, checks_anchor: bool) -> None:
        last = self.report.last_seq
        if self.unsealed_at is not None:
            path, n = self.unsealed_at
            self.fail(path, n, f"records {self.sealed_upto + 1}..{last} are not sealed: appended "
                      "without the key, or the writer stopped before sealing them", stop=False)
        if not checks_anchor:
            return
        anchor = self.aset.anchor
        if self.anchored is None:
            if last:
                self.fail(anchor, None, "no anchor: a log cut back to one of its seals cannot be told "
                          "from a whole one", stop=False)
        elif self.anchored["seq"] > last:
            self.fail(anchor, None, f"truncated: the anchor sealed seq {self.anchored['seq']} "
                      f"({self.anchored['ts']}); the log ends at seq {last}", stop=False)
        elif not self.anchor_hit:
            self.fail(anchor, None, f"the record at seq {self.anchored['seq']} is not the one the "
                      "anchor sealed: the log was rewritten", stop=False)


def verify_set(aset: AuditSet, ring: KeyRing | None = None, *,
               progress: Progress | None = None) -> VerifyReport:
    """Verify one log (every file of ``aset``, in order); see the module docstring."""
    return _Verifier(aset, ring or KeyRing(())).run(progress)


def verify_file(path: Path, ring: KeyRing | None = None) -> VerifyReport:
    """Verify the log ``path`` names (a live file with its rotated siblings, or one file)."""
    try:
        (aset,) = audit_sets([Path(path)])
    except OSError as exc:
        raise AuditError(f"cannot read audit log {path}: {exc.strerror}") from exc
    return verify_set(aset, ring)
