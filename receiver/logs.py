"""structlog set-up: JSON lines to stdout, or a console renderer on a terminal.

Called once by ``receiver.cli.main`` before serving; the sandboxed commands (``rules test``,
``simulate``) run the pipeline under :func:`errors_to_stderr` instead. Every log line carries the bound
context (request, decision, rule, fingerprint); secrets are ``remediations.secrets.Secret``
objects, which render as ``<secret …>``, and the ``Authorization`` header is never bound.
What aiohttp and asyncio log through the standard library comes out the same way, one line
each: a request aiohttp could not parse (a bad request line, an encoding it cannot decode)
is the client's mistake, logged as ``http.bad_request`` without a traceback.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

import structlog
from aiohttp.http_exceptions import HttpProcessingError

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}


class _Library(logging.Handler):
    """The standard library's records (aiohttp's, asyncio's) as structlog lines."""

    def emit(self, record: logging.LogRecord) -> None:
        log = structlog.get_logger(record.name)
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            log.info("http.bad_request", status=exc.code, detail=" ".join(exc.message.split())[:300])
            return
        say = log.error if record.levelno >= logging.ERROR else log.warning
        say(record.getMessage(), exc_info=record.exc_info or None)


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
    for name in ("aiohttp", "asyncio"):
        library = logging.getLogger(name)
        library.handlers[:] = [_Library()]
        library.propagate = False
        library.setLevel(logging.WARNING)


@contextlib.contextmanager
def errors_to_stderr() -> Iterator[None]:
    """While inside: only errors are logged, to stderr (commands whose stdout is a report).

    The previous configuration is restored on exit.
    """
    before = structlog.get_config()
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.dev.ConsoleRenderer(colors=False)],
        wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    try:
        yield
    finally:
        structlog.configure(**before)
