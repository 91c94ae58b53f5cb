"""The rules coordinator's start-up load: what it logs about the rules it loaded."""

from __future__ import annotations

from collections.abc import Callable

import structlog
from prometheus_client import CollectorRegistry

from receiver.flow.reload import RulesCoordinator
from receiver.metrics import Metrics
from receiver.settings import Settings
from remediations.registry import default_registry
from rules.loader import default_pack_paths
from tests.support.fakeclock import FakeClock


def test_the_shipped_pack_on_defaults_warns_once_per_missing_target(
        make_settings: Callable[..., Settings]) -> None:
    """With no config, every pack step names a target the config lacks: one line per target
    (with every place it is used), not one per step."""
    coordinator = RulesCoordinator(make_settings(), registry=default_registry(),
                                   metrics=Metrics(CollectorRegistry()), clock=FakeClock())
    with structlog.testing.capture_logs() as logs:
        report = coordinator.load_now()
    warned = [entry for entry in logs if entry["event"] == "rules.warning"]
    assert report.ok
    assert len(warned) == len({e["problem"] for e in warned})
    missing = {e["problem"].split("'")[1] for e in warned if "is not in the service config" in e["problem"]}
    assert missing == {"prod-cluster", "compose", "main", "cache", "web", "superset", "airflow", "celery",
                       "argocd"}
    assert sum(e["count"] for e in warned) == len(report.problems) > len(warned)
    for entry in warned:
        assert len(entry["at"]) == entry["count"]
        assert all(place.split(":")[0] in map(str, default_pack_paths()) for place in entry["at"])
