"""What every ``celery.*`` action shares: a Celery app per target, the queue allow-list, broker errors.

The base of ``remediations.celery.inspect`` and ``remediations.celery.purge``. The app is a
bare ``Celery`` on the target's broker (no tasks of its own): remote control
(``app.control.inspect()``, ``ping``) goes through the broker's pidbox exchange, named by
the target's ``control_exchange``, and queue sizes and purges through one broker
connection (:func:`queue_size`, ``queue_purge``), so nothing here needs the
application's code. Calls are synchronous: each runs on the SDK pool's threads
(``ctx.calls``). Connection failures are temporary; a refused login or a malformed URL permanent. Celery is
imported on first use, so start-up and ``rules lint`` do not pay for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from remediations.base import (
    Action,
    ActionContext,
    PermanentError,
    RemediationError,
    TargetNotAllowed,
    TemporaryError,
)
from remediations.targets import CeleryTarget

if TYPE_CHECKING:
    from celery import Celery

CONNECT_TIMEOUT = 5.0  # seconds to reach the broker

T = TypeVar("T")
P = TypeVar("P", bound=BaseModel)


def broker_error(exc: BaseException, what: str, target: CeleryTarget) -> RemediationError:
    """A kombu/redis/amqp failure as the executor's error, the broker URL never in the text."""
    from kombu.exceptions import OperationalError  # noqa: PLC0415 - loaded with Celery

    secret = target.broker.reveal()
    text = str(exc).replace(secret, str(target.broker))
    name = exc.__class__.__name__
    if isinstance(exc, RemediationError):
        return exc
    lowered = text.lower()
    if any(word in lowered for word in ("auth", "password", "access_refused", "noperm", "wrongpass")):
        return PermanentError(f"{what}: the broker refused the credentials ({name})")
    if isinstance(exc, (OperationalError, ConnectionError, TimeoutError, OSError)):
        return TemporaryError(f"{what}: broker unreachable ({name}: {text[:200]})", nothing_sent=True)
    return PermanentError(f"{what}: {name}: {text[:200]}")


def queue_size(connection: Any, queue: str) -> int:
    """Messages waiting in ``queue`` (0 when the broker has no such queue).

    kombu's virtual transports (Redis, SQS, …) count their lists with ``_size``: their
    passive ``queue_declare`` asks Redis ``EXISTS``, which kombu does not prefix with a
    ``global_keyprefix``, so it would report a prefixed queue missing. AMQP brokers answer
    the passive declare with the count.
    """
    from amqp.exceptions import NotFound  # noqa: PLC0415
    from kombu.exceptions import ChannelError  # noqa: PLC0415

    channel = connection.channel()
    try:
        size = getattr(channel, "_size", None)
        if callable(size):
            return int(size(queue))
        _, count, _ = channel.queue_declare(queue=queue, passive=True)
        return int(count)
    except (ChannelError, NotFound):
        return 0
    finally:
        channel.close()


class CeleryAction(Action[P]):
    """The shared part: the target check, the queue allow-list, one app per target."""

    target_kinds = frozenset({"celery"})
    timeout = 60.0

    def __init__(self) -> None:
        self._apps: dict[str, Celery] = {}
        self._lock = threading.Lock()

    def target(self, ctx: ActionContext) -> CeleryTarget:
        if not isinstance(ctx.target, CeleryTarget):
            raise PermanentError(f"{self.name} needs a celery target, got {ctx.target_name!r}")
        return ctx.target

    def check_queues(self, ctx: ActionContext, queues: list[str]) -> None:
        target = self.target(ctx)
        outside = [q for q in queues if q not in target.queues]
        if outside:
            raise TargetNotAllowed(f"{self.name}: queue(s) {', '.join(map(repr, outside))} not in the "
                                   f"queues of target {ctx.target_name!r} ({', '.join(target.queues)})")

    def app(self, ctx: ActionContext) -> Celery:
        """The target's app, built on first use and kept (its broker connection pool with it)."""
        target = self.target(ctx)
        key = f"{ctx.target_name}|{target.broker.source}|{target.control_exchange}|{target.global_keyprefix}"
        with self._lock:
            app = self._apps.get(key)
            if app is None:
                from celery import Celery  # noqa: PLC0415 - imported on first use

                app = Celery(f"remediator-{ctx.target_name}", broker=target.broker.reveal(),
                             set_as_current=False)
                options: dict[str, Any] = {"max_retries": 0}
                if target.global_keyprefix:
                    options["global_keyprefix"] = target.global_keyprefix
                app.conf.update(control_exchange=target.control_exchange, broker_transport_options=options,
                                broker_connection_timeout=CONNECT_TIMEOUT, broker_connection_retry=False,
                                broker_connection_max_retries=0)
                self._apps[key] = app
            return app

    def close(self) -> None:
        with self._lock:
            apps, self._apps = list(self._apps.values()), {}
        for app in apps:
            app.close()

    async def in_thread(self, ctx: ActionContext, what: str, fn: Callable[[Celery], T]) -> T:
        """Run ``fn`` with the target's app on the SDK pool's threads; classify what it raises."""
        target, app = self.target(ctx), self.app(ctx)
        try:
            return await ctx.calls.run(fn, app)
        except RemediationError:
            raise
        except Exception as exc:  # every broker failure is classified; none escapes raw
            raise broker_error(exc, f"{what} on {ctx.target_name}", target) from None
