"""One benchmark run: the floor and remediator side by side, then the storm; figures → JSON.

Called by ``bench.__main__``. Each server runs pinned to one core and wrk to the other;
each figure is the median of ``runs`` runs with min and max. Between runs the server's
backlog drains (decisions/s is measured from the start of the load until the last
decision it caused is audited), so every run starts idle.
"""

from __future__ import annotations

import os
import platform
import secrets
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from bench import matchtime, profile, storm
from bench.load import LoadResult, run_wrk
from bench.options import Options
from bench.payloads import fixture_bodies, templates
from bench.rulegen import write_rules
from bench.server import SHIPPED_PACK, Process, write_config
from bench.stats import spread
from bench.targets import evaluate

REDIS_URL = "redis://127.0.0.1:6379/0"
SHAPES: tuple[tuple[int, int], ...] = ((10, 16), (10, 1), (1, 16), (1, 1))  # alerts per request, connections
MAIN_SHAPE = (10, 16)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = -1.0
    return {"cpu": model or platform.processor(), "cores": os.cpu_count(),
            "python": platform.python_version(),
            "kernel": platform.release(), "load_average_1m_at_start": round(load, 2),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}


def _shape_key(shape: tuple[int, int]) -> str:
    return f"{shape[0]}x{shape[1]}"


def _figures(loads: list[LoadResult], alerts_per_request: int) -> dict[str, Any]:
    return {
        "requests_per_s": spread([r.accepted / r.seconds for r in loads]).as_dict(),
        "alerts_per_s": spread([r.accepted * alerts_per_request / r.seconds for r in loads]).as_dict(),
        "p50_ms": spread([r.p50_ms for r in loads]).as_dict(),
        "p99_ms": spread([r.p99_ms for r in loads]).as_dict(),
        "failed_requests": sum(r.failed for r in loads),
    }


class Bench:
    def __init__(self, options: Options, root: Path) -> None:
        self.o = options
        self.root = root
        self.bodies = fixture_bodies()
        self._templates: dict[tuple[int, int], Path] = {}

    def templates_file(self, alerts_per_request: int, rule_count: int) -> Path:
        key = (alerts_per_request, rule_count)
        if key not in self._templates:
            path = self.root / f"templates-{alerts_per_request}-{rule_count}.txt"
            path.write_text("\n".join(templates(self.bodies, alerts_per_request=alerts_per_request,
                                                rule_count=rule_count)) + "\n")
            self._templates[key] = path
        return self._templates[key]

    def load(self, proc: Process, shape: tuple[int, int], rule_count: int, run: int,
             seconds: float) -> LoadResult:
        return run_wrk(proc.url, self.templates_file(shape[0], rule_count), run=run, connections=shape[1],
                       seconds=seconds, cpu=self.o.load_cpu)

    # -- the floor
    def floor(self) -> dict[str, Any]:
        workdir = self.root / "floor"
        workdir.mkdir()
        proc = Process.floor(workdir=workdir, cpu=self.o.server_cpu)
        proc.start()
        try:
            self.load(proc, MAIN_SHAPE, 10, 0, 1)  # warm-up
            out = {}
            for shape in SHAPES:
                loads = [self.load(proc, shape, 10, r, self.o.seconds) for r in range(self.o.runs)]
                out[_shape_key(shape)] = _figures(loads, shape[0])
                f = out[_shape_key(shape)]
                self.o.log(f"floor {_shape_key(shape)}: {f['alerts_per_s']['median']:.0f} alerts/s, "
                           f"p99 {f['p99_ms']['median']:.1f} ms")
        finally:
            proc.stop()
        return out

    # -- remediator
    def _drained(self, proc: Process, decided_before: int,
                 queued_before: float) -> tuple[int, float, bool]:
        """Wait until every decision queued so far has its plans on disk; (decisions, time, drained)."""
        queued = _queued(proc) - queued_before
        deadline = time.perf_counter() + self.o.drain_limit
        while True:
            proc.audit_counts()
            decided = len(proc.decided) - decided_before
            if decided >= queued:
                done = time.perf_counter()
                # requests still in flight when wrk stopped may have queued more since
                queued = _queued(proc) - queued_before
                if decided >= queued:
                    return decided, done, True
            if time.perf_counter() > deadline:
                return decided, time.perf_counter(), False
            time.sleep(0.02)

    def measured(self, proc: Process, shape: tuple[int, int], rule_count: int,
                 run: int) -> tuple[LoadResult, float, bool, float]:
        """One run; (load, decisions/s from load start to the last one audited, drained, the
        server's CPU µs per alert accepted over that time: intake and decisions both)."""
        proc.audit_counts()
        decided_before = len(proc.decided)
        queued_before = _queued(proc)
        cpu_before = proc.cpu_seconds()
        started = time.perf_counter()
        result = self.load(proc, shape, rule_count, run, self.o.seconds)
        decided, done, drained = self._drained(proc, decided_before, queued_before)
        alerts = result.accepted * shape[0]
        cpu_us = 1e6 * (proc.cpu_seconds() - cpu_before) / alerts if alerts else 0.0
        return result, decided / (done - started), drained, cpu_us

    def profiled(self, proc: Process, store: str, rule_count: int, run: int) -> dict[str, Any]:
        """One more run of the main shape, not counted, under py-spy (``bench.profile``); the raw
        stacks stay in ``profile_dir`` as ``profile-STORE.txt`` (py-spy's raw format)."""
        where = self.o.profile_dir or self.root
        where.mkdir(parents=True, exist_ok=True)
        out = where / f"profile-{store}.txt"
        shape = _shape_key(MAIN_SHAPE)
        recording = profile.record(proc.pid, self.o.seconds, out)
        if isinstance(recording, str):
            return {"shape": shape, "error": recording}
        proc.audit_counts()
        decided_before, queued_before = len(proc.decided), _queued(proc)
        self.load(proc, MAIN_SHAPE, rule_count, run, self.o.seconds)
        self._drained(proc, decided_before, queued_before)  # what follows starts idle
        found = profile.finish(recording, out)
        if isinstance(found, str):
            return {"shape": shape, "error": found}
        return {"shape": shape, "shares": found, "rate": profile.RATE, "raw": str(out)}

    def remediator(self, store: str, rule_count: int,
                   shapes: tuple[tuple[int, int], ...]) -> dict[str, Any]:
        workdir = self.root / f"serve-{store}-{rule_count}"
        workdir.mkdir()
        generated = write_rules(workdir / "generated", rule_count)
        prefix = f"bench-{secrets.token_hex(4)}"
        state = f"sqlite:///{workdir / 'state.db'}" if store == "sqlite" else REDIS_URL
        config = write_config(workdir, rules=[SHIPPED_PACK, generated], state=state, prefix=prefix)
        proc = Process.remediator(config, workdir=workdir, cpu=self.o.server_cpu)
        out: dict[str, Any] = {"store": store, "rules": rule_count, "shapes": {}}
        try:
            proc.start()
            out["ready_s"] = proc.ready_seconds
            self.load(proc, MAIN_SHAPE, rule_count, 0, 1)  # warm-up
            self._drained(proc, 0, 0.0)
            run = 1
            for shape in shapes:
                loads, decided, cpu, drained = [], [], [], True
                for _ in range(self.o.runs):
                    result, per_s, ok, cpu_us = self.measured(proc, shape, rule_count, run)
                    run += 1
                    loads.append(result)
                    decided.append(per_s)
                    cpu.append(cpu_us)
                    drained = drained and ok
                figures = _figures(loads, shape[0])
                figures["decisions_per_s"] = spread(decided).as_dict()
                figures["cpu_us_per_alert"] = spread(cpu).as_dict()
                figures["drained"] = drained
                out["shapes"][_shape_key(shape)] = figures
                self.o.log(f"{store} +{rule_count} rules {_shape_key(shape)}: "
                           f"{figures['alerts_per_s']['median']:.0f} alerts/s accepted, "
                           f"{figures['decisions_per_s']['median']:.0f} decisions/s, "
                           f"p99 {figures['p99_ms']['median']:.1f} ms"
                           + ("" if drained else " (NOT drained)"))
            if self.o.profile and rule_count == min(self.o.rule_counts) and MAIN_SHAPE in shapes:
                out["profile"] = self.profiled(proc, store, rule_count, run)
                found = out["profile"].get("raw") or out["profile"]
                self.o.log(f"{store} +{rule_count} rules profile: {found}")
            out["peak_rss_mb"] = proc.memory()[1]
            out["alive"] = proc.alive()
        finally:
            out["exit_code"] = proc.stop()
            if store == "redis":
                drop_prefix(prefix)
        return out

    def ready_shipped(self) -> dict[str, Any]:
        """start → /ready with the shipped pack only (SQLite), three starts."""
        times = []
        for n in range(self.o.runs):
            workdir = self.root / f"ready-{n}"
            workdir.mkdir()
            config = write_config(workdir, rules=[SHIPPED_PACK], state=f"sqlite:///{workdir / 'state.db'}",
                                  prefix="bench")
            proc = Process.remediator(config, workdir=workdir, cpu=self.o.server_cpu)
            try:
                proc.start()
                times.append(proc.ready_seconds)
            finally:
                proc.stop()
        self.o.log(f"start → /ready with the shipped pack: {sorted(times)} s")
        return spread(times).as_dict()

    def match(self) -> list[dict[str, Any]]:
        out = []
        for n in self.o.rule_counts:
            per_alert, load_s, matches = matchtime.measure(n)
            out.append({"rules": n, "us_per_alert": per_alert.as_dict(), "load_s": load_s,
                        "matches_per_2000_alerts": matches})
            self.o.log(f"match time with +{n} rules: {per_alert.median:.2f} µs/alert "
                       f"(rules load {load_s:.2f} s)")
        return out


def _queued(proc: Process) -> float:
    return proc.metrics().get('remediator_decisions_total{outcome="queued",reason="queued"}', 0.0)


def drop_prefix(prefix: str) -> None:
    """Delete the benchmark's own Redis keys (``{prefix:PART}:…``, and any left as ``prefix:…``)."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = [key for pattern in (f"{{{prefix}:*", f"{prefix}:*")
                for key in client.scan_iter(match=pattern, count=1000)]
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start:start + 1000])
    finally:
        client.close()


def summary_figures(results: dict[str, Any]) -> dict[str, float | None]:
    """The figures the targets are checked against."""
    main = _shape_key(MAIN_SHAPE)
    floor = results["floor"][main]["alerts_per_s"]["median"]
    figures: dict[str, float | None] = {}
    for server in results["remediator"]:
        if server["rules"] != 10 or main not in server["shapes"]:
            continue
        shape = server["shapes"][main]
        store = server["store"]
        figures[f"intake_ratio_{store}"] = shape["alerts_per_s"]["median"] / floor if floor else None
        figures[f"p99_ack_ms_{store}"] = shape["p99_ms"]["median"]
        if store == "sqlite":
            figures["decisions_per_s"] = shape["decisions_per_s"]["median"]
    by_rules = {m["rules"]: m["us_per_alert"]["median"] for m in results["match"]}
    if 10 in by_rules and 10_000 in by_rules:
        figures["match_ratio"] = by_rules[10_000] / by_rules[10]
    for server in results["remediator"]:
        if server["rules"] == 10_000 and server["store"] == "sqlite":
            figures["peak_rss_mb_10k"] = server.get("peak_rss_mb")
    figures["ready_s"] = results["ready_shipped"]["median"]
    return figures


def run(options: Options) -> dict[str, Any]:
    """The whole benchmark; returns the results (also what goes to JSON)."""
    if options.load_cpu is not None:
        os.sched_setaffinity(0, {options.load_cpu})  # the harness itself stays off the server's core
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="remediator-bench-", dir=options.workdir) as tmp:
        bench = Bench(options, Path(tmp))
        results: dict[str, Any] = {"machine": machine(), "options": {
            "seconds": options.seconds, "runs": options.runs, "rule_counts": list(options.rule_counts),
            "stores": list(options.stores)}}
        results["match"] = bench.match()
        results["ready_shipped"] = bench.ready_shipped()
        results["floor"] = bench.floor()
        results["remediator"] = []
        for store in options.stores:
            for n in options.rule_counts:
                shapes = SHAPES if n == min(options.rule_counts) else (MAIN_SHAPE,)
                results["remediator"].append(bench.remediator(store, n, shapes))
        if options.storm:
            results["storm"] = storm.storm(options, Path(tmp))
    results["targets"] = [e.as_dict() for e in evaluate(summary_figures(results))]
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results
