"""Alertmanager matchers: parsing as pkg/labels/parse.go does, and matching as matcher.go."""

from __future__ import annotations

import pytest

from rules.errors import RuleError
from rules.matchers import MATCHER_PATTERN, MatchType, make_matcher, parse_matcher

EQ, NE, RE, NRE = MatchType.EQUAL, MatchType.NOT_EQUAL, MatchType.REGEX, MatchType.NOT_REGEX


@pytest.mark.parametrize(
    ("text", "name", "op", "value"),
    [
        pytest.param('alertname = "HighCPU"', "alertname", EQ, "HighCPU", id="quoted-spaced"),
        pytest.param("foo=bar", "foo", EQ, "bar", id="unquoted"),
        pytest.param('foo!="bar"', "foo", NE, "bar", id="not-equal"),
        pytest.param("foo=~bar.*", "foo", RE, "bar.*", id="regex-unquoted"),
        pytest.param('foo!~"bar.*"', "foo", NRE, "bar.*", id="not-regex"),
        pytest.param("tricky=~~~", "tricky", RE, "~~", id="longest-operator-wins"),
        pytest.param(r"trickier==\\=\=\"", "trickier", EQ, r'=\=\="', id="am-trickier"),
        pytest.param(r'q != "\""', "q", NE, '"', id="escaped-quote-in-quotes"),
        pytest.param("job=", "job", EQ, "", id="empty-unquoted"),
        pytest.param('job=""', "job", EQ, "", id="empty-quoted"),
        pytest.param(r"foo=bar\t", "foo", EQ, r"bar\t", id="spurious-escape-literal"),
        pytest.param(r"foo=bar\n", "foo", EQ, "bar\n", id="newline-escape"),
        pytest.param("foo=bar\\", "foo", EQ, "bar\\", id="trailing-backslash-literal"),
        pytest.param(r"foo=bar\\", "foo", EQ, "bar\\", id="escaped-backslash"),
        pytest.param(r"foo=bar\"", "foo", EQ, 'bar"', id="escaped-quote-unquoted"),
        pytest.param('foo="a, b"', "foo", EQ, "a, b", id="comma-inside"),
        pytest.param('ns:sub="x"', "ns:sub", EQ, "x", id="colon-in-name"),
        pytest.param('  env  =~  "prod|staging"  ', "env", RE, "prod|staging", id="whitespace"),
        pytest.param('foo="bar "', "foo", EQ, "bar ", id="space-kept-inside-quotes"),
        pytest.param("foo=two words", "foo", EQ, "two words", id="inner-space-unquoted"),
        pytest.param('foo="a\nb"', "foo", EQ, "a\nb", id="literal-newline-tolerated"),
        pytest.param("foo=bar\n", "foo", EQ, "bar", id="trailing-newline-dropped"),
        pytest.param('foo="café"', "foo", EQ, "café", id="utf8"),
    ],
)
def test_parse(text: str, name: str, op: MatchType, value: str) -> None:
    """A matcher parses to the same name, operator and value as Alertmanager's."""
    m = parse_matcher(text)
    assert (m.name, m.type, m.value) == (name, op, value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param('job="value', "closing double quote", id="unterminated"),
        pytest.param('job=value"', "unescaped double quote", id="stray-quote-end"),
        pytest.param('x = foo"bar', "unescaped double quote", id="stray-quote-inside"),
        pytest.param(r'trickier==\\=\=\""', "unescaped double quote", id="am-trickier-bad"),
        pytest.param('invalid-name = "x"', "bad matcher", id="dash-in-name"),
        pytest.param('1abc = "x"', "bad matcher", id="digit-first"),
        pytest.param('{foo="bar"}', "bad matcher", id="braces"),
        pytest.param('foo "bar"', "bad matcher", id="no-operator"),
        pytest.param("", "bad matcher", id="empty"),
        pytest.param('foo\v= "x"', "bad matcher", id="vertical-tab-not-re2-space"),
        pytest.param('foo=~"invalid[regexp"', "invalid regular expression", id="bad-regex"),
        pytest.param('x=~"(a)\\1"', "backreference", id="backreference"),
        pytest.param('x=~"(?P<n>a)(?P=n)"', "named backreference", id="named-backreference"),
        pytest.param('x=~"a(?=b)"', "look-ahead", id="lookahead"),
        pytest.param('x=~"(?<!a)b"', "look-behind", id="lookbehind"),
        pytest.param('x=~"(?>a)"', "atomic", id="atomic"),
        pytest.param('x=~"a++"', "possessive", id="possessive"),
        pytest.param('x=~"a{2}+"', "possessive", id="possessive-count"),
        pytest.param('x=~"a{,3}"', "{0,n}", id="open-low-repeat"),
        pytest.param('x=~"a{1001}"', "above 1000", id="repeat-too-large"),
        pytest.param('x=~"[[:alpha:]]"', "POSIX", id="posix-class"),
        pytest.param('x=~"a(?i)b"', "at the very start", id="flags-mid-pattern"),
        pytest.param('x=~"(?x)a b"', "flags i, m and s", id="verbose-flag"),
        pytest.param('x=~"(?U)a"', "flags i, m and s", id="ungreedy-flag"),
        pytest.param('x=~"a\\Z"', "Python-only", id="backslash-Z"),
    ],
)
def test_parse_rejects(text: str, message: str) -> None:
    """A malformed matcher, or a regex RE2 would read differently, is a RuleError saying why."""
    with pytest.raises(RuleError, match=message.replace("{", r"\{").replace("(", r"\(")):
        parse_matcher(text)


@pytest.mark.parametrize("value", [None, 3, ["a=b"], {"a": "b"}])
def test_parse_rejects_non_strings(value: object) -> None:
    """Only strings are matchers (YAML may hand over numbers, lists or mappings)."""
    with pytest.raises(RuleError, match="a matcher is a string"):
        parse_matcher(value)


@pytest.mark.parametrize(
    ("text", "value", "hit"),
    [
        pytest.param('a="x"', "x", True, id="eq-hit"),
        pytest.param('a="x"', "xy", False, id="eq-miss"),
        pytest.param('a=""', "", True, id="eq-empty-matches-missing"),
        pytest.param('a!="x"', "y", True, id="ne-hit"),
        pytest.param('a!="x"', "x", False, id="ne-miss"),
        pytest.param('a!="x"', "", True, id="ne-missing-label"),
        pytest.param('a!=""', "", False, id="ne-empty-needs-label"),
        pytest.param('a=~"prod|staging"', "staging", True, id="re-alternation"),
        pytest.param('a=~"prod|staging"', "preprod", False, id="re-anchored-start"),
        pytest.param('a=~"prod|staging"', "production", False, id="re-anchored-end"),
        pytest.param('a=~"web-.*"', "web-7d9f8c6b5-abcde", True, id="re-prefix"),
        pytest.param('a=~".*"', "", True, id="re-dotstar-matches-missing"),
        pytest.param('a=~".+"', "", False, id="re-dotplus-needs-label"),
        pytest.param('a=~"5.."', "503", True, id="re-status-class"),
        pytest.param('a=~"x"', "a\nx", False, id="re-no-multiline-sneak"),
        pytest.param('a=~"(?i)critical"', "CRITICAL", True, id="re-leading-flag"),
        pytest.param('a=~"(?i:crit)ical"', "CRITical", True, id="re-scoped-flag"),
        pytest.param('a=~"\\d+"', "123", True, id="re-digits"),
        pytest.param('a=~"\\d+"', "١٢٣", False, id="re-digits-ascii-only-as-re2"),
        pytest.param('a=~"\\w+"', "é", False, id="re-word-ascii-only-as-re2"),
        pytest.param('a=~"."', "é", True, id="re-dot-any-rune"),
        pytest.param('a!~"prod|staging"', "prod", False, id="nre-miss"),
        pytest.param('a!~"prod|staging"', "dev", True, id="nre-hit"),
        pytest.param('a!~"prod"', "", True, id="nre-missing-label"),
        pytest.param('a!~".*"', "", False, id="nre-dotstar-never"),
    ],
)
def test_matches(text: str, value: str, hit: bool) -> None:
    """Each operator matches a label value (``""`` for a missing label) as Alertmanager does."""
    assert parse_matcher(text).matches(value) is hit


@pytest.mark.parametrize(
    ("text", "guaranteed"),
    [
        pytest.param('a="x"', True, id="eq-value"),
        pytest.param('a=""', False, id="eq-empty"),
        pytest.param('a!=""', True, id="ne-empty"),
        pytest.param('a!="x"', False, id="ne-value"),
        pytest.param('a=~".+"', True, id="re-plus"),
        pytest.param('a=~".*"', False, id="re-star"),
        pytest.param('a=~"prod|"', False, id="re-optional"),
        pytest.param('a!~""', True, id="nre-empty"),
        pytest.param('a!~"x"', False, id="nre-value"),
    ],
)
def test_guarantees_label(text: str, guaranteed: bool) -> None:
    """A matcher guarantees its label exactly when it refuses the empty (missing) value."""
    assert parse_matcher(text).guarantees_label is guaranteed


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('a="x"', id="plain"),
        pytest.param('a=~"q\\"uote"', id="quote"),
        pytest.param('a!="back\\\\slash"', id="backslash"),
        pytest.param('a!~"line\\nbreak"', id="newline"),
    ],
)
def test_str_round_trips(text: str) -> None:
    """``str(matcher)`` prints Alertmanager's form, which parses back to an equal matcher."""
    m = parse_matcher(text)
    assert parse_matcher(str(m)) == m
    assert str(m) == text


def test_make_matcher_rejects_bad_label_name() -> None:
    """make_matcher checks the label name like the parser does."""
    with pytest.raises(RuleError, match="invalid label name"):
        make_matcher("bad-name", MatchType.EQUAL, "x")


def test_parse_passes_matchers_through() -> None:
    """An already parsed Matcher is returned as is (pydantic may validate twice)."""
    m = parse_matcher('a="b"')
    assert parse_matcher(m) is m


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        pytest.param('alertname = "HighCPU"', True, id="valid"),
        pytest.param('ns:sub="x"', True, id="colon"),
        pytest.param('bad-name="x"', False, id="dash"),
        pytest.param('"quoted"="x"', False, id="quoted-name"),
    ],
)
def test_schema_pattern_agrees(text: str, ok: bool) -> None:
    """MATCHER_PATTERN (for editors) accepts the names the parser accepts."""
    import re  # noqa: PLC0415

    assert (re.match(MATCHER_PATTERN, text) is not None) is ok
