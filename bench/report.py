"""The Markdown report of one run, and the README section that embeds it.

Pure; called by ``bench.__main__`` with the results ``bench.run`` produced.
"""

from __future__ import annotations

import re
from typing import Any

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"


def _cell(s: dict[str, Any], fmt: str = "{:,.0f}") -> str:
    return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}–{fmt.format(s['max'])})"


def _ratio(value: float, floor: float | None) -> str:
    return f"{value / floor:.2f}×" if floor else "–"


def _value(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"


def markdown(results: dict[str, Any], *, note: str = "") -> str:
    """Every table of one run."""
    m = results["machine"]
    o = results["options"]
    lines = [
        f"Measured {m['date']} on {m['cpu']}, {m['cores']} cores, Python {m['python']}, Linux {m['kernel']} "
        f"(load average {m['load_average_1m_at_start']} at start); server on one core, wrk on the other; "
        f"{o['runs']} runs of {o['seconds']:g} s each, median (min–max).{(' ' + note) if note else ''}",
        "",
        "| target | figure | bound | |",
        "|---|---:|---:|---|",
    ]
    for t in results["targets"]:
        mark = {"met": "✅ met", "missed": "❌ missed"}.get(t["verdict"], t["verdict"])
        lines.append(f"| {t['label']} | {_value(t['value'])} | {t['target']} | {mark} |")
    lines += ["", "| server | state | rules | alerts/req × conc | req/s | alerts/s accepted | ÷ floor | "
              "p50 ms | p99 ms | decisions/s audited | ÷ floor |",
              "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    floors = {k: v["alerts_per_s"]["median"] for k, v in results["floor"].items()}
    for shape, f in results["floor"].items():
        lines.append(f"| floor (bare aiohttp) | – | – | {shape.replace('x', ' × ')} | "
                     f"{_cell(f['requests_per_s'])} | {_cell(f['alerts_per_s'])} | 1.00× | "
                     f"{_cell(f['p50_ms'], '{:.1f}')} | "
                     f"{_cell(f['p99_ms'], '{:.1f}')} | – | – |")
    for s in results["remediator"]:
        for shape, f in s["shapes"].items():
            floor = floors.get(shape)
            drained = "" if f.get("drained", True) else " (not drained)"
            lines.append(
                f"| remediator | {s['store']} | +{s['rules']:,} | {shape.replace('x', ' × ')} | "
                f"{_cell(f['requests_per_s'])} | {_cell(f['alerts_per_s'])} | "
                f"{_ratio(f['alerts_per_s']['median'], floor)} | {_cell(f['p50_ms'], '{:.1f}')} | "
                f"{_cell(f['p99_ms'], '{:.1f}')} | {_cell(f['decisions_per_s'])}{drained} | "
                f"{_ratio(f['decisions_per_s']['median'], floor)} |")
    lines += ["", "| state | rules (+ shipped pack) | start → /ready | peak RSS |", "|---|---:|---:|---:|"]
    lines.append(f"| sqlite | shipped pack only | {_cell(results['ready_shipped'], '{:.2f}')} s | – |")
    for s in results["remediator"]:
        lines.append(f"| {s['store']} | +{s['rules']:,} | {s.get('ready_s', 0):.2f} s | "
                     f"{s.get('peak_rss_mb', 0):.0f} MB |")
    lines += ["", "| rules (+ shipped pack) | match time per alert | rules load (in process) |",
              "|---:|---:|---:|"]
    for row in results["match"]:
        lines.append(f"| +{row['rules']:,} | {_cell(row['us_per_alert'], '{:.2f}')} µs | "
                     f"{row['load_s']:.2f} s |")
    storm = results.get("storm")
    if storm:
        checks = ", ".join(f"{k.replace('_', ' ')}: {'✅' if v else '❌'}"
                           for k, v in storm["checks"].items())
        lines += ["", f"Storm: {storm['alerts']:,} alerts over {storm['seconds']:g} s across "
                  f"{storm['targets']:,} deployments, live, blast radius {storm['blast_radius']} per 10 min: "
                  f"{storm['alerts_accepted']:,} accepted (answers {storm['statuses']}; "
                  f"{storm.get('alerts_never_accepted', 0):,} still refused when the sender gave up after "
                  f"120 s), "
                  f"{storm['alert_received_records']:,} `alert.received` records, "
                  f"{storm['decisions_ended']:,.0f} of {storm['decisions_queued']:,} decisions ended "
                  f"({storm['drain_s']} s after the last request), {storm['actions_succeeded']} actions ran "
                  f"before the blast radius paused automation, {storm['blocked_paused']:,} blocked by the "
                  f"pause, peak RSS {storm['rss_mb_peak']:.0f} MB, p99 ack {storm['ack_p99_ms']} ms, "
                  f"audit chain {'intact' if storm['audit_chain_ok'] else 'BROKEN'}. {checks}."]
    return "\n".join(lines) + "\n"


def replace_section(readme: str, table: str) -> str:
    """``readme`` with the text between the bench markers replaced by ``table``."""
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(readme):
        raise ValueError(f"README has no {BEGIN} … {END} section")
    return pattern.sub(lambda _: f"{BEGIN}\n{table}{END}", readme, count=1)
