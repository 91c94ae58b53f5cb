"""``remediator audit verify|list|timeline``: the audit log from the command line.

Registered by ``receiver.cli.main.build_parser``; reading is ``receiver.tools.auditview``'s, the
proof ``receiver.audit.verify_set``'s. A FILE is a log's live file (its rotated siblings come
with it), one rotated file, or a directory of logs; the default is the config's ``audit:``
(``--config``, which also gives the keys), else ``remediator-audit.jsonl``. Reading streams;
on a terminal stderr shows how far it got. Exit codes: 0 ok; 1 a log fails verification
(verify) or a line is not a record (list, timeline: it is skipped and named on stderr);
2 bad usage (a file that cannot be read, a key or filter that does not parse, no alert found).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from receiver.audit import AuditError, AuditSet, KeyRing, SealKey, audit_sets, total_bytes, verify_set
from receiver.cli.output import paint, print_json, table
from receiver.settings import load_settings
from receiver.tools.auditview import (
    AuditReadError,
    Entry,
    Filter,
    audit_files,
    incident_entries,
    known_event,
    merged,
    parse_when,
    summary,
)
from receiver.tools.timeline import Timeline, build_timelines, markdown, verdict
from remediations.secrets import SecretError, resolve_secret

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
_OUTCOME_COLOUR = {"succeeded": "green", "failed": "red", "blocked": "yellow", "awaiting_approval": "yellow"}
_WIDTH_ROWS = 500  # rows that set the list's column widths; later ones are printed as they come


def _err(message: str) -> None:
    print(f"remediator: {message}", file=sys.stderr)


def _files(args: argparse.Namespace) -> list[Path]:
    if args.files:
        return list(args.files)
    return [load_settings(args.config).audit if args.config else Path("remediator-audit.jsonl")]


def _ring(args: argparse.Namespace) -> KeyRing:
    """``--key`` references, else the config's ``audit.key`` and ``audit.verify_keys``."""
    try:
        if args.key:
            secrets = [resolve_secret(ref) for ref in args.key]
        elif args.config:
            audit = load_settings(args.config).audit_log
            secrets = [*([audit.key] if audit.key else []), *audit.verify_keys]
        else:
            secrets = []
        return KeyRing(SealKey(s.reveal().encode(), s.source) for s in secrets)
    except (SecretError, AuditError) as exc:
        raise AuditReadError(f"--key: {exc}") from None


class _Progress:
    """``reading: 45% (48 of 106 MB)`` on stderr, redrawn at most 4 times a second; only on a
    terminal, so pipes and files get none of it."""

    def __init__(self, total: int, what: str) -> None:
        self.on = sys.stderr.isatty() and total > 0
        self.total, self.what, self.done, self.shown = total, what, 0, 0.0

    def __call__(self, more: int) -> None:
        self.done += more
        now = time.monotonic()
        if self.on and now - self.shown >= 0.25:
            self.shown = now
            pct = min(100, self.done * 100 // self.total)
            print(f"\r{self.what}: {pct}% ({self.done / 1e6:.0f} of {self.total / 1e6:.0f} MB)", end="",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.on and self.shown:
            print("\r\x1b[K", end="", file=sys.stderr, flush=True)


def _audit_verify(args: argparse.Namespace) -> int:
    ring = _ring(args)
    status, sets = EXIT_OK, []
    for path in _files(args):
        try:
            sets += audit_sets([path])
        except OSError:
            _err(f"{path}: {'a directory with no audit log' if path.is_dir() else 'no such file'}")
            status = EXIT_USAGE
    for aset in sets:
        status = max(status, _verify_one(aset, ring))
    return status


def _verify_one(aset: AuditSet, ring: KeyRing) -> int:
    progress = _Progress(total_bytes([aset]), f"verifying {aset.base}")
    try:
        report = verify_set(aset, ring, progress=progress)
    except AuditError as exc:
        progress.close()
        _err(str(exc))
        return EXIT_USAGE
    progress.close()
    files = f" in {len(aset.files)} files" if len(aset.files) > 1 else ""
    for note in report.notes:
        print(f"note: {note}")
    if report.ok and ring:
        keys = ", ".join(sorted(report.key_ids)) or "none"
        print(f"{aset.base}: ok, {report.records} records{files}, chain intact, every record sealed "
              f"({report.seals} seals, key {keys}){'' if aset.lone else ', anchor reached'}")
    elif report.ok:
        print(f"{aset.base}: ok, {report.records} records{files}, chain intact (unkeyed: this proves "
              "order and catches damage, not an attacker who can rewrite the file; give --key)")
    else:
        for problem in report.failures:
            print(f"{problem}: broken" if problem.line is None else
                  f"{problem.file}:{problem.line}: broken: {problem.text}")
        print(f"{aset.base}: FAILED ({len(report.failures)} problem(s); {report.records} records "
              "verified before the first)")
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def _paths(args: argparse.Namespace) -> list[Path]:
    """Every file of the logs named, each log's rotated files first (``audit_files``)."""
    return [f for path in _files(args) for f in audit_files(path)]


def _progress(paths: list[Path], what: str) -> _Progress:
    return _Progress(sum(p.stat().st_size for p in paths if p.is_file()), what)


def _filter(args: argparse.Namespace, now: datetime) -> Filter:
    for event in args.event or []:
        if not known_event(event):
            raise AuditReadError(f"--event {event!r}: no such audit event (e.g. rule.matched, approval.*)")
    return Filter(since=parse_when(args.since, now) if args.since else None,
                  until=parse_when(args.until, now) if args.until else None,
                  rules=args.rule or [], alerts=args.alert or [], events=args.event or [],
                  outcomes=args.outcome or [])


def _row(entry: Entry, several: bool) -> tuple[str, ...]:
    rec = entry.record
    outcome = str(rec.get("outcome") or rec.get("reason") or "")
    row = (rec["ts"], rec["event"], str(rec.get("rule") or "-"), str(rec.get("fingerprint") or "-"),
           outcome or "-", summary(rec)[:120])
    return ((f"{Path(entry.file).name}:{entry.line}",) if several else ()) + row


def _audit_list(args: argparse.Namespace) -> int:
    """Streaming: memory holds the first rows (for the table's widths), with --json none."""
    now = datetime.now(UTC)
    keep = _filter(args, now)
    own = any(e.startswith("audit") for e in keep.events)  # seals and rotations only when asked
    paths = _paths(args)
    problems: list[str] = []
    seen = 0

    def counted(entry: Entry) -> bool:
        nonlocal seen
        seen += 1
        return keep.keep(entry) and (own or not entry.record["event"].startswith("audit."))

    progress = _progress(paths, "reading")
    kept = merged(paths, counted, problems, progress)
    if args.json:
        print('{"records": [', end="")
        for n, e in enumerate(kept):
            print(("," if n else "") + "\n  " + json.dumps({"file": e.file, "line": e.line, **e.record},
                                                          default=str), end="")
        progress.close()
        print("\n]}")
    else:
        out = _TableOut(len(paths) > 1)
        for e in kept:
            out.add(e)
        progress.close()
        out.close()
        print(f"{out.count} of {seen} records")
    for problem in problems:
        _err(problem)
    return EXIT_PROBLEMS if problems else EXIT_OK


class _TableOut:
    """The table: widths from the first rows, then every row as it comes."""

    def __init__(self, several: bool) -> None:
        self.several = several
        self.head = ((("FILE:LINE",) if several else ())
                     + ("TIME", "EVENT", "RULE", "ALERT", "OUTCOME", "DETAIL"))
        self.rows: list[tuple[str, ...]] = [self.head]
        self.widths: list[int] | None = None
        self.count = 0

    def add(self, e: Entry) -> None:
        self.count += 1
        row = _row(e, self.several)
        if self.widths is None:
            self.rows.append(row)
            if len(self.rows) > _WIDTH_ROWS:
                self._flush()
        else:
            self._print(row, "  ".join(c.ljust(w) for c, w in zip(row, self.widths, strict=True)).rstrip())

    def _flush(self) -> None:
        self.widths = [max(len(r[i]) for r in self.rows) for i in range(len(self.head))]
        for n, line in enumerate(table(self.rows)):
            self._print(self.rows[n], line, bold=n == 0)
        self.rows = []

    @staticmethod
    def _print(row: tuple[str, ...], line: str, bold: bool = False) -> None:
        colour = "bold" if bold else _OUTCOME_COLOUR.get(row[-2])
        print(paint(line, colour) if colour else line)

    def close(self) -> None:
        if self.widths is None:
            self._flush()


def _audit_timeline(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    if not args.alert and not args.since:
        raise AuditReadError("say which incident: --alert FINGERPRINT, or --since (every alert since then)")
    keep = Filter(since=parse_when(args.since, now) if args.since else None,
                  until=parse_when(args.until, now) if args.until else None)
    paths = _paths(args)
    problems: list[str] = []
    progress = _progress(paths, "reading")
    # the alerts with a record in the window, each told whole (from its first record)
    wanted = args.alert or sorted({str(e.record["fingerprint"])
                                   for e in merged(paths, keep, problems, progress)
                                   if e.record.get("fingerprint")})
    entries = incident_entries(paths, wanted, problems if args.alert else None, progress) if wanted else []
    progress.close()
    for problem in problems:
        _err(problem)
    timelines = build_timelines(entries, wanted) if wanted else []
    if not timelines:
        raise AuditReadError("no record of " + (f"alert {', '.join(args.alert)}" if args.alert
                                                else "any alert in that window"))
    if args.json:
        print_json({"timelines": [_timeline_dict(t, now) for t in timelines]})
    else:
        print("\n".join(markdown(t, now) for t in timelines), end="")
    return EXIT_PROBLEMS if problems else EXIT_OK


def _timeline_dict(t: Timeline, now: datetime) -> dict[str, Any]:
    return {"fingerprint": t.fingerprint, "alertname": t.alertname,
            "fired": t.fired, "resolved": t.resolved, "responded": t.responded, "priority": t.priority,
            "response_target_seconds": t.target.total_seconds() if t.target else None,
            "response": verdict(t, now).replace("**", ""),
            "events": [{"time": at, "event": text} for at, text in sorted(t.rows, key=lambda r: r[0])]}


def _guarded(func: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            code: int = func(args)
        except AuditReadError as exc:
            _err(str(exc))
            return EXIT_USAGE
        return code
    return run


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", type=Path, nargs="*",
                        help="audit logs (a live file brings its rotated files; a directory, every log in "
                             "it); several replicas' merged by time (default: the config's)")
    parser.add_argument("--config", type=Path, help="read the audit path (and keys) from this service config")


def add_audit_commands(sub: Any) -> None:
    audit = sub.add_parser("audit", help="audit log tools").add_subparsers(
        dest="audit_command", required=True, metavar="SUBCOMMAND")
    verify = audit.add_parser("verify", help="prove audit logs: the chain; with a key, seals and anchor")
    _common(verify)
    verify.add_argument("--key", action="append", metavar="REF",
                        help="a sealing key, env:NAME or file:/path (repeatable: old and new keys; "
                             "default: the config's audit.key and audit.verify_keys)")
    verify.set_defaults(func=_guarded(_audit_verify))

    listing = audit.add_parser("list", help="records, filtered, merged over files, newest last")
    _common(listing)
    listing.add_argument("--since", help="a duration back from now (2h) or an RFC 3339 time")
    listing.add_argument("--until", help="a duration back from now or an RFC 3339 time")
    listing.add_argument("--rule", action="append", help="only this rule (repeatable)")
    listing.add_argument("--alert", action="append", metavar="FINGERPRINT",
                         help="only this alert; a prefix is enough (repeatable)")
    listing.add_argument("--event", action="append", help="rule.matched, or approval.* (repeatable)")
    listing.add_argument("--outcome", action="append",
                         help="outcome or reason: succeeded, failed, blocked, cooldown, ... (repeatable)")
    listing.add_argument("--json", action="store_true", help="the records as JSON, with file and line")
    listing.set_defaults(func=_guarded(_audit_list))

    timeline = audit.add_parser("timeline", help="a Markdown incident timeline for a post-mortem")
    _common(timeline)
    timeline.add_argument("--alert", action="append", metavar="FINGERPRINT",
                          help="the alert (a prefix is enough; repeatable)")
    timeline.add_argument("--since", help="every alert with records since: a duration or an RFC 3339 time")
    timeline.add_argument("--until", help="a duration back from now or an RFC 3339 time")
    timeline.add_argument("--json", action="store_true", help="the timelines as JSON")
    timeline.set_defaults(func=_guarded(_audit_timeline))
