"""What a step's rendered params become, kept per rule step so equal renderings are parsed once.

Called by ``receiver.flow.steps`` (:meth:`Steps.plan`). Each decision renders its step's
params for its alert; what follows from the rendered params alone — the action's validated
params model, their JSON form (``raw_params``), the default subject (the target and every
param, ``remediations.base.Action.subject``) and the dry-run plan of a step whose target is
not configured — is the same for every decision that renders them equal, so it is made
once and kept, keyed by the step's ``rules.model.ActionSpec`` object and the rendered
params' JSON. A reload makes new spec objects, so nothing made from an old rule is used for
a new one; what an old rule left is dropped with the rest once ``LIMIT`` renderings are
kept. Renderings that raise (bad params) are not kept: each decision raises again. Kept
objects are shared between decisions and read only (actions do not change their params).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from receiver import fastjson
from remediations.base import Action, ActionContext, Plan
from rules.model import ActionSpec

LIMIT = 4096  # renderings kept (over every step) before the memo starts again


@dataclass(slots=True)
class Parsed:
    """One rendering of one step, parsed: what its decisions share."""

    params: Any
    raw: Any
    """``params.model_dump(mode="json", by_alias=True)``: what an approval saves."""
    subjects: dict[str | None, str] = field(default_factory=dict)
    missing: Plan | None = None


class ParsedMemo:
    """Parsed renderings by step spec (its identity) and rendered params; one per process."""

    def __init__(self, limit: int = LIMIT) -> None:
        self._limit = limit
        self._size = 0
        self._specs: dict[int, tuple[ActionSpec, dict[str, Parsed]]] = {}

    def get(self, spec: ActionSpec, rendered: Any) -> tuple[Parsed | None, str | None]:
        """The parsed rendering kept for ``spec`` and ``rendered`` (None: not kept yet), and
        its key (None: ``rendered`` has no key, it is parsed every time)."""
        try:  # JSON that says the rendering exactly: keys strings only (orjson refuses others) …
            data = orjson.dumps(rendered)
        except TypeError:
            return None, None
        key = data.decode()
        if b"null" in data and fastjson.dumps(rendered) != key:  # … and no NaN written as null
            return None, None
        kept = self._specs.get(id(spec))
        if kept is None or kept[0] is not spec:  # the id of a spec no longer kept, reused
            return None, key
        return kept[1].get(key), key

    def keep(self, spec: ActionSpec, key: str, parsed: Parsed) -> None:
        if self._size >= self._limit:
            self._specs.clear()
            self._size = 0
        kept = self._specs.get(id(spec))
        if kept is None or kept[0] is not spec:
            kept = self._specs[id(spec)] = (spec, {})
        if key not in kept[1]:
            self._size += 1
        kept[1][key] = parsed


def subject(action: Action[Any], ctx: ActionContext, parsed: Parsed) -> str:
    """``action.subject`` of the parsed params; kept when it is the default one (made of the
    target's name and the params only)."""
    if type(action).subject is not Action.subject:
        return action.subject(ctx, parsed.params)
    found = parsed.subjects.get(ctx.target_name)
    if found is None:
        found = parsed.subjects[ctx.target_name] = action.subject(ctx, parsed.params)
    return found
