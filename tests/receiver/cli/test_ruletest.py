"""``remediator rules test``: the real pipeline in a sandbox, through the CLI entry point.

Outcomes are read back from ``--json`` and checked here against what each guard must say,
so the command's own expectation matching is not the only judge of the pipeline.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from receiver.cli.main import main
from receiver.tools.ruletest import _same_number
from tests.support.httptarget import ServerFactory, serve_target

RULES = """\
rules:
  - name: restart-web
    match: ['alertname = "WebDown"', 'namespace =~ ".+"']
    approval: auto
    cooldown: 30m
    actions:
      - action: kubernetes.rollout_restart
        target: prod
        params: {namespace: "{{ labels.namespace }}", deployment: web}
  - name: slow-burn
    match: ['alertname = "SlowBurn"']
    for: 10m
    actions: [{action: notify.log, params: {text: slow}}]
  - name: flappy
    match: ['alertname = "Flappy"']
    cooldown: 0s
    limit: {max: 2, per: 1h}
    actions: [{action: notify.log, params: {text: flap}}]
  - name: needs-human
    match: ['alertname = "DiskFull"', 'instance =~ ".+"']
    approval: required
    actions: [{action: notify.log, params: {text: "disk full on {{ labels.instance }}"}}]
  - name: rehearsal
    match: ['alertname = "Rehearse"']
    dry_run: true
    actions: [{action: notify.log, params: {text: rehearsal}}]
  - name: ladder
    match: ['alertname = "Ladder"']
    approval: auto
    ladder:
      - actions: [{action: notify.log, params: {text: restart}}]
        verify: {resolved_within: 5m}
      - actions: [{action: notify.log, params: {text: scale up}}]
        verify: {resolved_within: 5m}
"""

CONFIG = """\
targets:
  prod: {kind: kubernetes, namespaces: [shop, frozen]}
guards:
  approval_ttl: 30m
  maintenance:
    - name: freeze
      matchers: ['namespace = "frozen"']
      start: 2026-01-01T00:00:00Z
      end: 2026-01-02T00:00:00Z
"""

WEB = "{labels: {alertname: WebDown, namespace: shop, severity: critical}}"
DISK = "{labels: {alertname: DiskFull, instance: db1}}"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_suite(tmp_path: Path, cases: str, *, head: str = "") -> Path:
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "config.yaml").write_text(CONFIG)
    path = tmp_path / "web.test.yaml"
    path.write_text(f"rule_files: [rules.yaml]\nconfig: config.yaml\n{head}tests:\n{cases}")
    return path


def outcomes(report: dict[str, Any], case: int = 0) -> list[list[str]]:
    steps = report["files"][0]["cases"][case]["steps"]
    return [[f"{d['rule']}:{d['outcome']}" for d in step] for step in steps]


SCENARIOS = [
    pytest.param(f"  - name: c\n    alerts: [{WEB}]\n", [["restart-web:executed"]], id="executed"),
    pytest.param("  - name: c\n    alerts: [{labels: {alertname: WebDown, namespace: billing}}]\n",
                 [["restart-web:target_not_allowed"]], id="namespace-not-allowed"),
    pytest.param(f"  - name: c\n    alerts: [{WEB}]\n    then: [{{after: 1m}}]\n",
                 [["restart-web:executed"], ["restart-web:duplicate"]], id="resend-is-duplicate"),
    pytest.param(f"  - name: c\n    alerts: [{WEB}]\n    then: [{{after: 5m, alerts: [{WEB}]}}, "
                 f"{{after: 26m, alerts: [{WEB}]}}]\n",
                 [["restart-web:executed"], ["restart-web:cooldown"], ["restart-web:executed"]],
                 id="cooldown-then-free"),
    pytest.param("  - name: c\n    alerts: [{labels: {alertname: SlowBurn}, active_for: 2m}]\n"
                 "    then: [{after: 8m}]\n",
                 [["slow-burn:for_not_elapsed"], ["slow-burn:executed"]], id="for-elapses-on-clock-step"),
    pytest.param("  - name: c\n    alerts: [{labels: {alertname: Flappy}}]\n    then:\n"
                 "      - {after: 1m, alerts: [{labels: {alertname: Flappy}}]}\n"
                 "      - {after: 1m, alerts: [{labels: {alertname: Flappy}}]}\n",
                 [["flappy:executed"], ["flappy:executed"], ["flappy:rate_limited"]], id="rate-limit"),
    pytest.param(f"  - name: c\n    alerts: [{DISK}]\n    then: [{{after: 2m, approve: alice}}]\n",
                 [["needs-human:awaiting_approval"], ["needs-human:executed"]], id="approved-runs"),
    pytest.param(f"  - name: c\n    alerts: [{DISK}]\n    then: [{{reject: bob}}]\n",
                 [["needs-human:awaiting_approval"], ["needs-human:rejected"]], id="rejected"),
    pytest.param(f"  - name: c\n    alerts: [{DISK}]\n    then: [{{after: 31m, approve: alice}}]\n",
                 [["needs-human:awaiting_approval"], ["needs-human:expired"]], id="approval-expires"),
    pytest.param(f"  - name: c\n    alerts: [{DISK}]\n    then: [{{resolve: true}}]\n",
                 [["needs-human:awaiting_approval"], ["needs-human:cancelled"]], id="resolve-cancels"),
    pytest.param("  - name: c\n    alerts: [{labels: {alertname: Rehearse}}]\n",
                 [["rehearsal:dry_run"]], id="rule-dry-run"),
    pytest.param("  - name: c\n    alerts: [{labels: {alertname: WebDown, namespace: frozen}}]\n",
                 [["restart-web:maintenance"]], id="maintenance-window"),
    pytest.param("  - name: c\n    alerts: [{labels: {alertname: Nothing}}]\n", [[]], id="no-match"),
    pytest.param("  - name: c\n    alerts: [{labels: {alertname: Ladder}}]\n"
                 "    then: [{after: 5m}, {after: 5m}]\n",
                 [["ladder:executed"], ["ladder:executed", "ladder:duplicate"], ["ladder:duplicate"]],
                 id="ladder-climbs-when-unresolved"),
    pytest.param("  - name: c\n    alerts: [{labels: {alertname: Ladder}}]\n"
                 "    then: [{after: 2m, resolve: true}, {after: 10m}]\n",
                 [["ladder:executed"], [], []], id="ladder-stops-when-resolved"),
]


@pytest.mark.parametrize(("cases", "expected"), SCENARIOS)
def test_guards_say_what_the_real_pipeline_says(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                cases: str, expected: list[list[str]]) -> None:
    """Each step's outcome is the real guard's verdict, on the clock the case steps."""
    path = write_suite(tmp_path, cases)
    code, out, err = run(capsys, "rules", "test", "--json", str(path))
    assert (code, err) == (0, "")
    assert outcomes(json.loads(out)) == expected


def test_a_climbed_rung_is_expected_by_its_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The rung a decision ran is reported and compared (``rung:``); a wrong one fails the case."""
    path = write_suite(tmp_path, """\
  - name: climbs
    alerts: [{labels: {alertname: Ladder}}]
    expect:
      - {rule: ladder, rung: 0, outcome: executed,
         actions: [{action: notify.log, params: {text: restart}}]}
    then:
      - after: 5m
        expect:
          - {rule: ladder, rung: 1, outcome: executed, priority: P3, response_target: 4h,
             actions: [{action: notify.log, params: {text: scale up}}]}
          - {rule: ladder, outcome: duplicate}
      - after: 5m
        expect: [{rule: ladder, rung: 2, outcome: duplicate}]
""")
    code, out, _ = run(capsys, "rules", "test", str(path))
    assert code == 1
    assert "step 3" in out
    assert "rung" in out
    assert out.count("FAIL") == 1
    assert "step 2" not in out  # a climbed rung keeps the first rung's priority and response target


def test_whole_file_dry_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``dry_run: true`` at the top plans every rule and executes none."""
    path = write_suite(tmp_path, f"  - name: c\n    alerts: [{WEB}]\n", head="dry_run: true\n")
    code, out, _ = run(capsys, "rules", "test", "--json", str(path))
    assert code == 0
    assert outcomes(json.loads(out)) == [["restart-web:dry_run"]]


def test_a_passing_file_prints_ok_per_case_and_exits_0(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = write_suite(tmp_path, f"""\
  - name: restarts web once, then holds it in cooldown
    alerts: [{WEB}]
    expect:
      - rule: restart-web
        priority: P1
        response_target: 15m
        outcome: executed
        actions:
          - action: kubernetes.rollout_restart
            target: prod
            params: {{namespace: shop, deployment: web}}
            subject: prod/shop/deployment/web
    then:
      - after: 10m
        alerts: [{WEB}]
        expect: [{{rule: restart-web, outcome: cooldown}}]
""")
    code, out, err = run(capsys, "rules", "test", str(path))
    assert (code, err) == (0, "")
    assert out.splitlines() == [f"ok    {path}:4  restarts web once, then holds it in cooldown",
                                "1 cases, 0 failed"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "rules.yaml", "web.test.yaml"]


def test_a_failing_case_prints_a_diff_naming_file_case_step_and_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_suite(tmp_path, f"""\
  - name: wrong on purpose
    alerts: [{WEB}]
    expect:
      - rule: restart-web
        priority: P2
        actions:
          - action: kubernetes.rollout_restart
            params: {{namespace: billing}}
    then:
      - after: 1m
        expect: [{{rule: restart-web, outcome: executed}}]
      - alerts: [{{labels: {{alertname: SlowBurn}}}}]
        expect: [{{rule: flappy}}]
""")
    code, out, _ = run(capsys, "rules", "test", str(path))
    assert code == 1
    assert out.splitlines() == [
        f"FAIL  {path}:4  wrong on purpose",
        "      step 1 (line 7), decision 1 (rule restart-web): priority",
        "        - expected: P2",
        "        + got:      P1",
        "      step 1 (line 7), decision 1 (rule restart-web): actions[0].params.namespace",
        "        - expected: billing",
        "        + got:      shop",
        "      step 2 (line 14), decision 1 (rule restart-web): outcome",
        "        - expected: executed",
        "        + got:      duplicate",
        "          (this firing was already handled by this rule)",
        "      step 3 (line 16): decisions",
        '        - expected: ["flappy"]',
        '        + got:      ["slow-burn"]',
        "1 cases, 1 failed",
    ]


def test_json_report_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_suite(tmp_path, f"  - name: c\n    alerts: [{WEB}]\n    expect: [{{rule: restart-web, "
                                 "outcome: cooldown}]\n")
    code, out, _ = run(capsys, "rules", "test", "--json", str(path))
    report = json.loads(out)
    assert code == 1
    assert (report["ok"], report["cases"], report["failed"]) == (False, 1, 1)
    case = report["files"][0]["cases"][0]
    assert case["failures"] == [{"step": 1, "line": 6, "field": "outcome", "expected": "cooldown",
                                 "got": "executed", "decision": 1, "rule": "restart-web", "detail": ""}]
    (decision,) = case["steps"][0]
    assert decision["actions"] == [{"action": "kubernetes.rollout_restart", "target": "prod",
                                    "params": {"namespace": "shop", "deployment": "web"},
                                    "subject": "prod/shop/deployment/web",
                                    "steps": ['kubernetes.rollout_restart on target \'prod\' with params '
                                              '{"deployment": "web", "namespace": "shop"}'],
                                    "read_from_target": False}]
    assert (decision["priority"], decision["response_target_seconds"]) == ("P1", 900.0)
    assert decision["executed"] == 1


HEAD = "rule_files: [rules.yaml]\ntests:\n  - name: a\n"
BROKEN = [
    pytest.param(HEAD + "    alerts: [{labels: {a: b}, activ_for: 1m}]\n",
                 ["web.test.yaml:4: tests.0.alerts.0.activ_for: unknown key 'activ_for'"], id="unknown-key"),
    pytest.param(HEAD + "    alerts: [{labels: {a: b}}]\n    expect: [{rule: x, outcome: cooldwn}]\n",
                 ["web.test.yaml:5: tests.0.expect.0.outcome: unknown outcome 'cooldwn'"],
                 id="unknown-outcome"),
    pytest.param("rule_files: [rules.yaml]\ntests:\n  - name: a\n    alerts: [{labels: {a: b}}]\n"
                 "    then: [{approve: x, resolve: true}]\n",
                 ["web.test.yaml:5: tests.0.then.0: a step does one thing; this one has resolve and approve"],
                 id="step-does-two-things"),
    pytest.param("rule_files: [rules.yaml]\ntests:\n  - name: a\n    alerts: [{labels: {a: b}}\n",
                 ["web.test.yaml:5: error: YAML:"], id="bad-yaml"),
    pytest.param("rule_files: [rules.yaml]\nrule_files: [x.yaml]\ntests: []\n",
                 ["web.test.yaml:2: error: duplicate key 'rule_files'"], id="duplicate-key"),
    pytest.param("config: nope.yaml\n" + HEAD + "    alerts: [{labels: {a: b}}]\n",
                 ["web.test.yaml: config nope.yaml: cannot read config"], id="config-missing"),
    pytest.param("", ["web.test.yaml: the test file is empty"], id="empty"),
    pytest.param(HEAD + "    alerts: [{labels: {bad-label: x}}]\n",
                 ["web.test.yaml:4: tests.0.alerts.0.labels.bad-label: invalid key 'bad-label': "
                  "String should match"],
                 id="bad-label-name"),
]


@pytest.mark.parametrize(("text", "messages"), BROKEN)
def test_an_unusable_test_file_exits_2_naming_file_and_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        text: str, messages: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules.yaml").write_text(RULES)
    Path("web.test.yaml").write_text(text)
    code, out, err = run(capsys, "rules", "test", "web.test.yaml")
    assert code == 2
    errors = [line.removeprefix("ERROR ") for line in out.splitlines() if line.startswith("ERROR ")]
    assert len(errors) == len(messages), out
    assert all(e.startswith(m) for e, m in zip(errors, messages, strict=True)), out
    assert "Traceback" not in out + err


def test_rules_that_do_not_load_fail_with_their_problems(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """The rules under test are broken: exit 1, every load problem with the rule file's line."""
    (tmp_path / "rules.yaml").write_text('rules:\n  - name: a\n    match: [alertname == "X"]\n'
                                         "    actions: [{action: notify.nope}]\n")
    path = tmp_path / "t.test.yaml"
    path.write_text("rule_files: [rules.yaml]\ntests:\n  - name: a\n    alerts: [{labels: {a: b}}]\n")
    code, out, _ = run(capsys, "rules", "test", str(path))
    assert code == 1
    errors = [line for line in out.splitlines() if line.startswith("ERROR ")]
    assert len(errors) == 2
    assert all(f"{tmp_path / 'rules.yaml'}:" in e and "rule 'a': error:" in e for e in errors)


def test_a_missing_target_without_config_is_target_unknown(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    path = tmp_path / "t.test.yaml"
    path.write_text(f"rule_files: [rules.yaml]\ntests:\n  - name: a\n    alerts: [{WEB}]\n"
                    "    expect: [{rule: restart-web, outcome: target_unknown}]\n")
    code, out, _ = run(capsys, "rules", "test", str(path))
    assert (code, out.splitlines()[-1]) == (0, "1 cases, 0 failed")


async def test_nothing_is_contacted_and_no_state_is_written(
        tmp_path: Path, aiohttp_server: ServerFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real HTTP target and a real Slack-shaped notifier receive nothing; the config's state
    and audit files are never created. Run as a process, as CI runs it."""
    target, base = await serve_target(aiohttp_server)
    slack, slack_url = await serve_target(aiohttp_server)
    (tmp_path / "rules.yaml").write_text("""\
rules:
  - name: poke
    match: ['alertname = "Ping"', 'service =~ ".+"']
    approval: auto
    actions:
      - action: http.request
        target: api
        params: {method: POST, path: "/restart/{{ labels.service }}"}
      - action: notify.slack
        params: {notifier: team, text: "restarted {{ labels.service }}"}
""")
    (tmp_path / "config.yaml").write_text(
        f"state: sqlite:///{tmp_path / 'state.db'}\naudit: {tmp_path / 'audit.jsonl'}\n"
        f"targets:\n  api: {{kind: http, base_url: '{base}'}}\n"
        "notifiers:\n  team: {kind: slack, url: 'env:RULETEST_SLACK'}\n")
    (tmp_path / "t.test.yaml").write_text("""\
rule_files: [rules.yaml]
config: config.yaml
tests:
  - name: plans the request and the message, sends neither
    alerts: [{labels: {alertname: Ping, service: cart}}]
    expect:
      - rule: poke
        outcome: executed
        actions:
          - {action: http.request, target: api, params: {method: POST, path: /restart/cart}}
          - {action: notify.slack, params: {notifier: team, text: restarted cart}}
""")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "receiver", "rules", "test", str(tmp_path / "t.test.yaml"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={"RULETEST_SLACK": slack_url, "PATH": "/usr/bin:/bin"})
    out, err = await proc.communicate()
    assert proc.returncode == 0, out.decode() + err.decode()
    assert (target.calls, slack.calls) == ([], [])
    assert sorted(p.name for p in await asyncio.to_thread(lambda: list(tmp_path.iterdir()))) == [
        "config.yaml", "rules.yaml", "t.test.yaml"]


def test_an_inline_config_is_checked_as_a_config_file_is(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """``config:`` may be the config itself; a bad one names the test file's line and the key."""
    (tmp_path / "rules.yaml").write_text(RULES)
    path = tmp_path / "inline.test.yaml"
    head = "rule_files: [rules.yaml]\nconfig:\n  targets:\n"
    path.write_text(f"{head}    prod: {{kind: kubernetes, namespacez: [shop]}}\n"
                    f"tests:\n  - name: c\n    alerts: [{WEB}]\n")
    code, out, _ = run(capsys, "rules", "test", str(path))
    assert code == 2
    assert f"{path}:2: config: inline config: targets.prod.kubernetes.namespacez: Extra inputs" in out
    path.write_text(f"{head}    prod: {{kind: kubernetes, namespaces: [shop]}}\n"
                    f"tests:\n  - name: c\n    alerts: [{WEB}]\n"
                    "    expect: [{rule: restart-web, outcome: executed}]\n")
    code, out, _ = run(capsys, "rules", "test", str(path))
    assert (code, out.splitlines()[-1]) == (0, "1 cases, 0 failed")


@pytest.mark.parametrize(("want", "have", "same"), [
    (1.5, "1.5", True),          # a params model keeps decimals exact: their JSON form is text
    ("1.5", 1.5, True),
    (2, "2.0", True),
    (1.5, "1.6", False),
    (1.5, "x1.5", False),        # not a number at all
    (True, "1", None),           # a boolean is not a number here
    ("shop", "shop", None),      # plain values compare as they are
    (3, 3, None),
])
def test_a_number_matches_the_decimal_text_of_a_plan(want: Any, have: Any, same: bool | None) -> None:
    assert _same_number(want, have) is same


def test_a_decimal_param_is_expected_as_the_number_written_in_the_rule(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``factor: 1.5`` in a rule and in its test agree, though the plan carries ``"1.5"``."""
    (tmp_path / "rules.yaml").write_text("""\
rules:
  - name: more-memory
    match: ['alertname = "OOM"']
    approval: auto
    actions:
      - action: kubernetes.set_memory_limit
        target: prod
        params: {namespace: shop, deployment: web, container: web, factor: 1.5, max: 4Gi}
""")
    suite = tmp_path / "mem.test.yaml"
    for factor, code_wanted in ((1.5, 0), (1.6, 1)):
        suite.write_text(f"""\
rule_files: [rules.yaml]
dry_run: true
tests:
  - name: factor
    alerts: [{{labels: {{alertname: OOM}}}}]
    expect:
      - rule: more-memory
        actions: [{{action: kubernetes.set_memory_limit, params: {{factor: {factor}, max: 4Gi}}}}]
""")
        code, out, _ = run(capsys, "rules", "test", str(suite))
        assert code == code_wanted, out
