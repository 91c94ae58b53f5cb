"""The Alertmanager webhook body (version 4), decoded strictly where it matters.

Called by ``receiver.handlers`` for every ``POST /webhook``. Unknown fields are
ignored (Alertmanager keeps adding some); the fields remediator uses are checked
strictly: real JSON only (no NaN), strings that are strings, RFC 3339 timestamps with a
zone. A failure is a :class:`PayloadError` naming the JSON path of the first problem.
"""

from __future__ import annotations

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
    truncatedAlerts: Annotated[StrictInt, Field(ge=0)] = 0  # noqa: N815
    groupLabels: dict[StrictStr, StrictStr] = Field(default_factory=dict)  # noqa: N815
    commonLabels: dict[StrictStr, StrictStr] = Field(default_factory=dict)  # noqa: N815
    commonAnnotations: dict[StrictStr, StrictStr] = Field(default_factory=dict)  # noqa: N815
    externalURL: StrictStr = ""  # noqa: N815
    alerts: list[AlertPayload] = Field(min_length=1)


def _json_path(loc: tuple[int | str, ...]) -> str:
    out = "$"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


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
        raise PayloadError("body must be a JSON object")
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
        raise PayloadError(msg, path=_json_path(first["loc"])) from None
    alerts = [_to_alert(raw, m) for raw, m in zip(data["alerts"], message.alerts, strict=True)]
    return message, alerts
