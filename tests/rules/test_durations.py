"""Prometheus durations: parsing as model.ParseDuration, printing as Duration.String."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from rules.durations import DURATION_PATTERN, format_duration, parse_duration
from rules.errors import RuleError

VALID = [
    pytest.param("0", timedelta(0), id="bare-zero"),
    pytest.param("0s", timedelta(0), id="zero-seconds"),
    pytest.param("90s", timedelta(seconds=90), id="seconds"),
    pytest.param("5m", timedelta(minutes=5), id="minutes"),
    pytest.param("1h30m", timedelta(hours=1, minutes=30), id="hours-minutes"),
    pytest.param("2d", timedelta(days=2), id="days"),
    pytest.param("1w", timedelta(weeks=1), id="weeks"),
    pytest.param("1y", timedelta(days=365), id="year-is-365d"),
    pytest.param("500ms", timedelta(milliseconds=500), id="milliseconds"),
    pytest.param("1m500ms", timedelta(minutes=1, milliseconds=500), id="minutes-ms"),
    pytest.param(
        "1y2w3d4h5m6s7ms",
        timedelta(days=365 + 14 + 3, hours=4, minutes=5, seconds=6, milliseconds=7),
        id="every-unit",
    ),
    pytest.param("05m", timedelta(minutes=5), id="leading-zero"),
    pytest.param("292y", timedelta(days=292 * 365), id="near-go-limit"),
]

INVALID = [
    pytest.param("", "empty", id="empty"),
    pytest.param("5", "not a valid duration", id="no-unit"),
    pytest.param("m", "not a valid duration", id="no-number"),
    pytest.param("30m1h", "largest first", id="wrong-order"),
    pytest.param("1m1m", "largest first", id="unit-twice"),
    pytest.param("1s1m", "largest first", id="minutes-after-seconds"),
    pytest.param("5x", "unknown unit 'x'", id="unknown-unit"),
    pytest.param("5min", "unknown unit 'min'", id="go-style-unit"),
    pytest.param("1.5h", "unknown unit '.'", id="fraction"),
    pytest.param("-5m", "not a valid duration", id="negative"),
    pytest.param("5m ", "unknown unit", id="trailing-space"),
    pytest.param("5m\n", "unknown unit", id="trailing-newline"),
    pytest.param("\u0665m", "not a valid duration", id="non-ascii-digit"),
    pytest.param("293y", "out of range", id="beyond-go-duration"),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_parse(text: str, expected: timedelta) -> None:
    """Valid durations parse to the exact timedelta."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_parse_rejects(text: str, message: str) -> None:
    """Invalid durations raise RuleError naming the problem."""
    with pytest.raises(RuleError, match=re.escape(message)):
        parse_duration(text)


@pytest.mark.parametrize("value", [5, 1.5, None, timedelta(1)])
def test_parse_rejects_non_strings(value: object) -> None:
    """A YAML number is not a duration: units are required."""
    with pytest.raises(RuleError, match="must be a string"):
        parse_duration(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(timedelta(0), "0s", id="zero"),
        pytest.param(timedelta(minutes=90), "1h30m", id="hours-minutes"),
        pytest.param(timedelta(days=90), "90d", id="weeks-only-when-exact"),
        pytest.param(timedelta(days=14), "2w", id="exact-weeks"),
        pytest.param(timedelta(days=365), "1y", id="exact-year"),
        pytest.param(timedelta(days=366), "366d", id="year-not-exact"),
        pytest.param(timedelta(milliseconds=1500), "1s500ms", id="ms"),
        pytest.param(timedelta(microseconds=1500), "1ms", id="sub-ms-dropped"),
        pytest.param(timedelta(minutes=-5), "-5m", id="negative"),
    ],
)
def test_format(value: timedelta, text: str) -> None:
    """format_duration prints what Prometheus' Duration.String prints."""
    assert format_duration(value) == text


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_format_round_trips(text: str, expected: timedelta) -> None:
    """What format_duration prints parses back to the same duration."""
    assert parse_duration(format_duration(expected)) == expected


@pytest.mark.parametrize(
    "text",
    [p.values[0] for p in VALID] + [p.values[0] for p in INVALID if p.id != "beyond-go-duration"],
)
def test_schema_pattern_agrees(text: str) -> None:
    """DURATION_PATTERN (for the JSON Schema) accepts exactly what parse_duration accepts."""
    try:
        parse_duration(text)
        ok = True
    except RuleError:
        ok = False
    assert (re.fullmatch(DURATION_PATTERN, text) is not None) is ok
    assert "(?P" not in DURATION_PATTERN  # ECMA-262 has no Python named groups
