"""The issue's "done when", as a table: every machine-doable step of the five runbooks, its
alert as deploy/prometheus/alerts.yml labels it from the exporters' series (static,
docker_sd, cAdvisor, Kubernetes and exporter labels alike), posted to ``remediator
simulate --live`` with the example config opened to the runbooks' names, plans the
runbook's action or asks for an approval.

The table and the config are tests/fixtures/runbooks/ (the runbooks themselves are not in
the repository; each step is quoted there). Every alert's labels are checked to be ones a
``promtool test rules`` case of tests/deploy/promtool fires with, so the chain exporter
series → alert → rule → action is tested end to end. A step reached on a later rung of a
ladder (the alert still firing after the first rung's window) runs through ``remediator
rules test`` with the same config, since ``simulate`` reports one delivery at a time.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from receiver.cli.main import main
from receiver.settings import settings_from_mapping
from tests.support.paths import REPO

RUNBOOKS = REPO / "tests" / "fixtures" / "runbooks"
CONFIG = RUNBOOKS / "remediator.yaml"
PROMTOOL = REPO / "tests" / "deploy" / "promtool"
SECRETS = ("RUNBOOK_PG_DSN", "RUNBOOK_CACHE_URL", "RUNBOOK_SLACK_URL", "RUNBOOK_ARGOCD_TOKEN")
VIAS = {"static", "docker_sd", "cadvisor", "kubernetes", "exporter"}


def _table() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((RUNBOOKS / "steps.yaml").read_text())
    return data


def _cases() -> list[Any]:
    cases = []
    for step in _table()["steps"]:
        for n, alert in enumerate(step["alerts"]):
            ident = f"{step['runbook']}-{step['step'][:60]}-{alert['via']}-{n}"
            cases.append(pytest.param(step, alert, id=ident))
    return cases


def _fired() -> dict[str, list[tuple[dict[str, str], dict[str, str]]]]:
    """alertname -> every (labels, annotations) some promtool case expects it to fire with."""
    fired: dict[str, list[tuple[dict[str, str], dict[str, str]]]] = {}
    for path in sorted(PROMTOOL.glob("*.test.yml")):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                for alert in case.get("exp_alerts", []):
                    fired.setdefault(case["alertname"], []).append(
                        ({k: str(v) for k, v in alert["exp_labels"].items()},
                         {k: str(v) for k, v in alert.get("exp_annotations", {}).items()}))
    return fired


FIRED = _fired()


def _annotations(labels: dict[str, str]) -> dict[str, str]:
    """The annotations Prometheus sends with exactly these labels (from the promtool case)."""
    name = labels["alertname"]
    rest = {k: str(v) for k, v in labels.items() if k != "alertname"}
    for fired, sent in FIRED.get(name, []):
        if fired == rest:
            return sent
    pytest.fail(f"{name} {rest}: no promtool case in tests/deploy/promtool fires it with these labels")


def _body(labels: dict[str, str], when: str = "2026-11-23T06:00:00Z") -> dict[str, Any]:
    """An Alertmanager 0.25 webhook body (version 4) carrying this one firing alert."""
    labels = {k: str(v) for k, v in labels.items()}
    fingerprint = hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]
    alert = {"status": "firing", "labels": labels, "annotations": _annotations(labels), "startsAt": when,
             "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prometheus:9090/graph",
             "fingerprint": fingerprint}
    group_key = '{}:{alertname="' + labels["alertname"] + '"}'
    return {"version": "4", "groupKey": group_key, "truncatedAlerts": 0,
            "status": "firing", "receiver": "remediator", "groupLabels": {"alertname": labels["alertname"]},
            "commonLabels": labels, "commonAnnotations": alert["annotations"],
            "externalURL": "http://alertmanager:9093", "alerts": [alert]}


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SECRETS:
        monkeypatch.setenv(name, f"set-by-{name.lower()}")


def _simulate(tmp_path: Path, labels: dict[str, str],
              capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    payload = tmp_path / "alert.json"
    payload.write_text(json.dumps(_body(labels)))
    code = main(["simulate", str(payload), "--config", str(CONFIG), "--live", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    (report,) = json.loads(out)["alerts"]
    decisions: list[dict[str, Any]] = report["decisions"]
    return decisions


def _climb(tmp_path: Path, labels: dict[str, str], then: list[dict[str, Any]],
           capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The decisions of the last step of a rule test that delivers the alert, then moves
    through ``then`` (time passing with the alert still firing, approvals)."""
    case = {"name": "climb", "alerts": [{"labels": labels, "annotations": _annotations(labels)}],
            "then": [step if "approve" in step else {**step} for step in then]}
    test = {"rule_files": [str(REPO / "rules" / "packs")], "config": str(CONFIG), "tests": [case]}
    path = tmp_path / "climb.test.yaml"
    path.write_text(yaml.safe_dump(test))
    code = main(["rules", "test", str(path), "--json"])
    out, err = capsys.readouterr()
    assert code in (0, 1), out + err  # no expectations given: every case passes
    (result,) = json.loads(out)["files"]
    (ran,) = result["cases"]
    last: list[dict[str, Any]] = ran["steps"][-1]  # every decision of the last step
    return last


@pytest.mark.parametrize(("step", "alert"), _cases())
def test_the_runbook_step_runs_from_its_alert(tmp_path: Path, secrets: None,
                                              capsys: pytest.CaptureFixture[str],
                                              step: dict[str, Any], alert: dict[str, Any]) -> None:
    """The alert, as exported, meets the runbook's rule, which plans its action (or asks)."""
    expect = alert["expect"]
    labels = alert["labels"]
    if "then" in alert:
        decisions = _climb(tmp_path, labels, alert["then"], capsys)
        ours = [d for d in decisions if d["rule"] == expect["rule"] and d.get("rung") == expect["rung"]]
    else:
        decisions = _simulate(tmp_path, labels, capsys)
        ours = [d for d in decisions if d["rule"] == expect["rule"]]
        assert [d["rule"] for d in decisions] == [expect["rule"]], "one alert, one rule"
    assert len(ours) == 1, decisions
    (decision,) = ours
    assert decision["outcome"] == expect["outcome"], decision
    steps = decision["plan"] if "plan" in decision else decision["actions"]  # simulate's, rules test's
    planned = [p["action"] for p in steps]
    assert planned == expect.get("actions", planned), steps
    diagnosed = iter(p["action"] for p in decision.get("diagnose") or [])  # consumed: in order
    assert all(action in diagnosed for action in expect.get("diagnose", [])), decision.get("diagnose")


def test_the_table_is_whole() -> None:
    """Every step says which runbook it is from and has at least one alert with a known
    source of labels; every step left says why; both the Compose and the Kubernetes
    runbooks are answered on their own labels."""
    table = _table()
    runbooks = {"000", "001", "002", "003", "004"}
    assert {s["runbook"] for s in table["steps"]} == runbooks
    for step in table["steps"]:
        assert step["alerts"], step["step"]
        assert {a["via"] for a in step["alerts"]} <= VIAS, step["step"]
    vias = {a["via"] for s in table["steps"] for a in s["alerts"]}
    assert vias == VIAS
    for left in table["left"]:
        assert left["runbook"] in runbooks
        assert len(left["why"]) > 20, left["step"]


def test_the_runbook_config_is_the_example_config_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    """The table's config names the example config's targets and notifier, of the same
    kinds: only the allow-lists differ."""
    for name in SECRETS:
        monkeypatch.setenv(name, "x")
    for name in ("REMEDIATOR_WEBHOOK_TOKEN", "REMEDIATOR_APPROVER_TOKEN", "REMEDIATOR_ADMIN_TOKEN", "PG_DSN",
                 "CACHE_REDIS_URL", "SLACK_WEBHOOK_URL", "PD_ROUTING_KEY", "ARGOCD_TOKEN"):
        monkeypatch.setenv(name, "https://example.invalid/x")
    configmap = yaml.safe_load((REPO / "deploy" / "kubernetes" / "configmap.yaml").read_text())
    example = settings_from_mapping(yaml.safe_load(configmap["data"]["remediator.yaml"]))
    runbooks = settings_from_mapping(yaml.safe_load(CONFIG.read_text()))
    assert {n: t.kind for n, t in runbooks.targets.items()} == {n: t.kind for n, t in example.targets.items()}
    assert set(runbooks.notifiers) <= set(example.notifiers)
    assert runbooks.dry_run is False


def test_docs_list_every_step() -> None:
    """docs/rules.md "The runbooks, step by step" holds every step of the table, those
    left to a person too, each on its own row."""
    docs = (REPO / "docs" / "rules.md").read_text()
    section = docs[docs.index("## The runbooks, step by step"):docs.index("## Worked example")]
    table = _table()
    for step in [*table["steps"], *table["left"]]:
        row = f"| {step['runbook']} | {step['step'].replace('|', chr(92) + '|')} |"
        assert row in section, step["step"]
