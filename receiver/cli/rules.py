"""``remediator rules lint`` and ``rules test``: the rule tools an SRE runs before a change.

Registered by ``receiver.cli.main.build_parser`` under ``rules``. ``lint`` loads rules exactly
as ``serve`` does (``rules.loader``: every load problem), then the checks of ``rules.lint``
and ``receiver.tools.rulelint``; exit 1 on errors, 0 with warnings unless ``--strict``.
``test`` runs ``receiver.tools.ruletest``: exit 0 every case passed; 1 a case failed or the
rules under test did not load; 2 a test file is unusable (unreadable, bad YAML, unknown
key) or bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from receiver.cli.output import paint, print_json
from receiver.logs import errors_to_stderr
from receiver.settings import load_settings
from receiver.tools.rulecases import FileResult, Mismatch
from receiver.tools.rulelint import lint_actions
from receiver.tools.ruletest import run_file
from remediations.registry import default_registry
from rules.errors import RuleLoadError
from rules.lint import CHECKS
from rules.loader import default_pack_paths, load_rules

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


def _rules_lint(args: argparse.Namespace) -> int:
    settings = load_settings(args.config) if args.config else None
    targets = {n: t.kind for n, t in settings.targets.items()} if settings else None
    paths = args.paths or (list(settings.rules) if settings and settings.rules else default_pack_paths())
    registry = default_registry()
    rules = 0
    try:
        result = load_rules(paths, catalogue=registry, targets=targets,
                            priorities=settings.priorities if settings else None)
    except RuleLoadError as exc:
        problems = exc.problems
    else:
        rules = len(result.ruleset.rules)
        found = lint_actions(result.ruleset, registry=registry, settings=settings, ignore=args.ignore or ())
        problems = sorted(result.warnings + found, key=lambda p: (p.file, p.line or 0))
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    if args.json:
        print_json({"ok": not errors and not (args.strict and warnings), "rules": rules, "errors": errors,
                    "warnings": warnings, "problems": [
                        {"file": p.file, "line": p.line, "rule": p.rule, "severity": p.severity,
                         "message": p.message} for p in problems]})
    else:
        for problem in problems:
            print(paint(str(problem), "red" if problem.severity == "error" else "yellow"))
        if not errors:
            print(f"{rules} rules ok, {warnings} warnings")
        else:
            print(paint(f"{errors} errors, {warnings} warnings", "red"))
    return EXIT_PROBLEMS if errors or (args.strict and warnings) else EXIT_OK


def add_rules_lint(rules: Any) -> None:
    """``rules lint [PATH…]`` under the ``rules`` subcommands."""
    lint = rules.add_parser("lint", help="load rules as serve does and report every problem")
    lint.add_argument("paths", type=Path, nargs="*",
                      help="files or folders (default: the config's, or the shipped pack)")
    lint.add_argument("--config", type=Path,
                      help="check targets, allow-lists and notifiers against this service config")
    lint.add_argument("--strict", action="store_true", help="warnings fail too")
    lint.add_argument("--ignore", action="append", choices=CHECKS, metavar="CHECK",
                      help=f"turn a check off (repeatable): {', '.join(CHECKS)}")
    lint.add_argument("--json", action="store_true", help="the problems as JSON")
    lint.set_defaults(func=_rules_lint)


def add_rules_test(rules: Any) -> None:
    """``rules test FILE…`` under the ``rules`` subcommands."""
    test = rules.add_parser("test", help="run rule unit tests (docs/rules.md, Testing rules)")
    test.add_argument("files", type=Path, nargs="+", help="test files (YAML)")
    test.add_argument("--json", action="store_true", help="results, with what each step did, as JSON")
    test.set_defaults(func=_rules_test)
