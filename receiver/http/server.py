"""Running the service: listen (TLS when configured), handle signals, shut down cleanly.

Called by ``remediator serve``. SIGTERM and SIGINT stop intake, let running work drain
within ``drain_timeout`` while the listener stays open (a webhook is answered 503 with
``Retry-After``, ``/ready`` 503: never a refused connection), then close it, flush the audit
and exit; SIGHUP reloads the rules.
Every connection goes through a :class:`receiver.http.connections.ConnectionGate`: header,
idle and send timeouts, and a cap on connections below the open-file limit.
When ``$REMEDIATOR_ENDPOINT_FILE`` names a file (the image sets it), the URL serve answers
on is written there once it listens and removed when it stops, so ``remediator health``
(the image's HEALTHCHECK, ``receiver.cli.health``) follows the configured listen address
and scheme.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import ssl
from pathlib import Path

import structlog
from aiohttp import web

from receiver import heap
from receiver.errors import ConfigError, ReceiverError
from receiver.flow.reload import RulesCoordinator
from receiver.http.app import create_app
from receiver.http.connections import ConnectionGate, Limits, connection_limits
from receiver.http.keys import GATE, RUNTIME
from receiver.settings import Settings, TlsSettings

_log = structlog.get_logger("remediator")
ENDPOINT_FILE_ENV = "REMEDIATOR_ENDPOINT_FILE"


def endpoint_file() -> Path | None:
    """Where serve says where it listens, when ``$REMEDIATOR_ENDPOINT_FILE`` is set."""
    name = os.environ.get(ENDPOINT_FILE_ENV, "")
    return Path(name) if name else None


def local_url(scheme: str, host: str, port: int) -> str:
    """The URL a client on this host uses for a listen address (a wildcard means loopback)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def _write_endpoint(path: Path, url: str, *, client_cert: bool) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"url": url, "client_cert": client_cert, "pid": os.getpid()}) + "\n")
    tmp.replace(path)


def ssl_context(tls: TlsSettings) -> ssl.SSLContext:
    """A server context from ``tls:``; a ``client_ca`` makes client certificates mandatory."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(tls.cert), str(tls.key))
    if tls.client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=str(tls.client_ca))
    return ctx


class GatedSite(web.TCPSite):
    """aiohttp's ``TCPSite`` with every connection through a :class:`ConnectionGate`.

    asyncio accepts up to its ``backlog`` connections in one turn of the loop before any is
    handled, so that number is kept small (``accept_batch``: open files the gate has not
    counted yet); the kernel's queue of connections waiting to be accepted (``backlog``) is
    set apart, long enough for a burst.
    """

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *, gate: ConnectionGate,
                 ssl_context: ssl.SSLContext | None = None, accept_batch: int = 64,
                 backlog: int = 1024) -> None:
        super().__init__(runner, host, port, ssl_context=ssl_context, backlog=backlog)
        self._gate = gate
        self._accept_batch = accept_batch

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        listening = await asyncio.get_running_loop().create_server(
            self._gate.protocol(server), self._host, self._port, ssl=self._ssl_context,
            backlog=self._accept_batch,
            ssl_handshake_timeout=self._gate.header_timeout if self._ssl_context else None)
        for sock in listening.sockets:  # listen() again on the same socket: only the queue grows
            with socket.socket(fileno=os.dup(sock.fileno())) as same:
                same.listen(self._backlog)
        self._server = listening
        self._bound_port = listening.sockets[0].getsockname()[1] if listening.sockets else self._port


def gated_runner(app: web.Application, settings: Settings) -> tuple[web.AppRunner, ConnectionGate, Limits]:
    """The runner of ``app``, the gate its site puts every connection through, and the limits."""
    limits = connection_limits(settings.http.max_connections)
    runtime = app[RUNTIME]
    gate = ConnectionGate(settings.http, limit=limits.connections, metrics=runtime.metrics)
    runtime.metrics.connections_open.set_function(lambda: gate.open)
    app[GATE] = gate
    _log.info("http.connections", limit=limits.connections, accept_batch=limits.accept_batch,
              open_files=limits.files)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=10.0,
                           keepalive_timeout=settings.http.idle_timeout.total_seconds())
    return runner, gate, limits


def _announce(runner: web.AppRunner, endpoint: Path | None, scheme: str, settings: Settings) -> None:
    """Write the endpoint file (when one is asked for) and log each address listened on."""
    if endpoint is not None and runner.addresses:
        host, port = runner.addresses[0][0], runner.addresses[0][1]
        try:
            _write_endpoint(endpoint, local_url(scheme, host, port),
                            client_cert=settings.tls is not None and settings.tls.client_ca is not None)
        except OSError as exc:
            _log.warning("remediator.endpoint_file_failed", path=str(endpoint), error=str(exc))
    for address in runner.addresses:
        host, port = address[0], address[1]
        _log.info("remediator.listening", url=f"{scheme}://{host}:{port}")


def _settle_heap(rules: RulesCoordinator) -> None:
    """Keep what start-up left (the rules most of all) out of the collector's full passes, and
    settle again after each reload (``receiver.heap``)."""
    def settle(after: str) -> None:
        _log.info("remediator.heap_frozen", objects=heap.settle(), after=after)

    settle("start")
    rules.after_reload = lambda: settle("reload")


async def serve(settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT."""
    app = create_app(settings)
    runtime = app[RUNTIME]
    runner, gate, limits = gated_runner(app, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    reloads: set[asyncio.Task[object]] = set()

    def on_hup() -> None:
        task = loop.create_task(runtime.rules.reload(runtime.audit, actor="SIGHUP"))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    await runner.setup()
    endpoint = endpoint_file()
    if endpoint is not None:
        endpoint.unlink(missing_ok=True)  # a previous run's, naming what may no longer be true
    # Signals are ours before anyone can learn the address: an early SIGHUP reloads, never kills.
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, on_hup)
    try:
        try:
            context = ssl_context(settings.tls) if settings.tls else None
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"tls: cannot load the certificate or key: {exc}") from None
        site = GatedSite(runner, settings.host, settings.port, gate=gate, ssl_context=context,
                         accept_batch=limits.accept_batch)
        try:
            await site.start()
        except OSError as exc:
            raise ReceiverError(f"cannot listen on {settings.listen}: {exc.strerror or exc}") from None
        _announce(runner, endpoint, "https" if context else "http", settings)
        _settle_heap(runtime.rules)
        await stop.wait()
        _log.info("remediator.stopping")
        runtime.begin_drain()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        await asyncio.gather(*reloads, return_exceptions=True)
        await runtime.drain()  # still listening: what arrives meanwhile is told to come back
        _log.info("remediator.drained")
    finally:
        await runner.cleanup()
        if endpoint is not None:
            with contextlib.suppress(OSError):
                endpoint.unlink(missing_ok=True)
