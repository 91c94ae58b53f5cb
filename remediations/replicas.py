"""Replica counts as rules write them, and the arithmetic that turns one into a number within bounds.

Shared by ``remediations.kubernetes.scale`` and ``remediations.docker.compose``: ``replicas``
is a count (``5``), a change (``"+2"``, ``"-1"``) or a factor (``"x1.5"``, rounded up);
:func:`compute` clamps the result to ``[low, high]``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator

from remediations.base import PermanentError

_COUNT = re.compile(r"^\d{1,6}$")
_DELTA = re.compile(r"^[+-]\d{1,6}$")
_FACTOR = re.compile(r"^x(\d{1,3}(?:\.\d{1,4})?)$")


def _replicas(value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError("replicas must not be negative")
        return value
    if not isinstance(value, str):
        raise ValueError("replicas must be a whole count (5) or a string (\"+2\", \"-1\", \"x1.5\")")
    if _COUNT.match(value):
        return int(value)  # a template renders "5": the same as 5
    if _DELTA.match(value):
        return value
    factor = _FACTOR.match(value)
    if factor and Decimal(factor[1]) > 0:
        return value
    raise ValueError("replicas must be a count (5), a change (+2, -1) or a factor above 0 (x1.5, x0.5)")


Replicas = Annotated[int | str, BeforeValidator(_replicas)]


def asked(replicas: int | str) -> str:
    return str(replicas)


def scales_down(replicas: int | str) -> bool:
    """Without reading the current count: could these replicas be fewer than now?"""
    if isinstance(replicas, int) or replicas.startswith("-"):
        return True
    if replicas.startswith("x"):
        return Decimal(replicas[1:]) < 1
    return False


@dataclass(frozen=True, slots=True)
class ScaleChange:
    current: int
    wanted: int  # before clamping; may be negative ("-5" from 3)
    replicas: int
    clamp: str | None  # "max 5" when a bound moved the count

    def note(self, replicas: int | str) -> str:
        return f"asked {asked(replicas)}" + (f", clamped to {self.clamp}" if self.clamp else "")


def compute(current: int, replicas: int | str, *, low: int, high: int) -> ScaleChange:
    """The count to set: asked, then clamped to [low, high]."""
    if low > high:
        raise PermanentError(f"the replica bounds conflict: min {low} is above max {high}")
    if isinstance(replicas, int):
        wanted = replicas
    elif replicas.startswith("x"):
        wanted = math.ceil(Decimal(current) * Decimal(replicas[1:]))
    else:
        wanted = current + int(replicas)
    if wanted > high:
        return ScaleChange(current, wanted, high, f"max {high}")
    if wanted < low:
        return ScaleChange(current, wanted, low, f"min {low}")
    return ScaleChange(current, wanted, wanted, None)
