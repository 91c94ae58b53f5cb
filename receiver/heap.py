"""The long-lived heap kept out of the cyclic garbage collector's full collections.

Used by ``receiver.http.server.serve`` (the ``remediator serve`` process only): once the
server is up, and again after each rules reload (``receiver.flow.reload.RulesCoordinator``
calls :meth:`Heap.settle` through the hook ``serve`` gives it). A full (generation 2)
collection walks every object the process holds; the compiled rules are most of them, so
with 10,000 rules each one held the event loop for ~0.3 s, under every request in flight,
although the rules never become garbage while they are loaded. Frozen objects are left out
of every later collection (``gc.freeze``); what start-up or the replaced rules left as
garbage is collected first, so nothing is frozen that should have been freed.
"""

from __future__ import annotations

import gc


class Heap:
    """Freezes what the process holds once it has settled; unfreezes, collects and freezes
    again when the rules change (one full collection per reload, not one every so often)."""

    def __init__(self) -> None:
        self.frozen = 0  # objects left out of collections since the last settle

    def settle(self) -> int:
        """Collect what is garbage now, then freeze everything that is left; how many objects
        are frozen. Called again, it first gives the frozen objects back to the collector."""
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self.frozen = gc.get_freeze_count()
        return self.frozen
