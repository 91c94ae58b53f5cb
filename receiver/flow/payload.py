"""The Alertmanager webhook body (version 4), decoded strictly where it matters.

Called by ``receiver.http.handlers`` for every ``POST /webhook``. Unknown fields are
ignored (Alertmanager keeps adding some); the fields remediator uses are checked
strictly: real JSON only (no NaN, no lone surrogates, no duplicate keys), strings that are
strings, RFC 3339 timestamps with a zone. A failure is a :class:`PayloadError` naming the
JSON path of the first problem.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal

import pydantic_core
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
)

from receiver.errors import ReceiverError
from rules.alert import Alert

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
_ZERO_TIME_YEAR = 1
_LABEL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KEY_MARK = "[key]"  # pydantic's marker: the error is about the mapping key itself
# All bytes but colons, quotes, backslashes and what may follow a backslash (so the escapes stay)
_NOT_MARKS = bytes(b for b in range(256) if b not in b':"\\/bfnrtu')
_MAX_KEY_IN_PATH = 128  # a path names a huge key by its start (…), so answers stay small


class PayloadError(ReceiverError):
    """The body is not a valid Alertmanager webhook; ``path`` is where (``$.alerts[0]``)."""

    def __init__(self, message: str, *, path: str = "$", kind: str = "invalid_payload") -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.kind = kind


def _timestamp(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 timestamp string")
    if not _RFC3339.match(value):
        raise ValueError(f"not an RFC 3339 timestamp with a time zone: {value[:64]!r}")
    try:
        return datetime.fromisoformat(value.upper())
    except ValueError as exc:
        raise ValueError(f"invalid timestamp {value[:64]!r}: {exc}") from None


def _whole(value: object) -> object:
    """A count written as a whole float (``3.0``) is the integer JSON Schema says it is."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Timestamp = Annotated[datetime, BeforeValidator(_timestamp)]
LabelSet = dict[Annotated[str, Field(pattern=_LABEL_NAME, max_length=1024)], StrictStr]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class AlertPayload(_Lenient):
    status: Literal["firing", "resolved"]
    labels: LabelSet
    annotations: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    startsAt: Timestamp  # noqa: N815 - Alertmanager's field name
    endsAt: Timestamp | None = None  # noqa: N815
    generatorURL: StrictStr = ""  # noqa: N815
    fingerprint: Annotated[StrictStr, Field(pattern=r"^[0-9a-fA-F]{1,64}$")]


class WebhookMessage(_Lenient):
    version: Literal["4"]
    status: Literal["firing", "resolved"] | None = None
    receiver: StrictStr = ""
    groupKey: StrictStr = ""  # noqa: N815
    truncatedAlerts: Annotated[StrictInt, BeforeValidator(_whole), Field(ge=0)] = 0  # noqa: N815
    groupLabels: dict[StrictStr, StrictStr] = Field(default_factory=dict)  # noqa: N815
    commonLabels: dict[StrictStr, StrictStr] = Field(default_factory=dict)  # noqa: N815
    commonAnnotations: dict[StrictStr, StrictStr] = Field(default_factory=dict)  # noqa: N815
    externalURL: StrictStr = ""  # noqa: N815
    alerts: list[AlertPayload] = Field(min_length=1)


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


def _pairs_in_text(body: bytes) -> int:
    """How many ``key: value`` pairs the valid JSON ``body`` writes: its colons outside strings."""
    # Only colons, quotes and escapes matter; escaped backslashes out first (left to right,
    # as JSON reads them), then escaped quotes: every quote left opens or closes a string.
    marks = body.translate(None, _NOT_MARKS).replace(b"\\\\", b"").replace(b'\\"', b"")
    return b"".join(marks.split(b'"')[::2]).count(b":")


def _pairs_in_tree(tree: Any) -> int:
    """How many keys the decoded objects of ``tree`` hold (a key given twice counts once)."""
    count, stack = 0, [tree]
    while stack:
        node = stack.pop()
        if type(node) is dict:
            count += len(node)
            stack.extend(node.values())
        elif type(node) is list:
            stack.extend(node)
    return count


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
        ends_at=None if ends is None or ends.year == _ZERO_TIME_YEAR else ends,
        generator_url=model.generatorURL,
    )


def parse_webhook(body: bytes) -> tuple[WebhookMessage, list[Alert]]:
    """Decode and validate a webhook body; raise :class:`PayloadError` on the first problem."""
    try:
        data = pydantic_core.from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        raise PayloadError(f"body is not valid JSON: {exc}", kind="invalid_json") from None
    if not isinstance(data, dict):
        raise PayloadError(f"body must be a JSON object, not {_json_type(data)}")
    if _pairs_in_text(body) != _pairs_in_tree(data):  # a key given twice: find where
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
