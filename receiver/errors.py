"""Errors of the service around the flow; all derive from the one base in ``rules.errors``.

Raised by settings loading, the state store, the audit log and intake; turned into HTTP
answers only in ``receiver.http.handlers`` and into CLI messages only in ``receiver.cli.main``.
"""

from __future__ import annotations

from rules.errors import RemediatorError


class ReceiverError(RemediatorError):
    """Base of the errors the receiver raises on purpose."""


class ConfigError(ReceiverError):
    """The service configuration (or a secret it references) is not valid."""


class StateError(ReceiverError):
    """The state store cannot be reached or refused an operation."""


class Unavailable(ReceiverError):
    """Intake cannot take work now (queue full, shutting down): Alertmanager should resend."""


class NotFound(ReceiverError):
    """The API was asked about something that does not exist (404)."""


class Conflict(ReceiverError):
    """The API was asked to do something the current state forbids (409)."""


class Undelivered(ReceiverError):
    """An escalation reached not every notifier: one failed for now (5xx, 429, timeout, no
    connection) and may take it later; the timer that sent it is tried again after its lease."""
