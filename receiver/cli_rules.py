"""``remediator rules test``: the command-line face of ``receiver.ruletest``.

Registered by ``receiver.cli.build_parser`` under ``rules``. Exit codes: 0 every case
passed; 1 a case failed or the rules under test did not load; 2 a test file is unusable
(unreadable, bad YAML, unknown key) or bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from receiver.cli_output import paint, print_json
from receiver.logs import errors_to_stderr
from receiver.ruletest import FileResult, Mismatch, run_file

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _mismatch_lines(m: Mismatch) -> list[str]:
    where = f"step {m.step}" + (f" (line {m.line})" if m.line else "")
    if m.decision is not None:
        where += f", decision {m.decision} (rule {m.rule})"
    lines = [f"      {where}: {m.field}",
             paint(f"        - expected: {_show(m.expected)}", "red"),
             paint(f"        + got:      {_show(m.got)}", "green")]
    if m.detail:
        lines.append(f"          ({m.detail})")
    return lines


def _print_text(results: list[FileResult]) -> None:
    for result in results:
        for error in result.errors:
            print(paint("ERROR", "red") + f" {error}")
        for case in result.cases:
            where = f"{result.file}:{case.line}" if case.line else result.file
            if case.ok:
                print(f"{paint('ok  ', 'green')}  {where}  {case.name}")
                continue
            print(f"{paint('FAIL', 'red')}  {where}  {case.name}")
            if case.error:
                print(f"      {case.error}")
            for mismatch in case.failures:
                for line in _mismatch_lines(mismatch):
                    print(line)
    cases = [c for r in results for c in r.cases]
    failed = sum(not c.ok for c in cases)
    broken = sum(bool(r.errors) for r in results)
    summary = f"{len(cases)} cases, {failed} failed" + (f", {broken} files with errors" if broken else "")
    print(paint(summary, "red" if failed or broken else "green"))


async def _run_all(paths: list[Path]) -> list[FileResult]:
    return [await run_file(p) for p in paths]


def _rules_test(args: argparse.Namespace) -> int:
    with errors_to_stderr():
        results = asyncio.run(_run_all(args.files))
    cases = [c for r in results for c in r.cases]
    if args.json:
        print_json({"ok": all(r.ok for r in results), "cases": len(cases),
                    "failed": sum(not c.ok for c in cases), "files": [r.as_dict() for r in results]})
    else:
        _print_text(results)
    if any(r.unusable for r in results):
        return EXIT_USAGE
    return EXIT_OK if all(r.ok for r in results) else EXIT_PROBLEMS


def add_rules_test(rules: Any) -> None:
    """``rules test FILE…`` under the ``rules`` subcommands."""
    test = rules.add_parser("test", help="run rule unit tests (docs/rules.md, Testing rules)")
    test.add_argument("files", type=Path, nargs="+", help="test files (YAML)")
    test.add_argument("--json", action="store_true", help="results, with what each step did, as JSON")
    test.set_defaults(func=_rules_test)
