"""The action's target in the fault cases: a threaded HTTP server counting hits per firing.

The rule's ``http.request`` posts to ``/svc/hit/<firing id>``; every request is counted on
arrival (before it is answered), so a request that the action gave up on (a timeout, a 500)
still counts as a side effect that may have happened. The target can be switched to answer
500 (``fail``), to hold every request until healed or for at most ``hang_cap`` seconds
(``hang``), to refuse every request with 503 as a proxy with no backend does (``refuse``:
nothing was done, so nothing is counted; ``http.request`` retries it), and back (``heal``);
``delay`` slows every answer (actions stay in flight).
Used by ``tests.faults.runner`` and ``tests.faults.inject``.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections import Counter
from enum import StrEnum
from typing import Any

HIT_PREFIX = "/svc/hit/"


class Mode(StrEnum):
    """How the target answers now."""

    OK = "ok"
    FAIL = "fail"
    HANG = "hang"
    REFUSE = "refuse"


class HitTarget:
    """A local HTTP server: ``hits[firing]`` counts the calls made for one firing."""

    def __init__(self, *, delay: float = 0.0, hang_cap: float = 10.0) -> None:
        self.hits: Counter[str] = Counter()
        self.mode = Mode.OK
        self.delay = delay
        self.hang_cap = hang_cap
        self.answered: Counter[int] = Counter()
        self._lock = threading.Lock()
        self._healed = threading.Event()
        self._healed.set()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's naming
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = outer.arrived(self.path)
                payload = b"{}"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # the action gave up on a held request: its connection is gone

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/svc"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def arrived(self, path: str) -> int:
        """Count one call; wait as the mode says; the status to answer."""
        with self._lock:
            mode = self.mode
            if path.startswith(HIT_PREFIX) and mode is not Mode.REFUSE:
                self.hits[path.removeprefix(HIT_PREFIX)] += 1
        if mode is Mode.HANG:
            self._healed.wait(self.hang_cap)
        elif self.delay:
            time.sleep(self.delay)
        status = {Mode.FAIL: 500, Mode.REFUSE: 503}.get(mode, 200)
        with self._lock:
            self.answered[status] += 1
        return status

    def fail(self) -> None:
        """Answer 500 from now on (counted: the action's request reached the target)."""
        with self._lock:
            self.mode = Mode.FAIL

    def hang(self) -> None:
        """Hold every new request until ``heal`` (at most ``hang_cap`` seconds)."""
        with self._lock:
            self.mode = Mode.HANG
            self._healed.clear()

    def refuse(self) -> None:
        """Answer 503 from now on, counting nothing: no side effect happened."""
        with self._lock:
            self.mode = Mode.REFUSE

    def heal(self) -> None:
        """Answer 200 again; held requests are answered now."""
        with self._lock:
            self.mode = Mode.OK
            self._healed.set()

    def total(self) -> int:
        with self._lock:
            return sum(self.hits.values())

    def count(self, firing: str) -> int:
        with self._lock:
            return self.hits[firing]

    def close(self) -> None:
        self.heal()
        self._server.shutdown()
        self._server.server_close()
