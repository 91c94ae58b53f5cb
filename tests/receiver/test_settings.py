"""The service config: defaults, strictness, secrets by reference, clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from receiver.errors import ConfigError
from receiver.settings import Settings, load_settings, settings_from_mapping


def test_defaults_are_safe() -> None:
    """With no config: loopback, dry-run, SQLite and JSONL in the working directory, the pack."""
    s = Settings()
    assert (s.listen, s.dry_run, s.state, str(s.audit), s.rules) == (
        "127.0.0.1:9095", True, "sqlite:remediator-state.db", "remediator-audit.jsonl", None)
    assert not s.listens_beyond_loopback
    assert s.max_body_bytes == 1024 * 1024
    e = s.escalation
    assert (e.notifiers, e.circuit_open, e.blast_radius) == (None, True, True)
    assert e.p1_unresolved is not None
    assert e.p1_unresolved.after.total_seconds() == 1800
    assert e.p2_recurring is not None
    assert (e.p2_recurring.count, e.p2_recurring.within.total_seconds()) == (3, 86400)


@pytest.mark.parametrize(("data", "message"), [
    pytest.param({"bogus": 1}, "bogus: Extra inputs are not permitted", id="unknown-key"),
    pytest.param({"guards": {"cooldown_typo": "1m"}}, "guards.cooldown_typo", id="unknown-nested-key"),
    pytest.param({"listen": "9095"}, "listen must be HOST:PORT", id="listen-no-host"),
    pytest.param({"listen": "h:99999"}, "listen must be HOST:PORT", id="listen-port-range"),
    pytest.param({"state": "memcached://x"}, "state must be sqlite:///ABSOLUTE/PATH or sqlite:RELATIVE/PATH",
                 id="state-unsupported"),
    pytest.param({"state": "sqlite:///"}, "state must be sqlite:///ABSOLUTE/PATH", id="state-no-path"),
    pytest.param({"dry_run": "maybe"}, "dry_run", id="dry-run-not-bool"),
    pytest.param({"guards": {"dedup_ttl": "7 days"}}, "duration '7 days'", id="bad-duration"),
    pytest.param({"auth": {"tokens": [{"name": "a", "role": "webhook", "token": "hunter2"}]}},
                 "never the value itself", id="literal-secret"),
    pytest.param({"auth": {"tokens": [{"name": "a", "role": "root", "token": "env:X"}]}},
                 "auth.tokens.0.role", id="unknown-role"),
    pytest.param({"auth": {"tokens": [{"name": "a", "role": "webhook",
                                       "token": "env:REMEDIATOR_UNSET_VAR"}]}},
                 "REMEDIATOR_UNSET_VAR is not set", id="missing-env"),
    pytest.param({"auth": {"tokens": [{"name": "a", "role": "webhook", "token": "file:/nonexistent/t"}]}},
                 "cannot read secret file /nonexistent/t", id="missing-file"),
    pytest.param({"targets": {"api": {"kind": "ftp"}}}, "targets.api", id="unknown-target-kind"),
    pytest.param({"targets": {"api": {"kind": "http", "base_url": "ftp://x"}}},
                 "base_url must be an absolute http", id="bad-base-url"),
    pytest.param({"targets": {"api": {"kind": "http", "base_url": "http://u:p@x"}}},
                 "credentials", id="credentials-in-url"),
    pytest.param({"priorities": {"map": {"critical": "P0"}}},
                 "priorities: map.critical: unknown priority level 'P0'", id="bad-priority"),
    pytest.param({"max_body_bytes": 10}, "max_body_bytes", id="body-limit-too-small"),
    pytest.param({"tls": {"cert": "/nonexistent.pem", "key": "/nonexistent.key"}},
                 "no such file /nonexistent.pem", id="tls-missing-file"),
    pytest.param({"queue": {"workers": 0}}, "queue.workers", id="no-workers"),
    pytest.param({"escalation": {"p1_unresolved": {"aftr": "30m"}}}, "escalation.p1_unresolved.aftr",
                 id="escalation-unknown-key"),
    pytest.param({"escalation": {"p2_recurring": {"count": 1}}}, "escalation.p2_recurring.count",
                 id="escalation-count-too-low"),
    pytest.param({"escalation": {"notifiers": ["pager"]}},
                 "escalation.notifiers names notifiers that are not configured: pager",
                 id="escalation-unknown-notifier"),
    pytest.param([1, 2], "top level must be a mapping", id="not-a-mapping"),
])
def test_invalid_config_is_refused_with_the_key(data: Any, message: str) -> None:
    """Each invalid config is a ConfigError that names the key and what is wrong."""
    with pytest.raises(ConfigError) as info:
        settings_from_mapping(data)
    assert message in str(info.value)


def test_every_problem_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """All problems of a config come back together, one line each."""
    with pytest.raises(ConfigError) as info:
        settings_from_mapping({"bogus": 1, "listen": "x", "queue": {"size": 0}})
    assert len(str(info.value).splitlines()) == 3


def test_secrets_resolve_and_never_print(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """env: and file: references resolve; the secret's repr shows only its source."""
    monkeypatch.setenv("RM_TOKEN", "s3cr3t-env")
    (tmp_path / "tok").write_text("s3cr3t-file\n")
    s = settings_from_mapping({"auth": {"tokens": [
        {"name": "am", "role": "webhook", "token": "env:RM_TOKEN"},
        {"name": "oncall", "role": "approver", "token": f"file:{tmp_path / 'tok'}"},
    ]}})
    assert [t.token.reveal() for t in s.auth.tokens] == ["s3cr3t-env", "s3cr3t-file"]
    text = repr(s) + str(s.model_dump())
    assert "s3cr3t" not in text
    assert "<secret env:RM_TOKEN>" in repr(s.auth.tokens[0].token)


def test_yaml_errors_name_the_line(tmp_path: Path) -> None:
    """A YAML syntax error names the file and line."""
    path = tmp_path / "c.yaml"
    path.write_text("listen: 127.0.0.1:1\nqueue: [\n")
    with pytest.raises(ConfigError, match=rf"{path}:3: not valid YAML"):
        load_settings(path)


def test_overrides_apply_over_the_file(tmp_path: Path) -> None:
    """Command-line overrides win over the file and are validated the same way."""
    path = tmp_path / "c.yaml"
    path.write_text("dry_run: false\nlisten: 127.0.0.1:1\n")
    s = load_settings(path, overrides={"dry_run": True})
    assert (s.dry_run, s.listen) == (True, "127.0.0.1:1")


@pytest.mark.parametrize(("listen", "beyond"), [
    ("127.0.0.1:1", False), ("localhost:1", False), ("[::1]:1", False), ("127.8.9.1:1", False),
    ("0.0.0.0:1", True), ("10.0.0.1:1", True), ("[::]:1", True), ("myhost:1", True),
])
def test_loopback_detection(listen: str, beyond: bool) -> None:
    """Only loopback addresses count as loopback; names other than localhost do not."""
    assert settings_from_mapping({"listen": listen}).listens_beyond_loopback is beyond


@pytest.mark.parametrize(("state", "env", "url", "shown"), [
    pytest.param("sqlite:state.db", {}, "sqlite:state.db", "sqlite:state.db", id="plain-sqlite"),
    pytest.param("redis://cache:6379/0", {}, "redis://cache:6379/0", "redis://cache:6379/0",
                 id="plain-redis"),
    pytest.param("env:STATE_URL_T", {"STATE_URL_T": "redis://:s3cr3t@cache:6379/0"},
                 "redis://:s3cr3t@cache:6379/0", "env:STATE_URL_T", id="env-reference"),
    pytest.param("env:STATE_URL_T", {"STATE_URL_T": "redis+sentinel://s:26379/m?sentinel_password=x\n"},
                 "redis+sentinel://s:26379/m?sentinel_password=x", "env:STATE_URL_T",
                 id="env-reference-stripped"),
])
def test_state_may_be_a_secret_reference(state: str, env: dict[str, str], url: str, shown: str,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The URL to connect with comes from the reference; what is shown is the reference."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = settings_from_mapping({"state": state})
    assert (settings.state, settings.state_url, settings.state_shown) == (state, url, shown)
    assert "s3cr3t" not in repr(settings)
    moved = settings.model_copy(update={"state": "sqlite:other.db"})
    assert (moved.state_url, moved.state_shown) == ("sqlite:other.db", "sqlite:other.db")


def test_state_from_a_file_and_its_problems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "url").write_text("redis://:pw@cache:6379/1\n")
    assert settings_from_mapping({"state": f"file:{tmp_path / 'url'}"}).state_url == "redis://:pw@cache:6379/1"
    monkeypatch.delenv("STATE_URL_UNSET", raising=False)
    with pytest.raises(ConfigError, match="environment variable STATE_URL_UNSET is not set"):
        settings_from_mapping({"state": "env:STATE_URL_UNSET"})
    monkeypatch.setenv("STATE_URL_BAD", "ftp://x")
    with pytest.raises(ConfigError, match="state must be sqlite"):
        settings_from_mapping({"state": "env:STATE_URL_BAD"})
