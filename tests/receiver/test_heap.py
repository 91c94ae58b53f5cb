"""The heap frozen out of the collector's full passes once settled (``receiver.heap``)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from receiver.heap import settle


class Node:
    """An object in a reference cycle of its own: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def _thawed() -> Iterator[None]:
    yield
    gc.unfreeze()  # the test process's heap goes back to the collector


def _tracked(obj: object) -> bool:
    """Whether a collection would walk ``obj`` (frozen objects are in no generation)."""
    return any(o is obj for o in gc.get_objects())


def test_settling_collects_the_garbage_then_freezes_the_rest() -> None:
    live = Node()
    dead = Node()
    gone = weakref.ref(dead)
    del dead
    frozen = settle()
    assert gone() is None  # freed before the freeze, not kept for ever
    assert frozen == gc.get_freeze_count() > 0
    assert not _tracked(live)


def test_settling_again_frees_what_became_garbage_and_freezes_what_is_new() -> None:
    """A reload: the old rules, frozen, become garbage; the new ones are new objects."""
    old = Node()
    settle()
    replaced = weakref.ref(old)
    del old
    gc.collect()
    assert replaced() is not None  # frozen: no collection frees it
    new = Node()
    assert _tracked(new)
    settle()
    assert replaced() is None
    assert not _tracked(new)
