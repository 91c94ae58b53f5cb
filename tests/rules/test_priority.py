"""Priority levels and classification: configurable level names and order, the severity
map and default by rank, response targets as Prometheus durations, the rule override."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from rules.alert import Alert
from rules.priority import PriorityPolicy, classify


def alert(**labels: str) -> Alert:
    return Alert(
        fingerprint="f" * 16,
        status="firing",
        labels={"alertname": "X", **labels},
        annotations={},
        starts_at=datetime(2026, 1, 1, tzinfo=UTC),
        starts_at_raw="2026-01-01T00:00:00Z",
    )


@pytest.mark.parametrize(
    ("labels", "rule_priority", "expected"),
    [
        pytest.param({"severity": "critical"}, None, "P1", id="critical"),
        pytest.param({"severity": "high"}, None, "P2", id="high"),
        pytest.param({"severity": "error"}, None, "P2", id="error"),
        pytest.param({"severity": "warning"}, None, "P3", id="warning"),
        pytest.param({"severity": "info"}, None, "P4", id="info"),
        pytest.param({"severity": "CRITICAL"}, None, "P1", id="case-insensitive"),
        pytest.param({"severity": "page"}, None, "P3", id="unknown-severity-default"),
        pytest.param({}, None, "P3", id="no-severity-default"),
        pytest.param({"severity": "info"}, "P1", "P1", id="rule-overrides-up"),
        pytest.param({"severity": "critical"}, "P4", "P4", id="rule-overrides-down"),
    ],
)
def test_default_policy(labels: dict[str, str], rule_priority: str | None, expected: str) -> None:
    """With the default policy the rule's priority wins, then the severity map, then P3."""
    assert classify(alert(**labels), rule_priority, PriorityPolicy()) == expected


@pytest.mark.parametrize(
    ("levels", "severity", "expected"),
    [
        pytest.param(["SEV-1", "SEV-2", "SEV-3", "SEV-4"], "critical", "SEV-1", id="sev-critical"),
        pytest.param(["SEV-1", "SEV-2", "SEV-3", "SEV-4"], "error", "SEV-2", id="sev-error"),
        pytest.param(["SEV-1", "SEV-2", "SEV-3", "SEV-4"], "info", "SEV-4", id="sev-info"),
        pytest.param(["SEV-1", "SEV-2", "SEV-3", "SEV-4"], "", "SEV-3", id="sev-default-third"),
        pytest.param(["P0", "P1", "P2", "P3"], "critical", "P0", id="p0-critical-is-the-first"),
        pytest.param(["P0", "P1", "P2", "P3"], "warning", "P2", id="p0-warning-third"),
        pytest.param(["P1", "P2", "P3"], "info", "P3", id="three-levels-info-takes-the-last"),
        pytest.param(["P1", "P2", "P3"], "unknown", "P3", id="three-levels-default"),
        pytest.param(["urgent", "later"], "warning", "later", id="two-levels"),
        pytest.param(["urgent", "later"], "", "later", id="two-levels-default-last"),
    ],
)
def test_custom_levels_map_severities_by_rank(levels: list[str], severity: str, expected: str) -> None:
    """Levels other than P1–P4, without a map or default: the built-in map and default
    follow the levels by rank, the ranks past the last taking the last."""
    labels = {"severity": severity} if severity else {}
    assert classify(alert(**labels), None, PriorityPolicy(levels=levels)) == expected


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        pytest.param({"level": "sev1"}, "P1", id="custom-label-and-map"),
        pytest.param({"level": "sev2"}, "P2", id="custom-map-second"),
        pytest.param({"severity": "critical"}, "P4", id="other-label-ignored"),
        pytest.param({}, "P4", id="custom-default"),
    ],
)
def test_custom_policy(labels: dict[str, str], expected: str) -> None:
    """A configured label, map and default replace the built-in ones."""
    policy = PriorityPolicy(map={"sev1": "P1", "sev2": "P2"}, default="P4", label="level")
    assert classify(alert(**labels), None, policy) == expected


@pytest.mark.parametrize(
    ("levels", "level", "target"),
    [
        pytest.param(None, "P1", timedelta(minutes=15), id="P1-15m"),
        pytest.param(None, "P2", timedelta(hours=1), id="P2-1h"),
        pytest.param(None, "P3", timedelta(hours=4), id="P3-4h"),
        pytest.param(None, "P4", timedelta(hours=24), id="P4-24h"),
        pytest.param(["P0", "P1", "P2", "P3"], "P0", timedelta(minutes=15), id="P0-first-rank-15m"),
        pytest.param(["P0", "P1", "P2", "P3"], "P1", timedelta(hours=1), id="P1-second-rank-1h"),
        pytest.param([f"L{n}" for n in range(6)], "L5", timedelta(hours=24), id="sixth-rank-24h"),
    ],
)
def test_default_response_targets_by_rank(levels: list[str] | None, level: str, target: timedelta) -> None:
    """Each level carries the runbooks' response target of its rank."""
    policy = PriorityPolicy() if levels is None else PriorityPolicy(levels=levels)
    assert policy.response_target(level) == target


@pytest.mark.parametrize(
    ("config", "level", "target"),
    [
        pytest.param({"response_targets": {"P1": "5m"}}, "P1", timedelta(minutes=5), id="a-duration"),
        pytest.param({"response_targets": {"P1": "5m"}}, "P4", timedelta(hours=24), id="missing-default"),
        pytest.param({"levels": ["SEV-1", "SEV-2", "SEV-3", "SEV-4"],
                      "response_targets": {"SEV-1": "5m", "SEV-2": "15m", "SEV-3": "1h", "SEV-4": "3d"}},
                     "SEV-4", timedelta(days=3), id="sev-next-business-day-as-3d"),
        pytest.param({"response_targets": {"P2": "1h30m"}}, "P2", timedelta(minutes=90), id="compound"),
    ],
)
def test_configured_response_targets_are_prometheus_durations(config: dict[str, Any], level: str,
                                                              target: timedelta) -> None:
    """``response_targets`` take the project's durations (``15m``, ``1h30m``), as every
    other duration of the config does."""
    assert PriorityPolicy.model_validate(config).response_target(level) == target


@pytest.mark.parametrize(
    ("config", "message"),
    [
        pytest.param({"response_targets": {"P1": "15 minutes"}}, "unknown unit ' minutes'", id="bad-unit"),
        pytest.param({"response_targets": {"P1": 900}}, "a duration is a string like '5m'", id="a-number"),
        pytest.param({"response_targets": {"P1": "PT15M"}}, "not a valid duration", id="iso-8601-refused"),
        pytest.param({"response_targets": {"P5": "1h"}}, "response_targets.P5: unknown priority level 'P5'",
                     id="target-of-unknown-level"),
        pytest.param({"levels": ["SEV-1", "SEV-2"], "default": "P3"}, "default: unknown priority level 'P3' "
                     "(levels: SEV-1, SEV-2)", id="default-not-a-level"),
        pytest.param({"levels": ["SEV-1", "SEV-2"], "map": {"critical": "P1"}},
                     "map.critical: unknown priority level 'P1'", id="map-to-unknown-level"),
        pytest.param({"levels": ["P1", "P2", "P1"]}, "levels: P1 given twice", id="level-twice"),
        pytest.param({"levels": []}, "at least 1 item", id="no-levels"),
        pytest.param({"levels": ["P 1"]}, "String should match pattern", id="level-form"),
        pytest.param({"levels": ["P1", "P2"], "response_targets": {"P1": "15m", "P3": "1h"}},
                     "unknown priority level 'P3'", id="targets-after-levels-changed"),
    ],
)
def test_bad_policies_are_refused_with_the_reason(config: dict[str, Any], message: str) -> None:
    """A level name that is not among ``levels``, a duration that is not a Prometheus one."""
    with pytest.raises(ValidationError) as info:
        PriorityPolicy.model_validate(config)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("levels", "written", "expected"),
    [
        pytest.param(["P1", "P2", "P3", "P4"], ["P1", "P2", "P3", "P4"],
                     {"P1": "P1", "P2": "P2", "P3": "P3", "P4": "P4"}, id="same"),
        pytest.param(["SEV-1", "SEV-2", "SEV-3", "SEV-4"], ["P1", "P2", "P3", "P4"],
                     {"P1": "SEV-1", "P2": "SEV-2", "P3": "SEV-3", "P4": "SEV-4"}, id="sev"),
        pytest.param(["P0", "P1", "P2", "P3"], ["P1", "P2", "P3", "P4"],
                     {"P1": "P0", "P2": "P1", "P3": "P2", "P4": "P3"}, id="p0-by-rank-not-name"),
        pytest.param(["P1", "P2", "P3"], ["P1", "P2", "P3", "P4"],
                     {"P1": "P1", "P2": "P2", "P3": "P3", "P4": "P3"}, id="fewer-levels"),
    ],
)
def test_translation_by_rank(levels: list[str], written: list[str], expected: dict[str, str]) -> None:
    """Rules written on other levels map onto the service's by rank."""
    assert PriorityPolicy(levels=levels).translation(written) == expected
