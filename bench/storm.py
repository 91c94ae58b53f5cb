"""The storm: 100,000 alerts over 60 s across 1,000 targets, live, with a blast radius.

Part of the full run (``bench.run``) and runnable alone (``python -m bench --storm-only``).
An aiohttp client on the other core sends the alerts at a steady pace (10 per request,
re-sending on 503 as Alertmanager does); the server runs live with the shipped pack and
one storm rule (a log line per deployment). Checked: the server stays up, its memory
stays bounded, the blast radius trips and pauses automation, and no alert is lost from
the audit (every accepted alert has its ``alert.received``, every queued decision ended).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from bench.payloads import storm_body
from bench.rulegen import storm_rule_yaml
from bench.server import SHIPPED_PACK, Process, audit_events, get, write_config
from bench.stats import percentile
from receiver.audit import verify_file

if TYPE_CHECKING:
    from bench.run import Options

TARGETS = 1_000
ALERTS_PER_REQUEST = 10
BLAST_MAX = 20
RSS_BOUND_MB = 150.0
_RESEND_AFTER = 1.0
_MAX_ATTEMPTS = 20
_INTAKE_REASONS = ("duplicate", "for_not_elapsed")


class _Client:
    def __init__(self, url: str) -> None:
        self.url = url
        self.statuses: dict[int, int] = {}
        self.accepted: set[str] = set()
        self.lost: int = 0
        self.queued = 0
        self.latencies: list[float] = []

    async def send(self, session: aiohttp.ClientSession, body: str, prints: list[str]) -> None:
        for _ in range(_MAX_ATTEMPTS):
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
            await asyncio.sleep(_RESEND_AFTER)
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
    try:
        sent_for = asyncio.run(_send_all(client, alerts=options.storm_alerts, seconds=options.storm_seconds,
                                         proc=proc, rss=rss))
        drain_started = time.perf_counter()
        deadline = drain_started + options.drain_limit
        while _decisions_ended(proc) < client.queued and time.perf_counter() < deadline:
            rss.append(proc.memory()[0])
            time.sleep(0.25)
        drain_s = time.perf_counter() - drain_started
        ended = _decisions_ended(proc)
        health, _ = get(f"{proc.url}/health")
        alive = proc.alive() and health == 200
        peak = proc.memory()[1]
    finally:
        exit_code = proc.stop(timeout=60)
    received: set[str] = set()
    received_records = 0
    events: dict[str, int] = {}
    blast_paused = False
    paused_blocks = 0
    for rec in audit_events(workdir / "audit.jsonl"):
        event = rec["event"]
        events[event] = events.get(event, 0) + 1
        if event == "alert.received":
            received_records += 1
            received.add(rec["fingerprint"])
        elif event == "admin.pause" and rec.get("source") == "blast_radius":
            blast_paused = True
        elif event == "guard.blocked" and rec.get("reason") == "paused":
            paused_blocks += 1
    verify = verify_file(workdir / "audit.jsonl")
    missing = len(client.accepted - received)
    result = {
        "alerts": options.storm_alerts, "seconds": options.storm_seconds, "targets": TARGETS,
        "blast_radius": BLAST_MAX, "sent_for_s": round(sent_for, 1), "statuses": client.statuses,
        "alerts_accepted": len(client.accepted), "alerts_never_accepted": client.lost,
        "alert_received_records": received_records, "accepted_missing_from_audit": missing,
        "decisions_queued": client.queued, "decisions_ended": ended, "drain_s": round(drain_s, 1),
        "actions_succeeded": events.get("action.succeeded", 0), "blocked_paused": paused_blocks,
        "blast_radius_paused": blast_paused, "rss_mb_peak": round(peak, 1),
        "rss_mb_samples": [round(x, 1) for x in rss[:: max(1, len(rss) // 20)]],
        "alive": alive, "exit_code": exit_code, "audit_chain_ok": verify.ok, "audit_records": verify.records,
        "ack_p99_ms": round(percentile(client.latencies, 99) * 1000, 1) if client.latencies else None,
    }
    result["checks"] = {
        "server_stayed_up": alive,
        "memory_bounded": peak <= RSS_BOUND_MB,
        "blast_radius_tripped_and_paused": blast_paused and paused_blocks > 0
        and events.get("action.succeeded", 0) <= BLAST_MAX,
        "no_alert_lost": client.lost == 0 and missing == 0 and ended >= client.queued and verify.ok,
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
