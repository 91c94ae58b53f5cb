"""One PostgreSQL connection per call, and psycopg's errors as Temporary or Permanent.

Used by every ``postgres.*`` action (``remediations.postgres.terminate_idle``,
``remediations.postgres.cancel_long_queries``, ``remediations.postgres.activity``): each
``plan()`` or ``execute()`` opens one autocommit connection (psycopg 3, async) with a
connect timeout and a statement timeout, and closes it when done. A psycopg error raised
inside comes out as :class:`~remediations.base.TemporaryError` (the executor retries it)
or :class:`~remediations.base.PermanentError`, its message never holding the DSN's
password. psycopg is imported on first use, so start-up and ``rules lint`` do not pay for it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from remediations.base import PermanentError, RemediationError, TemporaryError
from remediations.targets import PostgresTarget

if TYPE_CHECKING:
    from typing import TypeAlias

    import psycopg
    from psycopg.rows import DictRow

    Connection: TypeAlias = psycopg.AsyncConnection[DictRow]

_CONNECT_TIMEOUT = 5  # seconds, libpq's connect_timeout
_STATEMENT_TIMEOUT = "SET statement_timeout = '10s'"

# SQLSTATE classes worth a retry: connection exception, insufficient resources, operator
# intervention (shutdown, statement_timeout), system error, transaction rollback.
_TEMPORARY_CLASSES = ("08", "53", "57", "58", "40")
_TEMPORARY_STATES = frozenset({"55P03"})  # lock_not_available
# A failed connection carries no SQLSTATE, only libpq's message. These mean the DSN or
# the server's configuration is wrong; anything else (refused, timeout, too many
# clients, starting up) may pass.
_PERMANENT_CONNECT = (
    "authentication failed", "does not exist", "no pg_hba.conf entry", "not permitted to log in",
    "no password supplied", "permission denied", "invalid",
)


def _message(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:300] + "…"


def _redact(text: str, dsn: str) -> str:
    """libpq may quote the connection string it could not parse: never let the password out."""
    import psycopg  # noqa: PLC0415 - psycopg is imported on first use
    from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415

    try:
        password = conninfo_to_dict(dsn).get("password")
    except psycopg.Error:
        return re.sub(r'"[^"]*"', '"…"', text)  # unparseable: any quoted part may hold it
    return text.replace(str(password), "…") if password else text


def pg_error(exc: psycopg.Error, what: str, *, dsn: str | None = None) -> RemediationError:
    """A psycopg error as Temporary (retry may help) or Permanent (it will not)."""
    import psycopg  # noqa: PLC0415 - loaded by the connection that failed

    text = _message(exc) if dsn is None else _redact(_message(exc), dsn)
    message = f"{what}: {text}"
    state = exc.sqlstate
    if state is None:
        if isinstance(exc, psycopg.ProgrammingError | psycopg.InterfaceError | psycopg.NotSupportedError):
            return PermanentError(message)  # a malformed DSN, a driver misuse
        if any(p in text for p in _PERMANENT_CONNECT):
            return PermanentError(message)
        return TemporaryError(message)
    if state.startswith(_TEMPORARY_CLASSES) or state in _TEMPORARY_STATES:
        return TemporaryError(message)
    return PermanentError(message)


@asynccontextmanager
async def connect(target: PostgresTarget, what: str) -> AsyncIterator[Connection]:
    """One autocommit connection; psycopg errors inside come out classified."""
    import psycopg  # noqa: PLC0415 - psycopg is imported on first use
    from psycopg.rows import dict_row  # noqa: PLC0415

    dsn = target.dsn.reveal()
    try:
        conn = await psycopg.AsyncConnection.connect(
            dsn, autocommit=True, row_factory=dict_row,
            connect_timeout=_CONNECT_TIMEOUT, fallback_application_name="remediator",
        )
    except psycopg.Error as exc:
        raise pg_error(exc, f"{what}: cannot connect", dsn=dsn) from None
    try:
        await conn.execute(_STATEMENT_TIMEOUT)
        yield conn
    except psycopg.Error as exc:
        raise pg_error(exc, what) from None
    finally:
        await conn.close()


async def rows(conn: Connection, sql: str, args: Mapping[str, Any]) -> list[DictRow]:
    """Every row ``sql`` answers, as dicts; ``args`` are bound, never formatted into the text."""
    cur = await conn.execute(sql, args)
    return await cur.fetchall()
