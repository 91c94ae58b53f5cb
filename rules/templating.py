"""The tiny templating of rule parameters: ``{{ labels.X }}`` and nothing more.

A value may reference ``labels.NAME``, ``annotations.NAME``, ``alert.fingerprint``,
``alert.startsAt`` and ``alert.status``; no expressions or code, and one filter:
``| trimprefix "TEXT"`` drops TEXT from the start of the value when it is there (Docker
names reach Prometheus with their leading slash, ``/superset-web``, through
``docker_sd_configs``; ``{{ labels.name | trimprefix "/" }}`` is the name either way). Templates are
compiled when rules load (``rules.model``), so a syntax error is a load error, and
rendered per decision by ``receiver`` workers; a reference the alert cannot satisfy
raises :class:`TemplateError` (the decision fails, audited) and never renders empty.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rules.alert import Alert
from rules.errors import RuleError, TemplateError

_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_REF = re.compile(
    r"^\s*(?:(labels|annotations)\.([a-zA-Z_][a-zA-Z0-9_]*)|alert\.(fingerprint|startsAt|status))"
    r'(?:\s*\|\s*trimprefix\s+"([^"\\{}]{1,64})")?\s*$'
)


@dataclass(frozen=True, slots=True)
class Ref:
    """One reference: ``scope`` is labels, annotations or alert."""

    scope: str
    key: str
    trim: str = ""
    """``trimprefix``'s text: dropped from the start of the value when it is there."""

    def __str__(self) -> str:
        return f"{self.scope}.{self.key}" + (f' | trimprefix "{self.trim}"' if self.trim else "")


@dataclass(frozen=True, slots=True)
class Template:
    """A compiled string: literal text and references, alternating."""

    parts: tuple[str | Ref, ...]

    def render(self, alert: Alert) -> str:
        """The string with every reference filled from ``alert``."""
        return "".join([p if isinstance(p, str) else _lookup(p, alert) for p in self.parts])

    def pieces(self, alert: Alert) -> list[tuple[str, Ref | None]]:
        """The rendered parts in order, each with the reference it came from (None: literal
        text): for actions that check where a label's value lands (``http.request``'s path)."""
        return [(p, None) if isinstance(p, str) else (_lookup(p, alert), p) for p in self.parts]

    @property
    def refs(self) -> tuple[Ref, ...]:
        return tuple(p for p in self.parts if isinstance(p, Ref))


def _lookup(ref: Ref, alert: Alert) -> str:
    value = _value(ref, alert)
    if not ref.trim:
        return value
    trimmed = value.removeprefix(ref.trim)
    if not trimmed:
        raise TemplateError(f"{{{{ {ref} }}}} renders empty: the value is {value!r}")
    return trimmed


def _value(ref: Ref, alert: Alert) -> str:
    if ref.scope == "alert":
        if ref.key == "fingerprint":
            return alert.fingerprint
        if ref.key == "startsAt":
            return alert.starts_at_raw
        return alert.status
    source = alert.labels if ref.scope == "labels" else alert.annotations
    value = source.get(ref.key)
    if value is None or value == "":
        raise TemplateError(f"the alert has no {ref.scope[:-1]} {ref.key!r} (referenced as {{{{ {ref} }}}})")
    return value


def compile_template(text: str) -> Template | str:
    """Compile ``text``; plain text without ``{{`` comes back unchanged as a str."""
    if "{{" not in text and "}}" not in text:
        return text
    parts: list[str | Ref] = []
    pos = 0
    for m in _TAG.finditer(text):
        if m.start() > pos:
            parts.append(text[pos : m.start()])
        ref = _REF.match(m.group(1))
        if ref is None:
            raise RuleError(
                f"bad template {m.group(0)!r}: only {{{{ labels.NAME }}}}, {{{{ annotations.NAME }}}},"
                " {{ alert.fingerprint }}, {{ alert.startsAt }} and {{ alert.status }} are allowed,"
                ' each optionally followed by | trimprefix "TEXT"'
            )
        scope, key, alert_key, trim = ref.groups()
        parts.append(Ref("alert", alert_key, trim or "") if alert_key else Ref(scope, key, trim or ""))
        pos = m.end()
    rest = text[pos:]
    if "{{" in rest or "}}" in rest:
        raise RuleError(f"unbalanced '{{{{' or '}}}}' in template {text!r}")
    if rest:
        parts.append(rest)
    return Template(tuple(parts))


def compile_value(value: Any) -> Any:
    """Compile every string inside a params value (dicts and lists walked)."""
    if isinstance(value, str):
        return compile_template(value)
    if isinstance(value, Mapping):
        return {k: compile_value(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        return [compile_value(v) for v in value]
    return value


def render_value(value: Any, alert: Alert) -> Any:
    """Render a value compiled by :func:`compile_value` for one alert."""
    if isinstance(value, Template):
        return value.render(alert)
    if isinstance(value, dict):
        return {k: render_value(v, alert) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, alert) for v in value]
    return value


def value_refs(value: Any) -> list[Ref]:
    """Every reference inside a compiled value, in order."""
    if isinstance(value, Template):
        return list(value.refs)
    if isinstance(value, dict):
        return [r for v in value.values() for r in value_refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in value_refs(v)]
    return []


def is_templated(value: Any) -> bool:
    """Whether a compiled value holds at least one reference."""
    return bool(value_refs(value))
