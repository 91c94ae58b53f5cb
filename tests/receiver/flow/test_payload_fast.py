"""The fast way through a webhook body answers exactly as the reference way (pydantic) does.

``receiver.flow.payload.parse_webhook`` takes a body that passes every rule on
``receiver.flow.payload_fast``'s short path; ``receiver.flow.payload.reference_parse``
takes every body through pydantic. For a table of bodies (the captured ones in several
spellings, the benchmark's, every field given every kind of value, keys given twice,
the hostile bodies of ``tests.receiver.http.test_bad_input``) and for mutants of the
captured bodies drawn with a fixed seed, both give equal results (every field of the
message and of its alert models, with their set fields, and of the ``Alert`` objects) or
equal errors (message, JSON path, kind). The valid bodies of the table take the short
path (so the comparison is not empty), and the counts it makes for the duplicate-key
check are exactly those of ``receiver.flow.jsonkeys.strings_and_quotes``.
"""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from datetime import datetime
from typing import Any

import pydantic_core
import pytest
from pydantic import BaseModel

from bench.payloads import fixture_bodies, render, request_id, templates
from receiver.flow import payload_fast
from receiver.flow.jsonkeys import no_key_twice, strings_and_quotes
from receiver.flow.payload import PayloadError, parse_webhook, reference_parse
from receiver.flow.payload_schema import LABEL_NAME, AlertPayload, WebhookMessage
from tests.receiver.http.test_bad_input import CASES as BAD_INPUT
from tests.support.mutants import NAMES, VALUES, Obj, Style, mutate, read, style, write
from tests.support.paths import ALERTMANAGER

Parse = Callable[[bytes], tuple[WebhookMessage, list[Any]]]
CAPTURED = {p.name.removesuffix(".body.json"): p.read_bytes()
            for p in sorted(ALERTMANAGER.glob("*.body.json"))}
BASE = CAPTURED["08_firing_group_with_one_resolved_alert"]  # one firing and one resolved alert
GO = Style()  # compact, as Alertmanager writes


def snapshot(value: Any) -> Any:
    """Everything about ``value`` that a reader could tell apart, as plain comparable data."""
    if isinstance(value, BaseModel):
        return (type(value).__name__, sorted(value.model_fields_set), value.__pydantic_extra__,
                value.__pydantic_private__, [(k, snapshot(v)) for k, v in value.__dict__.items()])
    if is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, [(f.name, snapshot(getattr(value, f.name))) for f in fields(value)])
    if isinstance(value, datetime):
        return ("datetime", value.isoformat(), type(value.tzinfo), value.utcoffset(), value.fold)
    if isinstance(value, dict):
        return (type(value).__name__, [(snapshot(k), snapshot(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [snapshot(v) for v in value])
    return (type(value).__name__, value)


def outcome(parse: Parse, body: bytes) -> tuple[Any, ...]:
    """What ``parse`` makes of ``body``: the error, or the result and which parts it shares."""
    try:
        message, alerts = parse(body)
    except PayloadError as exc:
        return ("error", exc.kind, exc.path, exc.message)
    shared = [(a.labels is m.labels, a.annotations is m.annotations)
              for a, m in zip(alerts, message.alerts, strict=True)]
    return ("ok", snapshot(message), snapshot(alerts), shared)


def fast(body: bytes) -> tuple[WebhookMessage, list[Any]] | None:
    """What the short path alone makes of ``body`` (None: it leaves the body to the reference)."""
    try:
        data = pydantic_core.from_json(body, allow_inf_nan=False)
    except ValueError:
        return None
    if type(data) is not dict:
        return None
    found = payload_fast.checked(data)
    if found is not None:  # its counts are the exact ones, else a key given twice could hide
        assert found[2:] == strings_and_quotes(data)
    return payload_fast.accept(data, body)


def assert_same(body: bytes) -> tuple[Any, ...]:
    """Both ways give the same answer for ``body``, and the short path never accepts an error."""
    reference = outcome(reference_parse, body)
    assert outcome(parse_webhook, body) == reference
    assert fast(body) is None or reference[0] == "ok"
    return reference


def edit(change: Callable[[Any], object], base: bytes = BASE, how: Style = GO) -> bytes:
    """``base`` read as pairs, changed in place by ``change``, written in ``how``."""
    body = read(base)
    change(body)
    return write(body, how, random.Random(0)).encode()


def put(obj: Obj, key: str, value: Any) -> Obj:
    """Set ``key`` of ``obj`` (replace its first pair, or add one at the end)."""
    for i, (k, _) in enumerate(obj):
        if k == key:
            obj[i] = (key, value)
            return obj
    obj.append((key, value))
    return obj


def drop(obj: Obj, key: str) -> Obj:
    obj[:] = [(k, v) for k, v in obj if k != key]
    return obj


def alert0(body: Any) -> Obj:
    first: Obj = dict(body)["alerts"][0]
    return first


def setting(where: Callable[[Any], Obj], key: str, value: Any) -> Callable[[Any], Obj]:
    """A change setting ``key`` to ``value`` in the object ``where`` picks."""
    return lambda body: put(where(body), key, value)


def twice(where: Callable[[Any], Obj], key: str, value: Any = "again") -> Callable[[Any], None]:
    """A change giving ``key`` a second time (first, with ``value``) in the object ``where`` picks."""
    return lambda body: where(body).insert(0, (key, value))


def bench_bodies() -> list[bytes]:
    now = datetime.fromisoformat("2026-12-06T06:00:00+00:00")
    made = templates(fixture_bodies(), alerts_per_request=10, rule_count=10, count=4, now=now)
    return [render(t, request_id(1, i)).encode() for i, t in enumerate(made)]


VALID = [
    *[pytest.param(raw, id=f"captured-{name}") for name, raw in CAPTURED.items()],
    *[pytest.param(edit(lambda b: None, raw), id=f"compact-{name}") for name, raw in CAPTURED.items()],
    *[pytest.param(raw, id=f"bench-{i}") for i, raw in enumerate(bench_bodies())],
    pytest.param(BASE.replace(b"&", b"\\u0026").replace(b"<", b"\\u003c"), id="go-html-escapes"),
    pytest.param(edit(lambda b: None, how=Style(ascii_only=True, escape_rate=0.2)), id="escaped-everywhere"),
    pytest.param(edit(lambda b: None, how=Style(item=", ", colon=" : ", indent="\t")), id="tabs-and-spaces"),
    pytest.param(edit(lambda b: put(b, "groupKey", '{}/{a="b\\\\"}:{alertname="X \\"y\\""}')),
                 id="groupKey-quotes-and-backslashes"),
    pytest.param(edit(lambda b: put(dict(alert0(b))["labels"], "summary", 'say "hi" \U0001f600\u2028')),
                 id="label-value-quotes-and-astral"),
    pytest.param(edit(lambda b: put(b, "x_future", Obj([("a", [Obj([("b", 'c"d')])]), ('k"', None)]))),
                 id="extra-field-nested-with-quotes"),
    pytest.param(edit(lambda b: put(alert0(b), "silencedBy", ["1", '"2"'])), id="extra-alert-field"),
    pytest.param(edit(lambda b: put(b, "status", None)), id="status-null"),
    pytest.param(edit(lambda b: drop(b, "status")), id="status-absent"),
    pytest.param(edit(lambda b: [drop(b, k) for k in payload_fast.MESSAGE_FIELDS - {"version", "alerts"}]),
                 id="only-required-fields"),
    pytest.param(edit(lambda b: [drop(alert0(b), k) for k in ("annotations", "endsAt", "generatorURL")]),
                 id="alert-only-required-fields"),
    pytest.param(edit(lambda b: put(alert0(b), "endsAt", None)), id="endsAt-null"),
    pytest.param(edit(lambda b: put(alert0(b), "startsAt", "2026-11-23t06:42:28.123456789+14:00")),
                 id="startsAt-lower-case-nanoseconds-offset"),
    pytest.param(edit(lambda b: put(alert0(b), "endsAt", "0001-01-01T00:00:00+00:00")),
                 id="endsAt-zero-offset"),
    pytest.param(edit(lambda b: put(alert0(b), "fingerprint", "aB" * 32)), id="fingerprint-64-mixed-case"),
    pytest.param(edit(lambda b: put(dict(alert0(b))["labels"], "_" + "a" * 1023, "")), id="label-name-1024"),
    pytest.param(edit(lambda b: put(b, "truncatedAlerts", 2**63 - 1)), id="truncatedAlerts-big"),
    pytest.param(edit(lambda b: put(b, "groupKey", 'a"b'), how=Style(escape_rate=1.0)), id="quote-as-u0022"),
]
LEFT_TO_THE_REFERENCE = [  # valid, but not the short path's
    pytest.param(edit(lambda b: put(b, "truncatedAlerts", 2**70)), id="truncatedAlerts-huge"),
    pytest.param(edit(lambda b: put(b, "truncatedAlerts", 4.0)), id="truncatedAlerts-whole-float"),
]

TWICE = [
    pytest.param(twice(lambda b: b, "status"), id="top-status"),
    pytest.param(twice(lambda b: b, "version", "4"), id="top-version-same-value"),
    pytest.param(twice(lambda b: b, "alerts", []), id="top-alerts"),
    pytest.param(twice(alert0, "status", "resolved"), id="alert-status"),
    pytest.param(twice(alert0, "fingerprint", "00"), id="alert-fingerprint"),
    pytest.param(twice(lambda b: dict(alert0(b))["labels"], "severity", "info"), id="label"),
    pytest.param(twice(lambda b: dict(alert0(b))["annotations"], "summary"), id="annotation"),
    pytest.param(twice(lambda b: dict(b)["groupLabels"], "namespace"), id="group-label"),
    pytest.param(lambda b: put(b, "x", Obj([("k", 'a"b'), ("k", "")])), id="in-extra-field-with-quotes"),
    pytest.param(lambda b: put(b, "x", [Obj([("k", None), ("k", None)])]), id="in-array-in-extra-field"),
]


@pytest.mark.parametrize("body", VALID)
def test_a_valid_body_takes_the_short_path_to_the_reference_result(body: bytes) -> None:
    """Every valid body of the table: the reference accepts it, the short path too, with equal results."""
    assert assert_same(body)[0] == "ok"
    assert fast(body) is not None


@pytest.mark.parametrize("body", LEFT_TO_THE_REFERENCE)
def test_a_valid_body_the_short_path_leaves_gets_the_reference_result(body: bytes) -> None:
    """A count written as a float, or beyond 63 bits: accepted, the reference way."""
    assert assert_same(body)[0] == "ok"
    assert fast(body) is None


@pytest.mark.parametrize("change", TWICE)
@pytest.mark.parametrize("how", [GO, Style(escape_rate=0.5), Style(item=", ", colon=": ", indent="  ")],
                         ids=["compact", "escaped", "indented"])
def test_a_key_given_twice_is_refused_by_both_ways(change: Callable[[Any], object], how: Style) -> None:
    """A key given twice, anywhere and however spelled, is the reference's error; no count says otherwise."""
    body = edit(change, how=how)
    answer, kind, path, message = assert_same(body)
    assert (answer, kind, message.startswith("duplicate key")) == ("error", "invalid_payload", True), path
    data = pydantic_core.from_json(body)
    assert not no_key_twice(body, data, *strings_and_quotes(data))


def test_a_key_given_twice_is_not_hidden_by_quotes_spelled_without_quote_bytes() -> None:
    """``truncatedAlerts`` twice loses one string; two quotes spelled ``\\u0022`` would make up for
    it in the quote count (2 more in the strings, none in the bytes): the pairs decide then."""
    body = edit(lambda b: (put(b, "groupKey", "@@"), b.insert(0, ("truncatedAlerts", 0))))
    body = body.replace(b"@@", b"\\u0022\\u0022")
    data = pydantic_core.from_json(body)
    strings, quotes = strings_and_quotes(data)
    assert body.count(b'"') - quotes == 2 * strings  # the quote count alone would be fooled
    assert assert_same(body)[3] == "duplicate key 'truncatedAlerts' in one object"
    assert not no_key_twice(body, data, strings, quotes)


FIELDS = [*(("top", k) for k in payload_fast.MESSAGE_FIELDS),
          *(("alert", k) for k in payload_fast.ALERT_FIELDS),
          ("label", "severity"), ("annotation", "summary"), ("group-label", "alertname")]


@pytest.mark.parametrize(("where", "key"), sorted(FIELDS))
def test_every_field_given_every_kind_of_value(where: str, key: str) -> None:
    """Each field set to each value of a pool (types, limits, odd strings, timestamps), and dropped."""
    target: dict[str, Callable[[Any], Obj]] = {
        "top": lambda b: b, "alert": alert0, "label": lambda b: dict(alert0(b))["labels"],
        "annotation": lambda b: dict(alert0(b))["annotations"],
        "group-label": lambda b: dict(b)["groupLabels"]}
    for value in VALUES:
        assert_same(edit(setting(target[where], key, value)))
    assert_same(edit(lambda b: drop(target[where](b), key)))
    for name in NAMES:  # and as the name of a label or an extra field
        assert_same(edit(setting(target[where], name, "v")))


@pytest.mark.parametrize("case", [p for p in BAD_INPUT if getattr(p.values[0], "status", None) == 400])
def test_the_hostile_bodies_get_the_reference_error(case: Any) -> None:
    """The bodies of the bad-input table that reach the decoder: the same answer both ways."""
    assert_same(case.body)


def test_mutants_of_the_captured_bodies_get_the_same_answer_both_ways() -> None:
    """2,000 mutants (fixed seed): keys dropped, given twice, renamed, values of every type, odd
    strings, written in every spelling; both ways agree, and the short path, errors and keys
    given twice are each common among them."""
    rng = random.Random(19)
    seeds = [read(raw) for raw in CAPTURED.values()]
    answers = {"short": 0, "ok": 0, "error": 0, "duplicate": 0}
    for _ in range(2000):
        body = write(mutate(copy.deepcopy(rng.choice(seeds)), rng),
                     style(rng), rng).encode()
        reference = assert_same(body)
        answers["short" if fast(body) else reference[0]] += 1
        answers["duplicate"] += reference[0] == "error" and reference[3].startswith("duplicate key")
    assert answers["short"] >= 500, answers
    assert answers["error"] >= 500, answers
    assert answers["duplicate"] >= 200, answers


def test_the_short_path_checks_exactly_the_models_fields() -> None:
    """The fields it knows are the models' (a new field must be taught to it), and nothing in
    the models makes ``model_validate`` leave more than it builds (no aliases, extras, private
    state or post-init)."""
    assert set(WebhookMessage.model_fields) == payload_fast.MESSAGE_FIELDS
    assert set(AlertPayload.model_fields) == payload_fast.ALERT_FIELDS
    for model in (WebhookMessage, AlertPayload):
        assert model.model_config.get("extra") == "ignore"
        assert not model.__private_attributes__
        assert not model.__pydantic_post_init__
        assert all(f.alias is None and f.validation_alias is None for f in model.model_fields.values())


def test_a_label_name_is_valid_exactly_when_the_pattern_says() -> None:
    """Every one- and two-character name over ASCII and some non-ASCII look-alikes."""
    pattern = re.compile(LABEL_NAME.removeprefix("^").removesuffix("$"))
    alphabet = [chr(c) for c in range(128)] + ["\u00e9", "\u212a", "\u017f", "\u0661", "\uff21"]
    for first in alphabet:
        for name in (first, *(first + second for second in alphabet)):
            assert payload_fast._names_valid({name: ""}) is bool(pattern.fullmatch(name)), repr(name)
