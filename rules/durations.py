"""Prometheus-style durations: ``90s``, ``5m``, ``1h30m``, ``2d``, ``1w``, ``500ms``.

Called by ``rules.model`` when rules load and by actions' parameter models. The grammar
is Prometheus' ``model.ParseDuration`` (``prometheus/common``, ``model/time.go``):
non-negative integers, each followed by a unit of ``y w d h m s ms``, units from the
largest to the smallest and each at most once; ``0`` alone is allowed; a year is 365
days; anything over Go's ``time.Duration`` range (about 292 years) is refused.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema

from rules.errors import RuleError

_UNITS_MS = {"y": 365 * 86_400_000, "w": 7 * 86_400_000, "d": 86_400_000,
             "h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}
_ORDER = {unit: pos for pos, unit in enumerate(_UNITS_MS)}
_MAX_MS = (2**63 - 1) // 1_000_000  # Go's time.Duration is int64 nanoseconds
_PART = re.compile(r"([0-9]+)([^0-9]*)")  # [0-9], not \d: Python's \d takes any Unicode digit

DURATION_PATTERN = (
    r"^(0|(?!$)([0-9]+y)?([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?)$"
)
"""The same grammar as an ECMA-262 regex (no named groups), for the JSON Schema of rule files."""

_HINT = "use units y w d h m s ms, largest first, e.g. '1h30m'"


def parse_duration(text: str) -> timedelta:
    """Parse a Prometheus duration; raise :class:`RuleError` naming the text when invalid."""
    if not isinstance(text, str):
        raise RuleError(f"duration must be a string like '5m', not {text!r}")
    if text == "0":
        return timedelta(0)
    if text == "":
        raise RuleError(f"empty duration ({_HINT})")
    total = 0
    last = -1
    pos = 0
    while pos < len(text):
        part = _PART.match(text, pos)
        if part is None or not part.group(2):
            raise RuleError(f"not a valid duration: {text!r} ({_HINT})")
        number, unit = part.groups()
        if unit not in _UNITS_MS:
            raise RuleError(f"unknown unit {unit!r} in duration {text!r} ({_HINT})")
        if _ORDER[unit] <= last:
            raise RuleError(
                f"not a valid duration: {text!r} (each unit at most once, largest first,"
                " e.g. '1h30m' not '30m1h')"
            )
        last = _ORDER[unit]
        total += int(number) * _UNITS_MS[unit]
        if total > _MAX_MS:
            raise RuleError(f"duration out of range: {text!r} (at most about 292y)")
        pos = part.end()
    return timedelta(milliseconds=total)


def format_duration(value: timedelta) -> str:
    """Render a timedelta as Prometheus does (``1h30m``, ``90d`` rather than ``12w6d``).

    Like ``model.Duration.String``: years and weeks only when they divide the whole
    duration; sub-millisecond parts are dropped; zero is ``0s``; negative gets a ``-``.
    """
    if value < timedelta(0):
        return "-" + format_duration(-value)
    ms = value // timedelta(milliseconds=1)
    if ms == 0:
        return "0s"
    parts = []
    for unit, size in _UNITS_MS.items():
        if unit in ("y", "w") and ms % size:
            continue
        if ms >= size:
            count, ms = divmod(ms, size)
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError(f"a duration is a string like '5m', not {value!r}")
    try:
        return parse_duration(value)
    except RuleError as exc:
        raise ValueError(str(exc)) from None


Duration = Annotated[
    timedelta,
    PlainValidator(_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "examples": ["30s", "5m", "1h30m"]}),
]
"""A Prometheus duration in YAML (``5m``), a timedelta in Python: the type of every
duration a rule file or the service config holds."""
