"""Rule files whose safety an alert's label would decide: refused when they load.

A rule with ``approval: {required_for: [P1, P2]}`` and no fixed ``priority`` takes its
priority from the alert's ``severity`` label, so an alert labelled ``severity=info`` ran
its DELETE with no approval. The loader (and so ``rules lint``, ``config check``,
``serve`` and every reload) refuses a destructive step whose approval hangs on that
label, naming file, line and rule and how to fix it. Each row is one rule: refused at
its line, or loaded because nothing a label says changes whether a human is asked.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from receiver.cli.main import main
from remediations.registry import default_registry
from rules.errors import RuleLoadError
from rules.loader import load_rules
from rules.priority import PriorityPolicy

DELETE = "{action: http.request, target: api, params: {method: DELETE, path: /cache}}"
GET = "{action: http.request, target: api, params: {method: GET, path: /cache}}"
NOTIFY = "{action: notify.log, params: {text: hi}}"


def rule(body: str, *, head: str = "") -> str:
    return (f"{head}rules:\n  - name: purge\n    match: ['alertname = \"X\"']\n" + body)


def rung(actions: str, approval: str = "", verify: bool = True) -> str:
    text = f"      - actions: [{actions}]\n"
    if approval:
        text += f"        approval: {approval}\n"
    if verify:
        text += "        verify: {resolved_within: 5m}\n"
    return text


LADDER_OWN = rule("    ladder:\n" + rung(NOTIFY) + rung(DELETE, "{required_for: [P1]}", verify=False))
LADDER_RULE = rule("    approval: {required_for: [P1, P2]}\n    ladder:\n" + rung(NOTIFY)
                   + rung(DELETE, verify=False))
LADDER_OVERRIDE = rule("    approval: {required_for: [P1, P2]}\n    ladder:\n" + rung(NOTIFY)
                       + rung(DELETE, "required", verify=False))
SEV = PriorityPolicy(levels=["SEV-1", "SEV-2", "SEV-3"])
URGENCY = PriorityPolicy(label="urgency")

def flat(approval: str, action: str, *, priority: str = "", head: str = "") -> str:
    """A rule of one action step; ``approval`` as written after ``approval:`` (none when empty)."""
    text = f"    priority: {priority}\n" if priority else ""
    text += f"    approval: {approval}\n" if approval else ""
    return rule(f"{text}    actions: [{action}]\n", head=head)


def scale(replicas: str) -> str:
    return ("{action: kubernetes.scale, target: k, params: {namespace: prod, deployment: web, "
            f"replicas: '{replicas}'}}}}")


P1 = "{required_for: [P1]}"
P12 = "{required_for: [P1, P2]}"
FILE_LEVELS = "priority_levels: [P1, P2, P3, P4]\n"
TEMPLATED_METHOD = flat(P1, "{action: http.request, target: api, params: {method: '{{ labels.method }}', "
                        "path: /x}}").replace("'alertname = \"X\"'", "'alertname = \"X\"', 'method != \"\"'")

# (the rule file, the service's priorities, the line refused or None when it loads, words
#  the refusal must say)
CASES = [
    pytest.param(flat(P12, DELETE), None, 4, "P3 or P4", id="delete-by-severity"),
    pytest.param(flat("{required_for: [P1, P2, P3]}", DELETE), None, 4, "at P4", id="all-but-the-last-level"),
    pytest.param(flat("\n      required_for: [P1]", DELETE), None, 4, "'severity' label", id="block-style"),
    pytest.param(flat(P12, DELETE, priority="P3"), None, None, "", id="fixed-priority-loads"),
    pytest.param(flat("{required_for: [P1, P2, P3, P4]}", DELETE), None, None, "", id="every-level-loads"),
    pytest.param(flat("required", DELETE), None, None, "", id="required-loads"),
    pytest.param(flat("", DELETE), None, None, "", id="unset-loads"),
    pytest.param(flat(P1, GET), None, None, "", id="read-only-get-loads"),
    pytest.param(flat(P1, NOTIFY), None, None, "", id="notify-loads"),
    pytest.param(flat(P1, "{action: redis.flushdb, target: r, params: {db: 0}}"), None, None, "",
                 id="approval-always-action-loads"),
    pytest.param(TEMPLATED_METHOD, None, 4, "http.request", id="templated-method-counts-as-destructive"),
    pytest.param(flat(P1, "{action: http.request, target: api, params: {method: GET, "
                          "path: '/x/{{ alert.fingerprint }}'}}"), None, None, "",
                 id="templated-path-get-loads"),
    pytest.param(flat(P1, scale("{{ annotations.n }}")), None, 4, "kubernetes.scale",
                 id="templated-replicas-may-scale-down"),
    pytest.param(flat(P1, scale("+1")), None, None, "", id="scale-up-loads"),
    pytest.param(flat(P1, scale("-1")), None, 4, "kubernetes.scale", id="scale-down"),
    pytest.param(LADDER_OWN, None, 8, "P2 or P3 or P4", id="a-rungs-own-approval"),
    pytest.param(LADDER_RULE, None, 4, "http.request", id="the-rules-approval-on-a-later-rung"),
    pytest.param(LADDER_OVERRIDE, None, None, "", id="the-destructive-rung-says-required"),
    pytest.param(flat("{required_for: [SEV-1, SEV-2]}", DELETE), SEV, 4, "at SEV-3",
                 id="the-services-levels"),
    pytest.param(flat("{required_for: [P1, P2, P3]}", DELETE, head=FILE_LEVELS), SEV, None, "",
                 id="file-levels-mapped-onto-fewer-cover-all"),
    pytest.param(flat(P12, DELETE, head=FILE_LEVELS), SEV, 5, "SEV-3", id="file-levels-mapped-leave-one"),
    pytest.param(flat(P1, DELETE), URGENCY, 4, "'urgency' label", id="the-configured-label-is-named"),
]


@pytest.mark.parametrize(("text", "policy", "line", "words"), CASES)
def test_a_destructive_step_whose_approval_a_label_decides_is_refused(
        tmp_path: Path, text: str, policy: PriorityPolicy | None, line: int | None, words: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    if line is None:
        assert load_rules([path], catalogue=default_registry(), priorities=policy).ruleset.rules
        return
    with pytest.raises(RuleLoadError) as err:
        load_rules([path], catalogue=default_registry(), priorities=policy)
    (problem,) = err.value.problems
    assert (problem.file, problem.line, problem.rule) == (str(path), line, "purge")
    assert words in problem.message
    assert "priority:" in problem.message
    assert "approval: required" in problem.message


@pytest.mark.parametrize("command", ["rules lint", "config check"])
def test_lint_and_config_check_name_the_rule_and_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         command: str) -> None:
    """The finding's rule as the issue found it (lint said nothing): both commands refuse it."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(flat(P12, DELETE))
    if command == "rules lint":
        code = main(["rules", "lint", str(rules)])
    else:
        config = tmp_path / "remediator.yaml"
        config.write_text(f"rules: ['{rules}']\naudit: '{tmp_path / 'audit.jsonl'}'\n"
                          "targets: {api: {kind: http, base_url: 'http://svc.example'}}\n")
        code = main(["config", "check", str(config)])
    said = "".join(capsys.readouterr())
    assert code != 0
    assert f"{rules}:4" in said
    assert "'purge'" in said
    assert "approval: {required_for: [P1, P2]} lets the alert's 'severity' label decide" in said
