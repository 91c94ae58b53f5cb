"""The ``http:`` settings: how long serve waits for a client and how many connections it holds.

Part of the service config (``receiver.settings.Settings``); enforced by
``receiver.http.connections`` (connection timeouts and the cap, installed by
``receiver.http.server``) and the request middleware of ``receiver.http.middlewares`` (the
body timeout).
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rules.model import Duration


class HttpSettings(BaseModel):
    """Timeouts for clients that never finish, and the most connections held at once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    header_timeout: Duration = Field(
        default=timedelta(seconds=10),
        description="A request's line and headers, from its first byte (or from connecting)")
    body_timeout: Duration = Field(default=timedelta(seconds=30),
                                   description="A request's body, once its headers are in")
    idle_timeout: Duration = Field(default=timedelta(seconds=75),
                                   description="A kept-alive connection with no request")
    send_timeout: Duration = Field(default=timedelta(seconds=30),
                                   description="A client that does not read its answer")
    max_connections: int = Field(
        default=4096, ge=16, le=1_000_000,
        description="Connections held at once; fewer when the open-file limit leaves no room")

    @field_validator("header_timeout", "body_timeout", "idle_timeout", "send_timeout")
    @classmethod
    def _bounded(cls, value: timedelta) -> timedelta:
        if not timedelta(milliseconds=100) <= value <= timedelta(hours=1):
            raise ValueError("must be between 100ms and 1h")
        return value
