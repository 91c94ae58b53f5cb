"""The storm: 100,000 alerts over 60 s across 1,000 targets, live, with a blast radius.

Part of the full run (``bench.run``) and runnable alone (``python -m bench --storm-only``).
An aiohttp client on the other core sends the alerts at a steady pace (10 per request,
re-sending a refused request with exponential backoff, as Alertmanager does); the server
runs live with the shipped pack and one storm rule (a log line per deployment). Checked:
the server stays up, its memory stays bounded, the blast radius trips and pauses
automation, and no alert is lost from the audit (every accepted alert has its
``alert.received``, every queued decision ended).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from bench.payloads import storm_body
from bench.rulegen import storm_rule_yaml
from bench.server import SHIPPED_PACK, Process, get, read_audit, write_config
from bench.stats import percentile
from receiver.audit import verify_file

if TYPE_CHECKING:
    from bench.options import Options

TARGETS = 1_000
ALERTS_PER_REQUEST = 10
BLAST_MAX = 20
RSS_BOUND_MB = 150.0
_BACKOFF_FIRST, _BACKOFF_MAX = 0.5, 8.0  # seconds between re-sends of one refused request
_GIVE_UP_AFTER = 120.0  # a request not accepted within this is counted as never accepted
_INTAKE_REASONS = ("duplicate", "for_not_elapsed")


class _Client:
    def __init__(self, url: str) -> None:
        self.url = url
        self.statuses: dict[int, int] = {}
        self.accepted: set[str] = set()
        self.sent: set[str] = set()
        self.lost: int = 0
        self.queued = 0
        self.latencies: list[float] = []

    async def send(self, session: aiohttp.ClientSession, body: str, prints: list[str]) -> None:
        first, delay = time.perf_counter(), _BACKOFF_FIRST
        self.sent.update(prints)
        while time.perf_counter() - first < _GIVE_UP_AFTER:
            started = time.perf_counter()
            try:
                async with session.post(f"{self.url}/webhook", data=body,
                                        headers={"Content-Type": "application/json"}) as resp:
                    answer = await resp.json(content_type=None)
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            self.latencies.append(time.perf_counter() - started)
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status == 202:
                self.accepted.update(prints)
                self.queued += int(answer["queued"])
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, _BACKOFF_MAX)
        self.lost += len(prints)


async def _send_all(client: _Client, *, alerts: int, seconds: float, proc: Process,
                    rss: list[float]) -> float:
    requests = alerts // ALERTS_PER_REQUEST
    interval = seconds / requests
    starts = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    connector = aiohttp.TCPConnector(limit=64)
    tasks: set[asyncio.Task[None]] = set()
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        began = time.perf_counter()
        next_sample = began
        for n in range(requests):
            due = began + n * interval
            now = time.perf_counter()
            if now >= next_sample:
                rss.append(proc.memory()[0])
                next_sample = now + 0.5
            if due > now:
                await asyncio.sleep(due - now)
            body, prints = storm_body(n, alerts_per_request=ALERTS_PER_REQUEST, targets=TARGETS,
                                      starts=starts)
            task = asyncio.create_task(client.send(session, body, prints))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        while tasks:
            rss.append(proc.memory()[0])
            await asyncio.wait(set(tasks), timeout=0.5)
        return time.perf_counter() - began


def _decisions_ended(proc: Process) -> float:
    total = 0.0
    for sample, value in proc.metrics().items():
        if sample.startswith("remediator_decisions_total{") and 'outcome="queued"' not in sample \
                and not any(f'reason="{r}"' in sample for r in _INTAKE_REASONS):
            total += value
    return total


def storm(options: Options, root: Path) -> dict[str, Any]:
    """Run the storm; the figures and checks as a dict (also logged)."""
    workdir = root / "storm"
    workdir.mkdir()
    (workdir / "storm.yaml").write_text(storm_rule_yaml())
    config = write_config(workdir, rules=[SHIPPED_PACK, workdir / "storm.yaml"],
                          state=f"sqlite:///{workdir / 'state.db'}", prefix="bench", dry_run=False,
                          blast_max=BLAST_MAX, queue_size=10_000)
    proc = Process.remediator(config, workdir=workdir, cpu=options.server_cpu)
    proc.start()
    rss: list[float] = []
    client = _Client(proc.url)
    cpu_before = proc.cpu_seconds()
    try:
        sent_for = asyncio.run(_send_all(client, alerts=options.storm_alerts, seconds=options.storm_seconds,
                                         proc=proc, rss=rss))
        drain_started = time.perf_counter()
        deadline = drain_started + options.storm_drain_limit
        while _decisions_ended(proc) < client.queued and time.perf_counter() < deadline:
            rss.append(proc.memory()[0])
            time.sleep(0.25)
        drain_s = time.perf_counter() - drain_started
        ended = _decisions_ended(proc)
        health, _ = get(f"{proc.url}/health")
        alive = proc.alive() and health == 200
        peak = proc.memory()[1]
        cpu = proc.cpu_seconds() - cpu_before  # the sending and the drain: every alert's whole cost
    finally:
        exit_code = proc.stop(timeout=60)
    audit = read_audit(workdir / "audit.jsonl")
    received, events = audit.received, audit.events
    received_records, blast_paused, paused_blocks = events.get("alert.received", 0), audit.blast_paused, \
        audit.paused_blocks
    verify = verify_file(workdir / "audit.jsonl")
    missing = len(client.accepted - received)
    unaccounted = len(client.sent - received - audit.refused)  # sent, and in no record at all
    result = {
        "alerts": options.storm_alerts, "seconds": options.storm_seconds, "targets": TARGETS,
        "blast_radius": BLAST_MAX, "sent_for_s": round(sent_for, 1), "statuses": client.statuses,
        "alerts_accepted": len(client.accepted), "alerts_never_accepted": client.lost,
        "alerts_refused_early": len(audit.refused), "sent_missing_from_audit": unaccounted,
        "alert_received_records": received_records, "accepted_missing_from_audit": missing,
        "decisions_queued": client.queued, "decisions_ended": ended, "drain_s": round(drain_s, 1),
        "actions_succeeded": events.get("action.succeeded", 0), "blocked_paused": paused_blocks,
        "blast_radius_paused": blast_paused, "rss_mb_peak": round(peak, 1),
        "rss_mb_samples": [round(x, 1) for x in rss[:: max(1, len(rss) // 20)]],
        "alive": alive, "exit_code": exit_code, "audit_chain_ok": verify.ok, "audit_records": verify.records,
        "audit_mb": round((workdir / "audit.jsonl").stat().st_size / 1e6, 1), "audit_events": events,
        "ack_p99_ms": round(percentile(client.latencies, 99) * 1000, 1) if client.latencies else None,
        "cpu_us_per_alert": round(1e6 * cpu / len(client.accepted)) if client.accepted else None,
    }
    result["checks"] = {
        "server_stayed_up": alive,
        "memory_bounded": peak <= RSS_BOUND_MB,
        "blast_radius_tripped_and_paused": blast_paused and paused_blocks > 0
        and events.get("action.succeeded", 0) <= BLAST_MAX,
        # every accepted alert received and decided, every sent one at least named (a 503 is not a loss)
        "no_alert_lost": missing == 0 and unaccounted == 0 and ended >= client.queued and verify.ok,
    }
    options.log(f"storm: {len(client.accepted)} of {options.storm_alerts} alerts accepted in "
                f"{sent_for:.0f} s, "
                f"{received_records} alert.received records, {ended:.0f}/{client.queued} decisions ended, "
                f"peak RSS {peak:.0f} MB, checks {result['checks']}")
    return result


def run_alone(options: Options) -> dict[str, Any]:
    """The storm by itself (``python -m bench --storm-only``)."""
    import os  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    if options.load_cpu is not None:
        os.sched_setaffinity(0, {options.load_cpu})
    with tempfile.TemporaryDirectory(prefix="remediator-bench-", dir=options.workdir) as tmp:
        return storm(options, Path(tmp))
