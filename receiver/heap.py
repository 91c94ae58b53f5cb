"""The long-lived heap kept out of the cyclic garbage collector's full collections.

Used by ``receiver.http.server.serve`` (the ``remediator serve`` process only): once the
server is up, and again after each rules reload (``receiver.flow.reload.RulesCoordinator``
calls :func:`settle` through the hook ``serve`` gives it). A full (generation 2)
collection walks every object the process holds; the compiled rules are most of them, so
with 10,000 rules each one held the event loop for ~0.3 s, under every request in flight,
although the rules never become garbage while they are loaded. Frozen objects are left out
of every later collection (``gc.freeze``); what start-up or the replaced rules left as
garbage is collected first, so nothing is frozen that should have been freed.
"""

from __future__ import annotations

import gc


def settle() -> int:
    """Collect what is garbage now, then freeze everything that is left; how many objects are
    frozen. Called again (a reload), it first gives the frozen objects back to the collector, so
    the replaced rules are collected: one full collection per reload, not one every so often."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
