"""Alertmanager v4 bodies for the load generator, built from the captured fixtures.

Called by ``bench.run`` and ``bench.storm``. A *template* is a real webhook body (JSON, one
line) whose alerts come from ``tests/fixtures/alertmanager`` with their labels varied;
every place that must differ between requests holds :data:`MARK`. The load generator
(``bench/rotate.lua`` for wrk, :func:`render` in Python) puts a unique id there for each
request, so every alert has its own fingerprint and instance and dedup never short-circuits
the work. A share of the alerts is resolved.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.rulegen import NAMESPACES, alert_name

MARK = "@@ID@@"
ZERO_TIME = "0001-01-01T00:00:00Z"
FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "alertmanager"


def fixture_bodies(folder: Path = FIXTURES) -> list[dict[str, Any]]:
    """Every captured webhook body (``*.body.json``), sorted by file name."""
    paths = sorted(folder.glob("*.body.json"))
    if not paths:
        raise FileNotFoundError(f"no *.body.json fixtures in {folder}")
    return [json.loads(p.read_text()) for p in paths]


def fixture_alerts(bodies: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The firing alerts of the bodies, one per distinct alert name and label set."""
    seen: set[str] = set()
    out = []
    for body in bodies:
        for alert in body["alerts"]:
            key = json.dumps(alert["labels"], sort_keys=True)
            if alert["status"] == "firing" and key not in seen:
                seen.add(key)
                out.append(alert)
    return out


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _vary(base: dict[str, Any], *, slot: str, rng: random.Random, rule_count: int, generated_share: float,
          resolved: bool, starts: datetime) -> dict[str, Any]:
    alert = copy.deepcopy(base)
    labels: dict[str, str] = alert["labels"]
    if rule_count and rng.random() < generated_share:
        labels["alertname"] = alert_name(rng.randrange(rule_count))
        labels["namespace"] = rng.choice(NAMESPACES)
        labels["severity"] = rng.choice(("critical", "warning"))
    host = "".join(c for c in labels.get("instance", "").split(":")[0].split("-")[0] if "a" <= c <= "z")
    labels["instance"] = f"{host or 'node'}-{slot}{MARK}:{rng.choice((8080, 9100, 9187))}"
    alert["fingerprint"] = f"{slot}{MARK}"
    begun = starts - timedelta(seconds=rng.randrange(60, 3600))
    alert["startsAt"] = _timestamp(begun)
    alert["status"] = "resolved" if resolved else "firing"
    alert["endsAt"] = _timestamp(starts) if resolved else ZERO_TIME
    return alert


def templates(bodies: Sequence[dict[str, Any]], *, alerts_per_request: int, rule_count: int,
              count: int = 64, resolved_share: float = 0.1, generated_share: float = 0.5,
              seed: int = 1, now: datetime | None = None) -> list[str]:
    """``count`` one-line webhook bodies of ``alerts_per_request`` alerts each, :data:`MARK` inside.

    About ``generated_share`` of the alerts are renamed to hit one of ``rule_count``
    generated rules (``bench.rulegen``); the rest keep their captured names (the shipped
    pack's). About ``resolved_share`` are resolved.
    """
    rng = random.Random(seed)
    base_alerts = fixture_alerts(bodies)
    envelope = next(b for b in bodies if len(b["alerts"]) > 1)
    starts = now or datetime.now(UTC)
    out = []
    for t in range(count):
        alerts = [_vary(base_alerts[(t * alerts_per_request + a) % len(base_alerts)],
                        slot=f"{t:04x}{a:02x}", rng=rng, rule_count=rule_count,
                        generated_share=generated_share, resolved=rng.random() < resolved_share,
                        starts=starts)
                  for a in range(alerts_per_request)]
        status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
        body = {**envelope, "status": status, "alerts": alerts, "truncatedAlerts": 0,
                "groupKey": f'{{}}:{{alertname="bench-{t}"}}'}
        out.append(json.dumps(body, separators=(",", ":")))
    return out


def render(template: str, request_id: str) -> str:
    """The body of one request: ``template`` with its unique id (10 hex digits) put in."""
    return template.replace(MARK, request_id)


def request_id(run: int, n: int) -> str:
    """The id :func:`render` and ``rotate.lua`` use: run (2 hex digits), then counter (8)."""
    return f"{run % 256:02x}{n % 2**32:08x}"


def storm_body(n: int, *, alerts_per_request: int, targets: int,
               starts: str) -> tuple[str, list[str]]:
    """The ``n``-th storm request: ``BenchStorm`` alerts over ``targets`` deployments, each its own firing.

    Returns the body and the fingerprints it carries.
    """
    alerts, prints = [], []
    for a in range(alerts_per_request):
        k = n * alerts_per_request + a
        fingerprint = f"5707{k:012x}"
        prints.append(fingerprint)
        alerts.append({"status": "firing", "startsAt": starts, "endsAt": ZERO_TIME,
                       "fingerprint": fingerprint,
                       "generatorURL": "http://prometheus:9090/graph", "annotations": {"summary": "storm"},
                       "labels": {"alertname": "BenchStorm", "severity": "critical", "namespace": "prod",
                                  "deployment": f"svc-{k % targets:04d}", "instance": f"pod-{k:x}:8080"}})
    body = {"version": "4", "status": "firing", "receiver": "remediation-webhook", "groupKey": f"storm-{n}",
            "truncatedAlerts": 0, "groupLabels": {"alertname": "BenchStorm"},
            "commonLabels": {"alertname": "BenchStorm"}, "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093", "alerts": alerts}
    return json.dumps(body, separators=(",", ":")), prints
