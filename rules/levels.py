"""Priority level names in rule files: checked, and mapped onto the service's levels.

Called by ``rules.loader`` for every file (its top-level ``priority_levels:``) and every
rule (``priority``, ``approval.required_for`` and each ladder rung's). A file that says
which levels it is written on (the shipped pack: ``[P1, P2, P3, P4]``) has its names
checked against those and, given the service's policy (``rules.priority.PriorityPolicy``),
mapped by rank onto the service's levels, so the pack loads unchanged for a team whose
levels are ``SEV-1``…``SEV-4`` or ``P0``…``P3``. A file that says nothing is written on
the service's levels; without a service config (``rules lint`` with no ``--config``)
its names are only checked for their form.
"""

from __future__ import annotations

import re
from typing import Any

from rules.priority import LEVEL_PATTERN, PriorityPolicy
from rules.yamldoc import Loc, dotted

MAX_LEVELS = 10


def declared_levels(value: Any) -> tuple[list[str] | None, str | None]:
    """A file's ``priority_levels:`` (unique level names, most urgent first), or a problem;
    ``...`` when the file has none."""
    if value is ...:
        return None, None
    if not isinstance(value, list) or not 0 < len(value) <= MAX_LEVELS or not all(
            isinstance(v, str) and re.fullmatch(LEVEL_PATTERN, v) for v in value):
        return None, (f"priority_levels must be a list of 1 to {MAX_LEVELS} level names, most urgent "
                      "first (e.g. [P1, P2, P3, P4])")
    if len(set(value)) != len(value):
        return None, "priority_levels: a level is given twice"
    return list(value), None


def rule_levels(item: dict[Any, Any], written_in: list[str] | None,
                policy: PriorityPolicy | None) -> tuple[dict[Any, Any], list[tuple[Loc, str]]]:
    """The rule ``item`` to validate (a copy where a level name was mapped) and the level
    names it gives that are not known, each with its place in the rule."""
    known = written_in or (policy.levels if policy is not None else None)
    if known is None:
        return item, []
    where = "this file's priority_levels" if written_in else "the service config's priorities.levels"
    mapping = policy.translation(written_in) if written_in and policy is not None else {}
    wrong: list[tuple[Loc, str]] = []

    def check(at: Loc, name: Any, label: str) -> Any:
        if not isinstance(name, str):
            return name  # the model reports the type
        if name not in known:
            wrong.append((at, f"{label}: unknown priority level {name!r} ({where}: {', '.join(known)})"))
        return mapping.get(name, name)

    out = dict(item)
    if "priority" in item:
        out["priority"] = check(("priority",), item["priority"], "priority")
    owners: list[tuple[Loc, dict[Any, Any]]] = [((), item)]
    rungs = item.get("ladder")
    owners += [(("ladder", k), r) for k, r in enumerate(rungs if isinstance(rungs, list) else [])
               if isinstance(r, dict)]
    for at, owner in owners:
        approval = owner.get("approval")
        if not isinstance(approval, dict) or not isinstance(names := approval.get("required_for"), list):
            continue
        mapped = {**approval, "required_for": [
            check((*at, "approval", "required_for", j), n, dotted((*at, "approval", "required_for", j)))
            for j, n in enumerate(names)]}
        if not at:
            out["approval"] = mapped
        else:
            ladder = out["ladder"] = list(out["ladder"])
            ladder[at[1]] = {**owner, "approval": mapped}
    return out, wrong
