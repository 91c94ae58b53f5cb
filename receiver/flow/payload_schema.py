"""The Alertmanager webhook body (version 4) as pydantic models: the schema of ``POST /webhook``.

The rules both decoders of ``receiver.flow.payload`` keep: the models are the reference
(``receiver.flow.payload.reference_parse`` validates every body with them, and names the
JSON path of the first problem), and ``receiver.flow.payload_fast`` writes the same rules
out by hand for the bodies that pass them all. Unknown fields are ignored (Alertmanager keeps
adding some); the fields remediator uses are checked strictly: strings that are strings,
label names as Prometheus has them, RFC 3339 timestamps with a zone. A
:class:`WebhookMessage` is read by ``receiver.flow.intake`` and the tools
(``receiver.tools.simulate``, ``receiver.tools.sandbox``); ``receiver.tools.rulecases``
reuses :data:`LabelSet`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
ZERO_TIME_YEAR = 1
"""The year of Alertmanager's zero time (``0001-01-01T00:00:00Z``): an alert with no end yet."""
LABEL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
LABEL_NAME_MAX = 1024
FINGERPRINT = r"^[0-9a-fA-F]{1,64}$"


def timestamp(value: object) -> datetime:
    """``value`` as an aware datetime, if it is an RFC 3339 timestamp string with a zone."""
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 timestamp string")
    if not RFC3339.match(value):
        raise ValueError(f"not an RFC 3339 timestamp with a time zone: {value[:64]!r}")
    try:
        return datetime.fromisoformat(value.upper())
    except ValueError as exc:
        raise ValueError(f"invalid timestamp {value[:64]!r}: {exc}") from None


def _whole(value: object) -> object:
    """A count written as a whole float (``3.0``) is the integer JSON Schema says it is."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Timestamp = Annotated[datetime, BeforeValidator(timestamp)]
LabelSet = dict[Annotated[str, Field(pattern=LABEL_NAME, max_length=LABEL_NAME_MAX)], StrictStr]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class AlertPayload(_Lenient):
    """One alert of the body, as Alertmanager sends it."""

    status: Literal["firing", "resolved"]
    labels: LabelSet
    annotations: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    startsAt: Timestamp  # noqa: N815 - Alertmanager's field name
    endsAt: Timestamp | None = None  # noqa: N815
    generatorURL: StrictStr = ""  # noqa: N815
    fingerprint: Annotated[StrictStr, Field(pattern=FINGERPRINT)]


class WebhookMessage(_Lenient):
    """The whole body: the group's fields and its alerts."""

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
