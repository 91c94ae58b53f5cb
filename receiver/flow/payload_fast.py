"""The short way through a webhook body that passes every rule of the schema, to the reference way's result.

Called by ``receiver.flow.payload.parse_webhook`` with the body's one parse (a dict) and its
bytes. The rules of ``receiver.flow.payload_schema`` are written out here by hand (what
pydantic would check, for the few types a parse of JSON gives), the timestamps come from
a small cache, label names once seen valid from a set, the duplicate-key check is a
byte count or two (``receiver.flow.jsonkeys``), and the models are built from values
already checked. :func:`accept` gives the very ``WebhookMessage`` and ``Alert`` objects
the reference way gives, or None for anything it does not fully accept (a value the
schema refuses, a count written as a float, a key given twice ...): the caller then goes
the reference way, which finds the error and its path as it always did. Equal results,
and the reference's answer for every error, are shown by
``tests/receiver/flow/test_payload_fast.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from itertools import chain
from typing import Any, TypeVar

from pydantic import BaseModel

from receiver.flow.jsonkeys import no_key_twice, strings_and_quotes
from receiver.flow.payload_schema import (
    LABEL_NAME_MAX,
    ZERO_TIME_YEAR,
    AlertPayload,
    WebhookMessage,
    timestamp,
)
from rules.alert import Alert

ALERT_FIELDS = frozenset(("status", "labels", "annotations", "startsAt", "endsAt", "generatorURL",
                          "fingerprint"))
"""The fields of ``AlertPayload`` this module checks (a test holds it to the model's)."""
MESSAGE_FIELDS = frozenset(("version", "status", "receiver", "groupKey", "truncatedAlerts", "groupLabels",
                            "commonLabels", "commonAnnotations", "externalURL", "alerts"))
"""The fields of ``WebhookMessage`` this module checks (a test holds it to the model's)."""
_STATUSES = ("firing", "resolved")
_MAPS = ("groupLabels", "commonLabels", "commonAnnotations")
_ABSENT: Any = object()
_HEX = "0123456789abcdefABCDEF"
_FINGERPRINT_MAX = 64
_COUNT_MAX = 1 << 63  # a larger truncatedAlerts goes the reference way
_NAMES_KEPT = 4096  # label names known to be valid, so the next body's are one set look-up
_TIMES_KEPT = 4096  # Alertmanager re-sends the same startsAt (and zero endsAt) again and again
_set = object.__setattr__
_M = TypeVar("_M", bound=BaseModel)

_valid_names: set[str] = set()


@lru_cache(maxsize=_TIMES_KEPT)
def _time(text: str) -> datetime:
    return timestamp(text)


def _names_valid(labels: dict[str, Any]) -> bool:
    """Whether every key of ``labels`` is a label name (``[a-zA-Z_][a-zA-Z0-9_]*``, at most 1,024)."""
    if _valid_names.issuperset(labels):
        return True
    for name in labels:
        if name not in _valid_names:
            # ASCII identifiers are exactly the label-name pattern (and never empty).
            if not (len(name) <= LABEL_NAME_MAX and name.isascii() and name.isidentifier()):
                return False
            if len(_valid_names) < _NAMES_KEPT:
                _valid_names.add(name)
    return True


def _text(*parts: Iterable[Any]) -> str | None:
    """The strings of ``parts`` joined, or None if one of them is not a string."""
    try:
        return "".join(chain(*parts))  # one pass in C that refuses anything but a string
    except TypeError:
        return None


def _model(cls: type[_M], values: dict[str, Any], fields_set: set[str]) -> _M:
    """``cls`` holding ``values``, already valid, as ``model_validate`` leaves it (what
    ``model_construct`` does, for these models with no aliases, extras kept or private state)."""
    model = cls.__new__(cls)
    _set(model, "__dict__", values)
    _set(model, "__pydantic_fields_set__", fields_set)
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model


class _Counts:
    """The strings a body's parse holds and the quote characters in them, as they are met."""

    __slots__ = ("quotes", "strings")

    def __init__(self) -> None:
        self.strings = self.quotes = 0

    def extras(self, raw: dict[str, Any], known: frozenset[str]) -> None:
        """Count what ``raw``'s unknown fields hold (ignored, but they count for duplicates)."""
        for key, value in raw.items():
            if key not in known:
                strings, quotes = strings_and_quotes(value)
                self.strings += strings
                self.quotes += quotes + key.count('"')


def _alert(raw: Any, counts: _Counts) -> tuple[AlertPayload, Alert] | None:
    """One alert and its model, if every rule holds; what it holds is added to ``counts``."""
    if type(raw) is not dict:
        return None
    get = raw.get
    status, labels, fingerprint = get("status"), get("labels"), get("fingerprint")
    starts_raw, ends_raw = get("startsAt"), get("endsAt")
    annotations, url = get("annotations", _ABSENT), get("generatorURL", "")
    if annotations is _ABSENT:
        annotations = {}
    if (status not in _STATUSES or type(labels) is not dict or type(annotations) is not dict
            or type(fingerprint) is not str or not 0 < len(fingerprint) <= _FINGERPRINT_MAX
            or fingerprint.strip(_HEX) or type(starts_raw) is not str or not _names_valid(labels)):
        return None
    try:
        # Label names, statuses, timestamps and the fingerprint hold no quote; the rest may.
        free = "".join([*labels.values(), *annotations, *annotations.values(), url])  # strings only
        starts = _time(starts_raw)
        ends = None if ends_raw is None else _time(ends_raw) if type(ends_raw) is str else _ABSENT
    except (TypeError, ValueError):
        return None
    if ends is _ABSENT:
        return None
    # The keys; status, startsAt and fingerprint; endsAt and generatorURL if there; labels and annotations
    counts.strings += (len(raw) + 3 + (ends is not None) + ("generatorURL" in raw)
                       + 2 * (len(labels) + len(annotations)))
    counts.quotes += free.count('"')
    if ALERT_FIELDS.issuperset(raw):
        fields_set = set(raw)
    else:
        fields_set = raw.keys() & ALERT_FIELDS
        counts.extras(raw, ALERT_FIELDS)
    model = _model(AlertPayload, {
        "status": status, "labels": labels, "annotations": annotations, "startsAt": starts, "endsAt": ends,
        "generatorURL": url, "fingerprint": fingerprint}, fields_set)
    alert = Alert(fingerprint=fingerprint, status=status, labels=labels, annotations=annotations,
                  starts_at=starts, starts_at_raw=starts_raw,
                  ends_at=None if ends is None or ends.year == ZERO_TIME_YEAR else ends, generator_url=url)
    return model, alert


def checked(data: dict[str, Any]) -> tuple[WebhookMessage, list[Alert], int, int] | None:
    """The message and alerts of the decoded body ``data`` if every rule of the schema holds
    (else None), and how many strings ``data`` holds and quote characters in them (as
    ``receiver.flow.jsonkeys.strings_and_quotes`` counts them)."""
    alerts_raw, status = data.get("alerts"), data.get("status")
    receiver, group_key, url = data.get("receiver", ""), data.get("groupKey", ""), data.get("externalURL", "")
    truncated = data.get("truncatedAlerts", 0)
    maps = [data.get(key, _ABSENT) for key in _MAPS]
    maps = [{} if value is _ABSENT else value for value in maps]
    if (data.get("version") != "4" or type(alerts_raw) is not list or not alerts_raw
            or (status is not None and status not in _STATUSES)
            or type(truncated) is not int or not 0 <= truncated < _COUNT_MAX
            or any(type(value) is not dict for value in maps)):
        return None
    free = _text(*maps, *(value.values() for value in maps), (receiver, group_key, url))
    if free is None:
        return None
    counts = _Counts()
    # The keys; version; status if not null; receiver, groupKey and externalURL if there; the maps
    counts.strings = (len(data) + 1 + (status is not None) + ("receiver" in data) + ("groupKey" in data)
                      + ("externalURL" in data) + 2 * sum(len(value) for value in maps))
    counts.quotes = free.count('"')
    models, alerts = [], []
    for raw in alerts_raw:
        one = _alert(raw, counts)
        if one is None:
            return None
        models.append(one[0])
        alerts.append(one[1])
    if MESSAGE_FIELDS.issuperset(data):
        fields_set = set(data)
    else:
        fields_set = data.keys() & MESSAGE_FIELDS
        counts.extras(data, MESSAGE_FIELDS)
    group_labels, common_labels, common_annotations = maps
    message = _model(WebhookMessage, {
        "version": "4", "status": status, "receiver": receiver, "groupKey": group_key,
        "truncatedAlerts": truncated, "groupLabels": group_labels, "commonLabels": common_labels,
        "commonAnnotations": common_annotations, "externalURL": url, "alerts": models}, fields_set)
    return message, alerts, counts.strings, counts.quotes


def accept(data: dict[str, Any], body: bytes) -> tuple[WebhookMessage, list[Alert]] | None:
    """The message and alerts of ``body`` (decoded: ``data``) if it passes every rule, no key
    given twice; else None, for the reference way to answer."""
    found = checked(data)
    if found is None:
        return None
    message, alerts, strings, quotes = found
    if not no_key_twice(body, data, strings, quotes):
        return None
    return message, alerts
