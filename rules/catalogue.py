"""What the rule loader needs to know about actions, without importing them.

``rules`` must not import ``remediations`` (the layers point the other way), yet loading
is strict: an unknown action or parameters the action rejects are load errors. The
loader therefore takes an :class:`ActionCatalogue`; ``remediations.registry.Registry``
is the one that implements it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel


@dataclass(frozen=True, slots=True)
class ActionInfo:
    """The facts about one action that rule loading checks."""

    name: str
    params: type[BaseModel]
    destructive: bool
    read_only: bool
    target_kinds: frozenset[str]
    """Target kinds the action works on; empty means it takes no ``target``."""
    approval_always: bool = False
    """It asks a human whatever the rule says (``redis.flushdb``)."""
    destructive_with: Callable[[Mapping[str, Any]], bool] | None = None
    """Whether it is destructive with these params as written (templated ones: ``destructive``)."""

    def needs_approval_by_nature(self, params: Mapping[str, Any]) -> bool:
        """Destructive with ``params``, and not an action that asks a human anyway."""
        if self.approval_always:
            return False
        return self.destructive_with(params) if self.destructive_with is not None else self.destructive


class ActionCatalogue(Protocol):
    """Looks an action up by its name, e.g. ``notify.log``."""

    def info(self, name: str) -> ActionInfo | None:
        """The action's facts, or None when there is no such action."""
        ...

    def names(self) -> list[str]:
        """Every known action name, sorted."""
        ...
