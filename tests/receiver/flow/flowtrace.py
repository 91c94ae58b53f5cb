"""The path of one alert through our modules: which modules it crosses, and how often it
climbs back into one it has already been in.

A measuring helper for the architecture work (issue 13), used by
``tests/receiver/flow/test_flowtrace.py`` and runnable on its own::

    .venv/bin/python -m tests.receiver.flow.flowtrace

It runs the real app in-process (``receiver.http.app.create_app``, SQLite state, a live
``http.request`` rule against a real local HTTP target), posts one captured Alertmanager
request, and follows it with ``sys.setprofile`` until its ``action.succeeded`` record:
the request's task from ``POST /webhook`` to its answer, the feeder's task until it has
put the item in the local buffer, and the worker's task from ``Executor.run_item`` on.

A *module* is one of ours (``receiver``, ``remediations``, ``rules``); the module a task
is in is the one of its innermost frame that is ours. The *path* is the sequence of
modules a task is in, each change one entry (a call into another module or a return to
the caller's); a coroutine suspending and resuming is not a change. *Crossed* is how many
distinct modules the path has; *returns* is how many entries go back to a module already
in the path before (``len(path) - crossed``).
"""

from __future__ import annotations

import asyncio
import dis
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from receiver.audit import AuditEvent
from receiver.http.app import create_app
from receiver.http.keys import RUNTIME
from receiver.settings import settings_from_mapping
from tests.support.fakeclock import FakeClock
from tests.support.httptarget import Target
from tests.support.paths import ALERTMANAGER, REPO

OURS = ("receiver", "remediations", "rules")
_RESUME = dis.opmap["RESUME"]
_YIELD = dis.opmap["YIELD_VALUE"]


@dataclass
class TaskPath:
    """One task's modules, in order."""

    modules: list[str] = field(default_factory=list)

    def enter(self, module: str | None) -> None:
        if module is not None and (not self.modules or self.modules[-1] != module):
            self.modules.append(module)


@dataclass(frozen=True)
class Figures:
    """Crossed modules, returns to a visited one, and the path itself."""

    path: tuple[str, ...]

    @property
    def crossed(self) -> int:
        return len(set(self.path))

    @property
    def returns(self) -> int:
        return len(self.path) - self.crossed

    def visits(self) -> Counter[str]:
        return Counter(self.path)

    def within(self, prefix: str) -> Figures:
        """The path seen through the modules under ``prefix`` only (``receiver.flow``)."""
        return Figures(_joined([m for m in self.path if m.startswith(prefix)]))


def _joined(*parts: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    for part in parts:
        for module in part:
            if not out or out[-1] != module:
                out.append(module)
    return tuple(out)


@dataclass(frozen=True)
class Trace:
    """What one alert did: the three tasks' paths."""

    webhook: tuple[str, ...]
    feeder: tuple[str, ...]
    worker: tuple[str, ...]

    @property
    def from_run_item(self) -> Figures:
        return Figures(self.worker)

    @property
    def from_webhook(self) -> Figures:
        return Figures(_joined(list(self.webhook), list(self.feeder), list(self.worker)))


class Tracer:
    """The profile function: follows the request's, the feeder's and the worker's tasks."""

    def __init__(self) -> None:
        self._modules: dict[CodeType, str | None] = {}
        self.webhook = TaskPath()
        self.feeder = TaskPath()
        self.worker = TaskPath()
        self._webhook_task: object = None
        self._worker_task: object = None
        self._feeding = True
        self.done = False

    def module(self, code: CodeType) -> str | None:
        try:
            return self._modules[code]
        except KeyError:
            pass
        name: str | None = None
        try:
            rel = Path(code.co_filename).resolve().relative_to(REPO)
        except ValueError:
            rel = None
        if rel is not None and rel.parts and rel.parts[0] in OURS and rel.suffix == ".py":
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join(parts)
        self._modules[code] = name
        return name

    def _ours(self, frame: FrameType | None) -> str | None:
        while frame is not None:
            module = self.module(frame.f_code)
            if module is not None:
                return module
            frame = frame.f_back
        return None

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if self.done or event not in ("call", "return"):
            return
        code = frame.f_code.co_code
        at = frame.f_lasti
        if event == "call" and 0 <= at < len(code) - 1 and code[at] == _RESUME and code[at + 1] != 0:
            return  # a coroutine or generator resuming: not a call
        if event == "return" and 0 <= at < len(code) and code[at] == _YIELD:
            return  # suspending: not a return
        try:
            task = asyncio.current_task()
        except RuntimeError:
            return
        if task is None:
            return
        now = self._ours(frame) if event == "call" else self._ours(frame.f_back)
        qualname = frame.f_code.co_qualname
        name = task.get_name()
        if event == "call" and qualname == "AuditLog.record" and \
                frame.f_locals.get("event") == AuditEvent.ACTION_SUCCEEDED and task is self._worker_task:
            self.worker.enter("receiver.audit")
            self.done = True
            return
        if event == "call" and qualname == "Executor.run_item" and self._worker_task is None:
            self._worker_task = task
        if task is self._worker_task:
            self.worker.enter(now)
        elif name == "remediator-feeder":
            if self._feeding:
                self.feeder.enter(now)
                if event == "return" and qualname == "WorkQueue.put":
                    self._feeding = False
        elif name.startswith("remediator-"):
            return
        elif self._webhook_task is None and event == "call" and self.module(frame.f_code) == \
                "receiver.http.middlewares":
            self._webhook_task = task
            self.webhook.enter(now)
        elif task is self._webhook_task:
            self.webhook.enter(now)


@contextmanager
def profiling(tracer: Tracer) -> Iterator[None]:
    sys.setprofile(tracer)
    try:
        yield
    finally:
        sys.setprofile(None)


async def trace_one_alert(workdir: Path) -> Trace:
    """Post fixture 04 (one HighErrorRate alert) to the real app with a live rule against a
    local HTTP target; follow it to ``action.succeeded``."""
    target = Target([200])
    target_app = web.Application()
    target_app.router.add_route("*", "/{tail:.*}", target.handle)
    async with TestServer(target_app) as target_server:
        base = str(target_server.make_url("/svc")).rstrip("/")
        rules = workdir / "rules.yaml"
        rules.write_text(
            "rules:\n"
            "  - name: invalidate\n"
            "    match: ['alertname = \"HighErrorRate\"', 'namespace =~ \".+\"']\n"
            "    approval: auto\n"
            "    actions:\n"
            "      - action: http.request\n"
            "        target: api\n"
            "        params: {method: POST, path: \"/cache/{{ labels.namespace }}\"}\n")
        settings = settings_from_mapping({
            "state": f"sqlite:///{workdir / 'state.db'}", "audit": str(workdir / "audit.jsonl"),
            "rules": [str(rules)], "dry_run": False,
            "targets": {"api": {"kind": "http", "base_url": base, "timeout": 2}},
        })
        app = create_app(settings, clock=FakeClock(), metrics_registry=CollectorRegistry())
        body = (ALERTMANAGER / "04_firing_single_HighErrorRate.body.json").read_bytes()
        async with TestClient(TestServer(app)) as client:
            runtime = app[RUNTIME]
            tracer = Tracer()
            with profiling(tracer):
                resp = await client.post("/webhook", data=body, headers={"Content-Type": "application/json"})
                await asyncio.wait_for(runtime.queue.wait_idle(), 10)
            assert resp.status == 202, await resp.text()
            assert tracer.done, "the alert never reached action.succeeded"
            assert len(target.calls) == 1
    return Trace(tuple(tracer.webhook.modules), tuple(tracer.feeder.modules), tuple(tracer.worker.modules))


def report(trace: Trace) -> str:
    lines = []
    for title, figures in (("from POST /webhook", trace.from_webhook),
                           ("from Executor.run_item", trace.from_run_item),
                           ("from Executor.run_item, receiver.flow only",
                            trace.from_run_item.within("receiver.flow"))):
        top = ", ".join(f"{m} {n}" for m, n in figures.visits().most_common(4))
        lines += [f"{title}: {figures.crossed} modules crossed, {figures.returns} returns to a module "
                  f"already visited (most visited: {top})",
                  "  " + " → ".join(figures.path), ""]
    return "\n".join(lines)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        trace = asyncio.run(trace_one_alert(Path(tmp)))
    print(report(trace))


if __name__ == "__main__":
    main()
