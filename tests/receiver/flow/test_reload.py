"""The rules coordinator's start-up load: what it logs about the rules it loaded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import structlog
from prometheus_client import CollectorRegistry

from receiver.audit import AuditLog
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


async def test_a_reload_calls_the_hook_only_when_the_rules_changed(
        make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    """``after_reload`` (``serve`` settles its heap there) runs once the new rules are in, and
    not when they failed to load and the old ones stay."""
    rule = '{"rules": [{"name": "a", "match": ["alertname = \\"X\\""], ' \
           '"actions": [{"action": "notify.log", "params": {"text": "hi"}}]}]}'
    settings = make_settings(rules=rule)
    coordinator = RulesCoordinator(settings, registry=default_registry(),
                                   metrics=Metrics(CollectorRegistry()), clock=FakeClock())
    coordinator.load_now()
    calls: list[int] = []
    coordinator.after_reload = lambda: calls.append(len(coordinator.index))
    audit = AuditLog(tmp_path / "audit.jsonl", clock=FakeClock().now, fsync=False)
    try:
        assert (await coordinator.reload(audit, actor="test")).ok
        assert calls == [1]
        (tmp_path / "rules.yaml").write_text("rules: [{name: b, match: ")  # broken
        assert not (await coordinator.reload(audit, actor="test")).ok
        assert calls == [1]
    finally:
        await audit.close()
