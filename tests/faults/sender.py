"""A sender that delivers firings the way Alertmanager 0.25 does (tests/fixtures/alertmanager/NOTES.md).

Each notification (one to three firings, as a group would carry them) is posted at a
steady rate to one of the replicas; a 5xx, a refused or reset connection or no answer
within ``timeout`` is sent again after a growing, jittered backoff (Alertmanager's 0.3 s
to ~9 s schedule compressed to 0.2 s to 2 s so a case stays short), to whichever replica
the next draw names, until ``give_up`` passes; a 2xx is final (202 ``{"queued": 0}`` for
a re-send of an accepted firing included); a 4xx is recorded as refused and not sent
again. Every draw comes from the case's seed. Used by ``tests.faults.runner``.
"""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tests.support.webhooks import alert, body

FIRST_BACKOFF = 0.2
MAX_BACKOFF = 2.0
HEADERS = {"Content-Type": "application/json", "User-Agent": "Alertmanager/0.25.0"}


@dataclass(frozen=True)
class Firing:
    """One firing of one alert; its ``firing`` label carries ``id`` to the target's path."""

    id: str
    alert: dict[str, Any]

    @property
    def fingerprint(self) -> str:
        value: str = self.alert["fingerprint"]
        return value


@dataclass
class Notification:
    """One webhook request's firings and what became of it."""

    firings: list[Firing]
    answers: Counter[str] = field(default_factory=Counter)
    accepted: bool = False
    refused: int | None = None

    @property
    def attempts(self) -> int:
        return sum(self.answers.values())


def notifications(case: str, count: int, rng: random.Random) -> list[Notification]:
    """``count`` firings named ``<case>-<n>``, grouped one to three per notification."""
    made: list[Notification] = []
    n = 0
    while n < count:
        size = min(rng.choice((1, 1, 1, 2, 3)), count - n)
        made.append(Notification([Firing(f"{case}-{n + i:04d}", alert(firing=f"{case}-{n + i:04d}"))
                                  for i in range(size)]))
        n += size
    return made


class Sender:
    """Posts notifications at a rate with ``concurrency`` in flight, re-sending as Alertmanager does."""

    def __init__(self, urls: Callable[[], Sequence[str]], *, seed: int, concurrency: int = 12,
                 timeout: float = 8.0) -> None:
        self._urls = urls
        self._seed = seed
        self._concurrency = concurrency
        self._timeout = timeout
        self._lock = threading.Lock()
        self.answers: Counter[str] = Counter()

    def run(self, batch: Sequence[Notification], *, rate: float, give_up: float) -> None:
        """Send every notification of ``batch`` (blocking) until accepted, refused or ``give_up``
        (a ``time.monotonic`` instant)."""
        start = time.monotonic()
        with ThreadPoolExecutor(self._concurrency, thread_name_prefix="sender") as pool:
            for i, note in enumerate(batch):
                pause = start + i / rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                pool.submit(self._deliver, note, random.Random(self._seed * 100_003 + i), give_up)

    def _deliver(self, note: Notification, rng: random.Random, give_up: float) -> None:
        payload = body(*(f.alert for f in note.firings))
        backoff = FIRST_BACKOFF
        while True:
            urls = self._urls()
            answer = self._post(urls[rng.randrange(len(urls))], payload)
            note.answers[answer] += 1
            with self._lock:
                self.answers[answer] += 1
            if answer.startswith("2"):
                note.accepted = True
                return
            if answer.startswith("4"):
                note.refused = int(answer)
                return
            if time.monotonic() + backoff > give_up:
                return
            time.sleep(backoff * rng.uniform(0.8, 1.2))
            backoff = min(backoff * 1.5, MAX_BACKOFF)

    def _post(self, url: str, payload: bytes) -> str:
        """The answer's status, or ``connection`` (refused, reset) or ``timeout``."""
        req = urllib.request.Request(url + "/webhook", data=payload, method="POST", headers=HEADERS)
        try:
            with urllib.request.urlopen(req, timeout=self._timeout) as resp:
                json.loads(resp.read())
                return str(resp.status)
        except urllib.error.HTTPError as err:
            err.read()
            return str(err.code)
        except TimeoutError:
            return "timeout"
        except (urllib.error.URLError, OSError, ValueError) as err:
            if isinstance(getattr(err, "reason", None), TimeoutError):
                return "timeout"
            return "connection"
