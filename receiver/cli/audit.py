"""``remediator audit verify|list|timeline``: the audit log from the command line.

Registered by ``receiver.cli.main.build_parser``; reading is ``receiver.tools.auditview``'s, the
chain check ``receiver.audit.verify_file``. Files default to the config's ``audit:``
(``--config``), else ``remediator-audit.jsonl``. Exit codes: 0 ok; 1 a chain is broken
(verify) or a line is not a record (list, timeline: it is skipped and named on stderr);
2 bad usage (a file that cannot be read, a filter that does not parse, no alert found).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from receiver.audit import verify_file
from receiver.cli.output import paint, print_json, table
from receiver.settings import load_settings
from receiver.tools.auditview import (
    AuditReadError,
    Entry,
    Filter,
    incident_entries,
    known_event,
    merged,
    parse_when,
    summary,
)
from receiver.tools.timeline import Timeline, build_timelines, markdown, verdict

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
_OUTCOME_COLOUR = {"succeeded": "green", "failed": "red", "blocked": "yellow", "awaiting_approval": "yellow"}


def _err(message: str) -> None:
    print(f"remediator: {message}", file=sys.stderr)


def _files(args: argparse.Namespace) -> list[Path]:
    if args.files:
        return list(args.files)
    return [load_settings(args.config).audit if args.config else Path("remediator-audit.jsonl")]


def _audit_verify(args: argparse.Namespace) -> int:
    status = EXIT_OK
    for path in _files(args):
        if not path.is_file():
            _err(f"{path}: {'a directory, not an audit file' if path.is_dir() else 'no such file'}")
            status = EXIT_USAGE
            continue
        report = verify_file(path)
        if report.ok:
            print(f"{path}: ok, {report.records} records, chain intact")
        else:
            print(f"{path}:{report.line}: broken: {report.error} "
                  f"({report.records} records verified before it)")
            status = max(status, EXIT_PROBLEMS)
    return status


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
    """Streaming: memory holds the records kept (for the table's widths), with --json not even those."""
    now = datetime.now(UTC)
    keep = _filter(args, now)
    paths = _files(args)
    problems: list[str] = []
    seen = 0

    def counted(entry: Entry) -> bool:
        nonlocal seen
        seen += 1
        return keep.keep(entry)

    kept = merged(paths, counted, problems)
    several = len(paths) > 1
    if args.json:
        print('{"records": [', end="")
        for n, e in enumerate(kept):
            print(("," if n else "") + "\n  " + json.dumps({"file": e.file, "line": e.line, **e.record},
                                                          default=str), end="")
        print("\n]}")
    else:
        head = (("FILE:LINE",) if several else ()) + ("TIME", "EVENT", "RULE", "ALERT", "OUTCOME", "DETAIL")
        rows: list[tuple[str, ...]] = [head] + [_row(e, several) for e in kept]
        lines = table(rows)
        for n, line in enumerate(lines):
            colour = _OUTCOME_COLOUR.get(rows[n][-2]) if n else "bold"
            print(paint(line, colour) if colour else line)
        print(f"{len(rows) - 1} of {seen} records")
    for problem in problems:
        _err(problem)
    return EXIT_PROBLEMS if problems else EXIT_OK


def _audit_timeline(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    if not args.alert and not args.since:
        raise AuditReadError("say which incident: --alert FINGERPRINT, or --since (every alert since then)")
    keep = Filter(since=parse_when(args.since, now) if args.since else None,
                  until=parse_when(args.until, now) if args.until else None)
    paths = _files(args)
    problems: list[str] = []
    # the alerts with a record in the window, each told whole (from its first record)
    wanted = args.alert or sorted({str(e.record["fingerprint"]) for e in merged(paths, keep, problems)
                                   if e.record.get("fingerprint")})
    entries = incident_entries(paths, wanted, problems if args.alert else None) if wanted else []
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
                        help="audit files, several replicas' merged by time (default: the config's)")
    parser.add_argument("--config", type=Path, help="read the audit path from this service config")


def add_audit_commands(sub: Any) -> None:
    audit = sub.add_parser("audit", help="audit log tools").add_subparsers(
        dest="audit_command", required=True, metavar="SUBCOMMAND")
    verify = audit.add_parser("verify", help="prove the hash chain of audit files")
    _common(verify)
    verify.set_defaults(func=_audit_verify)

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
