"""A real ``celery worker`` for the ``celery.*`` tests: started by PID, stopped by PID.

Used by ``tests/remediations/test_celery.py``. The worker runs ``tests.support.celeryapp``
with the threads pool (one task at a time, the consumer free to answer remote control
while a task runs) on the local Redis, under the test's own key prefix and control
exchange (so tests at once never meet), consuming one queue; :func:`start_worker` waits
(bounded) until it answers a ping, :func:`stop_worker` sends SIGTERM and, after a short
grace, SIGKILL (a worker busy with a sleeping task would otherwise finish it first).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from celery import Celery

from tests.support.paths import REPO

START_DEADLINE = 30.0
STOP_GRACE = 3.0


@dataclass(frozen=True, slots=True)
class Worker:
    name: str
    process: subprocess.Popen[bytes]
    log: Path


def client_app(broker: str, prefix: str, exchange: str) -> Celery:
    """An app that sees what the worker sees (the test's own prefix and exchange)."""
    app = Celery("remediator-tests-client", broker=broker, set_as_current=False)
    app.conf.update(control_exchange=exchange, broker_transport_options={"global_keyprefix": prefix})
    return app


def start_worker(*, broker: str, prefix: str, exchange: str, queue: str, name: str, log: Path) -> Worker:
    env = {**os.environ, "RT_CELERY_BROKER": broker, "RT_CELERY_PREFIX": prefix,
           "RT_CELERY_EXCHANGE": exchange, "RT_CELERY_QUEUE": queue, "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-m", "celery", "-A", "tests.support.celeryapp", "worker", "--pool=threads",
            "--concurrency=1", "-Q", queue, "-n", name, "--without-gossip", "--without-mingle",
            "--without-heartbeat", "--loglevel=INFO"]
    with log.open("wb") as out:
        process = subprocess.Popen(args, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    worker = Worker(name, process, log)
    app = client_app(broker, prefix, exchange)
    try:
        deadline = time.monotonic() + START_DEADLINE
        while not app.control.ping(destination=[name], timeout=0.5):
            if process.poll() is not None or time.monotonic() > deadline:
                stop_worker(worker)
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"celery worker {name} did not answer a ping within "
                                   f"{START_DEADLINE}s:\n{tail}")
    finally:
        app.close()
    return worker


def stop_worker(worker: Worker) -> None:
    """SIGTERM by PID, SIGKILL after a grace; never by name."""
    process = worker.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait(timeout=10)
