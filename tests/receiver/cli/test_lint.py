"""``remediator rules lint`` past loading, through the CLI: overlaps, auto destructive steps,
params the service config refuses, ladders; --json, --strict, --ignore."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from receiver.cli.main import main
from tests.rules.test_loader import TEN_ERRORS


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def lint_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run(capsys, "rules", "lint", "--json", *argv)
    assert err == ""
    return code, json.loads(out)


CONFIG = """\
targets:
  prod: {kind: kubernetes, namespaces: [shop]}
  api: {kind: http, base_url: "http://api.internal/v1"}
  dock: {kind: docker, containers: "web-.*"}
notifiers:
  team: {kind: webhook, url: "env:LINT_HOOK"}
"""


def rule(name: str, match: str, actions: str, extra: str = "") -> str:
    return f"  - name: {name}\n    match: {match}\n    actions: {actions}\n{extra}"


RESTART = "[{action: kubernetes.rollout_restart, target: prod, params: {namespace: shop, deployment: web}}]"
LOG = "[{action: notify.log, params: {text: hi}}]"

CASES = [
    pytest.param(rule("a", "['alertname = \"X\"']", LOG) + rule("b", "['alertname = \"X\"']", LOG),
                 [(5, "b", "identical-match", "matches exactly the alerts rule 'a' (RULES:2) matches")],
                 id="identical-match"),
    pytest.param(rule("a", "['alertname = \"X\"']", LOG) + rule("b", "['alertname = \"X\"']", LOG,
                                                                 "    status: resolved\n"),
                 [], id="same-matchers-other-status"),
    pytest.param(rule("a", "['alertname = \"X\"']", RESTART, "    approval: required\n")
                 + rule("b", "['alertname =~ \"X|Y\"']", RESTART, "    approval: required\n"),
                 [(6, "b", "same-target",
                   "can act on target 'prod' for the same alert as rule 'a' (RULES:2)")],
                 id="same-target-overlapping"),
    pytest.param(rule("a", "['alertname =~ \"X|Z\"']", RESTART, "    approval: required\n")
                 + rule("b", "['alertname =~ \"Y|W\"']", RESTART, "    approval: required\n"),
                 [], id="same-target-disjoint-alternatives"),
    pytest.param(rule("a", "['alertname = \"X\"', 'env != \"prod\"']", RESTART, "    approval: required\n")
                 + rule("b", "['alertname = \"X\"', 'env = \"prod\"']", RESTART, "    approval: required\n"),
                 [], id="same-target-excluded-by-negation"),
    pytest.param(rule("a", "['alertname = \"X\"']", RESTART, "    approval: auto\n"),
                 [(2, "a", "auto-destructive", "approval: auto runs destructive kubernetes.rollout_restart")],
                 id="auto-destructive"),
    pytest.param(rule("a", "['alertname = \"X\"']",
                      "[{action: http.request, target: api, params: {method: GET, path: /health}}]",
                      "    approval: auto\n"), [], id="auto-but-a-get-is-not-destructive"),
    pytest.param(rule("a", "['alertname = \"X\"']", RESTART), [], id="approval-unset-asks-first"),
    pytest.param("  - name: a\n    match: ['alertname = \"X\"']\n    approval: auto\n    ladder:\n"
                 f"      - actions: {LOG}\n        verify: {{resolved_within: 5m}}\n"
                 f"      - actions: {RESTART}\n",
                 [(2, "a", "auto-destructive", "runs destructive kubernetes.rollout_restart")],
                 id="ladder-rung-counts"),
    pytest.param("  - name: a\n    match: ['alertname = \"X\"']\n    approval: auto\n    ladder:\n"
                 f"      - actions: {LOG}\n        verify: {{resolved_within: 5m}}\n"
                 f"      - actions: {RESTART}\n        approval: required\n",
                 [], id="ladder-rung-asks-a-human-itself"),
    pytest.param("  - name: a\n    match: ['alertname = \"X\"']\n    ladder:\n"
                 f"      - actions: {LOG}\n        verify: {{resolved_within: 5m}}\n"
                 f"      - actions: {RESTART}\n        approval: auto\n",
                 [(2, "a", "auto-destructive", "runs destructive kubernetes.rollout_restart")],
                 id="ladder-rung-on-auto-under-an-unset-rule"),
]


@pytest.mark.parametrize(("rules", "expected"), CASES)
def test_lint_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                       rules: str, expected: list[tuple[int, str, str, str]]) -> None:
    monkeypatch.setenv("LINT_HOOK", "http://hooks.internal/x")
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n" + rules)
    (tmp_path / "c.yaml").write_text(CONFIG)
    code, report = lint_json(capsys, str(path), "--config", str(tmp_path / "c.yaml"))
    got = [(p["line"], p["rule"], p["severity"], p["message"]) for p in report["problems"]]
    assert code == 0
    assert (report["ok"], report["errors"], report["warnings"]) == (True, 0, len(expected))
    assert len(got) == len(expected), got
    for (line, name, severity, message), (want_line, want_rule, check, want) in zip(
            got, expected, strict=True):
        assert (line, name, severity) == (want_line, want_rule, "warning")
        assert message.endswith(f"[{check}]")
        assert want.replace("RULES", str(path)) in message, message
    if expected:
        code, _ = lint_json(capsys, str(path), "--config", str(tmp_path / "c.yaml"), "--strict")
        assert code == 1
        argv = ["--strict", "--ignore", expected[0][2]]
        code, report = lint_json(capsys, str(path), "--config", str(tmp_path / "c.yaml"), *argv)
        assert (code, report["problems"]) == (0, [])


REFUSED = [
    pytest.param(rule("a", "['alertname = \"X\"']",
                      "[{action: kubernetes.rollout_restart, target: prod, params: {namespace: billing, "
                      "deployment: web}}]"), 4,
                 "namespace 'billing' is not in the namespaces of target 'prod'",
                 id="namespace-outside-allow-list"),
    pytest.param(rule("a", "['alertname = \"X\"']",
                      "[{action: docker.restart, target: dock, params: {container: db}}]"),
                 4, "container 'db' does not match the target's pattern 'web-.*'",
                 id="container-outside-pattern"),
    pytest.param(rule("a", "['alertname = \"X\"']", "[{action: notify.webhook, params: {notifier: pager, "
                                                     "text: hi}}]"), 4, "pager", id="unknown-notifier"),
]


@pytest.mark.parametrize(("rules", "line", "message"), REFUSED)
def test_params_the_config_refuses_are_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch,
                                              rules: str, line: int, message: str) -> None:
    monkeypatch.setenv("LINT_HOOK", "http://hooks.internal/x")
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n" + rules)
    (tmp_path / "c.yaml").write_text(CONFIG)
    code, out, _ = run(capsys, "rules", "lint", str(path), "--config", str(tmp_path / "c.yaml"))
    first, last = out.splitlines()
    assert code == 1
    assert first.startswith(f"{path}:{line}: rule 'a': error: ")
    assert "refused by the service config" in first
    assert message in first, first
    assert last == "1 errors, 0 warnings"


def test_templated_params_are_left_to_each_decision(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n" + rule("a", "['alertname = \"X\"', 'namespace =~ \".+\"']",
                                      "[{action: kubernetes.rollout_restart, target: prod, params: "
                                      "{namespace: '{{ labels.namespace }}', deployment: web}}]"))
    (tmp_path / "c.yaml").write_text(CONFIG.split("notifiers:", maxsplit=1)[0])
    code, out, _ = run(capsys, "rules", "lint", str(path), "--config", str(tmp_path / "c.yaml"))
    assert (code, out.splitlines()) == (0, ["1 rules ok, 0 warnings"])


def test_ten_different_errors_are_all_reported_with_their_lines(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(TEN_ERRORS.lstrip("\n"))
    (tmp_path / "c.yaml").write_text("dry_run: true\n")  # the default levels: P9 is not one
    code, report = lint_json(capsys, str(path), "--config", str(tmp_path / "c.yaml"))
    assert (code, report["ok"], report["errors"], report["rules"]) == (1, False, 10, 0)
    assert [p["line"] for p in report["problems"]] == [5, 6, 7, 9, 13, 16, 18, 19, 20, 23]
    assert {p["file"] for p in report["problems"]} == {str(path)}
    code, out, _ = run(capsys, "rules", "lint", str(path), "--config", str(tmp_path / "c.yaml"))
    assert code == 1
    assert out.splitlines()[-1] == "10 errors, 0 warnings"
    assert len(out.splitlines()) == 11


SEV_RULES = """\
rules:
  - name: a
    match: ['alertname = "X"']
    priority: SEV-2
    approval: {required_for: [SEV-1, P1]}
    actions: [{action: notify.log, params: {text: hi}}]
"""


def test_priority_levels_are_the_configs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --config, level names are the config's business (only their form is
    checked); with it, a name that is not one of ``priorities.levels`` is an error at its line."""
    path = tmp_path / "rules.yaml"
    path.write_text(SEV_RULES)
    code, out, _ = run(capsys, "rules", "lint", str(path))
    assert (code, out.splitlines()) == (0, ["1 rules ok, 0 warnings"])
    (tmp_path / "c.yaml").write_text("priorities: {levels: [SEV-1, SEV-2, SEV-3, SEV-4]}\n")
    code, out, _ = run(capsys, "rules", "lint", str(path), "--config", str(tmp_path / "c.yaml"))
    assert code == 1
    assert out.splitlines() == [
        f"{path}:5: rule 'a': error: approval.required_for[1]: unknown priority level 'P1' "
        "(the service config's priorities.levels: SEV-1, SEV-2, SEV-3, SEV-4)", "1 errors, 0 warnings"]
    (tmp_path / "d.yaml").write_text("dry_run: true\n")
    code, out, _ = run(capsys, "rules", "lint", str(path), "--config", str(tmp_path / "d.yaml"))
    assert code == 1
    assert [line.split(": error: ")[1].split(" (")[0] for line in out.splitlines()[:-1]] == [
        "priority: unknown priority level 'SEV-2'",
        "approval.required_for[0]: unknown priority level 'SEV-1'"]


@pytest.mark.parametrize(("escalate_to", "errors"), [
    ("[team]", []),
    ("[team, pager, chat]", ["escalate_to names notifiers the service config lacks: chat, pager "
                             "(its escalations would fail to send)"]),
])
def test_escalate_to_names_configured_notifiers(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch,
                                                escalate_to: str, errors: list[str]) -> None:
    monkeypatch.setenv("LINT_HOOK", "http://hooks.internal/x")
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n" + rule("a", "['alertname = \"X\"']", LOG, f"    escalate_to: {escalate_to}\n"))
    (tmp_path / "c.yaml").write_text(CONFIG)
    code, report = lint_json(capsys, str(path), "--config", str(tmp_path / "c.yaml"))
    assert code == (1 if errors else 0)
    assert [(p["line"], p["rule"], p["message"]) for p in report["problems"]] == [(2, "a", e) for e in errors]
