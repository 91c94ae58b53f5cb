"""Alertmanager label matchers: ``name = "value"``, ``!=``, ``=~``, ``!~``.

Parsed once when rules load (``rules.model``), evaluated by ``rules.engine`` for every
alert. Semantics follow Alertmanager's ``pkg/labels``: a missing label reads as the empty
string, regexes are fully anchored (``^(?:re)$``) and compiled once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from rules.errors import RuleError


class MatchType(StrEnum):
    """The four matcher operators, spelled as Alertmanager spells them."""

    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# name, operator, rest; the longest operator wins (=~ before =).
_MATCHER = re.compile(r"^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$", re.DOTALL)
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


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
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.type.value}"{escaped}"'


def make_matcher(name: str, type_: MatchType, value: str) -> Matcher:
    """Build a matcher, compiling (and checking) a regex value."""
    if not _LABEL_NAME.match(name):
        raise RuleError(f"invalid label name {name!r} in matcher")
    regex = None
    if type_ in (MatchType.REGEX, MatchType.NOT_REGEX):
        try:
            regex = re.compile(f"(?:{value})")
        except re.error as exc:
            raise RuleError(f"invalid regular expression {value!r}: {exc}") from None
    return Matcher(name, type_, value, regex)


def _unquote(raw: str, text: str) -> str:
    if not raw.startswith('"'):
        if '"' in raw:
            raise RuleError(f"unbalanced quotes in matcher {text!r}")
        return raw
    if len(raw) < 2 or not raw.endswith('"'):
        raise RuleError(f"unterminated quoted value in matcher {text!r}")
    out: list[str] = []
    chars = iter(raw[1:-1])
    for ch in chars:
        if ch == '"':
            raise RuleError(f"unescaped quote inside the value of matcher {text!r}")
        if ch == "\\":
            nxt = next(chars, None)
            if nxt is None or nxt not in _ESCAPES:
                raise RuleError(f"invalid escape sequence in matcher {text!r}")
            out.append(_ESCAPES[nxt])
        else:
            out.append(ch)
    return "".join(out)


def parse_matcher(text: object) -> Matcher:
    """Parse ``alertname = "HighCPU"`` (quotes optional, escapes ``\\"`` ``\\\\`` ``\\n``)."""
    if isinstance(text, Matcher):
        return text
    if not isinstance(text, str):
        raise RuleError(f'a matcher is a string like \'alertname = "HighCPU"\', not {text!r}')
    m = _MATCHER.match(text)
    if m is None:
        raise RuleError(
            f"bad matcher {text!r}: expected NAME OP \"VALUE\" with OP one of = != =~ !~"
        )
    name, op, raw = m.groups()
    return make_matcher(name, MatchType(op), _unquote(raw, text))
