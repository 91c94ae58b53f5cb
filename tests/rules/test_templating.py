"""The tiny templating of params: references only, never empty, checked when rules load."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from rules.alert import Alert
from rules.errors import RuleError, TemplateError
from rules.templating import (
    Ref,
    Template,
    compile_template,
    compile_value,
    is_templated,
    render_value,
    value_refs,
)

ALERT = Alert(
    fingerprint="a1b2c3d4e5f60718",
    status="firing",
    labels={"alertname": "HighCPU", "namespace": "prod", "deployment": "web", "empty": "",
            "name": "/superset-web", "plain": "superset-web", "slash": "/", "path": "/ns/pod"},
    annotations={"summary": "CPU high"},
    starts_at=datetime(2026, 11, 23, 6, 42, 28, 909000, tzinfo=UTC),
    starts_at_raw="2026-11-23T06:42:28.909Z",
)


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        pytest.param("{{ labels.namespace }}", "prod", id="label"),
        pytest.param("{{labels.namespace}}", "prod", id="no-spaces"),
        pytest.param("{{ labels.namespace }}/{{ labels.deployment }}", "prod/web", id="two"),
        pytest.param("scale {{ labels.deployment }} up", "scale web up", id="inline"),
        pytest.param("{{ annotations.summary }}", "CPU high", id="annotation"),
        pytest.param("{{ alert.fingerprint }}", "a1b2c3d4e5f60718", id="fingerprint"),
        pytest.param("{{ alert.startsAt }}", "2026-11-23T06:42:28.909Z", id="startsAt-raw"),
        pytest.param("{{ alert.status }}", "firing", id="status"),
        pytest.param('{{ labels.name | trimprefix "/" }}', "superset-web", id="trimprefix-docker-sd-name"),
        pytest.param('{{ labels.plain | trimprefix "/" }}', "superset-web", id="trimprefix-cadvisor-name"),
        pytest.param('{{labels.name|trimprefix "/"}}', "superset-web", id="trimprefix-no-spaces"),
        pytest.param('{{ labels.path | trimprefix "/" }}', "ns/pod", id="trimprefix-once"),
        pytest.param('{{ labels.plain | trimprefix "superset-" }}', "web", id="trimprefix-word"),
        pytest.param('{{ labels.plain | trimprefix "web" }}', "superset-web", id="trimprefix-only-the-start"),
        pytest.param('c={{ labels.name | trimprefix "/" }}/x', "c=superset-web/x", id="trimprefix-inline"),
        pytest.param('{{ alert.status | trimprefix "fir" }}', "ing", id="trimprefix-alert-field"),
    ],
)
def test_render(text: str, rendered: str) -> None:
    """A reference renders to the alert's value, byte for byte."""
    template = compile_template(text)
    assert isinstance(template, Template)
    assert template.render(ALERT) == rendered


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("plain text", id="plain"),
        pytest.param("", id="empty"),
        pytest.param("{ single braces }", id="single-braces"),
        pytest.param("{% if x %}", id="jinja-statement-is-literal"),
    ],
)
def test_plain_text_is_unchanged(text: str) -> None:
    """Text without ``{{`` stays a plain str, costing nothing per alert."""
    assert compile_template(text) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("{{ labels.pod }}", "no label 'pod'", id="missing-label"),
        pytest.param("{{ labels.empty }}", "no label 'empty'", id="empty-label"),
        pytest.param("{{ annotations.runbook_url }}", "no annotation", id="missing-annotation"),
        pytest.param('{{ labels.slash | trimprefix "/" }}', "renders empty: the value is '/'",
                     id="trimmed-to-nothing"),
        pytest.param('{{ labels.empty | trimprefix "/" }}', "no label 'empty'", id="trimprefix-of-empty"),
    ],
)
def test_missing_reference_fails(text: str, message: str) -> None:
    """A reference the alert cannot fill raises TemplateError: it never renders empty."""
    template = compile_template(text)
    assert isinstance(template, Template)
    with pytest.raises(TemplateError, match=message):
        template.render(ALERT)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("{{ foo }}", "bad template", id="unknown-root"),
        pytest.param("{{ env.HOME }}", "bad template", id="env-root"),
        pytest.param("{{ alert.labels }}", "bad template", id="unknown-alert-field"),
        pytest.param("{{ labels.namespace | upper }}", "bad template", id="filter"),
        pytest.param("{{ labels.a + labels.b }}", "bad template", id="expression"),
        pytest.param("{{ labels['a'] }}", "bad template", id="subscript"),
        pytest.param("{{ labels.a-b }}", "bad template", id="bad-label-name"),
        pytest.param("{{ labels.namespace", "unbalanced", id="unclosed"),
        pytest.param("labels.namespace }}", "unbalanced", id="unopened"),
        pytest.param("{{}}", "bad template", id="empty-tag"),
        pytest.param('{{ labels.a | trimprefix / }}', "bad template", id="trimprefix-unquoted"),
        pytest.param('{{ labels.a | trimprefix "" }}', "bad template", id="trimprefix-empty"),
        pytest.param('{{ labels.a | trimprefix "/" | trimprefix "x" }}', "bad template", id="two-filters"),
        pytest.param('{{ labels.a | trimsuffix "/" }}', "bad template", id="other-filter"),
        pytest.param("{{ labels.a | trimprefix '/' }}", "bad template", id="single-quotes"),
        pytest.param('{{ labels.a | trimprefix "\\" }}', "bad template", id="backslash"),
    ],
)
def test_compile_rejects(text: str, message: str) -> None:
    """Anything but a bare reference is a load-time RuleError: no filters, no expressions."""
    with pytest.raises(RuleError, match=message):
        compile_template(text)


def test_compile_value_walks_nested_params() -> None:
    """Strings inside dicts and lists are compiled; other values pass through."""
    raw: dict[str, Any] = {
        "n": 5,
        "headers": {"X-Ns": "{{ labels.namespace }}"},
        "items": ["a", "{{ labels.deployment }}"],
        "flag": True,
    }
    compiled = compile_value(raw)
    assert render_value(compiled, ALERT) == {
        "n": 5,
        "headers": {"X-Ns": "prod"},
        "items": ["a", "web"],
        "flag": True,
    }
    assert value_refs(compiled) == [Ref("labels", "namespace"), Ref("labels", "deployment")]
    assert is_templated(compiled)
    assert not is_templated(compile_value({"text": "static"}))


def test_trimprefix_keeps_the_label_guarantee() -> None:
    """A filtered reference still names its label, so the loader's guarantee check holds."""
    template = compile_template('{{ labels.name | trimprefix "/" }}')
    assert isinstance(template, Template)
    assert template.refs == (Ref("labels", "name", "/"),)
    assert str(template.refs[0]) == 'labels.name | trimprefix "/"'


def test_refs_are_listed_in_order() -> None:
    """Template.refs lists every reference in order, for the load-time guarantee check."""
    template = compile_template("{{ alert.fingerprint }} {{ labels.a }} {{ annotations.b }}")
    assert isinstance(template, Template)
    assert [str(r) for r in template.refs] == ["alert.fingerprint", "labels.a", "annotations.b"]
