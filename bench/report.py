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
              "p50 ms | p99 ms | decisions/s audited | ÷ floor | CPU µs per alert |",
              "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    floors = {k: v["alerts_per_s"]["median"] for k, v in results["floor"].items()}
    for shape, f in results["floor"].items():
        lines.append(f"| floor (bare aiohttp) | – | – | {shape.replace('x', ' × ')} | "
                     f"{_cell(f['requests_per_s'])} | {_cell(f['alerts_per_s'])} | 1.00× | "
                     f"{_cell(f['p50_ms'], '{:.1f}')} | "
                     f"{_cell(f['p99_ms'], '{:.1f}')} | – | – | – |")
    for s in results["remediator"]:
        for shape, f in s["shapes"].items():
            floor = floors.get(shape)
            drained = "" if f.get("drained", True) else " (not drained)"
            lines.append(
                f"| remediator | {s['store']} | +{s['rules']:,} | {shape.replace('x', ' × ')} | "
                f"{_cell(f['requests_per_s'])} | {_cell(f['alerts_per_s'])} | "
                f"{_ratio(f['alerts_per_s']['median'], floor)} | {_cell(f['p50_ms'], '{:.1f}')} | "
                f"{_cell(f['p99_ms'], '{:.1f}')} | {_cell(f['decisions_per_s'])}{drained} | "
                f"{_ratio(f['decisions_per_s']['median'], floor)} | "
                f"{_cell(f['cpu_us_per_alert']) if 'cpu_us_per_alert' in f else '–'} |")
    lines += _where_the_time_goes(results, floors)
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
        cpu = storm.get("cpu_us_per_alert")
        rate = storm["alerts"] / storm["seconds"]
        cpu_text = (f"server CPU {cpu:,} µs per alert accepted (one core's worth at {1e6 / cpu:,.0f} "
                    f"alerts/s; the storm sends {rate:,.0f}/s), " if cpu else "")
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
                  f"{cpu_text}audit chain {'intact' if storm['audit_chain_ok'] else 'BROKEN'}. {checks}."]
    return "\n".join(lines) + "\n"


def _where_the_time_goes(results: dict[str, Any], floors: dict[str, float]) -> list[str]:
    """The profile of the main shape per store (``bench.profile``) and the one-core arithmetic."""
    profiled = [s for s in results["remediator"] if "profile" in s]
    if not profiled:
        return []
    main = profiled[0]["profile"]["shape"]
    floor = floors.get(main)
    out = ["", f"Where the time goes at {main.replace('x', ' × ')} (+{profiled[0]['rules']:,} rules): "
           "py-spy over one more run of each server, not counted above; each part's share of the "
           "samples not idle (a thread waiting on the disk is not idle), a sample counted in the "
           "innermost part its stack names (`bench/profile.py`)."]
    shares = {s["store"]: s["profile"].get("shares") or {} for s in profiled}
    names = list(dict.fromkeys(name for found in shares.values() for name in found))
    if names:
        out += ["", "| part of the flow | " + " | ".join(shares) + " |", "|---|" + "---:|" * len(shares)]
        for name in names:
            cells = " | ".join(f"{100 * found.get(name, 0.0):.1f} %" for found in shares.values())
            out.append(f"| {name} | {cells} |")
    for s in profiled:
        if s["profile"].get("error"):
            out += ["", f"{s['store']}: no profile: {s['profile']['error']}"]
    for s in profiled:
        cpu = s["shapes"].get(main, {}).get("cpu_us_per_alert", {}).get("median")
        if cpu and floor:
            out += ["", f"{s['store']}: the server spends {cpu:,.0f} µs of CPU per alert accepted and "
                    f"decided, so one core takes at most {1e6 / cpu:,.0f} alerts/s "
                    f"({1e6 / cpu / floor:.2f}× the floor); the floor's {floor:,.0f} alerts/s on the same "
                    f"core is {1e6 / floor:.0f} µs per alert at most, and 0.5× the floor leaves "
                    f"{2e6 / floor:.0f} µs per alert for everything."]
    return out


def replace_section(readme: str, table: str) -> str:
    """``readme`` with the text between the bench markers replaced by ``table``."""
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(readme):
        raise ValueError(f"README has no {BEGIN} … {END} section")
    return pattern.sub(lambda _: f"{BEGIN}\n{table}{END}", readme, count=1)
