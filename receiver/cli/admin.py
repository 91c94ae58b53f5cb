"""``remediator approvals list|show|approve|reject`` and ``remediator pause|resume``: the CLI
side of ``/api/v1``, for people at a terminal during an incident.

Registered by ``receiver.cli.main.build_parser``. Talks to a running ``serve`` over HTTP
(``--url``, default ``$REMEDIATOR_URL`` or http://127.0.0.1:9095) with a token given as a
reference (``--token env:NAME`` or ``file:/path``, ``--token-file PATH``, default
``env:REMEDIATOR_TOKEN`` when set), never as a literal on the command line. Exit codes: 0
done, 1 refused (404, 409), 2 usage, connection or credential problems.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import Any

from receiver.cli.output import table
from remediations.secrets import SecretError, resolve_secret

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
_TIMEOUT = 10.0


class _Failed(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _call(args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    url = args.url.rstrip("/") + path
    headers = {"Accept": "application/json"}
    token_ref = args.token or (f"file:{args.token_file}" if args.token_file else None) or (
        "env:REMEDIATOR_TOKEN" if os.environ.get("REMEDIATOR_TOKEN") else None)
    if token_ref is not None:
        try:
            headers["Authorization"] = "Bearer " + resolve_secret(token_ref).reveal()
        except SecretError as exc:
            which = "--token-file" if args.token_file and not args.token else "--token"
            raise _Failed(EXIT_USAGE, f"{which}: {exc}") from None
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    except ValueError:
        raise _Failed(EXIT_USAGE, f"--url: {args.url!r} is not an http(s) URL") from None
    if request.type not in ("http", "https"):
        raise _Failed(EXIT_USAGE, f"--url: {args.url!r} is not an http(s) URL")
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as resp:  # noqa: S310 - http(s) only
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("detail", exc.reason)
        except ValueError:
            detail = exc.reason
        code = EXIT_REFUSED if exc.code in (404, 409) else EXIT_USAGE
        raise _Failed(code, f"{method} {path}: {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _Failed(EXIT_USAGE, f"cannot reach remediator at {args.url}: {reason}") from None


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _approvals_list(args: argparse.Namespace) -> int:
    query = "" if args.all else "?status=pending"
    approvals = _call(args, "GET", "/api/v1/approvals" + query)["approvals"]
    if args.json:
        print(json.dumps(approvals, indent=2))
        return EXIT_OK
    if not approvals:
        print("no pending approvals" if not args.all else "no approvals")
        return EXIT_OK
    rows = [("ID", "STATUS", "PRIORITY", "RULE", "ALERT", "EXPIRES", "DECIDED BY")] + [
        (a["id"], a["status"], str(a["payload"].get("priority", "?")), a["rule"],
         a["payload"].get("alertname") or a["fingerprint"], _when(a["expires_at"]), a["decided_by"] or "-")
        for a in approvals
    ]
    print("\n".join(table(rows)))
    for a in approvals:
        lines = [line for step in a["payload"].get("steps", []) for line in step["plan"]["steps"]]
        print(f"\n{a['id']} plan:")
        for n, line in enumerate(lines, start=1):
            print(f"  {n}. {line}")
        if a["comment"]:
            print(f"  comment: {a['comment']}")
    return EXIT_OK


def _approval_show(args: argparse.Namespace) -> int:
    a = _call(args, "GET", f"/api/v1/approvals/{urllib.parse.quote(args.id, safe='')}")
    if args.json:
        print(json.dumps(a, indent=2))
        return EXIT_OK
    payload = a["payload"]
    labels = ", ".join(f"{k}={v}" for k, v in sorted((payload.get("labels") or {}).items()))
    rows = [("approval", a["id"]), ("status", a["status"]), ("rule", a["rule"]),
            ("priority", str(payload.get("priority", "?"))),
            ("alert", f"{payload.get('alertname') or '-'} {a['fingerprint']}"), ("labels", labels or "-"),
            ("requested", _when(a["created_at"])), ("expires", _when(a["expires_at"]))]
    if a["decided_by"]:
        rows.append(("decided", f"by {a['decided_by']} at {_when(a['decided_at'])}"
                     + (f": {a['comment']}" if a["comment"] else "")))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")
    print("plan:")
    for n, line in enumerate((line for step in payload.get("steps", []) for line in step["plan"]["steps"]),
                             start=1):
        print(f"  {n}. {line}")
    for diag in payload.get("diagnostics", []):
        result = diag.get("result") or {}
        print(f"diagnosis {diag.get('step')} ({diag.get('action')}): {result.get('summary', '')}")
    if a["status"] == "pending":
        print(f"approve: remediator approvals approve {a['id']}")
        print(f"reject:  remediator approvals reject {a['id']}")
    return EXIT_OK


def _decide(args: argparse.Namespace, verb: str) -> int:
    body = {"comment": args.comment} if args.comment else None
    answer = _call(args, "POST", f"/api/v1/approvals/{args.id}/{verb}", body)
    print(f"approval {answer['id']} {answer['status']} by {answer['decided_by']}")
    return EXIT_OK


def _pause(args: argparse.Namespace) -> int:
    answer = _call(args, "POST", "/api/v1/pause", {"reason": args.reason} if args.reason else None)
    print(("paused" if answer["changed"] else "already paused")
          + f" by {answer['actor']} ({answer['source']}): {answer['detail']}")
    return EXIT_OK


def _resume(args: argparse.Namespace) -> int:
    answer = _call(args, "POST", "/api/v1/resume")
    print("resumed" if answer["changed"] else "was not paused")
    return EXIT_OK


def _run(func: Any) -> Any:
    def wrapped(args: argparse.Namespace) -> int:
        try:
            code: int = func(args)
        except _Failed as exc:
            print(f"remediator: {exc}", file=sys.stderr)
            return exc.code
        return code

    return wrapped


def _connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=os.environ.get("REMEDIATOR_URL", "http://127.0.0.1:9095"),
                        help="the serve to talk to (default $REMEDIATOR_URL or http://127.0.0.1:9095)")
    token = parser.add_mutually_exclusive_group()
    token.add_argument("--token", help="credential reference env:NAME or file:/path "
                                       "(default env:REMEDIATOR_TOKEN when set)")
    token.add_argument("--token-file", metavar="PATH", help="read the token from this file (same as "
                                                            "--token file:PATH)")


def add_admin_commands(sub: Any) -> None:
    """Add ``approvals`` and ``pause``/``resume`` to the CLI's subcommands."""
    approvals = sub.add_parser("approvals", help="list, show, approve or reject approvals").add_subparsers(
        dest="approvals_command", required=True, metavar="SUBCOMMAND")
    listing = approvals.add_parser("list", help="pending approvals with their plans")
    listing.add_argument("--all", action="store_true", help="decided ones too")
    listing.add_argument("--json", action="store_true")
    _connection(listing)
    listing.set_defaults(func=_run(_approvals_list))
    show = approvals.add_parser("show", help="one approval: alert, plan, diagnostics, decision")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    _connection(show)
    show.set_defaults(func=_run(_approval_show))
    for verb in ("approve", "reject"):
        p = approvals.add_parser(verb, help=f"{verb} one approval (approver role)")
        p.add_argument("id")
        p.add_argument("--comment", help="recorded in the audit log")
        _connection(p)
        p.set_defaults(func=_run(lambda args, v=verb: _decide(args, v)))
    pause = sub.add_parser("pause", help="stop every live action on every replica (admin role)")
    pause.add_argument("--reason", help="recorded in the audit log and shown while paused")
    _connection(pause)
    pause.set_defaults(func=_run(_pause))
    resume = sub.add_parser("resume", help="lift a pause, the admin's or the blast radius's (admin role)")
    _connection(resume)
    resume.set_defaults(func=_run(_resume))
