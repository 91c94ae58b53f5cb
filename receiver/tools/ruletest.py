"""Rule unit tests: ``remediator rules test FILE…``, as ``promtool test rules`` is for alerts.

Called by ``receiver.cli.rules``. A test file (format in docs/rules.md, "Testing rules")
names rule files and cases; each case delivers alerts through the real pipeline in a
:class:`receiver.tools.sandbox.Sandbox` — a fresh temporary SQLite state per case, the clock
stepped by the case, every action recorded instead of run — and compares what happened
(matched rules, priority, outcome, the rendered plan of each step) with what the case
expects. Nothing is contacted and nothing outside a temporary directory is written.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from receiver.clock import ManualClock
from receiver.errors import ConfigError, ReceiverError
from receiver.flow.payload import PayloadError, parse_webhook
from receiver.settings import Settings, load_settings, settings_from_mapping
from receiver.tools.rulecases import (
    AlertInput,
    Case,
    CaseResult,
    DecisionExpect,
    FileResult,
    Mismatch,
    Step,
    StepExpect,
    TestFile,
)
from receiver.tools.sandbox import Observer, Sandbox, Seen, sandbox_settings
from rules.errors import RuleLoadError
from rules.yamldoc import Loc, located_errors, read_yaml_bytes

_ACTOR = "rules-test"


def _fingerprint(labels: Mapping[str, str]) -> str:
    text = "\x1f".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _payload(alerts: list[dict[str, Any]]) -> bytes:
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    return json.dumps({"version": "4", "status": status, "receiver": _ACTOR, "groupKey": _ACTOR,
                       "alerts": alerts}).encode()


def _alert_body(a: AlertInput, now: float) -> dict[str, Any]:
    starts = now - a.active_for.total_seconds()
    return {"status": a.status, "labels": a.labels, "annotations": a.annotations,
            "startsAt": _rfc3339(starts),
            "endsAt": _rfc3339(now) if a.status == "resolved" else "0001-01-01T00:00:00Z",
            "generatorURL": "", "fingerprint": a.fingerprint or _fingerprint(a.labels)}


@dataclass
class _Comparison:
    """Compares one step's expectations with what it did; ``loc`` is the step's data path."""

    step: int
    loc: Loc
    line: Callable[[Loc], int | None]
    out: list[Mismatch] = field(default_factory=list)

    def run(self, expected: list[DecisionExpect], got: list[Seen]) -> list[Mismatch]:
        want = [_who(e.rule, e.alert) for e in expected]
        have = [_who(s.rule, s.alert if e.alert is not None else None)
                for s, e in zip(got, expected, strict=False)]
        if len(got) != len(expected) or want != have:
            several = any(e.alert for e in expected) or len({s.alert for s in got}) > 1
            self.out.append(Mismatch(self.step, self.line((*self.loc, "expect")), "decisions", want,
                                     [_who(s.rule, s.alert if several else None) for s in got]))
            return self.out
        for n, (e, s) in enumerate(zip(expected, got, strict=True)):
            self.decision(n, e, s)
        return self.out

    def decision(self, n: int, e: DecisionExpect, s: Seen) -> None:
        at = self.line((*self.loc, "expect", n))

        def diff(name: str, want: Any, have: Any, detail: str = "") -> None:
            if want != have:
                self.out.append(Mismatch(self.step, at, name, want, have, n + 1, s.rule, detail))

        given = e.model_fields_set
        if e.priority is not None:
            diff("priority", e.priority, s.priority)
        if e.response_target is not None:
            diff("response_target", e.response_target.total_seconds(), s.response_target_seconds)
        if e.outcome is not None:
            diff("outcome", e.outcome, s.outcome, s.detail)
        if e.rung is not None:
            diff("rung", e.rung, s.rung)
        for section in ("diagnose", "actions"):
            steps: list[StepExpect] | None = getattr(e, section)
            if section in given and steps is not None:
                _compare_steps(section, steps, getattr(s, section), diff)


def _compare_steps(section: str, expected: list[StepExpect], got: list[dict[str, Any]],
                   diff: Callable[..., None]) -> None:
    if [x.action for x in expected] != [g["action"] for g in got]:
        diff(section, [x.action for x in expected], [g["action"] for g in got])
        return
    for j, (x, g) in enumerate(zip(expected, got, strict=True)):
        where = f"{section}[{j}]"
        if "target" in x.model_fields_set:
            diff(f"{where}.target", x.target, g["target"])
        if x.subject is not None:
            diff(f"{where}.subject", x.subject, g["subject"])
        params = g.get("params") or {}
        for key, value in (x.params or {}).items():
            have = params.get(key, "<not set>")
            diff(f"{where}.params.{key}", value, value if _same_number(value, have) else have)


def _same_number(want: Any, have: Any) -> bool | None:
    """Whether a number written in a test equals a decimal the plan carries as text (``1.5`` and
    ``"1.5"``: params models keep decimals exact, so their JSON form is a string); None when
    the two are not a number and a numeric string."""
    pair = (want, have) if isinstance(have, str) else (have, want)
    number, text = pair
    if isinstance(number, bool) or not isinstance(number, int | float) or not isinstance(text, str):
        return None
    try:
        return Decimal(text) == Decimal(str(number))
    except ArithmeticError:
        return False


def _who(rule: str, alert: int | None) -> str:
    return rule if alert is None else f"{rule} (alert {alert})"


class _CaseRun:
    """One case in its own sandbox: steps in order, each compared with its expectations."""

    def __init__(self, sandbox: Sandbox, clock: ManualClock, result: CaseResult) -> None:
        self.sandbox = sandbox
        self.clock = clock
        self.result = result
        self.observer = Observer()
        self.previous: list[dict[str, Any]] = []

    async def step(self, n: int, step: Step, loc: Loc, line: Callable[[Loc], int | None]) -> bool:
        """Run step ``n``; False when it could not run (the case stops)."""
        self.clock.advance(step.after.total_seconds())
        records = (await self.sandbox.housekeep()).records  # as the service's housekeeping would
        bodies = self.previous
        if step.approve or step.reject:
            actor = step.approve or step.reject or ""
            records += (await self.sandbox.approve_pending(actor=actor, approve=bool(step.approve))).records
        else:
            if step.alerts is not None:
                bodies = [_alert_body(a, self.clock.now()) for a in step.alerts]
            elif step.resolve:
                bodies = [b | {"status": "resolved", "endsAt": _rfc3339(self.clock.now())} for b in bodies]
            try:
                message, alerts = parse_webhook(_payload(bodies))
            except PayloadError as exc:
                self.result.error = (f"step {n} (line {line(loc)}): its alerts are not a valid webhook "
                                     f"at {exc.path}: {exc.message}")
                return False
            records += (await self.sandbox.deliver(message, alerts, actor=_ACTOR)).records
            self.previous = bodies
        got = self.observer.step(records, [b["fingerprint"] for b in bodies])
        self.result.steps.append(got)
        if step.expect is not None:
            self.result.failures += _Comparison(n, loc, line).run(step.expect, got)
        return True


class _FileRun:
    """Runs the cases of one parsed test file."""

    def __init__(self, path: Path, spec: TestFile, line: Callable[[Loc], int | None]) -> None:
        self.path = path
        self.spec = spec
        self.line = line
        self.rules = [path.parent / f for f in spec.rule_files]

    def settings(self) -> Settings:
        if isinstance(self.spec.config, dict):
            return settings_from_mapping(self.spec.config, source="inline config")
        return load_settings(self.path.parent / self.spec.config if self.spec.config else None)

    async def case(self, index: int, case: Case, config: Settings) -> CaseResult:
        result = CaseResult(case.name, self.line(("tests", index)))
        clock = ManualClock(self.spec.start.timestamp())
        with tempfile.TemporaryDirectory(prefix="remediator-ruletest-") as tmp:
            settings = sandbox_settings(config, rules=self.rules, workdir=Path(tmp),
                                        dry_run=self.spec.dry_run)
            async with Sandbox(settings, clock=clock) as sandbox:
                run = _CaseRun(sandbox, clock, result)
                steps = [Step(alerts=case.alerts, expect=case.expect), *case.then]
                for n, step in enumerate(steps, start=1):
                    loc: Loc = ("tests", index) if n == 1 else ("tests", index, "then", n - 2)
                    if not await run.step(n, step, loc, self.line):
                        break
        return result


async def run_file(path: Path) -> FileResult:
    """Run every case of one test file; never raises for bad input (it is in the result)."""
    name = str(path)
    result = FileResult(name)
    try:
        raw = await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        result.errors.append(f"{name}: cannot read the test file: {exc}")
        result.unusable = True
        return result
    document = read_yaml_bytes(raw, name)
    data, line, problems = document.data, document.line, document.problems()
    if problems or data is None:
        result.errors += [str(p) for p in problems] or [f"{name}: the test file is empty"]
        result.unusable = True
        return result
    try:
        spec = TestFile.model_validate(data)
    except ValidationError as exc:
        result.errors += located_errors(exc, name, line)
        result.unusable = True
        return result
    run = _FileRun(path, spec, line)
    try:
        config = run.settings()
    except ConfigError as exc:
        inline = not isinstance(spec.config, str)
        where = f"{name}:{line(('config',))}: config" if inline else f"{name}: config {spec.config}"
        result.errors += [f"{where}: {line_}" for line_ in str(exc).splitlines()]
        result.unusable = True
        return result
    for index, case in enumerate(spec.tests):
        try:
            result.cases.append(await run.case(index, case, config))
        except RuleLoadError as exc:
            result.errors += [f"{name}: rule_files: {p}" for p in exc.problems]
            return result
        except ReceiverError as exc:
            result.errors.append(f"{name}:{line(('tests', index))}: case {case.name!r}: {exc}")
    return result
