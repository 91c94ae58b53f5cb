"""Reading audit logs back, streaming: records one at a time, filtered, paged, merged over files.

Called by ``receiver.cli.audit`` (``remediator audit list`` and ``audit timeline``, whose
incident timelines are ``receiver.tools.timeline``'s) and by the console
(``receiver.http.console``: audit search, incident pages, the rules' last decisions). Pure
reading: the files are opened read-only and never locked, so a running service's log can
be read. Every reader goes through :func:`scan`, which holds one line at a time: memory
stays bounded by what the caller keeps (a page, one incident), never by a file's size.
Several files (one per replica, and a log's rotated files) merge into one sequence by time,
newest last. :func:`audit_files` says which files make a log, from ``receiver.audit.audit_sets``
(the writer's own idea of a rotated set), so the CLI, the console and the writer agree. The record shape
is ``receiver.audit``'s: ``seq``, ``ts``, ``event`` and the event's fields.
"""

from __future__ import annotations

import heapq
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from receiver.audit import AuditEvent, audit_sets
from receiver.errors import ReceiverError
from rules.durations import parse_duration
from rules.errors import RuleError

_MAX_PROBLEMS = 1000  # lines named as unreadable, at most (the rest are only skipped)


class AuditReadError(ReceiverError):
    """An audit file or a filter that cannot be used (the message names which)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One record and where it came from."""

    file: str
    line: int
    record: dict[str, Any]

    @property
    def at(self) -> datetime:
        return parse_ts(self.record["ts"])


def parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def parse_when(text: str, now: datetime) -> datetime:
    """``--since``/``--until``: a duration back from now (``2h``) or an RFC 3339 time."""
    try:
        return now - parse_duration(text)
    except RuleError:
        pass
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise AuditReadError(f"{text!r} is neither a duration (30m, 2h, 7d) nor an RFC 3339 time") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def read_entries(paths: Sequence[Path]) -> tuple[list[Entry], list[str]]:
    """Every record of ``paths``, merged by time (stable: file order, then line); and the
    problems met (FILE:LINE: unreadable), which skip only that line. Holds every record:
    for one incident's or a filtered list, use :func:`merged` or :func:`incident_entries`."""
    problems: list[str] = []
    entries = list(merged(paths, None, problems))
    return entries, problems


def merged(paths: Sequence[Path], keep: Filter | Callable[[Entry], bool] | None,
           problems: list[str] | None = None,
           progress: Callable[[int], None] | None = None) -> Iterator[Entry]:
    """The records ``keep`` wants (all with None) of every file, merged by time, streaming:
    each file is read in order (a log is written in time order) and the files interleave."""
    wants = keep.keep if isinstance(keep, Filter) else keep
    streams = [(entry for entry, _ in scan([path], problems=problems, progress=progress)
                if wants is None or wants(entry)) for path in paths]
    return heapq.merge(*streams, key=lambda e: e.at)


@dataclass
class Filter:
    """What ``audit list`` keeps; every given criterion must hold."""

    since: datetime | None = None
    until: datetime | None = None
    rules: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)

    def keep(self, entry: Entry) -> bool:
        rec = entry.record
        if self.since is not None and entry.at < self.since:
            return False
        if self.until is not None and entry.at > self.until:
            return False
        if self.rules and rec.get("rule") not in self.rules:
            return False
        if self.alerts and not any(str(rec.get("fingerprint", "")).startswith(a) for a in self.alerts):
            return False
        if self.events and not any(_event_matches(rec["event"], e) for e in self.events):
            return False
        return not self.outcomes or any(o in (rec.get("outcome"), rec.get("reason")) for o in self.outcomes)


def _event_matches(event: str, wanted: str) -> bool:
    """``approval.approved`` exactly, or every ``approval.*`` for ``approval`` / ``approval.*``."""
    prefix = wanted.removesuffix("*").removesuffix(".")
    return event == wanted or event.startswith(prefix + ".")


def known_event(wanted: str) -> bool:
    return any(_event_matches(e.value, wanted) for e in AuditEvent)


def summary(rec: dict[str, Any]) -> str:
    """One line saying what a record is about (the DETAIL column)."""
    event = rec["event"]
    if event == AuditEvent.ALERT_RECEIVED:
        return f"{rec.get('status')} {rec.get('alertname') or ''} from {rec.get('receiver') or '-'}".strip()
    if event == AuditEvent.RULE_MATCHED:
        wait = " (waiting for its for:)" if rec.get("waiting_for") else ""
        return f"{rec.get('priority')}{' dry-run' if rec.get('dry_run') else ''}{wait}"
    if event.startswith("action."):
        step = f"{rec.get('action')}{' on ' + rec['target'] if rec.get('target') else ''}"
        result = rec.get("result") or {}
        tail = result.get("summary") or rec.get("detail") or ""
        return f"{step}: {tail}" if tail else step
    if event.startswith("approval."):
        who = f" by {rec['actor']}" if rec.get("actor") else ""
        note = f": {rec['comment']}" if rec.get("comment") else ""
        return f"{rec.get('approval')}{who}{note}"
    return str(rec.get("detail") or rec.get("reason") or "")


# --- streaming: one record at a time, paged by position --------------------------------


def audit_files(path: Path) -> list[Path]:
    """The files of the log(s) ``path`` names, oldest first: a live file's rotated siblings
    then itself, one rotated file, or every log of a directory (``receiver.audit.audit_sets``).
    A path that names nothing comes back alone, for the reader to say it cannot be read."""
    try:
        return [f for s in audit_sets([path]) for f in s.files]
    except OSError:
        return [path]


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in a list of audit files: the file's index, a byte offset at the start of
    a line, and that line's number. Its text form (``FILE.OFFSET.LINE``) goes in page links."""

    file: int = 0
    offset: int = 0
    line: int = 1

    def __str__(self) -> str:
        return f"{self.file}.{self.offset}.{self.line}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        try:
            file, offset, line = (int(part) for part in text.split("."))
        except ValueError:
            raise AuditReadError(f"not a page position: {text[:40]!r}") from None
        if min(file, offset) < 0 or line < 1:
            raise AuditReadError(f"not a page position: {text[:40]!r}")
        return cls(file, offset, line)


def _record(raw: bytes) -> dict[str, Any] | None:
    try:
        rec = json.loads(raw)
        parse_ts(rec["ts"])
        rec["event"] = str(rec["event"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return rec if isinstance(rec, dict) else None


def scan(paths: Sequence[Path], start: Cursor = Cursor(), *, problems: list[str] | None = None,
         progress: Callable[[int], None] | None = None) -> Iterator[tuple[Entry, Cursor]]:
    """Every record from ``start`` on, one at a time, with the cursor just past it: memory
    holds one line, whatever the files' size. A line that is not a record is skipped and
    named in ``problems``; a last line still being written (no newline yet) is left for later.
    ``progress`` hears how many more bytes were read, every 1 MiB or so."""
    told = 0
    for index in range(start.file, len(paths)):
        path = paths[index]
        offset, line = (start.offset, start.line) if index == start.file else (0, 1)
        try:
            handle = path.open("rb")
        except OSError as exc:
            raise AuditReadError(f"{path}: cannot read: {exc.strerror}") from None
        with handle:
            handle.seek(offset)
            for raw in handle:
                if not raw.endswith(b"\n"):
                    break
                offset += len(raw)
                told += len(raw)
                if progress is not None and told >= 1 << 20:
                    progress(told)
                    told = 0
                n, line = line, line + 1
                if not raw.strip():
                    continue
                rec = _record(raw)
                if rec is None:
                    if problems is not None and len(problems) < _MAX_PROBLEMS:
                        problems.append(f"{path}:{n}: not an audit record; skipped")
                    continue
                yield Entry(str(path), n, rec), Cursor(index, offset, line)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a search: the records found and where the next page starts (None at the end)."""

    entries: list[Entry]
    next: Cursor | None
    scanned: int


def search(paths: Sequence[Path], keep: Filter, *, start: Cursor = Cursor(), limit: int = 100,
           budget: int = 2_000_000) -> Page:
    """Up to ``limit`` records ``keep`` wants, from ``start``, in file order (oldest first).

    Reading stops after ``budget`` records even with fewer found, so a page never takes
    unbounded time either; ``next`` then says where to go on.
    """
    found: list[Entry] = []
    scanned = 0
    at: Cursor | None = None
    for entry, after in scan(paths, start):
        scanned += 1
        at = after
        if keep.keep(entry):
            found.append(entry)
            if len(found) >= limit:
                break
        if scanned >= budget:
            break
    else:
        return Page(found, None, scanned)
    return Page(found, at, scanned)


def incident_entries(paths: Sequence[Path], fingerprints: Sequence[str], problems: list[str] | None = None,
                     progress: Callable[[int], None] | None = None) -> list[Entry]:
    """The records of some alerts (fingerprints or their prefixes; a record of a decision
    made for one counts too), merged by time, in two streaming passes: memory holds those
    incidents' records, not the files."""
    prefixes = tuple(fingerprints)

    def ours(entry: Entry) -> bool:
        return bool(prefixes) and str(entry.record.get("fingerprint") or "").startswith(prefixes)

    decisions = {str(e.record["decision"]) for e, _ in scan(paths, progress=progress)
                 if e.record.get("decision") and ours(e)}
    def wanted(entry: Entry) -> bool:
        return ours(entry) or str(entry.record.get("decision") or "") in decisions

    return list(merged(paths, wanted, problems, progress))


_LAST_EVENTS = frozenset({AuditEvent.ACTION_SUCCEEDED, AuditEvent.ACTION_FAILED,
                          AuditEvent.ACTION_PLANNED, AuditEvent.GUARD_BLOCKED, AuditEvent.DECISION_FAILED,
                          AuditEvent.APPROVAL_REQUESTED})


def last_decisions(paths: Sequence[Path], tail: int) -> dict[str, str]:
    """Per rule, the newest record of how a decision went, from the last ``tail`` bytes of
    the newest file (read from the end: the cost does not grow with the log)."""
    if not paths:
        return {}
    last: dict[str, str] = {}
    try:
        with paths[-1].open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - tail))
            if size > tail:
                handle.readline()  # a partial line
            for raw in handle:
                rec = _record(raw) if raw.endswith(b"\n") else None
                if rec is not None and rec.get("rule") and rec["event"] in _LAST_EVENTS:
                    outcome = rec.get("outcome") or rec.get("reason") or rec["event"].split(".")[1]
                    last[str(rec["rule"])] = f"{rec['ts']} {rec['event']} ({outcome}): {summary(rec)[:160]}"
    except OSError as exc:
        raise AuditReadError(f"{paths[-1]}: cannot read: {exc.strerror}") from None
    return last
