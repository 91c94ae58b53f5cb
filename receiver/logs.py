"""structlog set-up: JSON lines to stdout, or a console renderer on a terminal.

Called once by ``receiver.cli`` before serving. Every log line carries the bound
context (request, decision, rule, fingerprint); secrets are ``remediations.secrets.Secret``
objects, which render as ``<secret …>``, and the ``Authorization`` header is never bound.
"""

from __future__ import annotations

import logging
import sys

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}


def configure_logging(*, level: str = "info", fmt: str = "auto") -> None:
    """Configure structlog for the process (log set-up is process-wide by nature)."""
    console = fmt == "console" or (fmt == "auto" and sys.stdout.isatty())
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer() if console else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
