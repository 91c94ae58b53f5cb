"""Shared fixtures: paths to the real Alertmanager captures, a fake clock, app builders."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry

from receiver.http.app import create_app
from receiver.http.keys import RUNTIME
from receiver.runtime import Runtime
from receiver.settings import Settings, settings_from_mapping
from remediations.registry import Registry
from tests.support.dockerd import Engine, EngineUnavailable, import_busybox, start_engine, stop_engine
from tests.support.fakeclock import FakeClock
from tests.support.paths import ALERTMANAGER
from tests.support.sdkpool import SDK_CALLS

FIXTURES = ALERTMANAGER

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The captured Alertmanager 0.25 webhook requests."""
    if not FIXTURES.is_dir():
        pytest.fail(f"Alertmanager fixtures not found at {FIXTURES}")
    return FIXTURES


def fixture_body(name: str) -> bytes:
    """The raw body of one captured request, e.g. ``01_firing_group_HighCPU_2_alerts``."""
    return (FIXTURES / f"{name}.body.json").read_bytes()


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    """One private dockerd for the session (Docker action and end-to-end tests), with the
    busybox image imported."""
    try:
        running = start_engine()
    except EngineUnavailable as exc:
        pytest.fail(f"the Docker engine could not start here: {exc}")
    client = running.client()
    try:
        import_busybox(client)
        yield running
    finally:
        client.close()
        stop_engine(running)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings with state and audit in a temp dir; ``rules`` may be YAML text."""

    def build(*, rules: str | None = None, **overrides: Any) -> Settings:
        data: dict[str, Any] = {
            "state": f"sqlite:///{tmp_path / 'state.db'}",
            "audit": str(tmp_path / "audit.jsonl"),
        }
        if rules is not None:
            path = tmp_path / "rules.yaml"
            path.write_text(rules)
            data["rules"] = [str(path)]
        data.update(overrides)
        return settings_from_mapping(data)

    return build


@pytest.fixture
def make_client(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]], clock: FakeClock
) -> ClientFactory:
    """Start the real app (``create_app``) in-process and return a client for it."""

    async def build(settings: Settings, *, registry: Registry | None = None) -> TestClient[Any, Any]:
        app = create_app(settings, registry=registry, clock=clock, metrics_registry=CollectorRegistry())
        return await aiohttp_client(app)

    return build


def read_audit(path: Path) -> list[dict[str, Any]]:
    """Every record of an audit file."""
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def rules_yaml(rules: list[dict[str, Any]]) -> str:
    return yaml.safe_dump({"rules": rules}, sort_keys=False)


HIGH_CPU_RULES = rules_yaml([{
    "name": "high-cpu",
    "match": ['alertname = "HighCPU"'],
    "actions": [{"action": "notify.log", "params": {"text": "scale up"}}],
}])
"""One dry-run-safe rule that matches the alerts of fixture 01."""
HIGH_CPU_BODY = fixture_body("01_firing_group_HighCPU_2_alerts")
JSON_HEADERS = {"Content-Type": "application/json"}


def runtime_of(client: TestClient[Any, Any]) -> Runtime:
    """The runtime behind a test client's app."""
    app = client.app
    assert app is not None
    runtime: Runtime = app[RUNTIME]
    return runtime


@pytest.fixture(scope="session", autouse=True)
def _sdk_pool() -> Iterator[None]:
    """The remediations tests' pool of SDK threads (``tests.support.sdkpool``), closed at the end."""
    yield
    SDK_CALLS.close()
