"""The README's Compose quick start, brought up for real and taken down again.

``deploy/compose/compose.yaml`` is run by Debian's ``docker-compose`` against the tests'
private engine, as the README says: remediator built from ``deploy/Dockerfile``, Redis,
Prometheus and Alertmanager (images made from Debian's packages under the names the
compose file uses, ``tests.support.images``), on the compose network, with the host ports
moved to free ones (``REMEDIATOR_PORT`` and the others). A test-only override file
(written beside a copy of the repository's files) only lets the image build reach the
package index through the host's network and runs the healthchecks every second;
everything else is the compose file as shipped: its configs, health conditions, restart
policies, volumes, secret, read-only root. Then the README's ``amtool alert add HighCPU …`` is run in the
Alertmanager container, the audit lines the README promises are read back from the
remediator container, Prometheus is seen scraping remediator with the self-monitoring
rules loaded, and ``down -v`` leaves no container and no volume.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.stack import free_port
from tests.support.dockerd import Engine
from tests.support.images import ALERTMANAGER, PROMETHEUS, PYTHON, REDIS, ensure_image
from tests.support.paths import REPO

UP_DEADLINE = 600  # seconds for `up --build` (the image build reaches the package index)
AUDIT_DEADLINE = 90.0  # the route's group_wait is 10 s
COPIED = ("pyproject.toml", "README.md", "LICENSE", ".dockerignore", "receiver", "remediations", "rules",
          "deploy")


class Stack:
    """One compose project over a copy of the repository, on the private engine."""

    def __init__(self, engine: Engine, root: Path) -> None:
        self.root = root
        self.project = f"rt{uuid.uuid4().hex[:8]}"
        self.compose = root / "deploy" / "compose"
        self.ports = {name: free_port() for name in ("remediator", "prometheus", "alertmanager")}
        self.env = {**os.environ, "DOCKER_HOST": engine.url, "COMPOSE_INTERACTIVE_NO_CLI": "1",
                    **{f"{name.upper()}_PORT": str(port) for name, port in self.ports.items()}}

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        binary = shutil.which("docker-compose")
        if binary is None:
            pytest.fail("docker-compose is not installed (.ci/run installs Debian docker-compose)")
        files = ["-f", "compose.yaml", "-f", "compose.test.yaml"]
        return subprocess.run([binary, "-p", self.project, *files, *args], cwd=self.compose, env=self.env,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def must(self, *args: str, timeout: float = 120) -> str:
        done = self.run(*args, timeout=timeout)
        output = done.stdout[-3000:] + done.stderr[-5000:]
        assert done.returncode == 0, f"docker-compose {' '.join(args)}:\n{output}"
        return done.stdout


def write_override(stack: Stack) -> None:
    """The test-only override: the build reaches the package index through the host's network
    (the engine has no default bridge; the compose network itself works), and the
    healthchecks run every second instead of every 5-10 s. Nothing else changes."""
    override = {"services": {
        "remediator": {"build": {"network": "host"}, "healthcheck": {"interval": "1s"}},
        "redis": {"healthcheck": {"interval": "1s"}},
    }}
    (stack.compose / "compose.test.yaml").write_text(yaml.safe_dump(override, sort_keys=False))


@pytest.fixture
def stack(engine: Engine, tmp_path: Path) -> Iterator[Stack]:
    client = engine.client()
    try:
        for spec in (PYTHON, REDIS, PROMETHEUS, ALERTMANAGER):
            ensure_image(client, spec.name)
    finally:
        client.close()
    root = tmp_path / "repo"
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "webhook-token")
            shutil.copytree(source, root / name, ignore=ignore)
        else:
            root.mkdir(exist_ok=True)
            shutil.copy(source, root / name)
    root.chmod(0o755)
    running = Stack(engine, root)
    write_override(running)
    for path in running.compose.iterdir():
        path.chmod(0o644)  # the bind-mounted configs, readable by the images' users
    try:
        yield running
    finally:
        running.run("down", "-v", "--rmi", "local", "--remove-orphans", timeout=180)


def audit_lines(stack: Stack) -> list[dict[str, Any]]:
    done = stack.run("exec", "-T", "remediator", "tail", "-n", "4", "/var/lib/remediator/audit.jsonl")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def wait_for(what: str, check: Any, seconds: float, stack: Stack | None = None) -> Any:
    """Poll ``check`` until it returns something true; fail with the stack's recent logs."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            found = check()
        except OSError as exc:
            found = None
            last: Any = exc
        else:
            last = found
        if found:
            return found
        if time.monotonic() > deadline:
            logs = stack.run("logs", "--tail", "15", "--no-color").stdout[-6000:] if stack else ""
            pytest.fail(f"{what}: not within {seconds}s (last: {last!r})\n{logs}")
        time.sleep(1.0)


def test_the_compose_quick_start_comes_up_and_plans_the_readme_alert(stack: Stack, engine: Engine) -> None:
    # README: the token, then `up -d --build`
    token = stack.compose / "webhook-token"
    token.write_text(uuid.uuid4().hex)
    token.chmod(0o644)
    stack.must("up", "-d", "--build", timeout=UP_DEADLINE)
    client = engine.client()
    try:
        def healthy() -> bool:
            labels = [f"com.docker.compose.project={stack.project}", "com.docker.compose.service=remediator"]
            (container,) = client.containers.list(filters={"label": labels})
            return bool(container.attrs["State"].get("Health", {}).get("Status") == "healthy")
        wait_for("remediator healthy", healthy, 120, stack)
    finally:
        client.close()
    remediator = f"http://127.0.0.1:{stack.ports['remediator']}"
    wait_for("remediator ready (Redis reached)", lambda: get_json(f"{remediator}/ready").get("ready"), 60,
             stack)
    # README: fire HighCPU through Alertmanager with amtool
    stack.must("exec", "-T", "alertmanager", "amtool", "alert", "add", "HighCPU", "namespace=prod",
               "deployment=web", "container=web", "severity=critical", "--alertmanager.url=http://localhost:9093")

    def planned() -> list[dict[str, Any]] | None:
        lines = audit_lines(stack)
        events = [r["event"] for r in lines]
        wanted = ["rule.matched", "action.planned", "action.planned", "verify.skipped"]
        return lines if events == wanted else None

    lines = wait_for("the README's audit lines", planned, AUDIT_DEADLINE, stack)
    matched = next(r for r in lines if r["event"] == "rule.matched")
    assert (matched["rule"], matched["priority"], matched["dry_run"]) == ("high-cpu-scale-up", "P2", True)
    diagnosis, scale = [r for r in lines if r["event"] == "action.planned"]
    assert (diagnosis["action"], scale["action"]) == ("kubernetes.diagnose", "kubernetes.scale")
    assert scale["target"] == "prod-cluster"
    params = scale["plan"]["details"]["params"]
    assert [params[k] for k in ("namespace", "deployment", "replicas", "max")] == ["prod", "web", "+2", 10]
    assert "which the service config does not define: a live run is refused" in scale["plan"]["steps"][0]
    # Prometheus scrapes remediator and holds the self-monitoring rules
    prometheus = f"http://127.0.0.1:{stack.ports['prometheus']}"
    query = f"{prometheus}/api/v1/query?query=up%7Bjob%3D%22remediator%22%7D"
    up = wait_for("Prometheus scraping remediator",
                  lambda: [s for s in get_json(query)["data"]["result"] if s["value"][1] == "1"], 60, stack)
    assert up
    groups = get_json(f"{prometheus}/api/v1/rules")["data"]["groups"]
    assert "RemediatorDown" in {r["name"] for g in groups for r in g["rules"]}
    # README: down -v
    stack.must("down", "-v", timeout=180)
    client = engine.client()
    try:
        label = f"com.docker.compose.project={stack.project}"
        assert client.containers.list(all=True, filters={"label": label}) == []
        assert client.volumes.list(filters={"label": label}) == []
    finally:
        client.close()
