"""The connections serve holds: closed when a client stalls, capped below the open-file limit.

``receiver.http.server`` wraps aiohttp's protocol factory with :meth:`ConnectionGate.protocol`,
and the request middleware (``receiver.http.middlewares``) tells the gate what each connection
is doing: :meth:`ConnectionGate.reading` when a request's handling starts (its body may still be
on its way), :meth:`ConnectionGate.working` once the body is in and the handler works on it;
the request's task ending makes the connection idle again. A connection is closed when:

- its request line and headers are not in ``http.header_timeout`` after its first byte (or
  after connecting);
- it stays idle between requests longer than ``http.idle_timeout``;
- its client does not read the answer for ``http.send_timeout`` (the write buffer stays full);
- a new connection arrives while ``limit`` are open: the one waiting longest for a request,
  its headers or its body is closed to make room (a handler at work is never interrupted);
  when every connection is at work, the newcomer is closed instead.

The body's own timeout (``http.body_timeout``) is the middleware's, which answers 408. So
thousands of slow or idle connections cost at most ``limit`` open files for at most a
timeout each, and a client that sends its request at once (``/health``, Alertmanager) is
served: only the stalled ones are closed for it. TLS handshakes are bounded by
``header_timeout`` (asyncio's ``ssl_handshake_timeout``) and counted once complete.
"""

from __future__ import annotations

import asyncio
import resource
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp.web_protocol import RequestHandler

from receiver.metrics import Metrics
from receiver.serving import HttpSettings

_log = structlog.get_logger("remediator.http")
_RESERVED_FILES = 128  # audit files, the state store's connections, outbound calls, the listener


@dataclass(frozen=True, slots=True)
class Limits:
    """How many connections to hold and to accept in one turn, under the open-file limit ``files``."""

    connections: int
    accept_batch: int
    files: int


def connection_limits(configured: int) -> Limits:
    """The open-file limit raised to its hard limit (as Go's runtime does), then the most
    connections to hold: ``configured``, or fewer when the open files left after the
    service's own (audit, state store, outbound calls) and after the sockets asyncio may
    accept before any is handled (up to ``accept_batch`` per loop turn, a few turns) are fewer.
    An accept that meets the open-file limit is what made ``/health`` time out."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY or soft > ceiling:
        soft = ceiling
    if soft < ceiling:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
            soft = ceiling
        except (ValueError, OSError):
            pass
    batch = max(16, min(128, soft // 16))
    room = soft - max(_RESERVED_FILES, soft // 8) - 3 * batch
    return Limits(max(16, min(configured, room)), batch, soft)


class _Connection(asyncio.Protocol):
    """One accepted connection: aiohttp's handler inside, the gate's timers around it."""

    def __init__(self, gate: ConnectionGate, handler: RequestHandler) -> None:
        self.gate = gate
        self.handler = handler
        self.transport: asyncio.Transport | None = None
        self.state = "new"  # new → idle | reading | working | closed
        self.timer: asyncio.TimerHandle | None = None
        self.deadline = 0.0  # loop time at which ``timer_reason`` closes the connection
        self.timer_reason = ""
        self.send_timer: asyncio.TimerHandle | None = None
        self.admitted = False

    # asyncio calls these; aiohttp's handler gets every one of them.
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if not self.gate.admit(self):
            self.state = "closed"
            transport.abort()
            return
        self.admitted = True
        self.handler.connection_made(transport)
        self.arm(self.gate.header_timeout, "header_timeout")

    def data_received(self, data: bytes) -> None:
        if self.state == "closed":
            return
        if self.state == "idle" and self.timer_reason == "idle_timeout":
            self.arm(self.gate.header_timeout, "header_timeout")  # a new request has begun
        self.handler.data_received(data)

    def eof_received(self) -> bool | None:
        if self.state != "closed":
            self.handler.eof_received()
        return None  # asyncio closes the transport, as aiohttp's handler asks

    def connection_lost(self, exc: Exception | None) -> None:
        self.gate.forget(self)
        if self.admitted:
            self.handler.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.state != "closed":
            self.send_timer = self.gate.loop.call_later(self.gate.send_timeout, self.close, "send_timeout")
            self.handler.pause_writing()

    def resume_writing(self) -> None:
        if self.send_timer is not None:
            self.send_timer.cancel()
            self.send_timer = None
        if self.state != "closed":
            self.handler.resume_writing()

    # The gate's side. One timer per connection, moved only to an earlier deadline: a later
    # one is reached from it when it fires, and disarming leaves it to find nothing due (not
    # two timers made and cancelled per request).
    def arm(self, delay: float, reason: str) -> None:
        loop = self.gate.loop
        self.deadline = loop.time() + delay
        self.timer_reason = reason
        if self.timer is None or self.timer.when() > self.deadline:
            if self.timer is not None:
                self.timer.cancel()
            self.timer = loop.call_at(self.deadline, self._expire)

    def disarm(self) -> None:
        self.timer_reason = ""

    def cancel(self) -> None:
        """Drop the timer (the connection is gone: nothing may keep it alive)."""
        if self.timer is not None:
            self.timer.cancel()
        self.timer, self.timer_reason = None, ""

    def _expire(self) -> None:
        self.timer = None
        if not self.timer_reason:
            return
        if self.gate.loop.time() < self.deadline:  # armed again since: on to the new deadline
            self.timer = self.gate.loop.call_at(self.deadline, self._expire)
            return
        self.close(self.timer_reason)

    def close(self, reason: str) -> None:
        """Close the connection now, for ``reason`` (counted; a handler's task sees it lost)."""
        if self.state == "closed" or self.transport is None:
            return
        self.gate.closed(self, reason)
        self.transport.abort()


class ConnectionGate:
    """Every connection of one server: their timers, their count and the cap."""

    def __init__(self, settings: HttpSettings, *, limit: int, metrics: Metrics | None = None) -> None:
        self.header_timeout = settings.header_timeout.total_seconds()
        self.idle_timeout = settings.idle_timeout.total_seconds()
        self.send_timeout = settings.send_timeout.total_seconds()
        self.limit = limit
        self._metrics = metrics
        self._open: dict[RequestHandler, _Connection] = {}
        self._waiting: OrderedDict[_Connection, None] = OrderedDict()  # closable, longest first
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    @property
    def open(self) -> int:
        """Connections held now."""
        return len(self._open)

    def protocol(self, make: Callable[[], RequestHandler]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for ``loop.create_server`` around aiohttp's (``runner.server``)."""

        def factory() -> asyncio.Protocol:
            return _Connection(self, make())

        return factory

    def admit(self, conn: _Connection) -> bool:
        """Room for ``conn``: close the connection waiting longest when full; False when every
        connection is at work (``conn`` is then closed)."""
        if len(self._open) >= self.limit:
            if not self._waiting:
                self._count("refused")
                return False
            victim = next(iter(self._waiting))
            victim.close("evicted")
        self._open[conn.handler] = conn
        self._set_waiting(conn, "idle")
        return True

    def _set_waiting(self, conn: _Connection, state: str) -> None:
        conn.state = state
        self._waiting.pop(conn, None)
        self._waiting[conn] = None

    def reading(self, handler: Any, task: asyncio.Task[Any] | None) -> None:
        """A request's handling began on ``handler``'s connection (its body may still come)."""
        conn = self._open.get(handler)
        if conn is None:
            return
        conn.disarm()
        self._set_waiting(conn, "reading")
        if task is not None:
            task.add_done_callback(lambda _: self._finished(conn))

    def working(self, handler: Any) -> None:
        """The request's body is in: the handler works and is not interrupted for room."""
        conn = self._open.get(handler)
        if conn is not None and conn.state == "reading":
            conn.state = "working"
            self._waiting.pop(conn, None)

    def _finished(self, conn: _Connection) -> None:
        if conn.state in ("reading", "working"):
            self._set_waiting(conn, "idle")
            conn.arm(self.idle_timeout, "idle_timeout")

    def closed(self, conn: _Connection, reason: str) -> None:
        self._count(reason)
        self.forget(conn)

    def forget(self, conn: _Connection) -> None:
        conn.state = "closed"
        conn.cancel()
        if conn.send_timer is not None:
            conn.send_timer.cancel()
            conn.send_timer = None
        self._waiting.pop(conn, None)
        if self._open.get(conn.handler) is conn:
            del self._open[conn.handler]

    def _count(self, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.connections_closed.labels(reason).inc()
