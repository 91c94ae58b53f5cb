"""The service configuration: one YAML file, every key defaulted, unknown keys refused.

Loaded by ``receiver.cli.main`` (``--config``) and handed to ``receiver.http.app.create_app``.
Secrets are references (``env:NAME``, ``file:/path``) resolved here, never literals.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from receiver.auditconfig import AuditSettings
from receiver.deferring import DeferSettings
from receiver.errors import ConfigError
from receiver.oncall import ConsoleSettings, SlackSettings
from receiver.serving import HttpSettings
from receiver.stateurl import parse_redis_url, redacted
from receiver.windows import MaintenanceWindow
from remediations.notifiers import Notifier
from remediations.secrets import SecretError, SecretRef, resolve_secret
from remediations.targets import Target
from rules.errors import Problem
from rules.model import Duration
from rules.priority import PriorityPolicy
from rules.yamldoc import located_errors, read_yaml_bytes

Role = Literal["webhook", "approver", "admin"]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TokenAuth(_Strict):
    """A bearer token: ``Authorization: Bearer <token>``."""

    name: str = Field(min_length=1)
    role: Role
    token: SecretRef


class BasicAuth(_Strict):
    """A basic-auth user."""

    username: str = Field(min_length=1, pattern=r"^[^:]+$")
    role: Role
    password: SecretRef


class AuthSettings(_Strict):
    tokens: list[TokenAuth] = Field(default_factory=list)
    basic: list[BasicAuth] = Field(default_factory=list)

    @property
    def configured(self) -> bool:
        return bool(self.tokens or self.basic)

    @model_validator(mode="after")
    def _unique_names(self) -> AuthSettings:
        names = [t.name for t in self.tokens] + [b.username for b in self.basic]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"credential names must be unique: {', '.join(dupes)}")
        return self


class TlsSettings(_Strict):
    cert: Path
    key: Path
    client_ca: Path | None = Field(default=None, description="Set to require client certs (mTLS)")

    @model_validator(mode="after")
    def _files_exist(self) -> TlsSettings:
        for label, path in (("cert", self.cert), ("key", self.key), ("client_ca", self.client_ca)):
            if path is not None and not path.is_file():
                raise ValueError(f"tls.{label}: no such file {path}")
        return self


class QueueSettings(_Strict):
    size: int = Field(default=10_000, ge=1, le=1_000_000, description="Work accepted and not finished")
    workers: int = Field(default=8, ge=1, le=256)
    sdk_threads: int = Field(default=8, ge=1, le=256, description="Threads for actions' blocking SDK calls "
                             "(Docker, Kubernetes, Celery); more calls wait, within their step's timeout")
    visibility_timeout: Duration = Field(
        default=timedelta(seconds=60),
        description="Work a replica took and stopped touching this long is taken over by another",
    )
    heartbeat: Duration = Field(
        default=timedelta(seconds=2),
        description="How often a replica says it is alive; the work of one silent for 3 times this "
                    "is taken over at once (not after visibility_timeout)",
    )

    @model_validator(mode="after")
    def _heartbeat_fits(self) -> QueueSettings:
        if not timedelta(milliseconds=100) <= self.heartbeat <= self.visibility_timeout:
            raise ValueError("heartbeat must be at least 100ms and at most visibility_timeout")
        return self


class Window(_Strict):
    """At most ``max`` actions per ``per``."""

    max: int = Field(ge=1)
    per: Duration


class CircuitSettings(_Strict):
    failures: int = Field(default=3, ge=1, le=100, description="Consecutive failures that open it")
    cooloff: Duration = Field(default=timedelta(minutes=30), description="Open this long, then retry")


class GuardSettings(_Strict):
    dedup_ttl: Duration = Field(default=timedelta(days=7))
    retries: int = Field(default=3, ge=0, le=10, description="Retries of a temporary failure")
    retry_backoff: Duration = Field(default=timedelta(seconds=2))
    default_cooldown: Duration = Field(default=timedelta(minutes=10),
                                       description="Cooldown of a rule that names none")
    blast_radius: Window | None = Field(default_factory=lambda: Window(max=10, per=timedelta(minutes=10)),
                                        description="Global cap on actions; null turns it off")
    circuit_breaker: CircuitSettings = Field(default_factory=CircuitSettings)
    defer: DeferSettings = Field(default_factory=DeferSettings)
    approval_ttl: Duration = Field(default=timedelta(minutes=30))
    lock_ttl: Duration = Field(default=timedelta(minutes=15),
                               description="Longest a target stays locked by one action")
    maintenance: list[MaintenanceWindow] = Field(default_factory=list)
    announce: list[str] | None = Field(
        default=None, description="Notifiers that announce approvals and pauses; unset: all of them"
    )


class UnresolvedPolicy(_Strict):
    """Escalate a P1 that is still firing this long after it first arrived."""

    after: Duration = Field(default=timedelta(minutes=30))


class RecurringPolicy(_Strict):
    """Escalate for a root-cause review when one rule answers a P2 on one subject this often."""

    count: int = Field(default=3, ge=2, le=1000)
    within: Duration = Field(default=timedelta(hours=24))


class EscalationSettings(_Strict):
    """The built-in escalation policies (``receiver.flow.escalation``); null turns one off."""

    notifiers: list[str] | None = Field(
        default=None, description="Who hears escalations; unset: guards.announce, else every notifier"
    )
    p1_unresolved: UnresolvedPolicy | None = Field(default_factory=UnresolvedPolicy)
    p2_recurring: RecurringPolicy | None = Field(default_factory=RecurringPolicy)
    circuit_open: bool = Field(default=True, description="Escalate when a target's circuit breaker opens")
    blast_radius: bool = Field(default=True, description="Escalate when the blast radius pauses automation")


class LogSettings(_Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


def _state_value(value: str) -> str:
    """The URL ``state`` names: itself, or what the secret reference ``env:``/``file:`` holds."""
    if not value.startswith(("env:", "file:")):
        return value
    try:
        return resolve_secret(value).reveal().strip()
    except SecretError as exc:
        raise ValueError(str(exc)) from None


class Settings(_Strict):
    """Everything ``remediator serve`` reads from ``--config``."""

    listen: str = "127.0.0.1:9095"
    dry_run: bool = True
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    http: HttpSettings = Field(default_factory=HttpSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    tls: TlsSettings | None = None
    state: str = Field(default="sqlite:remediator-state.db",
                       description="sqlite:PATH or a Redis URL; env:NAME or file:PATH holding one")
    _state_resolved: str = PrivateAttr(default="")
    state_prefix: str = Field(default="remediator", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$",
                              description="Prefix of every Redis key")
    audit_log: AuditSettings = Field(default_factory=AuditSettings, alias="audit")
    rules: list[Path] | None = Field(default=None, description="Files or folders; unset: the shipped pack")
    priorities: PriorityPolicy = Field(default_factory=PriorityPolicy)
    guards: GuardSettings = Field(default_factory=GuardSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    drain_timeout: Duration = Field(default=timedelta(seconds=30))
    targets: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")], Target] = Field(
        default_factory=dict
    )
    notifiers: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")], Notifier] = Field(
        default_factory=dict
    )
    escalation: EscalationSettings = Field(default_factory=EscalationSettings)
    slack: SlackSettings | None = Field(default=None, description="Approve / Reject from Slack")
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    log: LogSettings = Field(default_factory=LogSettings)

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("listen must be HOST:PORT, e.g. 127.0.0.1:9095")
        return value

    @field_validator("state")
    @classmethod
    def _state_url(cls, value: str) -> str:
        url = _state_value(value)
        # what the URL names exactly is receiver.store.connect's to say (config check reports it)
        if url.startswith("sqlite:") and url.removeprefix("sqlite:").strip("/"):
            return value
        if not url.startswith(("redis", "unix://")):
            raise ValueError("state must be sqlite:///ABSOLUTE/PATH or sqlite:RELATIVE/PATH (one replica), "
                             "or a Redis URL (several): "
                             "redis://HOST:PORT/DB, redis+cluster://HOST:PORT,… or "
                             "redis+sentinel://HOST:PORT,…/SERVICE; or env:NAME or file:PATH holding one")
        parse_redis_url(url)  # its ValueError says what is wrong, without the password
        if url == value and redacted(url) != url:
            raise ValueError("state holds a password: give the URL as a secret reference instead "
                             "(state: env:NAME or file:PATH holding it), never the value itself")
        return value

    def model_post_init(self, context: Any, /) -> None:
        self._state_resolved = _state_value(self.state)

    @property
    def state_url(self) -> str:
        """The state store's URL, the secret's value when ``state`` is a reference: only for
        connecting (it may hold a password); what may be shown is :attr:`state_shown`."""
        return self._state_resolved

    @property
    def state_shown(self) -> str:
        """``state`` as logs and ``config check`` show it: the reference, or the URL without passwords."""
        return self.state if self.state != self._state_resolved else redacted(self.state)

    @model_validator(mode="after")
    def _announce_known(self) -> Settings:
        for key, names in (("guards.announce", self.guards.announce),
                           ("escalation.notifiers", self.escalation.notifiers)):
            unknown = sorted(set(names or ()) - set(self.notifiers))
            if unknown:
                raise ValueError(f"{key} names notifiers that are not configured: {', '.join(unknown)}")
        return self

    @property
    def audit(self) -> Path:
        """The live audit file (``audit:`` or ``audit.path``)."""
        return self.audit_log.path

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        if update and "audit" in update:  # would be ignored: the field is audit_log
            raise TypeError("Settings.model_copy: update audit_log (an AuditSettings), not audit")
        copy = super().model_copy(update=update, deep=deep)
        if update and "state" in update:  # the copy names another store: resolve it (validators do not run)
            copy._state_resolved = _state_value(copy.state)
        return copy

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def listens_beyond_loopback(self) -> bool:
        if self.host == "localhost":
            return False
        try:
            return not ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return True


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{source}: {where}: {msg}")
    return "\n".join(lines)


def settings_from_mapping(data: Any, *, source: str = "config") -> Settings:
    """Validate a parsed config; :class:`ConfigError` lists every problem with its key path."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of settings")
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from None


def _yaml_problem(problem: Problem) -> str:
    where = f"{problem.file}:{problem.line}" if problem.line else problem.file
    text = problem.message
    return f"{where}: not valid YAML: {text.removeprefix('YAML: ')}" if text.startswith("YAML: ") \
        else f"{where}: {text}"


def load_settings(path: Path | None, *, overrides: dict[str, Any] | None = None) -> Settings:
    """Read ``path`` (every default when None), then apply command-line ``overrides``.

    The file is read as ``config check`` and rule files read theirs (``rules.yamldoc``): a key
    given twice is an error, not the last one silently kept, and aliases expand within a budget.
    """
    if path is None:
        return settings_from_mapping(dict(overrides or {}), source="command line")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    document = read_yaml_bytes(raw, str(path))  # the alias and depth budget every YAML read has
    if document.found:
        raise ConfigError("\n".join(_yaml_problem(p) for p in document.problems()))
    data = document.data
    if isinstance(data, dict) and overrides:
        data = {**data, **overrides}
    if isinstance(data, dict):
        try:
            return Settings.model_validate(data)
        except ValidationError as exc:
            raise ConfigError("\n".join(located_errors(exc, str(path), document.line))) from None
    return settings_from_mapping(data, source=str(path))
