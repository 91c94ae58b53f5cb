"""Decoding ``POST /webhook``: the body to a ``WebhookMessage`` and its alerts, or a :class:`PayloadError`.

Called by ``receiver.http.handlers`` for every webhook (and by ``receiver.tools.simulate``
and ``receiver.tools.ruletest``). The schema is ``receiver.flow.payload_schema``: real JSON
only (no NaN, no lone surrogates, no duplicate keys), strict on the fields remediator uses,
unknown fields ignored. The body is parsed once; ``receiver.flow.payload_fast`` then
takes a body that passes every rule (nearly all do) on a short path, and anything else
goes the reference way (:func:`reference_parse`): pydantic validates it, and a failure is
a :class:`PayloadError` naming the JSON path of the first problem. Both ways give equal
results (``tests/receiver/flow/test_payload_fast.py``).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pydantic_core
from pydantic import ValidationError

from receiver.errors import ReceiverError
from receiver.flow import payload_fast
from receiver.flow.jsonkeys import pairs_in_text, pairs_in_tree
from receiver.flow.payload_schema import ZERO_TIME_YEAR, AlertPayload, WebhookMessage
from rules.alert import Alert

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KEY_MARK = "[key]"  # pydantic's marker: the error is about the mapping key itself
_MAX_KEY_IN_PATH = 128  # a path names a huge key by its start (…), so answers stay small


class PayloadError(ReceiverError):
    """The body is not a valid Alertmanager webhook; ``path`` is where (``$.alerts[0]``)."""

    def __init__(self, message: str, *, path: str = "$", kind: str = "invalid_payload") -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.kind = kind


def _json_path(loc: tuple[int | str, ...]) -> str:
    """``$.alerts[0].labels.severity``; other keys as ``["a.b"]``, a huge one cut to ``["aaa…"]``."""
    out = "$"
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif len(part) > _MAX_KEY_IN_PATH:
            out += f"[{json.dumps(part[:_MAX_KEY_IN_PATH] + '…', ensure_ascii=False)}]"
        elif _IDENTIFIER.match(part):
            out += f".{part}"
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out


class _Duplicated(dict[str, Any]):
    """A decoded object that had ``key`` more than once."""

    key: str


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    seen: set[str] = set()
    marked = _Duplicated(obj)
    for key, _ in pairs:
        if key in seen:
            marked.key = key
            break
        seen.add(key)
    return marked


def _find_duplicate(node: Any, loc: tuple[int | str, ...]) -> tuple[int | str, ...] | None:
    if isinstance(node, _Duplicated):
        return (*loc, node.key)
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        found = _find_duplicate(child, (*loc, key))
        if found is not None:
            return found
    return None


def _reject_duplicate_keys(body: bytes) -> None:
    """Refuse an object with a key twice: parsers disagree on which one counts (RFC 7493)."""
    flagged: list[bool] = []

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = _pairs(pairs)
        if isinstance(obj, _Duplicated):
            flagged.append(True)
        return obj

    # Already valid JSON (checked by pydantic-core); numbers stay text, so no digit limits.
    try:
        tree = json.loads(body.decode("utf-8"), object_pairs_hook=hook, parse_int=str, parse_float=str)
    except (ValueError, RecursionError) as exc:  # not expected after pydantic-core accepted it
        raise PayloadError(f"body is not valid JSON: {exc}", kind="invalid_json") from None
    if flagged:
        loc = _find_duplicate(tree, ()) or ()
        key = str(loc[-1])[:64] if loc else ""
        raise PayloadError(f"duplicate key {key!r} in one object", path=_json_path(loc))


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _to_alert(raw: dict[str, Any], model: AlertPayload) -> Alert:
    ends = model.endsAt
    return Alert(
        fingerprint=model.fingerprint,
        status=model.status,
        labels=model.labels,
        annotations=model.annotations,
        starts_at=model.startsAt,
        starts_at_raw=raw["startsAt"],
        ends_at=None if ends is None or ends.year == ZERO_TIME_YEAR else ends,
        generator_url=model.generatorURL,
    )


def _decoded(body: bytes) -> Any:
    """The one strict parse of the body: no NaN or infinities, no lone surrogates, UTF-8."""
    try:
        return pydantic_core.from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        raise PayloadError(f"body is not valid JSON: {exc}", kind="invalid_json") from None


def _validated(data: Any, body: bytes) -> tuple[WebhookMessage, list[Alert]]:
    """The reference way for the decoded ``data`` of ``body``: pydantic checks every rule."""
    if not isinstance(data, dict):
        raise PayloadError(f"body must be a JSON object, not {_json_type(data)}")
    if pairs_in_text(body) != pairs_in_tree(data):  # a key given twice: find where
        _reject_duplicate_keys(body)
    if data.get("version") != "4" and "version" in data:
        raise PayloadError(
            f"unsupported webhook version {data['version']!r}: remediator reads version \"4\"",
            path="$.version",
        )
    try:
        message = WebhookMessage.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        msg = first["msg"].removeprefix("Value error, ")
        loc = tuple(first["loc"])
        if loc and loc[-1] == _KEY_MARK:
            loc = loc[:-1]
            msg = f"invalid key {str(loc[-1])[:64]!r}: {msg}"
        raise PayloadError(msg, path=_json_path(loc)) from None
    alerts = [_to_alert(raw, m) for raw, m in zip(data["alerts"], message.alerts, strict=True)]
    return message, alerts


def reference_parse(body: bytes) -> tuple[WebhookMessage, list[Alert]]:
    """Decode and validate ``body`` the reference way only (pydantic): what :func:`parse_webhook`
    answers must equal this, result or error."""
    return _validated(_decoded(body), body)


def parse_webhook(body: bytes) -> tuple[WebhookMessage, list[Alert]]:
    """Decode and validate a webhook body; raise :class:`PayloadError` on the first problem."""
    data = _decoded(body)
    if type(data) is dict:
        fast = payload_fast.accept(data, body)
        if fast is not None:
            return fast
    return _validated(data, body)
