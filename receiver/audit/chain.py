"""One audit line and the chain of lines: the canonical form, its hash, and verifying a file.

A line is the canonical JSON of the record without ``hash`` (sorted keys, no spaces, UTF-8;
written by orjson, ``receiver.fastjson``, the standard library where orjson cannot) with
``,"hash":"<sha256 of those bytes>"}`` in place of its closing brace, so a verifier recomputes
each hash from the bytes on disk. ``prev`` is the previous record's hash (64 zeros for the
first) and ``seq`` counts from 1 across the files of a rotated log.
:class:`receiver.audit.log.AuditLog` writes lines in this form; ``receiver.audit.verify`` checks
them with :func:`check_line`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import date, timedelta
from datetime import time as dtime
from enum import Enum
from typing import Any

from pydantic import BaseModel

from receiver.fastjson import sorted_dumps

ZERO_HASH = "0" * 64
RESERVED = frozenset({"seq", "ts", "event", "prev", "hash"})
_HASH_KEY = b',"hash":"'
_SUFFIX_LEN = len(_HASH_KEY) + 64 + 2  # ,"hash":"<64 hex>"}
_HEX = frozenset("0123456789abcdef")


def _default(o: Any) -> Any:
    """JSON for the non-JSON types a record may carry; anything else is a programming error."""
    if isinstance(o, date | dtime):
        return o.isoformat()
    if isinstance(o, timedelta):
        return o.total_seconds()
    if isinstance(o, Enum):
        return o.value
    if isinstance(o, set | frozenset):
        try:
            return sorted(o)
        except TypeError:
            return list(o)
    if isinstance(o, BaseModel):
        return o.model_dump(mode="json")
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    raise TypeError(f"audit field value of type {type(o).__name__} is not serialisable")


_OPTS: dict[str, Any] = {"sort_keys": True, "separators": (",", ":"), "allow_nan": False,
                         "default": _default}
encode = json.JSONEncoder(ensure_ascii=False, **_OPTS).encode  # seals: their MAC's exact bytes
encode_ascii = json.JSONEncoder(ensure_ascii=True, **_OPTS).encode  # lone surrogates


def _stdlib_bytes(rec: dict[str, Any]) -> bytes:
    """The standard library's canonical bytes: what orjson does not write (``receiver.fastjson``)."""
    try:
        return encode(rec).encode()
    except UnicodeEncodeError:
        return encode_ascii(rec).encode()


def check_line(raw: bytes) -> tuple[dict[str, Any], None] | tuple[None, str]:
    """Parse a line (no newline) and check its own hash: (record, None) or (None, why)."""
    try:
        rec = json.loads(raw)
    except ValueError:
        return None, "not JSON"
    if not isinstance(rec, dict):
        return None, "not a JSON object"
    digest = rec.get("hash")
    if not isinstance(digest, str) or len(digest) != 64 or not _HEX.issuperset(digest):
        return None, "no hash"
    if raw[-_SUFFIX_LEN:-66] != _HASH_KEY or raw[-66:] != b'%s"}' % digest.encode():
        return None, "hash is not the last field"
    if hashlib.sha256(raw[:-_SUFFIX_LEN] + b"}").hexdigest() != digest:
        return None, "hash mismatch"
    if type(rec.get("seq")) is not int or not isinstance(rec.get("prev"), str):
        return None, "no seq or prev"
    return rec, None


def encode_line(rec: dict[str, Any]) -> tuple[bytes, str]:
    """The line (with its newline) for ``rec`` (which has ``prev`` and no ``hash``), and its hash."""
    data = sorted_dumps(rec, _default, _stdlib_bytes)
    digest = hashlib.sha256(data).hexdigest()
    return b"".join((data[:-1], _HASH_KEY, digest.encode(), b'"}\n')), digest
