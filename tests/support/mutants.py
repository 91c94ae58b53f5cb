"""JSON bodies made odd on purpose: written with keys twice and strings spelled every legal way, and mutated.

Used by ``tests.receiver.flow.test_payload_fast`` to hold the fast way of decoding a
webhook to the reference way. A body is read into :class:`Obj` (an object as its list of
pairs, so a key may be there twice), changed by :func:`mutate`, and written by
:func:`write` in a style drawn at random (compact, spaced or indented; escapes as ``\\"``
or ``\\u0022``, non-ASCII raw or escaped, surrogate pairs).
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass
from typing import Any


class Obj(list[tuple[str, Any]]):
    """A JSON object as its pairs in order; the same key may be there more than once."""


def read(text: str | bytes) -> Any:
    """``text`` parsed with every object as an :class:`Obj`."""
    return json.loads(text, object_pairs_hook=Obj)


@dataclass(frozen=True)
class Style:
    """How :func:`write` spells a body."""

    item: str = ","  # between items
    colon: str = ":"
    indent: str = ""  # "" for one line
    ascii_only: bool = False  # non-ASCII as \\uXXXX
    escape_rate: float = 0.0  # the share of other characters written as \\uXXXX


def style(rng: random.Random) -> Style:
    """A style drawn at random, half of the time the compact one Alertmanager writes."""
    if rng.random() < 0.5:
        return Style(escape_rate=rng.choice((0.0, 0.0, 0.05)))
    return Style(item=rng.choice((",", ", ", " ,\n")), colon=rng.choice((":", ": ", " : ", "\t:")),
                 indent=rng.choice(("", "  ", "\t")), ascii_only=rng.random() < 0.5,
                 escape_rate=rng.choice((0.0, 0.1, 0.3)))


_SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _escaped(char: str) -> str:
    code = ord(char)
    if code > 0xFFFF:
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04X}"
    return f"\\u{code:04x}"


def _string(text: str, how: Style, rng: random.Random) -> str:
    out = ['"']
    for char in text:
        if (how.escape_rate and rng.random() < how.escape_rate) or (ord(char) < 0x20 and char not in _SHORT):
            out.append(_escaped(char))
        elif char in _SHORT:
            out.append(_SHORT[char])
        elif how.ascii_only and ord(char) > 0x7F:
            out.append(_escaped(char))
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def write(value: Any, how: Style, rng: random.Random, depth: int = 0) -> str:
    """``value`` as JSON text spelled as ``how`` says (escapes drawn with ``rng``)."""
    if isinstance(value, str):
        return _string(value, how, rng)
    if isinstance(value, Obj | list):
        items = ([f"{_string(k, how, rng)}{how.colon}{write(v, how, rng, depth + 1)}" for k, v in value]
                 if isinstance(value, Obj) else [write(v, how, rng, depth + 1) for v in value])
        opening, closing = ("{", "}") if isinstance(value, Obj) else ("[", "]")
        if not how.indent or not items:
            return opening + how.item.join(items) + closing
        inner, outer = "\n" + how.indent * (depth + 1), "\n" + how.indent * depth
        return opening + inner + (how.item.rstrip() + inner).join(items) + outer + closing
    return json.dumps(value)


TIMES = ["2026-11-23T06:42:28.909Z", "2026-11-23t06:42:28z", "2026-11-23T06:42:28+02:00",
         "2026-11-23T06:42:28.123456789-05:30", "2026-11-23T06:42:28", "2026-11-23 06:42:28Z",
         "2026-02-30T06:42:28Z", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00",
         "9999-12-31T23:59:59-01:00", "2026-11-23T06:42:28.1234567890Z", "2026-11-23T06:42:28Z\n",
         "\uff12\uff10\uff12\uff16-11-23T06:42:28Z", "2026-11-23T24:00:00Z", "2026-11-23T06:42:60Z",
         "2026-11-23T06:42:28+24:00", "2026-11-23T06:42:28.5Z", "20261123T064228Z"]
NAMES = ["status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint", "version",
         "alerts", "receiver", "groupKey", "truncatedAlerts", "groupLabels", "commonLabels",
         "commonAnnotations", "externalURL", "alertname", "severity", "_", "_x9", "1team", "team-name", "",
         'a"b', "\u00e9", "x" * 1025, "y" * 1024, "team\n", "Labels", "st\\atus", "K\u212a"]
VALUES: list[Any] = [None, True, False, 0, -1, 1, 4.0, 1.5, 1e300, 2**63 - 1, 2**63, 2**70, "", "4", "firing",
                     "resolved", "FIRING", "x", 'a "quoted" b\\', "{}:{alertname=\"X\"}", "\U0001f600 \u2028",
                     "abc123", "ABCDEF0123456789", "0" * 64, "0" * 65, "ab\n", Obj(), [], ["x"],
                     Obj([("a", "b")]), Obj([("k", Obj([("q", "1"), ("q", "2")]))]), [Obj([("n", [1, "s"])])],
                     *TIMES]


def _containers(node: Any, found: list[Any]) -> list[Any]:
    if isinstance(node, Obj | list):
        found.append(node)
        for child in (v for _, v in node) if isinstance(node, Obj) else node:
            _containers(child, found)
    return found


def _tweak(text: str, rng: random.Random) -> str:
    at = rng.randrange(len(text) + 1)
    odd = ['"', "\\", ":", "{", "\u00e9", "\U0001f600", "\n", " ", "\\u0022"]
    return text[:at] + rng.choice(odd) + text[at:]


def mutate(body: Any, rng: random.Random) -> Any:
    """``body`` (read by :func:`read`, changed in place) after one to three random changes
    (values from the pools are copied in, so the pools stay as they are)."""
    for _ in range(rng.randint(1, 3)):
        objects = [c for c in _containers(body, []) if isinstance(c, Obj)]
        target = rng.choice(objects) if objects else body
        if not isinstance(target, Obj) or not target:
            continue
        at = rng.randrange(len(target))
        key, value = target[at]
        op = rng.randrange(7)
        if op == 0:
            del target[at]
        elif op == 1:  # a key twice, the same or another value
            again = copy.deepcopy(value if rng.random() < 0.5 else rng.choice(VALUES))
            target.insert(rng.randrange(len(target) + 1), (key, again))
        elif op in (2, 3):
            target[at] = (key, copy.deepcopy(rng.choice(TIMES if "At" in key else VALUES)))
        elif op == 4:
            target[at] = (rng.choice(NAMES), value)
        elif op == 5:
            extra = (rng.choice(NAMES[16:]), copy.deepcopy(rng.choice(VALUES)))
            target.insert(rng.randrange(len(target) + 1), extra)
        elif isinstance(value, str):
            target[at] = (key, _tweak(value, rng))
    return body
