"""receiver.flow.parsed: a step's parsed rendering is kept per spec object and rendering."""

from __future__ import annotations

import math
from typing import Any

import pytest

from receiver.flow.parsed import Parsed, ParsedMemo
from rules.model import ActionSpec


def spec() -> ActionSpec:
    return ActionSpec(action="notify.log", params={"text": "on {{ labels.namespace }}"})


def parsed(text: str) -> Parsed:
    return Parsed(params=text, raw={"text": text})


def test_an_equal_rendering_of_the_same_spec_is_found() -> None:
    memo, s = ParsedMemo(), spec()
    found, key = memo.get(s, {"text": "on prod"})
    assert found is None
    assert key is not None
    kept = parsed("on prod")
    memo.keep(s, key, kept)
    assert memo.get(s, {"text": "on prod"})[0] is kept
    assert memo.get(s, {"text": "on dev"})[0] is None


def test_a_reloaded_spec_finds_nothing_of_the_old_one() -> None:
    """A reload makes new spec objects, equal or not: nothing made from the old one is used."""
    memo, old = ParsedMemo(), spec()
    memo.keep(old, memo.get(old, {"text": "on prod"})[1] or "", parsed("on prod"))
    assert memo.get(spec(), {"text": "on prod"})[0] is None


@pytest.mark.parametrize(("one", "other"), [
    ({"n": 1}, {"n": 1.0}),
    ({"n": 1}, {"n": True}),
    ({"n": None}, {"n": "null"}),
    ({"n": ["a"]}, {"n": "a"}),
])
def test_renderings_that_parse_differently_have_different_keys(one: dict[str, Any],
                                                               other: dict[str, Any]) -> None:
    memo, s = ParsedMemo(), spec()
    assert memo.get(s, one)[1] != memo.get(s, other)[1]


@pytest.mark.parametrize("rendered", [{"n": math.nan}, {1: "a"}, {"n": object()}])
def test_a_rendering_json_cannot_say_exactly_is_parsed_every_time(rendered: dict[Any, Any]) -> None:
    """NaN would read as null, a non-string key as a string: no key, never found."""
    memo = ParsedMemo()
    assert memo.get(spec(), rendered) == (None, None)


def test_the_memo_starts_again_past_its_limit() -> None:
    memo, s = ParsedMemo(limit=2), spec()
    for text in ("a", "b", "c"):
        memo.keep(s, memo.get(s, {"text": text})[1] or "", parsed(text))
    assert [memo.get(s, {"text": t})[0] is not None for t in ("a", "b", "c")] == [False, False, True]
