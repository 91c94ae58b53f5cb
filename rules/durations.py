"""Prometheus-style durations: ``90s``, ``5m``, ``1h30m``, ``2d``, ``1w``, ``500ms``.

Called by ``rules.model`` when rules load and by actions' parameter models. The grammar is
Prometheus' ``model.ParseDuration``: units in descending order, each at most once,
integers only; ``0`` alone is allowed.
"""

from __future__ import annotations

import re
from datetime import timedelta

from rules.errors import RuleError

_UNITS_MS = {"y": 365 * 86_400_000, "w": 7 * 86_400_000, "d": 86_400_000,
             "h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}
_PATTERN = re.compile(
    r"^(?:(?P<y>\d+)y)?(?:(?P<w>\d+)w)?(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?"
    r"(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?(?:(?P<ms>\d+)ms)?$"
)
DURATION_PATTERN = _PATTERN.pattern
"""The same grammar as a regex string, for the JSON Schema of rule files."""


def parse_duration(text: str) -> timedelta:
    """Parse a Prometheus duration; raise :class:`RuleError` naming the text when invalid."""
    if not isinstance(text, str):
        raise RuleError(f"duration must be a string like '5m', not {text!r}")
    if text == "0":
        return timedelta(0)
    m = _PATTERN.match(text)
    if text == "" or m is None or not any(m.groupdict().values()):
        raise RuleError(
            f"not a valid duration: {text!r} (use units y w d h m s ms, largest first, e.g. '1h30m')"
        )
    total = sum(int(v) * _UNITS_MS[k] for k, v in m.groupdict().items() if v is not None)
    return timedelta(milliseconds=total)


def format_duration(value: timedelta) -> str:
    """Render a timedelta back as the shortest Prometheus duration (``1h30m``)."""
    ms = round(value.total_seconds() * 1000)
    if ms == 0:
        return "0s"
    parts = []
    for unit, size in _UNITS_MS.items():
        if ms >= size:
            count, ms = divmod(ms, size)
            parts.append(f"{count}{unit}")
    return "".join(parts)
