"""Connections that never finish: closed after their timeout, and never more than the cap.

In-process over real sockets, the app behind serve's connection gate with short timeouts:
each row a way to hold a connection without finishing a request, and the reason the gate
closes it for (counted in ``remediator_http_connections_closed_total``); then the cap:
the connection waiting longest is closed for a newcomer, one at work never is. The
subprocess test at the end is the finding itself: ``serve`` under ``ulimit -n 1024`` with
5,000 slow connections still answers ``/health``, and never runs out of files.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from receiver.settings import Settings, settings_from_mapping
from tests.conftest import HIGH_CPU_BODY, HIGH_CPU_RULES
from tests.hostile.wire import Served, closed_by_server, exchange, gated_server, read_answer, request
from tests.support.serveproc import listening_url, reap

TOKEN = "hostile-conn-token-77ab"
HEALTH = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
Hold = Callable[[asyncio.StreamWriter], Coroutine[Any, Any, None]]


def _settings(tmp_path: Path, **http: Any) -> Settings:
    rules = tmp_path / "rules.yaml"
    rules.write_text(HIGH_CPU_RULES)
    return settings_from_mapping({
        "state": f"sqlite:///{tmp_path / 'state.db'}", "audit": str(tmp_path / "audit.jsonl"),
        "rules": [str(rules)],
        "auth": {"tokens": [{"name": "conn", "role": "admin", "token": "env:HOSTILE_CONN_TOKEN"}]},
        "http": {"header_timeout": "300ms", "body_timeout": "300ms", "idle_timeout": "600ms",
                 "send_timeout": "300ms", **http},
    })


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTILE_CONN_TOKEN", TOKEN)


def closed(served: Served) -> dict[str, float]:
    registry: CollectorRegistry = served.runtime.metrics.registry
    return {s.labels["reason"]: s.value for m in registry.collect()
            if m.name == "remediator_http_connections_closed" for s in m.samples
            if s.name.endswith("_total")}


async def _nothing(writer: asyncio.StreamWriter) -> None:
    return


async def _half_line(writer: asyncio.StreamWriter) -> None:
    writer.write(b"POST /webh")


async def _half_headers(writer: asyncio.StreamWriter) -> None:
    writer.write(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")


async def _trickle(writer: asyncio.StreamWriter) -> None:
    for byte in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40:
        writer.write(bytes([byte]))
        await asyncio.sleep(0.02)


async def _answered_then_idle(writer: asyncio.StreamWriter) -> None:
    writer.write(HEALTH)


async def _answered_then_half(writer: asyncio.StreamWriter) -> None:
    writer.write(HEALTH)
    await asyncio.sleep(0.1)  # the answer is in: the connection is idle, then half a request comes
    writer.write(b"GET /hea")


@dataclass(frozen=True)
class Stall:
    hold: Hold
    reason: str  # what the gate counts when it closes the connection
    answers: int = 0  # answers the client gets before the close


STALLS = {
    "connects-and-says-nothing": Stall(_nothing, "header_timeout"),
    "half-a-request-line": Stall(_half_line, "header_timeout"),
    "headers-never-ended": Stall(_half_headers, "header_timeout"),
    "headers-one-byte-at-a-time": Stall(_trickle, "header_timeout"),
    "kept-alive-then-silent": Stall(_answered_then_idle, "idle_timeout", answers=1),
    "kept-alive-then-half-a-request": Stall(_answered_then_half, "header_timeout", answers=1),
}


@pytest.mark.parametrize("stall", STALLS.values(), ids=STALLS.keys())
async def test_a_stalled_connection_is_closed_for_its_timeout(stall: Stall, tmp_path: Path) -> None:
    async with gated_server(_settings(tmp_path)) as served:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        hold = asyncio.create_task(stall.hold(writer))
        for _ in range(stall.answers):
            answer = await read_answer(reader)
            assert answer is not None
            assert answer.status == 200
        assert await closed_by_server(reader, within=5.0)
        await hold
        writer.close()
        assert closed(served).get(stall.reason) == 1.0, closed(served)
        assert served.gate.open == 0


async def test_a_body_that_never_arrives_is_answered_408_and_closed(tmp_path: Path) -> None:
    """The finding: an authenticated POST whose Content-Length exceeds its body was never answered."""
    async with gated_server(_settings(tmp_path)) as served:
        raw = request("POST", "/webhook", HIGH_CPU_BODY[:50], length=len(HIGH_CPU_BODY), headers={
            "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        answer = await exchange(served.port, raw.replace(b"{port}", str(served.port).encode()))
        assert answer is not None
        assert (answer.status, answer.json()["error"], answer.closed) == (408, "request_timeout", True)


async def test_a_client_that_does_not_read_its_answers_is_closed(tmp_path: Path) -> None:
    """Thousands of pipelined requests and never a read: the answers fill the write buffer."""
    async with gated_server(_settings(tmp_path)) as served:
        _, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 3000)
        await asyncio.sleep(0.1)
        deadline = time.monotonic() + 10
        while closed(served).get("send_timeout") != 1.0:
            assert time.monotonic() < deadline, closed(served)
            await asyncio.sleep(0.05)
        writer.close()
        assert served.gate.open == 0


async def test_at_the_cap_the_longest_waiting_connection_makes_room(tmp_path: Path) -> None:
    settings = _settings(tmp_path, max_connections=16, header_timeout="30s", idle_timeout="30s")
    async with gated_server(settings) as served:
        idle = [await asyncio.open_connection("127.0.0.1", served.port) for _ in range(16)]
        await asyncio.sleep(0.05)
        assert served.gate.open == 16
        answer = await exchange(served.port, HEALTH)  # the 17th: the first idle one goes
        assert answer is not None
        assert answer.status == 200
        assert await closed_by_server(idle[0][0], within=2.0)
        assert not await closed_by_server(idle[1][0], within=0.2)
        assert closed(served).get("evicted") == 1.0
        for _, writer in idle:
            writer.close()


async def test_a_handler_at_work_is_never_closed_for_room(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Every connection at work: the newcomer is closed, the work goes on and is answered."""
    settings = _settings(tmp_path, max_connections=16, header_timeout="30s", idle_timeout="30s")
    release = asyncio.Event()
    async with gated_server(settings) as served:
        real = served.runtime.approvals.list

        async def slow(statuses: Any = None) -> Any:
            await release.wait()
            return await real(statuses)

        monkeypatch.setattr(served.runtime.approvals, "list", slow)
        ask = f"GET /api/v1/approvals HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()
        busy = [await asyncio.open_connection("127.0.0.1", served.port) for _ in range(16)]
        for _, writer in busy:
            writer.write(ask)
        await asyncio.sleep(0.2)
        assert await exchange(served.port, HEALTH) is None  # closed at once: no room, nobody waiting
        assert closed(served).get("refused") == 1.0
        release.set()
        for reader, writer in busy:
            answer = await read_answer(reader)
            assert answer is not None
            assert answer.status == 200
            writer.close()


# --- the finding, end to end: serve under ulimit -n 1024 ------------------------------------------

SLOW = 5000
PROBES = 20


async def _slow_connection(port: int, n: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return None
    kind = n % 4
    if kind == 1:
        writer.write(b"POST /webhook HTTP/1.1\r\nHost: x\r\n")
    elif kind == 2:  # an authenticated body that never comes
        writer.write(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Authorization: Bearer " + TOKEN.encode() + b"\r\nContent-Length: 100000\r\n\r\n{")
    elif kind == 3:
        writer.write(b"G")
    return reader, writer


async def _probe(port: int) -> int | str:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = await read_answer(reader, within=10)
        writer.close()
    except (OSError, TimeoutError) as exc:
        return repr(exc)
    return answer.status if answer is not None else "closed without an answer"


async def _storm(port: int) -> tuple[int, list[int | str]]:
    for garbage in (b"\x16\x03\x01garbage\r\n\r\n", b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n"):
        assert (await exchange(port, garbage, linger=0) or pytest.fail("no answer")).status == 400
    held: list[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None] = []
    for start in range(0, SLOW, 250):
        held += await asyncio.gather(*(_slow_connection(port, n) for n in range(start, start + 250)))
    probes = []
    for _ in range(PROBES):
        probes.append(await _probe(port))
        await asyncio.sleep(0.05)
    for conn in held:
        if conn is not None:
            conn[1].close()
    return sum(c is not None for c in held), probes


def test_serve_under_ulimit_1024_answers_health_through_5000_slow_connections(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < SLOW + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, SLOW + 1000), hard))
    config = tmp_path / "remediator.yaml"
    rules = tmp_path / "rules.yaml"
    rules.write_text(HIGH_CPU_RULES)
    config.write_text(json.dumps({
        "state": f"sqlite:///{tmp_path / 'state.db'}", "audit": str(tmp_path / "audit.jsonl"),
        "rules": [str(rules)],
        "auth": {"tokens": [{"name": "conn", "role": "admin", "token": "env:HOSTILE_CONN_TOKEN"}]},
    }))
    serve = 'ulimit -n 1024 && exec "$0" -m receiver serve --listen 127.0.0.1:0 --config "$1"'
    proc = subprocess.Popen(
        ["/bin/sh", "-c", serve, sys.executable, str(config)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "HOSTILE_CONN_TOKEN": TOKEN})
    try:
        url, seen = listening_url(proc)
        rest: list[str] = []
        reader = threading.Thread(target=lambda: rest.extend(proc.stdout or []), daemon=True)
        reader.start()
        port = int(url.rsplit(":", 1)[1])
        opened, probes = asyncio.run(_storm(port))
        webhook = asyncio.run(exchange(port, request(
            "POST", "/webhook", HIGH_CPU_BODY, headers={"Authorization": f"Bearer {TOKEN}",
                                                       "Content-Type": "application/json"})))
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        reap(proc)
    logs = "".join(seen + rest)
    assert opened == SLOW
    assert probes == [200] * PROBES, probes
    assert webhook is not None
    assert webhook.status == 202
    assert "Too many open files" not in logs
    assert "Traceback" not in logs  # a request aiohttp cannot parse is one line, http.bad_request
    assert '"http.bad_request"' in logs, logs[-3000:]
    limits = next(json.loads(line) for line in seen if '"http.connections"' in line)
    assert limits["open_files"] == 1024
    assert limits["limit"] < 1024
