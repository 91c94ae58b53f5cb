"""The wrk result line, the Markdown table and the README section it replaces."""

from __future__ import annotations

import json

import pytest

from bench.load import LoadError, parse
from bench.report import BEGIN, END, markdown, replace_section
from tests.support.paths import REPO


def test_parse_wrk_result() -> None:
    line = ('BENCH_JSON {"requests":1000,"duration_us":2000000,"status_errors":10,"connect_errors":0,'
            '"read_errors":1,"write_errors":0,"timeouts":2,"p50_us":1500,"p99_us":12000,"max_us":30000}')
    result = parse(f"Running 2s test\n{line}\n")
    assert (result.requests, result.failed, result.accepted) == (1000, 13, 987)
    assert (result.seconds, result.p50_ms, result.p99_ms) == (2.0, 1.5, 12.0)


def test_no_result_line_is_an_error() -> None:
    with pytest.raises(LoadError, match="no result"):
        parse("unable to connect to 127.0.0.1:1 Connection refused\n")


def _s(median: float) -> dict[str, float]:
    return {"median": median, "min": median - 1, "max": median + 1, "runs": 3}


def test_markdown_has_every_table() -> None:
    figures = {"requests_per_s": _s(500), "alerts_per_s": _s(5000), "p50_ms": _s(3), "p99_ms": _s(9)}
    results = {
        "machine": {"date": "2026-11-23 12:00 UTC", "cpu": "AMD EPYC", "cores": 2, "python": "3.11.7",
                    "kernel": "6.1", "load_average_1m_at_start": 0.1},
        "options": {"runs": 3, "seconds": 5.0},
        "targets": [{"label": "p99 ack", "value": 9.0, "target": "<= 20 ms", "verdict": "met"}],
        "floor": {"10x16": {**figures, "alerts_per_s": _s(50_000)}},
        "remediator": [{"store": "sqlite", "rules": 10, "ready_s": 0.8, "peak_rss_mb": 80.0,
                        "shapes": {"10x16": {**figures, "decisions_per_s": _s(4000), "drained": False}}}],
        "ready_shipped": _s(0.9),
        "match": [{"rules": 10, "us_per_alert": _s(4.0), "load_s": 0.1}],
    }
    text = markdown(results, note="Preliminary.")
    assert "Where the time goes" not in text  # no profile taken
    assert "AMD EPYC" in text
    assert "Preliminary." in text
    assert "| p99 ack | 9.00 | <= 20 ms | ✅ met |" in text
    assert "| remediator | sqlite | +10 | 10 × 16 |" in text
    assert "0.10×" in text
    assert "(not drained)" in text
    assert json.dumps(results)  # the results stay JSON


def test_replace_section() -> None:
    readme = f"intro\n{BEGIN}\nold table\n{END}\noutro\n"
    assert replace_section(readme, "new\n") == f"intro\n{BEGIN}\nnew\n{END}\noutro\n"
    with pytest.raises(ValueError, match="no"):
        replace_section("no markers here", "x")


def test_the_readme_has_the_section() -> None:
    text = (REPO / "README.md").read_text()
    assert text.count(BEGIN) == 1
    assert text.count(END) == 1


def test_markdown_shows_the_profile_and_the_one_core_arithmetic() -> None:
    figures = {"requests_per_s": _s(500), "alerts_per_s": _s(5000), "p50_ms": _s(3), "p99_ms": _s(9),
               "decisions_per_s": _s(4000), "cpu_us_per_alert": _s(250)}
    results = {
        "machine": {"date": "2026-12-06 12:00 UTC", "cpu": "AMD EPYC", "cores": 2, "python": "3.11.7",
                    "kernel": "6.1", "load_average_1m_at_start": 0.1},
        "options": {"runs": 3, "seconds": 5.0},
        "targets": [],
        "floor": {"10x16": {**figures, "alerts_per_s": _s(50_000)}},
        "remediator": [
            {"store": "sqlite", "rules": 10, "shapes": {"10x16": figures},
             "profile": {"shape": "10x16", "rate": 200,
                         "shares": {"match rules": 0.6, "decode and validate the body": 0.4}}},
            {"store": "redis", "rules": 10, "shapes": {"10x16": figures},
             "profile": {"shape": "10x16", "error": "py-spy failed (1): Permission denied"}},
        ],
        "ready_shipped": _s(0.9),
        "match": [],
        "storm": {"alerts": 100_000, "seconds": 60.0, "targets": 1_000, "blast_radius": 20,
                  "alerts_accepted": 100_000, "statuses": {202: 10_000}, "alert_received_records": 100_000,
                  "decisions_ended": 100_000, "decisions_queued": 100_000, "drain_s": 0.3,
                  "actions_succeeded": 20, "blocked_paused": 99_980, "rss_mb_peak": 76.0, "ack_p99_ms": 50.5,
                  "audit_chain_ok": True, "checks": {"no_alert_lost": True}, "cpu_us_per_alert": 600},
    }
    text = markdown(results)
    assert ("server CPU 600 µs per alert accepted (one core's worth at 1,667 alerts/s; the storm sends "
            "1,667/s), audit chain intact. no alert lost: ✅.") in text
    assert "| 250 (249–251) |" in text  # CPU µs per alert in the main table
    assert "| part of the flow | sqlite | redis |" in text
    assert "| match rules | 60.0 % | 0.0 % |" in text
    assert "redis: no profile: py-spy failed (1): Permission denied" in text
    assert ("sqlite: the server spends 250 µs of CPU per alert accepted and decided, so one core takes at "
            "most 4,000 alerts/s (0.08× the floor); the floor's 50,000 alerts/s on the same core is 20 µs "
            "per alert at most, and 0.5× the floor leaves 40 µs per alert for everything.") in text
