"""What a guard holding an action step hears around each attempt to execute it.

:class:`AttemptHooks` is implemented by ``receiver.flow.guards.stages.Hold`` (each step stage's
hold: the kill switch, the lock's fence, the execute-once marker) and called by
``receiver.flow.steps.Steps.execute``, to which ``receiver.flow.guards.pipeline`` hands the holds.
"""

from __future__ import annotations

from typing import Protocol


class AttemptHooks(Protocol):
    """Told before each attempt, just before its request may go out, and when it sent nothing."""

    async def before_attempt(self, attempt: int) -> None:
        """Before each attempt (1, then each retry after its backoff): may stop the step."""
        ...

    async def sending(self) -> None:
        """``action.started`` is durable and the request is about to go out: may stop the step."""
        ...

    async def nothing_sent(self) -> None:
        """The attempt failed before anything reached the backend (a retry may follow)."""
        ...
