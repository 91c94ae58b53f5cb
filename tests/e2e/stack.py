"""Real Prometheus 2.42 and Alertmanager 0.25 processes for the end-to-end tests.

Used by ``tests/e2e/test_end_to_end.py``. Neither binary can listen on port 0, so a free
loopback port is found by binding and releasing it, and a start that loses the port to
someone else in between is retried with another. Each process runs in a temp dir of its
own (config, storage, log), is found by its PID, and is stopped by that PID. deploy/'s
files are the starting point: :func:`alertmanager_config` adapts
``deploy/alertmanager/alertmanager.yml`` (remediator's URLs, the token file, 1 s timings),
:func:`prometheus_config` adapts ``deploy/compose/prometheus.yml`` (1 s evaluation, the
test's rule file, this Alertmanager). ``.ci/run`` installs both Debian packages.
"""

from __future__ import annotations

import copy
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.paths import REPO

DEPLOY = REPO / "deploy"
READY_DEADLINE = 20.0
PORT_TRIES = 5
FAST = {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "2s"}


def free_port() -> int:
    """A loopback port nobody listened on a moment ago (bind port 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Proc:
    """One started binary: its process, its URL and its log."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def tail(self, lines: int = 20) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM by PID, SIGKILL if it has not exited 10 s later."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (.ci/run installs Debian prometheus, prometheus-alertmanager)")
    return path


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start(name: str, workdir: Path, args: list[str], ready_path: str) -> Proc:
    """Start ``name`` with ``args`` (``{port}`` filled in), on a fresh port each try, and
    wait until ``ready_path`` answers 200; fail with its log when it never does."""
    binary = _binary(name)
    log = workdir / f"{name}.log"
    for _ in range(PORT_TRIES):
        port = free_port()
        with log.open("wb") as out:
            process = subprocess.Popen([binary, *(a.format(port=port) for a in args)], cwd=workdir,
                                       stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        proc = Proc(name, process, f"http://127.0.0.1:{port}", log)
        deadline = time.monotonic() + READY_DEADLINE
        while time.monotonic() < deadline and process.poll() is None:
            if _ready(proc.url + ready_path):
                return proc
            time.sleep(0.1)
        proc.stop()
        if "address already in use" not in proc.tail(50):
            pytest.fail(f"{name} did not become ready:\n{proc.tail()}")
    pytest.fail(f"{name}: no free port after {PORT_TRIES} tries")


def alertmanager_config(receivers: dict[str, str], token_file: Path) -> dict[str, Any]:
    """deploy/'s Alertmanager config for the test: one remediator receiver per
    ``scenario`` label value (each a copy of deploy's, with its URL and the token file),
    routed by that label ahead of deploy's own routes, and every timing cut to 1-2 s."""
    config: dict[str, Any] = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    (template,) = [r for r in config["receivers"] if r["name"] == "remediator"]
    (route,) = [r for r in config["route"]["routes"] if r["receiver"] == "remediator"]
    config["receivers"] = [r for r in config["receivers"] if r["name"] != "remediator"]
    others = [r for r in config["route"]["routes"] if r["receiver"] != "remediator"]
    routes = []
    for scenario, url in receivers.items():
        receiver = copy.deepcopy(template)
        receiver["name"] = f"remediator-{scenario}"
        (hook,) = receiver["webhook_configs"]
        hook["url"] = url
        hook["http_config"]["authorization"]["credentials_file"] = str(token_file)
        config["receivers"].append(receiver)
        scoped = {**copy.deepcopy(route), **FAST, "receiver": receiver["name"]}
        scoped["matchers"] = [*route["matchers"], f'scenario = "{scenario}"']
        routes.append(scoped)
    config["route"] = {**config["route"], **FAST, "routes": routes + others}
    return config


def prometheus_config(alertmanager: str, rule_file: Path) -> dict[str, Any]:
    """deploy/compose's Prometheus config for the test: 1 s evaluation, the test's rule
    file, this Alertmanager, no scrape jobs (the alerts run on synthetic series)."""
    config: dict[str, Any] = yaml.safe_load((DEPLOY / "compose" / "prometheus.yml").read_text())
    config["global"] = {**config["global"], "evaluation_interval": "1s", "scrape_interval": "1s"}
    config["rule_files"] = [str(rule_file)]
    config["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [alertmanager.removeprefix("http://")]}]}]
    config["scrape_configs"] = []
    return config


def start_with_config(name: str, workdir: Path, config: dict[str, Any], args: list[str]) -> Proc:
    """Write ``config`` beside the others and start ``name`` on it, ready at ``/-/ready``."""
    path = workdir / f"{name}.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return start(name, workdir, [f"--config.file={path}", "--web.listen-address=127.0.0.1:{port}",
                                 "--log.level=warn", *args], "/-/ready")


def start_alertmanager(workdir: Path, config: dict[str, Any]) -> Proc:
    return start_with_config("prometheus-alertmanager", workdir, config, [
        f"--storage.path={workdir / 'am-data'}",
        "--cluster.listen-address=",  # no gossip port: several test runs share the machine
    ])


def start_prometheus(workdir: Path, config: dict[str, Any]) -> Proc:
    return start_with_config("prometheus", workdir, config, [
        f"--storage.tsdb.path={workdir / 'prom-data'}",
        # Re-send firing alerts every second (default 1m): an alert that fires before the
        # notifier has found its Alertmanager is otherwise dropped until then.
        "--rules.alert.resend-delay=1s",
    ])
