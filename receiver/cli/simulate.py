"""``remediator simulate``: the command-line face of ``receiver.tools.simulate``.

Registered by ``receiver.cli.main.build_parser``. Exit codes: 0 simulated; 2 a payload, the
config, the rules or the state file cannot be used (named with file, line, JSON path).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from receiver.cli.output import paint, print_json, table
from receiver.clock import ManualClock
from receiver.logs import errors_to_stderr
from receiver.settings import load_settings
from receiver.tools.sandbox import Sandbox, recording_registry, sandbox_settings
from receiver.tools.simulate import AlertReport, Simulation, SimulationError, read_feeds, report_dict
from rules.durations import format_duration

EXIT_OK, EXIT_USAGE = 0, 2
_VERDICT_COLOUR = {"ok": "green", "blocked": "red", "required": "yellow"}


def copy_state(source: Path, workdir: Path) -> Path:
    """A consistent copy of a SQLite state file (WAL included), the source opened read-only."""
    if not source.is_file():
        raise SimulationError(f"--state {source}: no such file")
    dest = workdir / "state.db"
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(dest)
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise SimulationError(f"--state {source}: not a readable SQLite state file: {exc}") from None
    return dest


async def _simulate(args: argparse.Namespace) -> list[AlertReport]:
    feeds = read_feeds(args.payload)
    overrides: dict[str, Any] = {"rules": [str(p) for p in args.rules]} if args.rules else {}
    config = load_settings(args.config, overrides=overrides)
    start = next((f.at for f in feeds if f.at is not None), None) or time.time()
    clock = ManualClock(start)
    with tempfile.TemporaryDirectory(prefix="remediator-simulate-") as tmp:
        workdir = Path(tmp)
        state = copy_state(args.state, workdir) if args.state else None
        settings = sandbox_settings(config, rules=None, workdir=workdir,
                                    dry_run=False if args.live else None, state_file=state)
        registry = recording_registry(real_plans=args.plan)
        async with Sandbox(settings, clock=clock, registry=registry) as sandbox:
            simulation = Simulation(sandbox, clock)
            return [r for feed in feeds for r in await simulation.feed(feed)]


def _print(reports: list[AlertReport]) -> None:
    for report in reports:
        head = "  ".join((report.source, report.at, report.alertname or "-", report.fingerprint,
                          report.status))
        print(paint(head, "bold"))
        if not report.decisions:
            print("  no rule matches")
        for d in report.decisions:
            target = (f" (respond within {format_duration(timedelta(seconds=d.response_target_seconds))})"
                      if d.response_target_seconds is not None else "")
            mode = " [dry-run]" if d.dry_run else ""
            print(f"  rule {d.rule}  {d.priority}{target}{mode}  ->  {d.outcome}"
                  + (f": {d.detail}" if d.detail else ""))
            rows = [("GUARD", "VERDICT", "DETAIL")] + [(g.guard, g.verdict, g.detail) for g in d.guards]
            for n, line in enumerate(table(rows)):
                verdict = rows[n][1]
                print("    " + (paint(line, _VERDICT_COLOUR[verdict]) if n and verdict in _VERDICT_COLOUR
                                else line))
            for kind, steps in (("diagnose", d.diagnose), ("plan", d.plan)):
                for n, step in enumerate(steps, start=1):
                    where = f" on {step['target']}" if step["target"] else ""
                    if not step["read_from_target"]:
                        print(f"    {kind} {n}. {step['action']}{where} "
                              f"{json.dumps(step['params'], sort_keys=True)}")
                        continue
                    print(f"    {kind} {n}. {step['action']}{where}, as read from the target now:")
                    for line in step["steps"]:
                        print(f"         {line}")
        print()


def _simulate_command(args: argparse.Namespace) -> int:
    try:
        with errors_to_stderr():
            reports = asyncio.run(_simulate(args))
    except SimulationError as exc:
        print(f"remediator: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print_json({"alerts": [report_dict(r) for r in reports]})
    else:
        _print(reports)
    return EXIT_OK


def add_simulate(sub: Any) -> None:
    simulate = sub.add_parser("simulate", help="what the service would do with a webhook; nothing is run")
    simulate.add_argument("payload", type=Path,
                          help="a webhook body (JSON), or JSON Lines of them, each with a timestamp")
    simulate.add_argument("--rules", type=Path, nargs="+", help="rule files or folders, overrides the config")
    simulate.add_argument("--config", type=Path, help="service config (targets, guards, dry_run, ...)")
    simulate.add_argument("--state", type=Path,
                          help="a SQLite state file, read through a copy: guards say what they would now")
    simulate.add_argument("--live", action="store_true", help="as if dry_run were false")
    simulate.add_argument("--plan", action="store_true",
                          help="ask each action's read-only plan() against the configured targets "
                               "(reads them; still runs nothing)")
    simulate.add_argument("--json", action="store_true", help="the report as JSON")
    simulate.set_defaults(func=_simulate_command)
