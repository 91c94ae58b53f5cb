"""What a resolved alert finds open: one verify timer and one pending approval for a fingerprint.

Used by ``tests.receiver.flow.test_resolution_group`` and
``tests.receiver.store.test_redis_resolved``, which close them through ``close_resolved``.
"""

from __future__ import annotations

from receiver.store.protocol import StateStore
from receiver.store.values import Approval, ApprovalStatus, Timer
from tests.support.fakeclock import FakeClock


async def arm(store: StateStore, clock: FakeClock, fp: str, *, approval_for: float = 600) -> None:
    """A verify timer (due in 60 s) and a pending approval (expiring in ``approval_for`` s) for ``fp``."""
    await store.put_timer(Timer(id=f"t-{fp}", kind="verify", fingerprint=fp, due_at=clock.now() + 60,
                                expires_at=clock.now() + 3600, payload={}))
    await store.put_approval(Approval(id=f"p-{fp}", status=ApprovalStatus.PENDING, created_at=clock.now(),
                                      expires_at=clock.now() + approval_for, decision="d", rule="r",
                                      fingerprint=fp, payload={}))
