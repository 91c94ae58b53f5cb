"""``remediator config check FILE``: would ``serve`` start with this config, and what would it run?

Registered by ``receiver.cli.main.build_parser``. Checks what ``serve`` checks before it
listens, all of it and every problem at once: the YAML (read by ``rules.yamldoc``, as rule
files are), every key (unknown keys, types, secrets that do not resolve; each with its
targets (as ``rules lint --config`` does), a listen address beyond loopback with no
line), the rules it names loaded against its targets (as ``rules lint --config`` does), a
listen address beyond loopback with no credentials, the audit log's directory, and a
SQLite state file: the path its URL names (``receiver.store.connect.sqlite_path``), opened
read-only when it exists, else its directory (a Redis store is not contacted: serve waits
for one that is not up yet). Exit 0 it
would start; 1 problems found (listed); 2 the file cannot be read.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from receiver.cli.output import paint, print_json
from receiver.errors import StateError
from receiver.settings import Settings
from receiver.store.connect import sqlite_path
from remediations.registry import default_registry
from rules.errors import RuleLoadError
from rules.loader import default_pack_paths, load_rules
from rules.yamldoc import located_errors, read_yaml_bytes

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def listen_refusal(settings: Settings, *, insecure_no_auth: bool) -> str | None:
    """Why ``serve`` must not start with these settings, or None when it may."""
    if settings.listens_beyond_loopback and not settings.auth.configured and not insecure_no_auth:
        return (
            f"refusing to listen on {settings.listen} with no credentials configured: anyone who "
            "can reach it could trigger remediations. Configure auth.tokens, listen on loopback, "
            "or pass --insecure-no-auth if something in front of remediator authenticates."
        )
    return None


def _settings(path: Path, problems: list[str]) -> Settings | None:
    name = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        problems.append(f"{name}: cannot read the config: {exc}")
        return None
    document = read_yaml_bytes(raw, name)
    if document.found:
        problems += [str(p) for p in document.problems()]
        return None
    data = document.data
    if data is not None and not isinstance(data, dict):
        problems.append(f"{name}: the top level must be a mapping of settings")
        return None
    try:
        return Settings.model_validate(data or {})
    except ValidationError as exc:
        problems += located_errors(exc, name, document.line)
    return None


def state_problems(config: Path, settings: Settings) -> list[str]:
    """Why serve could not open the SQLite state file the config names (none for Redis)."""
    if not settings.state_url.startswith("sqlite:"):
        return []
    try:
        where = sqlite_path(settings.state_url).absolute()
    except StateError as exc:
        return [f"{config}: state: {exc}"]
    if where.exists():
        if not where.is_file():
            return [f"{config}: state: {where} is not a file"]
        try:
            with contextlib.closing(sqlite3.connect(f"{where.as_uri()}?mode=ro", uri=True)) as db:
                db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            return [f"{config}: state: cannot open {where}: {exc}"]
        if not os.access(where, os.R_OK | os.W_OK):
            return [f"{config}: state: {where} is not writable"]
        return []
    if not where.parent.is_dir():
        return [f"{config}: state: directory {where.parent} does not exist (for the database {where})"]
    if not os.access(where.parent, os.W_OK | os.X_OK):
        return [f"{config}: state: cannot create {where}: directory {where.parent} is not writable"]
    return []


def _summary(settings: Settings, rules: int) -> dict[str, Any]:
    return {"listen": settings.listen, "dry_run": settings.dry_run,
            "state": settings.state_shown,
            "audit": str(settings.audit), "rules": rules, "targets": sorted(settings.targets),
            "notifiers": sorted(settings.notifiers), "auth": settings.auth.configured,
            "tls": settings.tls is not None}


def _config_check(args: argparse.Namespace) -> int:
    path: Path = args.file
    if not path.is_file():
        print(f"remediator: {path}: {'a directory, not a config file' if path.is_dir() else 'no such file'}")
        return EXIT_USAGE
    problems: list[str] = []
    settings = _settings(path, problems)
    rules = 0
    if settings is not None:
        paths = list(settings.rules) if settings.rules else default_pack_paths()
        try:
            loaded = load_rules(paths, catalogue=default_registry(),
                                targets={n: t.kind for n, t in settings.targets.items()},
                                priorities=settings.priorities)
            rules = len(loaded.ruleset.rules)
        except RuleLoadError as exc:
            problems += [f"rules: {p}" for p in exc.problems if p.severity == "error"]
        refusal = listen_refusal(settings, insecure_no_auth=False)
        if refusal is not None:
            problems.append(f"{path}: listen: {refusal}")
        if not settings.audit.parent.is_dir():
            problems.append(f"{path}: audit: directory {settings.audit.parent} does not exist")
        problems += state_problems(path, settings)
    if args.json:
        print_json({"ok": not problems, "problems": problems,
                    "config": _summary(settings, rules) if settings is not None and not problems else None})
    else:
        for problem in problems:
            print(paint(problem, "red"))
        if problems:
            print(paint(f"{path}: {len(problems)} problems; serve would not start", "red"))
        else:
            assert settings is not None
            s = _summary(settings, rules)
            print(f"{path}: ok. listen {s['listen']}, {'dry-run' if s['dry_run'] else 'LIVE'}, "
                  f"state {s['state']}, audit {s['audit']}, {rules} rules, "
                  f"{len(s['targets'])} targets, {len(s['notifiers'])} notifiers, "
                  f"auth {'on' if s['auth'] else 'off'}, tls {'on' if s['tls'] else 'off'}")
    return EXIT_PROBLEMS if problems else EXIT_OK


def add_config_commands(sub: Any) -> None:
    config = sub.add_parser("config", help="service config tools").add_subparsers(
        dest="config_command", required=True, metavar="SUBCOMMAND")
    check = config.add_parser("check", help="would serve start with this config: every problem, its line")
    check.add_argument("file", type=Path)
    check.add_argument("--json", action="store_true", help="problems and a summary as JSON")
    check.set_defaults(func=_config_check)
