"""The hostile suite's own HTTP: a gated serve in-process, and raw bytes over real sockets.

``gated_server`` runs the real app behind ``receiver.http.server.GatedSite`` (the connection
gate serve uses) on 127.0.0.1; ``exchange`` writes any bytes at all (no client library
tidies them up) and reads back one answer and whether the server then closed the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from receiver.http.app import create_app
from receiver.http.connections import ConnectionGate
from receiver.http.keys import RUNTIME
from receiver.http.server import GatedSite, gated_runner
from receiver.runtime import Runtime
from receiver.settings import Settings
from tests.support.fakeclock import FakeClock


@dataclass
class Served:
    """A gated serve in-process: its port, runtime and connection gate."""

    port: int
    runtime: Runtime
    gate: ConnectionGate


@contextlib.asynccontextmanager
async def gated_server(settings: Settings, *, clock: FakeClock | None = None) -> AsyncIterator[Served]:
    """The real app behind the connection gate serve uses, on a free loopback port."""
    app = create_app(settings, clock=clock or FakeClock(), metrics_registry=CollectorRegistry())
    runner, gate, limits = gated_runner(app, settings)
    await runner.setup()
    site = GatedSite(runner, "127.0.0.1", 0, gate=gate, accept_batch=limits.accept_batch)
    await site.start()
    try:
        yield Served(site.port, app[RUNTIME], gate)
    finally:
        await runner.cleanup()


@dataclass
class Answer:
    """One HTTP answer read off the wire; ``closed``: the server closed the connection after it."""

    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool
    raw: bytes = field(repr=False, default=b"")

    def json(self) -> Any:
        return json.loads(self.body)


async def read_answer(reader: asyncio.StreamReader, *, within: float = 10.0) -> Answer | None:
    """One answer (None when the connection closed without one)."""
    status = 100
    while 100 <= status < 200:  # interim answers (100 Continue) come before the one that counts
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), within)
        except (asyncio.IncompleteReadError, ConnectionResetError):
            return None
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
    length = int(headers.get("content-length", "0"))
    body = await asyncio.wait_for(reader.readexactly(length), within) if length else b""
    return Answer(status, headers, body, closed=False, raw=head + body)


async def closed_by_server(reader: asyncio.StreamReader, *, within: float) -> bool:
    """Whether the server closes the connection within ``within`` seconds (nothing more sent)."""
    try:
        data = await asyncio.wait_for(reader.read(1), within)
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return data == b""


async def exchange(port: int, raw: bytes, *, within: float = 10.0, linger: float = 0.3) -> Answer | None:
    """Write ``raw`` on a new connection, read one answer, and see whether the server closes the
    connection after it (``Connection: close``, or closed within ``linger`` seconds; 0: not waited)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        answer = await read_answer(reader, within=within)
        if answer is not None:
            answer.closed = answer.headers.get("connection", "").lower() == "close" or \
                (linger > 0 and await closed_by_server(reader, within=linger))
        return answer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def request(method: str, path: str, body: bytes = b"", *, headers: dict[str, str] | None = None,
            length: int | None = None) -> bytes:
    """A raw HTTP/1.1 request; ``length`` overrides Content-Length (a lie, when wanted); ``{port}``
    (in the Host header) is replaced by :func:`exchange`'s caller with the server's port."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1:{port}"]
    given = {k.lower() for k in (headers or {})}
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if "content-length" not in given and "transfer-encoding" not in given and (body or length is not None):
        lines.append(f"Content-Length: {len(body) if length is None else length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
