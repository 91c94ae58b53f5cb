"""Alertmanager label matchers: ``name = "value"``, ``!=``, ``=~``, ``!~``.

Parsed once when rules load (``rules.model``), evaluated by ``rules.engine`` for every
alert. Syntax and semantics follow Alertmanager's classic matcher parser
(``pkg/labels/parse.go`` and ``matcher.go``, 0.25): a missing label reads as the empty
string; the value may be quoted or not, OpenMetrics escapes (``\\"`` ``\\\\`` ``\\n``) apply
in both, any other backslash is literal; regexes are fully anchored (``^(?:re)$``) and
compiled once.

Alertmanager compiles regexes with Go's RE2, remediator with Python's ``re``. To keep a
rule meaning the same in both, a regex is compiled with ``re.ASCII`` (RE2's ``\\d \\w \\s
\\b`` are ASCII-only) and constructs one engine has and the other lacks (look-around,
backreferences, possessive or atomic groups, POSIX classes, repeat counts over 1000) are
refused at load time.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from enum import StrEnum

from rules.errors import RuleError


class MatchType(StrEnum):
    """The four matcher operators, spelled as Alertmanager spells them."""

    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


# Go RE2's \s is exactly [\t\n\f\r ]; Python's would also take \v and Unicode spaces.
_WS = r"[\t\n\f\r ]"
_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL_NAME = re.compile(_NAME)
# Alertmanager's own expression: name, operator (=~ before =), value; \Z, not $, since
# Python's $ also matches before a trailing newline.
_MATCHER = re.compile(rf"{_WS}*({_NAME}){_WS}*(=~|=|!=|!~){_WS}*(.*?){_WS}*\Z", re.DOTALL)
MATCHER_PATTERN = rf"^{_WS}*{_NAME}{_WS}*(=~|!~|!=|=)"
"""A prefix every valid matcher has, as an ECMA-262 regex for the JSON Schema of rule files."""

_ESCAPES = {"n": "\n", '"': '"', "\\": "\\"}
_MAX_REPEAT = 1000  # RE2's limit on {n,m}


@dataclass(frozen=True, slots=True)
class Matcher:
    """One compiled matcher. ``matches(value)`` is a pure branch per operator."""

    name: str
    type: MatchType
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, value: str) -> bool:
        """Whether a label value (``""`` when the label is absent) satisfies the matcher."""
        if self.type is MatchType.EQUAL:
            return value == self.value
        if self.type is MatchType.NOT_EQUAL:
            return value != self.value
        assert self._regex is not None
        hit = self._regex.fullmatch(value) is not None
        return hit if self.type is MatchType.REGEX else not hit

    @property
    def guarantees_label(self) -> bool:
        """True when every alert this matcher admits carries the label, non-empty."""
        return not self.matches("")

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        return f'{self.name}{self.type.value}"{escaped}"'


def make_matcher(name: str, type_: MatchType, value: str) -> Matcher:
    """Build a matcher, compiling (and checking) a regex value."""
    if not _LABEL_NAME.fullmatch(name):
        raise RuleError(f"invalid label name {name!r} in matcher")
    regex = None
    if type_ in (MatchType.REGEX, MatchType.NOT_REGEX):
        regex = _compile(value)
    return Matcher(name, type_, value, regex)


def _compile(value: str) -> re.Pattern[str]:
    problem = _re2_problem(value)
    if problem:
        raise RuleError(f"regular expression {value!r}: {problem}")
    # Go applies a leading (?i) to the whole anchored group; Python wants it first.
    lead = _LEADING_FLAGS.match(value)
    flags, body = (lead.group(0), value[lead.end() :]) if lead else ("", value)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # e.g. "possible nested set": ambiguous, refuse
            return re.compile(f"{flags}(?:{body})", re.ASCII)
    except (re.error, ValueError, Warning) as exc:
        raise RuleError(f"invalid regular expression {value!r}: {exc}") from None


_GROUP_PROBLEMS = {
    "?=": "look-ahead",
    "?!": "negative look-ahead",
    "?<=": "look-behind",
    "?<!": "negative look-behind",
    "?P=": "a named backreference",
    "?(": "a conditional group",
    "?>": "an atomic group",
    "?#": "a comment group",
}
_FLAGS = re.compile(r"\?([a-zA-Z]*)(?:-([a-zA-Z]*))?([:)])")
_LEADING_FLAGS = re.compile(r"(?:\(\?[ims]+\))+")
_REPEAT = re.compile(r"\{(\d*)(?:(,)(\d*))?\}")


def _re2_problem(pattern: str) -> str | None:
    """Why ``pattern`` would not mean the same under Go RE2 as under Python ``re``, if so."""
    lead = _LEADING_FLAGS.match(pattern)
    i, n = (lead.end() if lead else 0), len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            nxt = pattern[i + 1 : i + 2]
            if nxt and nxt in "123456789":
                return f"backreference \\{nxt} is not supported by Alertmanager (RE2)"
            if nxt == "Z":
                return "\\Z is Python-only; the regex is anchored anyway"
            i += 2
            continue
        if ch == "[":
            i = _skip_class(pattern, i)
            if i < 0:
                return "POSIX classes like [[:alpha:]] read differently in Python; use [a-zA-Z]"
            continue
        if ch == "(" and pattern.startswith("?", i + 1):
            for prefix, what in _GROUP_PROBLEMS.items():
                if pattern.startswith(prefix, i + 1):
                    return f"{what} ({prefix}...) is not supported by Alertmanager (RE2)"
            flags = _FLAGS.match(pattern, i + 1)
            if flags:
                if set((flags.group(1) or "") + (flags.group(2) or "")) - set("ims"):
                    return "only the flags i, m and s mean the same in Alertmanager (RE2)"
                if flags.group(3) == ")":
                    return "put inline flags like (?i) at the very start, or scope them: (?i:...)"
        quantifier = ch in "*+?" and not (ch == "?" and pattern[i - 1 : i] == "(")
        if ch == "{" and (rep := _REPEAT.match(pattern, i)):
            low, comma, high = rep.groups()
            if not low and comma:
                return "{,n} is a repeat in Python but literal text in RE2; write {0,n}"
            if any(int(g) > _MAX_REPEAT for g in (low, high) if g):
                return f"repeat counts above {_MAX_REPEAT} are refused by Alertmanager (RE2)"
            if low:
                i, quantifier = rep.end() - 1, True
        if quantifier and pattern.startswith("+", i + 1):
            return "possessive quantifiers (*+ ++ ?+) are not supported by Alertmanager (RE2)"
        i += 1
    return None


def _skip_class(pattern: str, start: int) -> int:
    """Index just past the character class opening at ``start``; -1 for a POSIX class."""
    i = start + 1
    if pattern.startswith("^", i):
        i += 1
    if pattern.startswith("]", i):
        i += 1
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "[" and pattern.startswith(":", i + 1):
            return -1
        if ch == "]":
            return i + 1
        i += 1
    return i  # unterminated: re.compile reports it


def _unescape(raw: str, text: str) -> str:
    """Alertmanager's unquoting: one optional pair of quotes, tolerant escapes."""
    quoted = raw.startswith('"')
    body = raw[1:] if quoted else raw
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))  # a spurious escape stays literal
            i += 2
            continue
        if ch == '"':
            if not quoted or i != len(body) - 1:
                raise RuleError(f"matcher value contains an unescaped double quote: {text!r}")
            quoted = False  # the closing quote
        else:
            out.append(ch)
        i += 1
    if quoted:
        raise RuleError(f"matcher value lacks its closing double quote: {text!r}")
    return "".join(out)


def parse_matcher(text: object) -> Matcher:
    """Parse ``alertname = "HighCPU"`` exactly as Alertmanager's classic parser does.

    Quotes around the value are optional; inside it ``\\"``, ``\\\\`` and ``\\n`` are
    escapes and any other backslash is literal. Whitespace around each token is dropped.
    """
    if isinstance(text, Matcher):
        return text
    if not isinstance(text, str):
        raise RuleError(f'a matcher is a string like \'alertname = "HighCPU"\', not {text!r}')
    m = _MATCHER.match(text)
    if m is None:
        raise RuleError(
            f'bad matcher {text!r}: expected NAME OP "VALUE" with OP one of = != =~ !~'
            " and NAME a label name like [a-zA-Z_][a-zA-Z0-9_]*"
        )
    name, op, raw = m.groups()
    return make_matcher(name, MatchType(op), _unescape(raw, text))
