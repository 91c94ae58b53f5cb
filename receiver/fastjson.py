"""JSON on the hot paths, made by orjson; the standard library for what orjson does not carry.

Called by ``receiver.audit.chain`` (every audit line), and by the stores for the work items
they keep (``receiver.store.sqlite.queue``, ``receiver.store.redis.queue``). orjson writes
compact JSON as ``json.dumps(separators=(",", ":"), ensure_ascii=False)`` does (number
spellings aside: ``1e-07`` is ``1e-7``), several times faster. What orjson refuses (integers
beyond 64 bits, lone surrogates, keys that are not strings) or writes differently from the
standard library (NaN and infinities become ``null`` there; the standard library refuses
them here) goes to ``json``, so values and errors are what they were.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import orjson

_SORTED = (orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS)
_NULL = b"null"
_DIGITS = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))  # a digit as "0", the rest " "
_LONG_NUMBER = b"0" * 19  # maybe beyond 64 bits (-2**63 - 1): what orjson reads as a float


def _finite(value: Any) -> bool:
    """Whether ``value`` holds only plain JSON values and no NaN or infinity."""
    kind = type(value)
    if kind is dict:
        children = value.values()
    elif kind is list or kind is tuple:
        children = value
    elif isinstance(value, float):
        return math.isfinite(value)
    else:  # str, int and their subclasses (enums); anything through ``default``, or a subclass
        # of dict or list, is for the standard library to judge
        return isinstance(value, str | int) or value is None
    for child in children:
        kind = type(child)
        if kind is str or child is None or kind is int or kind is bool:
            continue
        if not _finite(child):
            return False
    return True


def sorted_dumps(value: Any, default: Callable[[Any], Any],
                 fallback: Callable[[Any], bytes]) -> bytes:
    """Canonical JSON (sorted keys, no spaces, UTF-8) of ``value``; ``default`` converts what
    JSON has no type for, ``fallback`` (the standard library's encoder with the same options)
    writes what orjson does not, and raises what the standard library raises."""
    try:
        data = orjson.dumps(value, default=default, option=_SORTED)
    except orjson.JSONEncodeError:
        return fallback(value)
    if _NULL in data and not _finite(value):  # orjson wrote NaN or an infinity as null
        return fallback(value)
    return data


def dumps(value: Any) -> str:
    """Compact JSON text of plain data (dicts, lists, strings, numbers, booleans, None)."""
    try:
        data = orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"))
    if _NULL in data and not _finite(value):
        return json.dumps(value, separators=(",", ":"))
    return data.decode("utf-8")


def loads(data: str) -> Any:
    """Decode JSON text that :func:`dumps` (or the standard library) wrote."""
    if _LONG_NUMBER in data.encode("utf-8", "surrogatepass").translate(_DIGITS):
        return json.loads(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:  # NaN, infinities, lone surrogates (the standard library's)
        return json.loads(data)
