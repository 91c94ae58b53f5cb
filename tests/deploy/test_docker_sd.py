"""docker_sd for real: Prometheus 2.42 (Debian's) discovers a Compose-labelled container on
the private Docker engine (``tests.support.dockerd``) through the ``docker`` job of
deploy/prometheus/prometheus.yml, labels its target as the alerts and the pack expect (the
container's name with Docker's leading slash, its Compose project and service), and, once
the container stops, drops the target: docker_sd lists running containers only. The
expressions of TargetDown's docker and docker_discovery rules (deploy/prometheus/alerts.yml)
run on that real Prometheus and return the container; the alert they make, posted to
``remediator simulate --live``, restarts it by its name without the slash.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from receiver.cli.main import main
from tests.e2e.stack import start_prometheus
from tests.support.dockerd import IMAGE, Engine, remove_prefixed, wait_until
from tests.support.paths import REPO

PROMETHEUS = REPO / "deploy" / "prometheus"
RUNBOOK_CONFIG = REPO / "tests" / "fixtures" / "runbooks" / "remediator.yaml"
WAIT = 60.0


def _query(url: str, expr: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}",
                                timeout=5) as resp:
        result: list[dict[str, Any]] = json.loads(resp.read())["data"]["result"]
    return result


def _target_down(source: str) -> str:
    """The expression of TargetDown's rule for ``source`` in alerts.yml."""
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    (rule,) = [r for g in groups for r in g["rules"]
               if r.get("alert") == "TargetDown" and r["labels"].get("source") == source]
    expr: str = rule["expr"]
    return expr


def _config(engine: Engine) -> dict[str, Any]:
    """The shipped reference config with only its docker job, pointed at the private engine
    and refreshed every second."""
    config: dict[str, Any] = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "docker"]
    job["docker_sd_configs"][0]["host"] = engine.url
    job["docker_sd_configs"][0]["refresh_interval"] = "1s"
    job["scrape_interval"] = "1s"
    return {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "scrape_configs": [job]}


def test_docker_sd_labels_a_container_and_loses_it_when_it_stops(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    client = engine.client()
    prefix = f"sd{uuid.uuid4().hex[:8]}"
    name = f"{prefix}-superset-web"
    labels = {"com.docker.compose.project": prefix, "com.docker.compose.service": "superset-web",
              "prometheus.scrape": "true"}
    prometheus = None
    try:
        container = client.containers.run(IMAGE, ["sleep", "600"], name=name, network_mode="none",
                                          labels=labels, detach=True)
        prometheus = start_prometheus(tmp_path, _config(engine))
        ours = f'up{{job="docker", name="/{name}"}}'
        wait_until(lambda: bool(_query(prometheus.url, ours)), "docker_sd discovering the container", WAIT)
        (series,) = _query(prometheus.url, ours)
        assert series["metric"]["name"] == f"/{name}"  # Docker's leading slash, as Prometheus keeps it
        assert series["metric"]["container_label_com_docker_compose_project"] == prefix
        assert series["metric"]["container_label_com_docker_compose_service"] == "superset-web"
        # Nothing serves metrics in the container (network none): the target is down.
        down = f'({_target_down("docker")}) and on (name) {ours}'
        wait_until(lambda: bool(_query(prometheus.url, down)), "TargetDown's docker rule firing", WAIT)
        container.stop(timeout=0)
        gone = f'({_target_down("docker_discovery")}) and on (name) max_over_time({ours}[10m])'
        wait_until(lambda: bool(_query(prometheus.url, gone)), "the stopped container leaving discovery",
                   WAIT)
        assert _query(prometheus.url, ours) == []  # its up series is stale: no 0 to alert on
        (fired,) = _query(prometheus.url, gone)
    finally:
        if prometheus is not None:
            prometheus.stop()
        remove_prefixed(client, prefix)
        client.close()
    static = {"alertname": "TargetDown", "source": "docker_discovery", "severity": "critical"}
    alert = {**fired["metric"], **static}
    assert alert == {**static, "job": "docker", "name": f"/{name}",
                     "container_label_com_docker_compose_project": prefix,
                     "container_label_com_docker_compose_service": "superset-web"}
    for secret in ("RUNBOOK_PG_DSN", "RUNBOOK_CACHE_URL", "RUNBOOK_SLACK_URL", "RUNBOOK_ARGOCD_TOKEN"):
        monkeypatch.setenv(secret, "x")
    body = {"version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0, "status": "firing",
            "receiver": "remediator", "groupLabels": {}, "commonLabels": alert, "commonAnnotations": {},
            "externalURL": "http://am:9093",
            "alerts": [{"status": "firing", "labels": alert, "annotations": {},
                        "startsAt": "2026-11-23T06:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                        "generatorURL": "", "fingerprint": "0123456789abcdef"}]}
    payload = tmp_path / "alert.json"
    payload.write_text(json.dumps(body))
    code = main(["simulate", str(payload), "--config", str(RUNBOOK_CONFIG), "--live", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    ((decision,),) = [a["decisions"] for a in json.loads(out)["alerts"]]
    assert (decision["rule"], decision["outcome"]) == ("container-down-docker-restart", "executed")
    assert [(p["action"], p["params"]["container"]) for p in decision["plan"]] == [("docker.restart", name)]
