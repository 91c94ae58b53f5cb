"""The ``remediator`` command line (also ``python -m receiver``).

Subcommands: ``serve``, ``audit verify|list|timeline`` (``receiver.cli.audit``), ``rules schema``,
``rules lint|test`` (``receiver.cli.rules``), ``simulate`` (``receiver.cli.simulate``), ``actions list``,
``config check`` (``receiver.cli.config``), ``approvals list|show|approve|reject``, ``pause``,
``resume`` (those three in ``receiver.cli.admin``), ``health`` (``receiver.cli.health``), ``--version``.
Exit codes: 0 success, 1 a check found problems, 2 bad usage or configuration. Errors are
one clear line each (file, line and rule where there are some), never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from receiver import version
from receiver.cli.admin import add_admin_commands
from receiver.cli.audit import add_audit_commands
from receiver.cli.config import add_config_commands, listen_refusal
from receiver.cli.health import add_health_command
from receiver.cli.output import table
from receiver.cli.rules import add_rules_lint, add_rules_test
from receiver.cli.simulate import add_simulate
from receiver.errors import ConfigError, ReceiverError
from receiver.settings import load_settings
from rules.errors import RemediatorError, RuleLoadError

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def _err(message: str) -> None:
    print(f"remediator: {message}", file=sys.stderr)


def _serve(args: argparse.Namespace) -> int:
    from receiver.http.server import serve  # noqa: PLC0415 - keeps `rules lint` start-up light
    from receiver.logs import configure_logging  # noqa: PLC0415 - only serve logs

    overrides: dict[str, Any] = {}
    if args.listen:
        overrides["listen"] = args.listen
    if args.rules:
        overrides["rules"] = args.rules
    if args.dry_run:
        overrides["dry_run"] = True
    settings = load_settings(args.config, overrides=overrides)
    why = listen_refusal(settings, insecure_no_auth=args.insecure_no_auth)
    if why is not None:
        _err(why)
        return EXIT_USAGE
    configure_logging(level=settings.log.level, fmt=settings.log.format)
    asyncio.run(serve(settings))
    return EXIT_OK


def _rules_schema(args: argparse.Namespace) -> int:
    from remediations.registry import default_registry  # noqa: PLC0415
    from rules.schema import schema_json  # noqa: PLC0415

    sys.stdout.write(schema_json(default_registry()))
    return EXIT_OK


def _actions_list(args: argparse.Namespace) -> int:
    from remediations.registry import default_registry  # noqa: PLC0415

    described = default_registry().describe()
    if args.json:
        print(json.dumps(described, indent=2))
        return EXIT_OK
    rows = [("ACTION", "DESTRUCTIVE", "TARGET KINDS", "PERMISSIONS")] + [
        (a["name"], "yes" if a["destructive"] else "no", ",".join(a["target_kinds"]) or "-",
         ", ".join(a["permissions"]) or "-")
        for a in described
    ]
    print("\n".join(table(rows)))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="remediator", description="Guarded, audited remediation for Alertmanager alerts."
    )
    parser.add_argument("--version", action="version", version=f"remediator {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="receive Alertmanager webhooks and remediate")
    serve.add_argument("--config", type=Path, help="service config (YAML); every key has a default")
    serve.add_argument("--listen", help="HOST:PORT, overrides the config")
    serve.add_argument("--rules", type=Path, nargs="+", help="rule files or folders, overrides the config")
    serve.add_argument("--dry-run", action="store_true", help="plan and audit, never execute")
    serve.add_argument("--insecure-no-auth", action="store_true",
                       help="allow listening beyond loopback with no credentials configured")
    serve.set_defaults(func=_serve)

    add_audit_commands(sub)

    rules = sub.add_parser("rules", help="rule tools").add_subparsers(
        dest="rules_command", required=True, metavar="SUBCOMMAND")
    add_rules_lint(rules)
    schema = rules.add_parser("schema", help="print the JSON Schema of rule files")
    schema.set_defaults(func=_rules_schema)
    add_rules_test(rules)

    actions = sub.add_parser("actions", help="the action catalogue").add_subparsers(
        dest="actions_command", required=True, metavar="SUBCOMMAND")
    listing = actions.add_parser("list", help="every action: destructive, target kinds, permissions")
    listing.add_argument("--json", action="store_true", help="each action with its params schema, as JSON")
    listing.set_defaults(func=_actions_list)
    add_simulate(sub)
    add_config_commands(sub)
    add_admin_commands(sub)
    add_health_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        sys.stdout.flush()  # inside the try: a reader gone (`| head`) is a BrokenPipeError here
    except ConfigError as exc:
        _err(f"configuration: {exc}")
        return EXIT_USAGE
    except RuleLoadError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        _err("rules did not load; nothing was started")
        return EXIT_USAGE
    except (ReceiverError, RemediatorError) as exc:
        _err(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader (`| head`) has gone: no traceback, and no second error when Python
        # flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return code
