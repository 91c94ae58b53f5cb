"""Loading rule files: strict, and reporting every problem with its file, line and rule.

Called by ``receiver`` at start-up and on every reload, and by ``remediator rules lint``.
The only I/O of the ``rules`` package: it reads the files it is given, each with
``rules.yamldoc.read_yaml`` (every value's line; bad YAML and duplicate keys reported
with theirs). Each rule is validated on its own, so one bad rule does not hide the
errors of the next; the action catalogue checks actions, targets, params.
"""

from __future__ import annotations

import difflib
import gc
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from rules.approvalcheck import label_decided_approvals
from rules.catalogue import ActionCatalogue, ActionInfo
from rules.errors import Problem, RuleError, RuleLoadError
from rules.levels import declared_levels, rule_levels
from rules.matchers import parse_matcher
from rules.model import ActionSpec, ApprovalByPriority, Limit, Rule, RuleSet, Rung, Verify
from rules.priority import PriorityPolicy
from rules.templating import Template, compile_template
from rules.yamldoc import Loc, YamlDocument, dotted, read_yaml_bytes


@dataclass(frozen=True, slots=True)
class LoadResult:
    """A rule set that loaded, and the warnings found on the way."""

    ruleset: RuleSet
    warnings: list[Problem]


def default_pack_paths() -> list[Path]:
    """The shipped rule pack: every ``rules/packs/*.yaml`` but its rule tests, sorted."""
    return sorted(p for p in Path(str(resources.files("rules").joinpath("packs"))).glob("*.yaml")
                  if not is_rule_test(p))


def is_rule_test(path: Path) -> bool:
    """``*.test.yaml``/``*.test.yml``: a rule test file (``remediator rules test``), never rules."""
    return path.name.endswith((".test.yaml", ".test.yml"))


def load_rules(
    paths: Sequence[str | Path],
    *,
    catalogue: ActionCatalogue,
    targets: Mapping[str, str] | None = None,
    priorities: PriorityPolicy | None = None,
) -> LoadResult:
    """Load every rule file under ``paths``; raise :class:`RuleLoadError` listing all errors.

    ``targets`` maps the service config's target names to their kinds, ``priorities`` is
    its level policy (``rules.levels`` checks and maps level names); None skips the checks
    that need them. Warnings (empty files, targets the config lacks) come back with the
    rule set, or inside the error when there are errors too.
    """
    enabled = gc.isenabled()
    # Loading allocates tens of objects per rule and frees almost none: the collector's
    # passes over them only cost time (more than half of it with 10,000 rules).
    gc.disable()
    try:
        return _load_rules(paths, catalogue=catalogue, targets=targets, priorities=priorities)
    finally:
        if enabled:
            gc.enable()


def _load_rules(paths: Sequence[str | Path], *, catalogue: ActionCatalogue,
                targets: Mapping[str, str] | None, priorities: PriorityPolicy | None) -> LoadResult:
    problems: list[Problem] = []
    rules: list[Rule] = []
    sources: list[str] = []
    names: dict[str, str] = {}
    for path in _expand(paths, problems):
        ctx = _File(str(path), catalogue, targets, names, priorities)
        for rule in ctx.load(path):
            rules.append(rule)
            sources.append(ctx.name)
        problems.extend(ctx.problems())
    if any(p.severity == "error" for p in problems):
        raise RuleLoadError(problems)
    return LoadResult(RuleSet(rules=tuple(rules), sources=tuple(sources)), problems)


def _expand(paths: Sequence[str | Path], problems: list[Problem]) -> list[Path]:
    """Files in load order: as given, directories walked (sorted, hidden parts skipped)."""
    out: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(f for f in path.rglob("*") if f.suffix in (".yaml", ".yml")
                           and f.is_file() and not _hidden(f.relative_to(path)) and not is_rule_test(f))
            if not found:
                problems.append(Problem(str(path), None, None, "no *.yaml or *.yml file in"
                                        " this directory", "warning"))
        elif path.exists():
            found = [path]
        else:
            problems.append(Problem(str(path), None, None, "no such file or directory"))
            found = []
        # a file named twice (or through a ConfigMap's ..data link) loads once
        out.extend(f for f in found if f.resolve() not in {o.resolve() for o in out})
    return out


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


@dataclass
class _File:
    """One file's checks: the document read (lines by data path), what was found, rule names by index."""

    name: str
    catalogue: ActionCatalogue
    targets: Mapping[str, str] | None
    names: dict[str, str]
    priorities: PriorityPolicy | None
    document: YamlDocument | None = None
    written_in: list[str] | None = None
    found: list[tuple[Loc, int | None, str, str]] = field(default_factory=list)
    rule_names: dict[int, str] = field(default_factory=dict)

    def line(self, loc: Loc) -> int | None:
        """The line of ``loc``, or of its closest ancestor that has one."""
        return self.document.line(loc) if self.document is not None else None

    def add(self, loc: Loc, message: str, severity: str = "error", line: int | None = None) -> None:
        self.found.append((loc, line or self.line(loc), message, severity))

    def problems(self) -> list[Problem]:
        out = [Problem(self.name, line, self.rule_names.get(loc[1]) if loc[:1] == ("rules",)
                       and len(loc) > 1 else None, message, severity)
               for loc, line, message, severity in self.found]
        return sorted(out, key=lambda p: p.line or 0)

    def load(self, path: Path) -> list[Rule]:
        try:
            self.document = read_yaml_bytes(path.read_bytes(), self.name)
        except OSError as exc:
            self.add((), f"cannot read the file: {exc}")
            return []
        data = self.document.data
        for found in self.document.found:
            self.add(found.loc, found.message, line=found.line)
        if data is None:
            if not self.found:
                self.add((), "the file is empty: no rules", "warning")
            return []
        if not isinstance(data, dict):
            self.add((), f"the top level must be a mapping with a 'rules:' list, not {_a(data)}")
            return []
        for key in data.keys() - {"rules", "priority_levels"}:
            self.add((key,), f"unknown top-level key {key!r} (only 'rules:' and 'priority_levels:')")
        self.written_in, problem = declared_levels(data.get("priority_levels", ...))
        if problem:
            self.add(("priority_levels",), problem)
        items = data.get("rules")
        if items is None or items == []:
            self.add(("rules",), "no rules in this file", "warning")
            return []
        if not isinstance(items, list):
            self.add(("rules",), f"'rules' must be a list of rules, not {_a(items)}")
            return []
        self.rule_names = {i: r["name"] for i, r in enumerate(items)
                           if isinstance(r, dict) and isinstance(r.get("name"), str)}
        rules = [self.rule(item, ("rules", i)) for i, item in enumerate(items)]
        return [r for r in rules if r is not None]

    def rule(self, item: Any, loc: Loc) -> Rule | None:
        if not isinstance(item, dict):
            self.add(loc, f"a rule must be a mapping (name:, match:, actions:, ...), not {_a(item)}")
            return None
        name = item.get("name")
        if isinstance(name, str) and name in self.names:
            self.add((*loc, "name"), f"rule name {name!r} is already used at {self.names[name]}")
        elif isinstance(name, str):
            self.names[name] = f"{self.name}:{self.line((*loc, 'name'))}"
        before, rule = len(self.found), None
        item, wrong = rule_levels(item, self.written_in, self.priorities)
        for at, message in wrong:
            self.add((*loc, *at), message)
        try:
            rule = Rule.model_validate(item)
        except ValidationError as exc:
            self.schema_errors(exc, item, loc)
        guaranteed: set[str] = set()
        matchers = item.get("match")
        for text in matchers if isinstance(matchers, list) else []:
            try:
                matcher = parse_matcher(text)
            except RuleError:
                continue  # reported by the schema check
            if matcher.guarantees_label:
                guaranteed.add(matcher.name)
        sections: list[tuple[Loc, Any]] = [((s,), item.get(s)) for s in ("diagnose", "actions")]
        rungs = item.get("ladder")
        for k, rung in enumerate(rungs if isinstance(rungs, list) else []):
            if isinstance(rung, dict):
                sections.append((("ladder", k, "actions"), rung.get("actions")))
        for section, specs in sections:
            for j, spec in enumerate(specs if isinstance(specs, list) else []):
                if isinstance(spec, dict):
                    self.action(spec, (*loc, *section, j), guaranteed)
        if rule is not None and rule.status == "resolved" and rule.for_:
            self.add((*loc, "for"), "'for' has no effect when status is resolved", "warning")
        for at, message in label_decided_approvals(rule, self.catalogue, self.priorities, self.written_in):
            self.add((*loc, *at), message)
        return None if any(f[3] == "error" for f in self.found[before:]) else rule

    def schema_errors(self, exc: ValidationError, item: dict[Any, Any], loc: Loc) -> None:
        seen: set[tuple[Loc, str]] = set()
        for err in exc.errors():
            where, kind, msg = tuple(err["loc"]), err["type"], _msg(err["msg"])
            if where[:1] == ("approval",) and len(where) > 1:  # a union: keep the branch meant
                is_model = where[1] == "ApprovalByPriority"
                if is_model != isinstance(item.get("approval"), dict):
                    continue
                where = ("approval", *where[2:])
                msg = msg if is_model else "must be auto, required or {required_for: [P1, ...]}"
            if kind == "value_error" and msg.startswith("params:"):
                continue  # template errors: action() reports them at their exact line
            if kind == "extra_forbidden":
                text = f"unknown key {where[-1]!r}{_in(where[:-1])}{_did_you_mean(where)}"
            elif kind == "missing":
                text = f"missing required key {where[-1]!r}{_in(where[:-1])}"
            elif where == ("name",) and kind == "string_pattern_mismatch":
                text = "name: use letters, digits and _ . : - (starting with a letter or digit)"
            elif not where and (rung := _LADDER_AT.match(msg)):  # a rung's own problem: its line
                where, text = ("ladder", int(rung[1])), msg
            else:
                text = f"{dotted(where)}: {msg}" if where else msg
            if (where, text) not in seen:
                seen.add((where, text))
                self.add((*loc, *where), text)

    def action(self, spec: dict[Any, Any], at: Loc, guaranteed: set[str]) -> None:
        params = spec.get("params", {})
        if isinstance(params, dict):
            self.templates(params, (*at, "params"), guaranteed)
        name = spec.get("action")
        info = self.catalogue.info(name) if isinstance(name, str) else None
        if info is None:
            if isinstance(name, str):
                close = difflib.get_close_matches(name, self.catalogue.names(), n=3)
                hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
                self.add((*at, "action"), f"unknown action {name!r}{hint}")
            return
        if at[2] == "diagnose" and not info.read_only:
            self.add((*at, "action"), f"a diagnose step must be read-only; {name!r} is not")
        self.target(spec.get("target"), info, at)
        if isinstance(params, dict):
            self.params(params, info.params, (*at, "params"))

    def target(self, target: Any, info: ActionInfo, at: Loc) -> None:
        kinds = " or ".join(sorted(info.target_kinds))
        if not info.target_kinds:
            if target is not None:
                self.add((*at, "target"), f"action {info.name!r} takes no target")
        elif target is None:
            self.add(at, f"action {info.name!r} needs a target (kind {kinds}) from the service config")
        elif isinstance(target, str) and self.targets is not None:
            kind = self.targets.get(target)
            if kind is None:
                self.add((*at, "target"), f"target {target!r} is not in the service config:"
                         " dry-run still renders the plan, a live decision is refused", "warning")
            elif kind not in info.target_kinds:
                self.add((*at, "target"), f"target {target!r} is a {kind} target; action"
                         f" {info.name!r} works on {kinds}")

    def params(self, params: dict[Any, Any], model: type[BaseModel], at: Loc) -> None:
        """Validate with the action's model; templated fields are checked per decision."""
        try:
            model.model_validate(params)
        except ValidationError as exc:
            for err in exc.errors():
                where = tuple(err["loc"])
                if where and _templated(params.get(where[0])):
                    continue
                text = f"{dotted((*at[2:], *where))}: {_msg(err['msg'])}"
                if err["type"] == "extra_forbidden":
                    text = f"unknown parameter {where[-1]!r}{_did_you_mean(where, model)}"
                self.add((*at, *where), text)

    def templates(self, value: Any, at: Loc, guaranteed: set[str]) -> None:
        """Template syntax, and ``labels.X`` only where a matcher guarantees label X."""
        if isinstance(value, dict | list):
            for key, sub in value.items() if isinstance(value, dict) else enumerate(value):
                self.templates(sub, (*at, key), guaranteed)
            return
        try:
            template = compile_template(value) if isinstance(value, str) else None
        except RuleError as exc:
            self.add(at, f"{dotted(at[2:])}: {exc}")
            return
        for ref in template.refs if isinstance(template, Template) else ():
            if ref.scope == "labels" and ref.key not in guaranteed:
                self.add(at, f"{dotted(at[2:])}: {{{{ {ref} }}}} may be missing; add a matcher"
                         f" that guarantees it, e.g. '{ref.key} =~ \".+\"'")


def _templated(value: Any) -> bool:
    if isinstance(value, dict):
        return any(map(_templated, value.values()))
    if isinstance(value, list):
        return any(map(_templated, value))
    return isinstance(value, str) and "{{" in value


_MODELS_AT: dict[Loc, type[BaseModel]] = {
    (): Rule, ("actions", int): ActionSpec, ("diagnose", int): ActionSpec,
    ("limit",): Limit, ("verify",): Verify, ("approval",): ApprovalByPriority,
    ("ladder", int): Rung, ("ladder", int, "actions", int): ActionSpec, ("ladder", int, "verify"): Verify,
}
_LADDER_AT = re.compile(r"^ladder\[(\d+)\]: ")


def _did_you_mean(where: Loc, model: type[BaseModel] | None = None) -> str:
    """A near key of the model the unknown key ``where[-1]`` sits in, as a hint."""
    model = model or _MODELS_AT.get(tuple(int if isinstance(p, int) else p for p in where[:-1]))
    if model is None:
        return ""
    keys = [f.alias or name for name, f in model.model_fields.items()]
    close = difflib.get_close_matches(str(where[-1]), keys, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(keys)})"


def _msg(text: str) -> str:
    return text.removeprefix("Value error, ")


def _in(where: Loc) -> str:
    return f" in {dotted(where)}" if where else ""


def _a(value: Any) -> str:
    """``a mapping``, ``a list``, ``a string``... for messages."""
    kinds: dict[type, str] = {dict: "mapping", list: "list", str: "string"}
    kind = kinds.get(type(value), type(value).__name__)
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"
