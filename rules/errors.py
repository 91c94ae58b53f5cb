"""The one error base of remediator, and the errors of the rule language.

Every exception remediator raises on purpose derives from :class:`RemediatorError`, so a
caller can catch "anything remediator refused" in one place. It lives here because
``rules`` is the bottom layer: ``remediations`` and ``receiver`` both import it, and it
imports nothing of theirs.
"""

from __future__ import annotations

from dataclasses import dataclass


class RemediatorError(Exception):
    """Base of every error remediator raises on purpose."""


class RuleError(RemediatorError):
    """A rule, matcher, duration or template is not valid."""


class TemplateError(RuleError):
    """A template referenced something the alert does not carry."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem found while loading rules: where it is and what is wrong.

    ``severity`` is ``"error"`` (the rule set is refused) or ``"warning"`` (it loads).
    """

    file: str
    line: int | None
    rule: str | None
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        who = f" rule {self.rule!r}:" if self.rule else ""
        return f"{where}:{who} {self.severity}: {self.message}"


class RuleLoadError(RuleError):
    """Loading rules failed; ``problems`` lists every error found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        errors = [p for p in problems if p.severity == "error"]
        summary = "; ".join(str(p) for p in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        super().__init__(f"{len(errors)} error(s) in rules: {summary}{more}")
