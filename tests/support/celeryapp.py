"""The Celery app the test worker runs (``celery -A tests.support.celeryapp worker``).

Used by ``tests.support.celeryworker``, which starts the worker process with the broker,
key prefix, control exchange and queue of one test in its environment, so tests running
at once on the same Redis never see each other's messages or workers.
"""

from __future__ import annotations

import os
import time

from celery import Celery

app = Celery("remediator-tests", broker=os.environ.get("RT_CELERY_BROKER", "redis://127.0.0.1:6379/0"))
app.conf.update(
    control_exchange=os.environ.get("RT_CELERY_EXCHANGE", "celery"),
    broker_transport_options={"global_keyprefix": os.environ.get("RT_CELERY_PREFIX", "")},
    task_default_queue=os.environ.get("RT_CELERY_QUEUE", "celery"),
    worker_prefetch_multiplier=4,  # a busy worker holds (reserves) a few more tasks
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="tests.sleepy")  # type: ignore[untyped-decorator]
def sleepy(seconds: float) -> float:
    """A task that takes a while: what a worker is busy with, or hung on."""
    time.sleep(seconds)
    return seconds
