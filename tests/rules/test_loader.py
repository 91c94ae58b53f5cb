"""The rule loader: strict, every problem reported with its file, line and rule."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from pydantic import BaseModel, ConfigDict

from rules.catalogue import ActionInfo
from rules.errors import Problem, RuleLoadError
from rules.loader import LoadResult, load_rules
from rules.priority import PriorityPolicy


class _LogParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str
    level: Literal["info", "warning", "error"] = "info"


class _HttpParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = "/"
    expect_status: int = 200


class FakeCatalogue:
    """notify.log (no target), http.request (http), pg.activity (read-only, postgres)."""

    actions = {
        "notify.log": ActionInfo("notify.log", _LogParams, False, False, frozenset()),
        "http.request": ActionInfo("http.request", _HttpParams, True, False, frozenset({"http"})),
        "pg.activity": ActionInfo("pg.activity", _HttpParams, False, True, frozenset({"postgres"})),
    }

    def info(self, name: str) -> ActionInfo | None:
        return self.actions.get(name)

    def names(self) -> list[str]:
        return sorted(self.actions)


TARGETS = {"api": "http", "main": "postgres"}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def load(*paths: Path, targets: Mapping[str, str] | None = TARGETS,
         priorities: PriorityPolicy | None = PriorityPolicy()) -> LoadResult:  # noqa: B008 -- frozen
    return load_rules(list(paths), catalogue=FakeCatalogue(), targets=targets, priorities=priorities)


def problems_of(*paths: Path, targets: Mapping[str, str] | None = TARGETS) -> list[Problem]:
    with pytest.raises(RuleLoadError) as info:
        load(*paths, targets=targets)
    return info.value.problems


TEN_ERRORS = """
rules:
  - name: cpu
    match:
      - alertname = "HighCPU"
      - env = "prod
    for: 5 minutes
    cooldwon: 10m
    actions:
      - action: notify.lgo
        params: {text: hi}
  - name: errors
    match: ['alertname = "HighErrorRate"']
    priority: P9
    actions:
      - action: notify.log
        target: api
        params:
          text: "{{ labels.deployment }}"
          level: loud
  - name: cpu
    match: ['alertname = "Other"']
    actions:
      - action: http.request
"""


def test_ten_errors_in_one_file_are_all_reported(tmp_path: Path) -> None:
    """One file with ten different errors yields ten problems, each with its line and rule."""
    path = write(tmp_path / "bad.yaml", TEN_ERRORS)
    found = [(p.line, p.rule, p.message) for p in problems_of(path)]
    expected = [
        (5, "cpu", "closing double quote"),
        (6, "cpu", "for: unknown unit ' minutes' in duration '5 minutes'"),
        (7, "cpu", "unknown key 'cooldwon' (did you mean 'cooldown'?)"),
        (9, "cpu", "unknown action 'notify.lgo' (did you mean 'notify.log'?)"),
        (13, "errors", "priority: unknown priority level 'P9' (the service config's priorities.levels: "
                       "P1, P2, P3, P4)"),
        (16, "errors", "action 'notify.log' takes no target"),
        (18, "errors", "{{ labels.deployment }} may be missing"),
        (19, "errors", "actions[0].params.level: Input should be"),
        (20, "cpu", "rule name 'cpu' is already used at"),
        (23, "cpu", "action 'http.request' needs a target"),
    ]
    assert len(found) == len(expected), "\n".join(map(str, found))
    for (line, rule, message), (want_line, want_rule, want) in zip(found, expected, strict=True):
        assert (line, rule) == (want_line, want_rule), message
        assert want in message


ONE_RULE = """
rules:
  - name: r
    match: ['alertname = "A"', 'pod =~ ".+"']
    actions:
      - action: notify.log
        params: {text: "restart {{ labels.pod }}"}
"""


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        pytest.param("rules:\n  - name: r\n    match: [a=b\n", 4, "YAML: while parsing a flow",
                     id="yaml-syntax"),
        pytest.param("rules: []\n---\nrules: []\n", 2, "single document", id="two-documents"),
        pytest.param("rules: !!python/object:os.system x\n", 1, "YAML:", id="unsafe-tag"),
        pytest.param("- a\n- b\n", 1, "top level must be a mapping", id="top-level-list"),
        pytest.param("rules: []\nroutes: []\n", 2, "unknown top-level key 'routes'",
                     id="unknown-top-level-key"),
        pytest.param("rules: {a: 1}\n", 1, "'rules' must be a list", id="rules-not-list"),
        pytest.param("rules:\n  - just text\n", 2, "a rule must be a mapping", id="rule-not-mapping"),
        pytest.param(
            "rules:\n  - name: r\n    match: [a=b]\n", 2, "missing required key 'actions'",
            id="missing-key",
        ),
        pytest.param(
            "rules:\n  - name: r\n    match: [a=b]\n    match: [c=d]\n"
            "    actions: [{action: notify.log, params: {text: x}}]\n",
            4, "duplicate key 'match' (first at line 3)", id="duplicate-key",
        ),
        pytest.param(
            "rules:\n  - name: has space\n    match: [a=b]\n"
            "    actions: [{action: notify.log, params: {text: x}}]\n",
            2, "name: use letters", id="bad-name",
        ),
        pytest.param(
            "rules:\n  - name: r\n    match: [a=b]\n    approval: maybe\n"
            "    actions: [{action: notify.log, params: {text: x}}]\n",
            4, "approval: must be auto, required or {required_for", id="approval-word",
        ),
        pytest.param(
            "rules:\n  - name: r\n    match: [a=b]\n    approval: {required_for: [P7]}\n"
            "    actions: [{action: notify.log, params: {text: x}}]\n",
            4, "approval.required_for[0]: unknown priority level 'P7'", id="approval-priority",
        ),
        pytest.param(
            "rules:\n  - name: r\n    match: [a=b]\n    limit: {max: 3}\n"
            "    actions: [{action: notify.log, params: {text: x}}]\n",
            4, "missing required key 'per' in limit", id="limit-missing-per",
        ),
        pytest.param(
            "rules:\n  - name: r\n    match: [a=b]\n    diagnose:\n"
            "      - {action: http.request, target: api}\n"
            "    actions: [{action: notify.log, params: {text: x}}]\n",
            5, "a diagnose step must be read-only", id="diagnose-not-read-only",
        ),
        pytest.param(
            "rules:\n  - name: r\n    match: [a=b]\n    actions:\n"
            "      - action: http.request\n        target: main\n",
            6, "target 'main' is a postgres target", id="target-wrong-kind",
        ),
        pytest.param(
            "rules:\n  - name: r\n    match: [a=b]\n    actions:\n"
            "      - action: notify.log\n        params:\n          text: x\n          colour: red\n",
            8, "unknown parameter 'colour'", id="unknown-param",
        ),
        pytest.param(
            "rules:\n  - name: r\n    match: [a=b]\n    actions:\n"
            "      - action: notify.log\n        params:\n          text: '{{ labels.a | upper }}'\n",
            7, "actions[0].params.text: bad template", id="template-syntax",
        ),
        pytest.param(
            "rules:\n  - name: r\n    match: [a=b]\n    actions:\n"
            "      - action: notify.log\n        params:\n"
            "          text: '{{ labels.name | trimprefix \"/\" }}'\n",
            7, '{{ labels.name | trimprefix "/" }} may be missing', id="filtered-template-needs-a-matcher",
        ),
        pytest.param(
            "rules:\n  - name: r\n    match: ['a=~\".*\"']\n    actions:\n"
            "      - action: notify.log\n        params:\n          text: '{{ labels.a }}'\n",
            7, "{{ labels.a }} may be missing", id="regex-star-does-not-guarantee",
        ),
        pytest.param(
            "rules:\n  - name: r\n    match: [a=b]\n    actions:\n"
            "      - action: http.request\n        target: api\n        params:\n"
            "          expect_status: lots\n",
            8, "expect_status: Input should be a valid integer", id="untemplated-param-checked",
        ),
        pytest.param(
            "rules:\n  - name: r\n    match: [a=b]\n"
            "    actions: [{action: notify.log, params: {text: x}}]\n"
            "    ladder: [{actions: [{action: notify.log, params: {text: x}}]}]\n",
            2, "give either actions: or ladder:, not both", id="actions-and-ladder",
        ),
        pytest.param(
            "rules:\n  - name: r\n    match: [a=b]\n    ladder:\n"
            "      - actions: [{action: notify.log, params: {text: x}}]\n"
            "      - actions: [{action: notify.log, params: {text: y}}]\n",
            5, "ladder[0]: every rung but the last needs verify", id="rung-without-verify",
        ),
        pytest.param(
            "rules:\n  - name: r\n    match: [a=b]\n    ladder:\n"
            "      - actions: [{action: notify.log, params: {text: x}}]\n"
            "        verify: {resolved_within: 5m, else: escalate}\n"
            "      - actions: [{action: notify.log, params: {text: y}}]\n",
            5, "ladder[0]: else: escalate would end the ladder", id="rung-escalates-early",
        ),
        pytest.param(
            "rules:\n  - name: r\n    match: [a=b]\n    ladder:\n"
            "      - actions: [{action: notify.log, params: {text: x}}]\n"
            "        verify: {resolved_within: 5m, else: next}\n",
            5, "ladder[0]: else: next on the last rung", id="last-rung-next",
        ),
        pytest.param(
            "rules:\n  - name: r\n    match: [a=b]\n    verify: {resolved_within: 5m, else: next}\n"
            "    actions: [{action: notify.log, params: {text: x}}]\n",
            2, "verify.else: next needs a ladder", id="next-without-ladder",
        ),
        pytest.param(
            "rules:\n  - name: r\n    match: [a=b]\n    verify: {resolved_within: 5m}\n    ladder:\n"
            "      - actions: [{action: notify.log, params: {text: x}}]\n",
            2, "with ladder:, give verify: on each rung", id="rule-verify-with-ladder",
        ),
        pytest.param(
            "rules:\n  - name: r\n    match: [a=b]\n    ladder:\n"
            "      - actions: [{action: notify.log, params: {text: x}}]\n"
            "        verfy: {resolved_within: 5m}\n",
            6, "unknown key 'verfy' in ladder[0] (did you mean 'verify'?)", id="rung-unknown-key",
        ),
        pytest.param(
            "rules:\n  - name: r\n    match: [a=b]\n    ladder:\n"
            "      - actions:\n          - action: notify.log\n            params:\n"
            "              text: '{{ labels.pod }}'\n",
            8, "ladder[0].actions[0].params.text: {{ labels.pod }} may be missing", id="rung-template",
        ),
        pytest.param(
            "rules:\n  - name: r\n    match: [a=b]\n    ladder:\n"
            "      - actions:\n          - action: notify.lgo\n",
            6, "unknown action 'notify.lgo' (did you mean 'notify.log'", id="rung-unknown-action",
        ),
    ],
)
def test_single_error(tmp_path: Path, text: str, line: int, message: str) -> None:
    """Each kind of mistake is an error naming its line."""
    problems = [p for p in problems_of(write(tmp_path / "r.yaml", text)) if p.severity == "error"]
    assert len(problems) == 1, problems
    assert problems[0].line == line
    assert message in problems[0].message


@pytest.mark.parametrize(
    ("text", "targets", "message"),
    [
        pytest.param("", TARGETS, "the file is empty", id="empty-file"),
        pytest.param("# nothing yet\n", TARGETS, "the file is empty", id="only-comments"),
        pytest.param("rules: []\n", TARGETS, "no rules in this file", id="empty-rules"),
        pytest.param(
            "rules:\n  - name: r\n    match: [a=b]\n    actions:\n"
            "      - {action: http.request, target: elsewhere}\n",
            TARGETS, "target 'elsewhere' is not in the service config", id="unknown-target",
        ),
        pytest.param(
            "rules:\n  - name: r\n    match: [a=b]\n    status: resolved\n    for: 5m\n"
            "    actions: [{action: notify.log, params: {text: x}}]\n",
            TARGETS, "'for' has no effect", id="for-on-resolved",
        ),
    ],
)
def test_warnings_load(tmp_path: Path, text: str, targets: Mapping[str, str], message: str) -> None:
    """Warnings do not stop loading; they come back with the rule set."""
    result = load(write(tmp_path / "r.yaml", text), targets=targets)
    assert [p.severity for p in result.warnings] == ["warning"]
    assert message in result.warnings[0].message


@pytest.mark.parametrize(
    ("params", "match"),
    [
        pytest.param("{expect_status: '{{ labels.code }}'}", 'code=~"[0-9]+"', id="templated-int"),
        pytest.param("{path: '/x/{{ annotations.id }}'}", "a=b", id="annotation-ref"),
        pytest.param("{path: '/{{ alert.fingerprint }}'}", "a=b", id="alert-ref"),
        pytest.param("{path: '/{{ labels.code }}'}", 'code!=""', id="not-empty-guarantees"),
        pytest.param("{path: '/{{ labels.code }}'}", 'code="503"', id="equality-guarantees"),
    ],
)
def test_templates_accepted(tmp_path: Path, params: str, match: str) -> None:
    """Guaranteed labels, annotations and alert fields may be templated, in any field type."""
    text = (f"rules:\n  - name: r\n    match: ['{match}']\n    actions:\n"
            f"      - action: http.request\n        target: api\n        params: {params}\n")
    result = load(write(tmp_path / "r.yaml", text))
    assert [r.name for r in result.ruleset.rules] == ["r"]


def test_no_targets_means_no_target_checks(tmp_path: Path) -> None:
    """Without a service config (targets=None) target names are not checked."""
    text = "rules:\n  - name: r\n    match: [a=b]\n    actions: [{action: http.request, target: x}]\n"
    assert load(write(tmp_path / "r.yaml", text), targets=None).warnings == []


def test_duplicate_names_across_files(tmp_path: Path) -> None:
    """A rule name used in two files is an error at the second, naming the first."""
    first = write(tmp_path / "a.yaml", ONE_RULE)
    second = write(tmp_path / "b.yaml", "# another team's file\n" + ONE_RULE.lstrip("\n"))
    (problem,) = problems_of(first, second)
    assert (problem.file, problem.line, problem.rule) == (str(second), 3, "r")
    assert f"already used at {first}:2" in problem.message


def test_directories_are_walked_sorted_and_recursive(tmp_path: Path) -> None:
    """A directory loads every *.yaml/*.yml below it, sorted; hidden files, rule tests
    (*.test.yaml, *.test.yml) and other files are skipped."""
    for rel, name in [("b.yaml", "b"), ("a.yml", "a"), ("sub/c.yaml", "c"),
                      (".hidden/d.yaml", "d"), ("..data/e.yaml", "e"), ("b.test.yaml", "t"),
                      ("sub/c.test.yml", "u")]:
        write(tmp_path / "rules" / rel, ONE_RULE.replace("name: r", f"name: {name}"))
    write(tmp_path / "rules" / "notes.txt", "not rules")
    result = load(tmp_path / "rules")
    assert [r.name for r in result.ruleset.rules] == ["a", "b", "c"]
    assert [Path(s).name for s in result.ruleset.sources] == ["a.yml", "b.yaml", "c.yaml"]


def test_file_named_twice_loads_once(tmp_path: Path) -> None:
    """A file reached twice (listed, or through its directory) is loaded once."""
    path = write(tmp_path / "rules" / "a.yaml", ONE_RULE)
    assert len(load(path, tmp_path / "rules").ruleset.rules) == 1


def test_empty_directory_warns(tmp_path: Path) -> None:
    """A directory without rule files is a warning, not an error."""
    (tmp_path / "none").mkdir()
    (warning,) = load(tmp_path / "none").warnings
    assert "no *.yaml or *.yml file" in warning.message


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    """A path that does not exist is an error, and the other files are still checked."""
    good = write(tmp_path / "good.yaml", ONE_RULE)
    bad = write(tmp_path / "bad.yaml", "rules: 3\n")
    problems = problems_of(tmp_path / "nope.yaml", good, bad)
    assert [(p.file, p.line) for p in problems] == [(str(tmp_path / "nope.yaml"), None),
                                                    (str(bad), 1)]
    assert "no such file or directory" in problems[0].message


def test_errors_carry_the_warnings_too(tmp_path: Path) -> None:
    """RuleLoadError lists warnings beside errors, so a linter shows everything at once."""
    empty = write(tmp_path / "empty.yaml", "")
    bad = write(tmp_path / "bad.yaml", "rules: 3\n")
    assert [p.severity for p in problems_of(empty, bad)] == ["warning", "error"]


def test_loaded_rules_keep_order_and_sources(tmp_path: Path) -> None:
    """Rules load in file order, then position, each with its source file."""
    a = write(tmp_path / "a.yaml", ONE_RULE.replace("name: r", "name: a1") + """
  - name: a2
    match: ['alertname = "B"']
    actions: [{action: notify.log, params: {text: x}}]
""")
    b = write(tmp_path / "b.yaml", ONE_RULE.replace("name: r", "name: b1"))
    result = load(b, a)
    assert [r.name for r in result.ruleset.rules] == ["b1", "a1", "a2"]
    assert result.ruleset.sources == (str(b), str(a), str(a))
    assert result.warnings == []


def test_yaml_anchors_and_merge_keys_work(tmp_path: Path) -> None:
    """Anchors and ``<<`` merges resolve as in PyYAML, without false duplicate-key errors."""
    text = """
    rules:
      - name: base
        match: ['alertname = "A"']
        actions:
          - &log {action: notify.log, params: {text: base}}
      - name: derived
        match: ['alertname = "B"']
        actions:
          - <<: *log
            params: {text: derived}
    """
    result = load(write(tmp_path / "r.yaml", text))
    assert [r.actions[0].params["text"] for r in result.ruleset.rules] == ["base", "derived"]


def test_a_ladder_loads_as_rungs(tmp_path: Path) -> None:
    """Rungs keep their order; else unset climbs on every rung but the last, which escalates."""
    text = (
        "rules:\n  - name: r\n    match: [a=b]\n    ladder:\n"
        "      - actions: [{action: notify.log, params: {text: one}}]\n"
        "        verify: {resolved_within: 5m}\n"
        "      - actions: [{action: notify.log, params: {text: two}}]\n"
        "        verify: {resolved_within: 10m, else: next}\n"
        "      - actions: [{action: notify.log, params: {text: three}}]\n"
        "        verify: {resolved_within: 15m}\n"
    )
    [rule] = load_rules([write(tmp_path / "r.yaml", text)], catalogue=FakeCatalogue()).ruleset.rules
    steps = rule.steps
    assert [s.actions[0].params["text"] for s in steps] == ["one", "two", "three"]
    assert [s.otherwise for s in steps] == ["next", "next", "escalate"]
    assert [s.last for s in steps] == [False, False, True]
    assert [a.params["text"] for a in rule.all_actions] == ["one", "two", "three"]


@pytest.mark.parametrize(("rule_approval", "rung_approval", "priority", "destructive", "expected"), [
    (None, None, "P3", True, [True, True]),
    (None, None, "P3", False, [False, False]),
    ("auto", None, "P3", True, [False, False]),
    ("auto", "required", "P3", False, [False, True]),
    ("required", "auto", "P3", True, [True, False]),
    ({"required_for": ["P1"]}, {"required_for": ["P3"]}, "P3", True, [False, True]),
])
def test_a_rungs_approval_overrides_the_rules(tmp_path: Path, rule_approval: Any, rung_approval: Any,
                                              priority: str, destructive: bool, expected: list[bool]) -> None:
    """Approval per rung: the second rung's own ``approval`` wins; unset, the rule's applies."""
    rungs: list[dict[str, Any]] = [
        {"actions": [{"action": "notify.log", "params": {"text": "one"}}],
         "verify": {"resolved_within": "5m"}},
        {"actions": [{"action": "notify.log", "params": {"text": "two"}}]},
    ]
    if rung_approval is not None:
        rungs[1]["approval"] = rung_approval
    rule: dict[str, Any] = {"name": "r", "match": ["a=b"], "ladder": rungs}
    if rule_approval is not None:
        rule["approval"] = rule_approval
    text = yaml.safe_dump({"rules": [rule]})
    [loaded] = load_rules([write(tmp_path / "r.yaml", text)], catalogue=FakeCatalogue()).ruleset.rules
    got = [loaded.approval_required(priority, destructive=destructive, rung=n) for n in (0, 1)]
    assert got == expected


SEV = PriorityPolicy(levels=["SEV-1", "SEV-2", "SEV-3", "SEV-4"])
P0_P3 = PriorityPolicy(levels=["P0", "P1", "P2", "P3"])
THREE = PriorityPolicy(levels=["P1", "P2", "P3"])

LEVELLED = """
{header}rules:
  - name: r
    match: [a=b]
    priority: {priority}
    approval: {{required_for: [{required}]}}
    ladder:
      - actions: [{{action: notify.log, params: {{text: x}}}}]
        verify: {{resolved_within: 5m}}
      - actions: [{{action: notify.log, params: {{text: y}}}}]
        approval: {{required_for: [{rung}]}}
"""


@pytest.mark.parametrize(("policy", "header", "written", "loaded"), [
    pytest.param(PriorityPolicy(), "", ("P1", "P2", "P3"), ("P1", "P2", "P3"), id="default-levels"),
    pytest.param(SEV, "", ("SEV-1", "SEV-2", "SEV-4"), ("SEV-1", "SEV-2", "SEV-4"), id="sev-levels"),
    pytest.param(SEV, "priority_levels: [P1, P2, P3, P4]\n", ("P1", "P2", "P4"), ("SEV-1", "SEV-2", "SEV-4"),
                 id="pack-on-sev-levels"),
    pytest.param(P0_P3, "priority_levels: [P1, P2, P3, P4]\n", ("P1", "P3", "P4"), ("P0", "P2", "P3"),
                 id="pack-on-p0-p3-by-rank-not-name"),
    pytest.param(THREE, "priority_levels: [P1, P2, P3, P4]\n", ("P4", "P3", "P1"), ("P3", "P3", "P1"),
                 id="pack-on-three-levels-last-takes-the-rest"),
    pytest.param(None, "", ("SEV-9", "anything", "P1"), ("SEV-9", "anything", "P1"),
                 id="no-config-names-unchecked"),
    pytest.param(None, "priority_levels: [P1, P2, P3, P4]\n", ("P1", "P2", "P3"), ("P1", "P2", "P3"),
                 id="no-config-written-levels-kept"),
])
def test_priority_levels_are_checked_and_mapped_by_rank(
        tmp_path: Path, policy: PriorityPolicy | None, header: str, written: tuple[str, str, str],
        loaded: tuple[str, str, str]) -> None:
    """A rule's levels are the service's; a file that declares ``priority_levels`` is mapped
    onto them by rank (the pack, written in P1–P4, loads for a team on SEV-1…4 or P0–P3)."""
    text = LEVELLED.format(header=header, priority=written[0], required=written[1], rung=written[2])
    [rule] = load(write(tmp_path / "r.yaml", text), priorities=policy).ruleset.rules
    assert rule.priority == loaded[0]
    assert rule.approval is not None
    assert not isinstance(rule.approval, str)
    assert rule.approval.required_for == [loaded[1]]
    rung = rule.ladder[1].approval
    assert rung is not None
    assert not isinstance(rung, str)
    assert rung.required_for == [loaded[2]]


@pytest.mark.parametrize(("policy", "header", "written", "problems"), [
    pytest.param(SEV, "", ("P1", "SEV-2", "SEV-2"),
                 [(4, "priority: unknown priority level 'P1' (the service config's priorities.levels: "
                      "SEV-1, SEV-2, SEV-3, SEV-4)")], id="default-name-on-sev-levels"),
    pytest.param(SEV, "", ("SEV-1", "SEV-5", "P2"),
                 [(5, "approval.required_for[0]: unknown priority level 'SEV-5'"),
                  (10, "ladder[1].approval.required_for[0]: unknown priority level 'P2'")], id="approvals"),
    pytest.param(SEV, "priority_levels: [P1, P2, P3, P4]\n", ("SEV-1", "P2", "P2"),
                 [(5, "priority: unknown priority level 'SEV-1' "
                      "(this file's priority_levels: P1, P2, P3, P4)")],
                 id="not-the-files-own-levels"),
    pytest.param(None, "priority_levels: [P1, P2, P3, P4]\n", ("P1", "P0", "P2"),
                 [(6, "approval.required_for[0]: unknown priority level 'P0' (this file's priority_levels")],
                 id="no-config-checked-against-the-files-levels"),
    pytest.param(None, "priority_levels: P1\n", ("P1", "P2", "P3"),
                 [(1, "priority_levels must be a list of 1 to 10 level names")], id="levels-not-a-list"),
    pytest.param(None, "priority_levels: [P1, P1]\n", ("P1", "P1", "P1"),
                 [(1, "priority_levels: a level is given twice")], id="levels-twice"),
    pytest.param(None, "", ("P 1", "P2", "P3"),
                 [(4, "priority: String should match pattern")], id="level-name-form"),
])
def test_unknown_priority_levels_are_errors_with_their_line(
        tmp_path: Path, policy: PriorityPolicy | None, header: str, written: tuple[str, str, str],
        problems: list[tuple[int, str]]) -> None:
    """A level name the service (or the file's own ``priority_levels``) does not have is a
    load error at its line, naming the levels there are."""
    text = LEVELLED.format(header=header, priority=f'"{written[0]}"', required=written[1], rung=written[2])
    with pytest.raises(RuleLoadError) as info:
        load(write(tmp_path / "r.yaml", text), priorities=policy)
    found = [(p.line, p.message) for p in info.value.problems if p.severity == "error"]
    assert len(found) == len(problems), found
    for (line, message), (want_line, want) in zip(found, problems, strict=True):
        assert line == want_line, message
        assert message.startswith(want), message
