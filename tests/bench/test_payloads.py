"""The load generator's bodies: real v4 webhooks, every request its own alerts."""

from __future__ import annotations

import json

import pytest

from bench.payloads import MARK, fixture_bodies, render, request_id, storm_body, templates
from bench.rulegen import alert_name
from receiver.flow.payload import parse_webhook


@pytest.fixture(scope="module")
def ten() -> list[str]:
    return templates(fixture_bodies(), alerts_per_request=10, rule_count=100, count=32)


def test_every_template_renders_to_a_valid_webhook(ten: list[str]) -> None:
    for n, template in enumerate(ten):
        _, alerts = parse_webhook(render(template, request_id(1, n)).encode())
        assert len(alerts) == 10


@pytest.mark.parametrize("per_request", [1, 10])
def test_alerts_per_request(per_request: int) -> None:
    for template in templates(fixture_bodies(), alerts_per_request=per_request, rule_count=10, count=4):
        assert len(json.loads(template)["alerts"]) == per_request


def test_two_requests_from_one_template_share_no_fingerprint_or_instance(ten: list[str]) -> None:
    _, first = parse_webhook(render(ten[0], request_id(1, 1)).encode())
    _, second = parse_webhook(render(ten[0], request_id(1, 2)).encode())
    assert not {a.fingerprint for a in first} & {a.fingerprint for a in second}
    assert not {a.labels["instance"] for a in first} & {a.labels["instance"] for a in second}


def test_alerts_within_a_request_differ(ten: list[str]) -> None:
    _, alerts = parse_webhook(render(ten[3], request_id(0, 3)).encode())
    assert len({a.fingerprint for a in alerts}) == len(alerts)


def test_a_share_is_resolved_and_a_share_hits_generated_rules(ten: list[str]) -> None:
    alerts = [a for t in ten for a in json.loads(t)["alerts"]]
    resolved = sum(a["status"] == "resolved" for a in alerts)
    generated = {alert_name(i) for i in range(100)}
    hitting = sum(a["labels"]["alertname"] in generated for a in alerts)
    assert 0 < resolved < len(alerts) / 3
    assert len(alerts) / 4 < hitting < len(alerts) * 3 / 4
    assert all(a["endsAt"] != "0001-01-01T00:00:00Z" for a in alerts if a["status"] == "resolved")


def test_every_varied_place_is_marked(ten: list[str]) -> None:
    assert all(t.count(MARK) == 20 for t in ten)  # fingerprint and instance of each of 10 alerts


@pytest.mark.parametrize(("run", "n", "expected"), [(0, 0, "0000000000"), (1, 255, "01000000ff"),
                                                    (256, 2**32 + 1, "0000000001")])
def test_request_id(run: int, n: int, expected: str) -> None:
    assert request_id(run, n) == expected


def test_storm_bodies_cover_the_targets_once_each_per_round() -> None:
    deployments: set[str] = set()
    prints: list[str] = []
    for n in range(100):
        body, fps = storm_body(n, alerts_per_request=10, targets=1000, starts="2026-11-23T06:00:00.000Z")
        _, alerts = parse_webhook(body.encode())
        deployments.update(a.labels["deployment"] for a in alerts)
        assert [a.fingerprint for a in alerts] == fps
        prints.extend(fps)
    assert len(deployments) == 1000
    assert len(set(prints)) == 1000
