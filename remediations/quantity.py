"""Kubernetes quantities (``512Mi``, ``1.5Gi``, ``129M``, ``1e9``, ``250m``): read, and written back.

The units the Kubernetes API server accepts, used for memory and CPU by
``remediations.kubernetes.memory`` and ``remediations.kubernetes.evidence`` (and, so that
rules speak one language, for Docker containers' limits).
"""

from __future__ import annotations

import re
from decimal import Decimal, DecimalException

_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?:(?P<exponent>[eE][+-]?\d+)|(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$"
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": Decimal(10**3),
            "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12), "P": Decimal(10**15),
            "E": Decimal(10**18)}
_LARGEST_FIRST_BINARY = sorted(_BINARY.items(), key=lambda item: -item[1])
_LARGEST_FIRST_DECIMAL = [(s, int(u)) for s, u in sorted(_DECIMAL.items(), key=lambda item: -item[1])
                          if u >= 1]


def parse_quantity(text: str) -> Decimal:
    """A Kubernetes quantity as a number (bytes, for memory)."""
    found = _QUANTITY.match(text.strip()) if len(text) <= 64 else None
    if not found:
        raise ValueError(f"{text!r} is not a Kubernetes quantity (like 512Mi, 1.5Gi, 129M, 1e9)")
    try:
        number = Decimal(found["number"])
        if found["exponent"]:
            return number.scaleb(int(found["exponent"][1:]))
    except DecimalException:
        raise ValueError(f"{text!r} is out of range") from None
    suffix = found["suffix"]
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    return number * _DECIMAL[suffix] if suffix else number


def is_binary(text: str) -> bool:
    """Whether a quantity is written with a binary suffix (Ki, Mi, Gi, ...)."""
    return text.strip()[-1:] == "i"


def format_bytes(value: int, *, binary: bool = True) -> str:
    """Whole bytes with the largest suffix that divides them, of the preferred family first."""
    if value <= 0:
        return str(value)
    families = (_LARGEST_FIRST_BINARY, _LARGEST_FIRST_DECIMAL)
    for family in families if binary else families[::-1]:
        for suffix, unit in family:
            if value % unit == 0:
                return f"{value // unit}{suffix}"
    return str(value)
