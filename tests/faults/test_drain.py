"""SIGTERM mid-action: the listener answers 503 with Retry-After until the drain ends, and the
actions in flight are neither lost nor repeated after the restart.

One ``serve`` on SQLite (``tests.faults.fleet``), its target slow (each call 1.5 s, the drain
3 s), four firings accepted and in flight when SIGTERM comes. While the process drains, a
probe posts a new firing every 50 ms: Alertmanager must hear 503 + ``Retry-After`` (it sends
again), not a refused connection and never a 202 that no worker will take. After the restart
every firing is judged as in ``tests.faults.test_faults``.
"""

from __future__ import annotations

import random
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.faults.fleet import Fleet, service_config
from tests.faults.ledger import read_records, trails
from tests.faults.sender import HEADERS, Sender, notifications
from tests.faults.target import HitTarget
from tests.support.webhooks import alert, body

pytestmark = pytest.mark.faults
DRAINING = 0.8
"""The calls in flight take 1.5 s and had all arrived at SIGTERM: for this long it surely drains."""


def probe(url: str) -> str:
    """POST one new firing: ``503+retry-after``, another status, or ``connection``."""
    req = urllib.request.Request(url + "/webhook", data=body(alert(firing="drain-probe")),
                                 method="POST", headers=HEADERS)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return str(resp.status)
    except urllib.error.HTTPError as err:
        return f"{err.code}+retry-after" if err.headers.get("Retry-After") else str(err.code)
    except OSError:
        return "connection"


def test_sigterm_keeps_answering_503_while_actions_drain(tmp_path: Path) -> None:
    target = HitTarget(delay=1.5)
    state = f"sqlite:///{tmp_path / 'state.db'}"
    fleet = Fleet(tmp_path, 1, service_config(target_url=target.url, state=state, prefix="drain", workers=4,
                                              drain_timeout="3s"), "10s")
    [replica] = fleet.replicas
    try:
        fleet.start()
        batch = notifications("drain", 4, random.Random(17))
        Sender(fleet.urls, seed=17).run(batch, rate=100, give_up=time.monotonic() + 15)
        accepted = [f for note in batch if note.accepted for f in note.firings]
        assert len(accepted) == 4
        end = time.monotonic() + 15
        while target.total() < 4 and time.monotonic() < end:
            time.sleep(0.02)
        assert replica.proc is not None
        replica.proc.send_signal(signal.SIGTERM)
        termed = time.monotonic()
        answers: list[tuple[float, str]] = []
        while replica.running() and time.monotonic() < end:
            answers.append((time.monotonic() - termed, probe(replica.url)))
            time.sleep(0.05)
        early = [answer for at, answer in answers if at < DRAINING]
        assert len(early) >= 5, answers
        assert set(early) == {"503+retry-after"}, answers
        assert "202" not in {answer for _, answer in answers}, answers
        replica.start()
        end = time.monotonic() + 15
        logs = [(replica.name, replica.audit)]
        while time.monotonic() < end and not all(t.settled for t in trails(accepted, target.count,
                                                                           read_records(logs))):
            time.sleep(0.1)
        time.sleep(1.0)
        judged = trails(accepted, target.count, read_records(logs))
        assert [(t.firing.id, t.hits, t.lost) for t in judged] == [(f.id, 1, False) for f in accepted], \
            "\n".join(t.show() for t in judged)
    finally:
        fleet.stop()
        target.close()
