"""Per-alert match time as the rule count grows, measured in process on ``RuleIndex``.

Called by ``bench.run``. The rules are the shipped pack plus N generated ones, loaded as
``serve`` loads them; the alerts are the load generator's own bodies, decoded as intake
decodes them.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.payloads import fixture_bodies, render, request_id, templates
from bench.rulegen import write_rules
from bench.server import SHIPPED_PACK
from bench.stats import Spread, spread
from receiver.flow.payload import parse_webhook
from remediations.registry import default_registry
from rules.alert import Alert
from rules.engine import RuleIndex
from rules.loader import load_rules


def _alerts(rule_count: int) -> list[Alert]:
    out: list[Alert] = []
    for n, template in enumerate(templates(fixture_bodies(), alerts_per_request=10, rule_count=rule_count,
                                           count=200)):
        out.extend(parse_webhook(render(template, request_id(0, n)).encode())[1])
    return out


def measure(rule_count: int, *, runs: int = 5, min_seconds: float = 0.2) -> tuple[Spread, float, int]:
    """(µs per alert over ``runs`` runs, seconds to load the rules, matches per pass)."""
    registry = default_registry()
    with tempfile.TemporaryDirectory(prefix="remediator-bench-") as tmp:
        generated = write_rules(Path(tmp) / "generated", rule_count)
        started = time.perf_counter()
        ruleset = load_rules([SHIPPED_PACK, generated], catalogue=registry).ruleset
        loaded = time.perf_counter() - started
    index = RuleIndex(ruleset)
    alerts = _alerts(rule_count)
    now = datetime.now(UTC)
    matches = sum(len(index.match(a, now)) for a in alerts)
    per_alert = []
    for _ in range(runs):
        passes, started = 0, time.perf_counter()
        while True:
            for alert in alerts:
                index.match(alert, now)
            passes += 1
            elapsed = time.perf_counter() - started
            if elapsed >= min_seconds:
                break
        per_alert.append(elapsed / (passes * len(alerts)) * 1e6)
    registry.close()
    return spread(per_alert), loaded, matches
