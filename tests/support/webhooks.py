"""Alertmanager v4 webhook bodies built from the captured fixture 04, with chosen alerts.

Tests that need many distinct firings (guards, approvals, replicas) vary the labels,
fingerprint, startsAt and status of the real capture instead of inventing a format.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tests.conftest import fixture_body

_BASE: dict[str, Any] = json.loads(fixture_body("04_firing_single_HighErrorRate"))
_ALERT: dict[str, Any] = _BASE["alerts"][0]


def alert(*, namespace: str = "prod", starts: str = "2026-11-23T06:42:28.909Z", status: str = "firing",
          ends: str = "0001-01-01T00:00:00Z", **labels: str) -> dict[str, Any]:
    """One HighErrorRate alert; its fingerprint follows its labels, as Alertmanager's does."""
    all_labels = {**_ALERT["labels"], "namespace": namespace, **labels}
    fingerprint = hashlib.sha256(json.dumps(all_labels, sort_keys=True).encode()).hexdigest()[:16]
    return {**_ALERT, "labels": all_labels, "status": status, "startsAt": starts, "endsAt": ends,
            "fingerprint": fingerprint}


def body(*alerts: dict[str, Any]) -> bytes:
    """A webhook body carrying ``alerts`` (status is firing when any alert fires)."""
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    return json.dumps({**_BASE, "status": status, "alerts": list(alerts)}).encode()
