"""The rules coordinator: holds the rules in force and swaps them on reload.

Built by ``receiver.runtime``; ``POST /-/reload`` and SIGHUP call :meth:`reload`. A load
that fails keeps the last good rules, says why (log, audit, metric) and returns the
problems; intake always reads one consistent :class:`RuleIndex` snapshot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from receiver.audit import AuditEvent, AuditLog
from receiver.clock import Clock
from receiver.metrics import Metrics
from receiver.settings import Settings
from remediations.registry import Registry
from rules.engine import RuleIndex
from rules.errors import Problem, RuleLoadError
from rules.loader import default_pack_paths, load_rules

_log = structlog.get_logger("remediator.rules")


@dataclass(frozen=True, slots=True)
class ReloadReport:
    ok: bool
    rules: int
    problems: list[Problem] = field(default_factory=list)


class RulesCoordinator:
    """Owns the current :class:`RuleIndex`."""

    def __init__(self, settings: Settings, *, registry: Registry, metrics: Metrics,
                 clock: Clock) -> None:
        self._settings = settings
        self._registry = registry
        self._metrics = metrics
        self._clock = clock
        self._index: RuleIndex | None = None
        self._lock = asyncio.Lock()
        # Called after a reload swapped the rules in (``serve`` settles its heap: receiver.heap).
        self.after_reload: Callable[[], object] | None = None

    @property
    def paths(self) -> list[Path]:
        return list(self._settings.rules) if self._settings.rules else default_pack_paths()

    @property
    def index(self) -> RuleIndex:
        if self._index is None:
            raise RuntimeError("rules are not loaded yet")
        return self._index

    @property
    def loaded(self) -> bool:
        return self._index is not None

    def _load(self) -> tuple[RuleIndex, list[Problem]]:
        targets = {name: t.kind for name, t in self._settings.targets.items()}
        result = load_rules(self.paths, catalogue=self._registry, targets=targets,
                            priorities=self._settings.priorities)
        return RuleIndex(result.ruleset), result.warnings

    def load_now(self) -> ReloadReport:
        """The first load, at start-up; raises :class:`RuleLoadError` when it fails."""
        index, warnings = self._load()
        self._swap(index, warnings)
        return ReloadReport(ok=True, rules=len(index), problems=warnings)

    def _swap(self, index: RuleIndex, warnings: list[Problem]) -> None:
        self._index = index
        self._metrics.rules_loaded.set(len(index))
        self._metrics.reload_ok.set(1)
        self._metrics.reload_timestamp.set(self._clock.now())
        for message, places in _by_message(warnings).items():
            _log.warning("rules.warning", problem=message, count=len(places), at=places)
        _log.info("rules.loaded", rules=len(index), paths=[str(p) for p in self.paths])

    async def reload(self, audit: AuditLog, *, actor: str) -> ReloadReport:
        """Load the rules again; keep the old ones if the new ones do not load."""
        async with self._lock:
            try:
                index, warnings = await asyncio.to_thread(self._load)
            except RuleLoadError as exc:
                self._metrics.reload_ok.set(0)
                errors = [p for p in exc.problems if p.severity == "error"]
                _log.error("rules.reload_failed", problems=[str(p) for p in errors],
                           kept_rules=len(self._index) if self._index else 0)
                audit.record(AuditEvent.ADMIN_RELOAD, actor=actor, ok=False,
                             problems=[str(p) for p in errors])
                await audit.sync()
                return ReloadReport(ok=False, rules=len(self._index or ()), problems=exc.problems)
            self._swap(index, warnings)
            audit.record(AuditEvent.ADMIN_RELOAD, actor=actor, ok=True, rules=len(index),
                         warnings=[str(p) for p in warnings])
            await audit.sync()
            if self.after_reload is not None:
                self.after_reload()
            return ReloadReport(ok=True, rules=len(index), problems=warnings)


def _by_message(problems: list[Problem]) -> dict[str, list[str]]:
    """Warnings that say the same thing (a target the config lacks, used by many steps) as one
    message with every place it applies, so a start on the defaults logs a few lines, not dozens."""
    out: dict[str, list[str]] = {}
    for p in problems:
        where = p.file if p.line is None else f"{p.file}:{p.line}"
        out.setdefault(p.message, []).append(f"{where} (rule {p.rule!r})" if p.rule else where)
    return out
