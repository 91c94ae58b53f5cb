"""Who may call what: bearer tokens and basic auth by role, secrets by reference only.

Requests go through the real app in-process; the credentials come from ``env:`` and
``file:`` references exactly as a deployment configures them. Refusals (401, 403) must
change nothing, be counted, and never put a secret into a log line, the audit log or an
answer. The CLI refuses to listen beyond loopback with no credentials configured.
"""

from __future__ import annotations

import ast
import asyncio
import base64
import hmac
import inspect
import signal
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from receiver.cli.config import listen_refusal
from receiver.cli.main import main
from receiver.decisions import Rejection
from receiver.errors import ConfigError
from receiver.http import auth as auth_module
from receiver.http.auth import Authenticator
from receiver.settings import AuthSettings, settings_from_mapping
from tests.conftest import (
    HIGH_CPU_BODY,
    HIGH_CPU_RULES,
    JSON_HEADERS,
    ClientFactory,
    read_audit,
    runtime_of,
)
from tests.support.fakeclock import FakeClock
from tests.support.serveproc import listening_url, reap, start_serve

RULES = HIGH_CPU_RULES
RAW = HIGH_CPU_BODY
JSON = JSON_HEADERS

# The secrets. Distinctive strings, so a leak anywhere is found by a plain search.
WEBHOOK_TOKEN = "wh-tok-3c9f1a7e5b2d4c60"
APPROVER_TOKEN = "ap-tok-8e2b6d0f4a1c9e37"
ADMIN_TOKEN = "ad-tok-51f7c3e9a0b8d246"
AM_PASSWORD = "am-pw-Qx7!vR2#kLp9"
ONCALL_PASSWORD = "oncall-pw-Zt4$wN8@"
SRE_PASSWORD = "sre-pw-Hj6%mB1^"
SECRETS = (WEBHOOK_TOKEN, APPROVER_TOKEN, ADMIN_TOKEN, AM_PASSWORD, ONCALL_PASSWORD, SRE_PASSWORD)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def bearer(token: str) -> str:
    return f"Bearer {token}"


@pytest.fixture
def auth_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """``auth:`` with a token per role and a basic user per role, from env: and file: references."""
    monkeypatch.setenv("RT_WEBHOOK_TOKEN", WEBHOOK_TOKEN)
    monkeypatch.setenv("RT_ADMIN_TOKEN", ADMIN_TOKEN)
    monkeypatch.setenv("RT_AM_PASSWORD", AM_PASSWORD)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "approver-token").write_text(APPROVER_TOKEN + "\n")
    (secrets / "oncall-password").write_text(ONCALL_PASSWORD + "\n")
    (secrets / "sre-password").write_text(SRE_PASSWORD)
    return {
        "tokens": [
            {"name": "alertmanager", "role": "webhook", "token": "env:RT_WEBHOOK_TOKEN"},
            {"name": "oncall-bot", "role": "approver", "token": f"file:{secrets / 'approver-token'}"},
            {"name": "sre-admin", "role": "admin", "token": "env:RT_ADMIN_TOKEN"},
        ],
        "basic": [
            {"username": "am", "role": "webhook", "password": "env:RT_AM_PASSWORD"},
            {"username": "oncall", "role": "approver", "password": f"file:{secrets / 'oncall-password'}"},
            {"username": "sre", "role": "admin", "password": f"file:{secrets / 'sre-password'}"},
        ],
    }


@pytest.fixture
def fresh_clock(clock: FakeClock) -> FakeClock:
    """Capture 01 fired at 2026-11-23T06:42:28Z; put now five minutes later."""
    clock.t = 1_795_416_148.909 + 300
    return clock


@dataclass(frozen=True)
class Call:
    """One request and how it must be answered."""

    method: str
    route: str
    authorization: str | None
    status: int
    actor: str | None = None  # for an accepted webhook: who the audit says sent it


WEBHOOK, RELOAD = ("POST", "/webhook"), ("POST", "/-/reload")


def call(route: tuple[str, str], authorization: str | None, status: int, actor: str | None = None) -> Call:
    return Call(route[0], route[1], authorization, status, actor)


AUTH_CASES = [
    # Missing or wrong credentials: 401.
    pytest.param(call(WEBHOOK, None, 401), id="no-header-webhook"),
    pytest.param(call(RELOAD, None, 401), id="no-header-reload"),
    pytest.param(call(WEBHOOK, "", 401), id="empty-header"),
    pytest.param(call(WEBHOOK, bearer("not-the-token"), 401), id="wrong-token"),
    pytest.param(call(WEBHOOK, bearer(WEBHOOK_TOKEN[:-1]), 401), id="token-prefix"),
    pytest.param(call(WEBHOOK, bearer(WEBHOOK_TOKEN + "0"), 401), id="token-with-extra-char"),
    pytest.param(call(WEBHOOK, bearer(WEBHOOK_TOKEN.upper()), 401), id="token-wrong-case"),
    pytest.param(call(WEBHOOK, "Bearer", 401), id="bearer-without-token"),
    pytest.param(call(WEBHOOK, "Bearer   ", 401), id="bearer-blank-token"),
    pytest.param(call(WEBHOOK, WEBHOOK_TOKEN, 401), id="token-without-scheme"),
    pytest.param(call(WEBHOOK, f"Token {WEBHOOK_TOKEN}", 401), id="unknown-scheme"),
    pytest.param(call(WEBHOOK, bearer(AM_PASSWORD), 401), id="basic-password-as-bearer"),
    pytest.param(call(WEBHOOK, basic("am", "wrong"), 401), id="basic-wrong-password"),
    pytest.param(call(WEBHOOK, basic("nobody", AM_PASSWORD), 401), id="basic-unknown-user"),
    pytest.param(call(WEBHOOK, basic("oncall", AM_PASSWORD), 401), id="basic-someone-elses-password"),
    pytest.param(call(WEBHOOK, "Basic " + base64.b64encode(AM_PASSWORD.encode()).decode(), 401),
                 id="basic-without-colon"),
    pytest.param(call(WEBHOOK, "Basic !!not*base64!!", 401), id="basic-malformed-base64"),
    pytest.param(call(WEBHOOK, "Basic YW06", 401), id="basic-empty-password"),
    pytest.param(call(WEBHOOK, "Basic " + base64.b64encode(b"am:\xff\xfe").decode(), 401),
                 id="basic-non-utf8-inside-base64"),
    pytest.param(call(WEBHOOK, "Basic Y\u00f6\u00e9", 401), id="basic-non-ascii-header"),
    pytest.param(call(WEBHOOK, basic("am", AM_PASSWORD)[:-2], 401), id="basic-truncated-base64"),
    # Right credentials, wrong role: 403.
    pytest.param(call(WEBHOOK, bearer(APPROVER_TOKEN), 403), id="approver-token-on-webhook"),
    pytest.param(call(WEBHOOK, basic("oncall", ONCALL_PASSWORD), 403), id="approver-basic-on-webhook"),
    pytest.param(call(RELOAD, bearer(WEBHOOK_TOKEN), 403), id="webhook-token-on-reload"),
    pytest.param(call(RELOAD, basic("am", AM_PASSWORD), 403), id="webhook-basic-on-reload"),
    pytest.param(call(RELOAD, bearer(APPROVER_TOKEN), 403), id="approver-token-on-reload"),
    # Allowed.
    pytest.param(call(WEBHOOK, bearer(WEBHOOK_TOKEN), 202, "alertmanager"), id="webhook-token"),
    pytest.param(call(WEBHOOK, f"bearer {WEBHOOK_TOKEN}", 202, "alertmanager"), id="lowercase-bearer-scheme"),
    pytest.param(call(WEBHOOK, f"BEARER {WEBHOOK_TOKEN}", 202, "alertmanager"), id="uppercase-bearer-scheme"),
    pytest.param(call(WEBHOOK, f"Bearer {WEBHOOK_TOKEN}  ", 202, "alertmanager"), id="token-trailing-space"),
    pytest.param(call(WEBHOOK, f"Bearer  {WEBHOOK_TOKEN}", 202, "alertmanager"),
                 id="two-spaces-after-scheme"),
    pytest.param(call(WEBHOOK, basic("am", AM_PASSWORD), 202, "am"), id="basic-right-password"),
    pytest.param(call(WEBHOOK, "basic " + basic("am", AM_PASSWORD)[6:], 202, "am"), id="lowercase-basic"),
    pytest.param(call(WEBHOOK, bearer(ADMIN_TOKEN), 202, "sre-admin"), id="admin-token-on-webhook"),
    pytest.param(call(WEBHOOK, basic("sre", SRE_PASSWORD), 202, "sre"), id="admin-basic-on-webhook"),
    pytest.param(call(RELOAD, bearer(ADMIN_TOKEN), 200), id="admin-token-on-reload"),
    pytest.param(call(RELOAD, basic("sre", SRE_PASSWORD), 200), id="admin-basic-on-reload"),
    # Open routes need nothing and ignore whatever is sent.
    pytest.param(call(("GET", "/health"), None, 200), id="health-open"),
    pytest.param(call(("GET", "/ready"), None, 200), id="ready-open"),
    pytest.param(call(("GET", "/metrics"), None, 200), id="metrics-open"),
    pytest.param(call(("GET", "/health"), bearer("not-the-token"), 200), id="health-ignores-bad-token"),
]

ANONYMOUS_CASES = [
    pytest.param(call(WEBHOOK, None, 202, "anonymous"), id="webhook-without-header"),
    pytest.param(call(WEBHOOK, bearer("anything"), 202, "anonymous"), id="webhook-with-any-token"),
    pytest.param(call(WEBHOOK, "Basic !!not*base64!!", 202, "anonymous"), id="webhook-with-garbage"),
    pytest.param(call(RELOAD, None, 200), id="reload-without-header"),
    pytest.param(call(("GET", "/metrics"), None, 200), id="metrics"),
]


def rejections(client: Any) -> dict[str, float]:
    """The non-zero ``remediator_requests_rejected_total`` counts by reason."""
    registry = runtime_of(client).metrics.registry
    counts = {r.value: registry.get_sample_value("remediator_requests_rejected_total", {"reason": r.value})
              for r in Rejection}
    return {reason: value for reason, value in counts.items() if value}


async def send(client: Any, case: Call) -> Any:
    headers = dict(JSON) if case.method == "POST" else {}
    if case.authorization is not None:
        headers["Authorization"] = case.authorization
    body = RAW if case.route == "/webhook" else None
    return await client.request(case.method, case.route, data=body, headers=headers)


async def check(client: Any, settings: Any, case: Call) -> None:
    runtime = runtime_of(client)
    await runtime.audit.sync()
    audit_before = settings.audit.read_bytes()
    resp = await send(client, case)
    assert resp.status == case.status, await resp.text()
    await runtime.audit.sync()
    if case.status in (401, 403):
        answer = await resp.json()
        reason = Rejection.UNAUTHORIZED if case.status == 401 else Rejection.FORBIDDEN
        assert answer["error"] == reason.value
        assert answer["detail"]
        if case.status == 401:
            assert resp.headers["WWW-Authenticate"] == 'Bearer realm="remediator", Basic realm="remediator"'
        assert settings.audit.read_bytes() == audit_before
        assert (runtime.queue.depth(), runtime.queue.unfinished) == (0, 0)
        assert rejections(client) == {reason.value: 1}
    else:
        assert rejections(client) == {}
    if case.actor is not None:
        received = [r for r in read_audit(settings.audit) if r["event"] == "alert.received"]
        assert [r["actor"] for r in received] == [case.actor] * 2


@pytest.mark.parametrize("case", AUTH_CASES)
async def test_credentials_and_roles(case: Call, auth_config: dict[str, Any], make_client: ClientFactory,
                                     make_settings: Any, fresh_clock: FakeClock) -> None:
    """Bad or missing credentials get 401, a role without the right 403, both changing nothing; rest pass."""
    settings = make_settings(rules=RULES, auth=auth_config)
    client = await make_client(settings)
    await check(client, settings, case)


@pytest.mark.parametrize("case", ANONYMOUS_CASES)
async def test_without_credentials_configured_everyone_is_anonymous_admin(
        case: Call, make_client: ClientFactory, make_settings: Any, fresh_clock: FakeClock) -> None:
    """With no auth configured (loopback only) every route is open and the actor is ``anonymous``."""
    settings = make_settings(rules=RULES)
    client = await make_client(settings)
    await check(client, settings, case)


RAW_HEADERS = [
    pytest.param(b"Bearer \xff\xfe" + WEBHOOK_TOKEN.encode(), id="bearer-non-utf8-bytes"),
    pytest.param(b"Basic \xff\xfe", id="basic-non-utf8-bytes"),
    pytest.param(b"Bearer " + WEBHOOK_TOKEN.encode() + b"\xc3", id="token-then-cut-utf8"),
]


@pytest.mark.parametrize("value", RAW_HEADERS)
async def test_non_utf8_authorization_bytes_get_401_not_500(
        value: bytes, auth_config: dict[str, Any], make_client: ClientFactory, make_settings: Any,
        fresh_clock: FakeClock) -> None:
    """An Authorization header with bytes that are not UTF-8 is wrong credentials (401), not a crash."""
    settings = make_settings(rules=RULES, auth=auth_config)
    client = await make_client(settings)
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Authorization: " + value + b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                 % len(RAW) + RAW)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    assert answer.startswith(b"HTTP/1.1 401 ")
    assert rejections(client) == {"unauthorized": 1}


async def test_secrets_never_reach_logs_audit_or_answers(
        auth_config: dict[str, Any], make_client: ClientFactory, make_settings: Any,
        fresh_clock: FakeClock) -> None:
    """Across failed, forbidden and accepted calls no secret shows in a log event, the audit or an answer."""
    settings = make_settings(rules=RULES, auth=auth_config)
    calls = [
        call(WEBHOOK, f"Token {WEBHOOK_TOKEN}", 401),  # the right secret under a wrong scheme
        call(WEBHOOK, bearer(WEBHOOK_TOKEN + "x"), 401),
        call(WEBHOOK, basic("am", AM_PASSWORD + "x"), 401),
        call(WEBHOOK, bearer(APPROVER_TOKEN), 403),
        call(RELOAD, basic("oncall", ONCALL_PASSWORD), 403),
        call(WEBHOOK, bearer(WEBHOOK_TOKEN), 202),
        call(WEBHOOK, basic("am", AM_PASSWORD), 202),
        call(RELOAD, bearer(ADMIN_TOKEN), 200),
        call(RELOAD, basic("sre", SRE_PASSWORD), 200),
    ]
    answers = []
    with structlog.testing.capture_logs() as events:
        client = await make_client(settings)
        for c in calls:
            resp = await send(client, c)
            assert resp.status == c.status
            answers.append(await resp.text() + repr(dict(resp.headers)))
        await runtime_of(client).audit.sync()
        metrics = await (await client.get("/metrics")).text()
    assert any(e["event"] == "request.rejected" for e in events)  # the capture did see the service
    logged = repr(events)
    audit = settings.audit.read_text()
    assert "alertmanager" in audit  # the credential's name is on the record, never its secret
    encoded = [base64.b64encode(f"{u}:{p}".encode()).decode()
               for u, p in (("am", AM_PASSWORD), ("oncall", ONCALL_PASSWORD), ("sre", SRE_PASSWORD))]
    for secret in (*SECRETS, *encoded):
        assert secret not in logged
        assert secret not in audit
        assert secret not in metrics
        assert not any(secret in a for a in answers)


CONFIG_ERRORS = [
    pytest.param({"tokens": [{"name": "am", "role": "webhook", "token": "literal-secret-1234"}]},
                 ["auth.tokens.0.token", "env:NAME", "file:/path"], id="literal-token"),
    pytest.param({"basic": [{"username": "am", "role": "webhook", "password": "literal-secret-1234"}]},
                 ["auth.basic.0.password", "never the value itself"], id="literal-basic-password"),
    pytest.param({"tokens": [{"name": "am", "role": "webhook", "token": "env:RT_SURELY_UNSET_9F3A"}]},
                 ["auth.tokens.0.token", "RT_SURELY_UNSET_9F3A", "not set"], id="missing-env-var"),
    pytest.param({"tokens": [{"name": "am", "role": "webhook", "token": "file:/nonexistent/rt-token-9f3a"}]},
                 ["auth.tokens.0.token", "/nonexistent/rt-token-9f3a"], id="missing-file"),
    pytest.param({"tokens": [{"name": "am", "role": "webhook", "token": "env:"}]},
                 ["auth.tokens.0.token", "empty secret reference"], id="empty-reference"),
    pytest.param({"tokens": [{"name": "am", "role": "root", "token": "env:RT_WEBHOOK_TOKEN"}]},
                 ["auth.tokens.0.role"], id="unknown-role"),
    pytest.param({"tokens": [{"name": "am", "role": "webhook", "token": "env:RT_WEBHOOK_TOKEN"}],
                  "basic": [{"username": "am", "role": "admin", "password": "env:RT_WEBHOOK_TOKEN"}]},
                 ["credential names must be unique", "am"], id="duplicate-name"),
    pytest.param({"tokens": [{"name": "am", "role": "webhook", "token": "env:RT_WEBHOOK_TOKEN",
                              "secret": "x"}]}, ["auth.tokens.0.secret"], id="unknown-key"),
]


@pytest.mark.parametrize(("auth", "expected"), CONFIG_ERRORS)
def test_bad_auth_config_is_refused_naming_the_key(auth: dict[str, Any], expected: list[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A literal secret, a missing env var or file, or a bad entry is a ConfigError naming key and cause."""
    monkeypatch.setenv("RT_WEBHOOK_TOKEN", WEBHOOK_TOKEN)
    monkeypatch.delenv("RT_SURELY_UNSET_9F3A", raising=False)
    with pytest.raises(ConfigError) as err:
        settings_from_mapping({"auth": auth})
    message = str(err.value)
    for part in expected:
        assert part in message
    assert "literal-secret-1234" not in message
    assert WEBHOOK_TOKEN not in message


def test_empty_secret_file_is_refused(tmp_path: Path) -> None:
    """A secret file holding only a newline is refused, naming the reference."""
    empty = tmp_path / "token"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match=r"auth\.tokens\.0\.token: .*is empty"):
        settings_from_mapping({"auth": {"tokens": [{"name": "am", "role": "webhook",
                                                    "token": f"file:{empty}"}]}})


def many_tokens(monkeypatch: pytest.MonkeyPatch, n: int) -> AuthSettings:
    for i in range(n):
        monkeypatch.setenv(f"RT_TOKEN_{i}", f"token-number-{i}-{'x' * i}")
    return AuthSettings.model_validate({"tokens": [
        {"name": f"cred-{i}", "role": "webhook", "token": f"env:RT_TOKEN_{i}"} for i in range(n)]})


@pytest.mark.parametrize(("header", "expected"), [
    pytest.param("Bearer token-number-0-", "cred-0", id="match-first"),
    pytest.param("Bearer token-number-3-xxx", "cred-3", id="match-middle"),
    pytest.param("Bearer token-number-7-xxxxxxx", "cred-7", id="match-last"),
    pytest.param("Bearer token-number-7-xxxxxx", None, id="no-match"),
])
def test_every_credential_is_compared_in_constant_time(header: str, expected: str | None,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether the match is first, last or absent, every credential is compared with hmac.compare_digest."""
    authenticator = Authenticator(many_tokens(monkeypatch, 8))
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    principal = authenticator.authenticate(header)
    assert (principal.name if principal else None) == expected
    assert len(compared) == 8
    assert all(len(a) == len(b) == 32 for a, b in compared)  # fixed-length digests, not the secrets


def test_find_has_no_early_exit() -> None:
    """The credential loop neither returns nor breaks early, so its duration does not say which matched."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(auth_module._find)))
    loops = [n for n in ast.walk(tree) if isinstance(n, ast.For)]
    assert len(loops) == 1
    assert not [n for n in ast.walk(loops[0]) if isinstance(n, ast.Return | ast.Break)]
    assert "hmac.compare_digest" in ast.unparse(loops[0])


REFUSED = ["0.0.0.0:0", "[::]:0", "10.1.2.3:0", "remediator.example:9095"]


@pytest.mark.parametrize("listen", REFUSED)
def test_cli_refuses_to_listen_beyond_loopback_without_credentials(
        listen: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """``serve --listen`` beyond loopback with no credentials exits 2 with the reason, creating nothing."""
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "--listen", listen]) == 2
    err = capsys.readouterr().err
    assert f"refusing to listen on {listen} with no credentials configured" in err
    assert "--insecure-no-auth" in err
    assert list(tmp_path.iterdir()) == []


def serve_config(tmp_path: Path, *, with_token: bool) -> Path:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    config: dict[str, Any] = {"state": f"sqlite:///{tmp_path / 'state.db'}",
                              "audit": str(tmp_path / "audit.jsonl"), "rules": [str(rules)]}
    if with_token:
        config["auth"] = {"tokens": [{"name": "am", "role": "webhook", "token": "env:RT_SERVE_TOKEN"}]}
    path = tmp_path / "remediator.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(("with_token", "flags"), [
    pytest.param(True, [], id="token-configured"),
    pytest.param(False, ["--insecure-no-auth"], id="insecure-no-auth"),
])
def test_cli_listens_beyond_loopback_with_credentials_or_the_flag(
        with_token: bool, flags: list[str], tmp_path: Path) -> None:
    """With a token configured, or --insecure-no-auth, ``serve`` listens on 0.0.0.0 and stops on SIGTERM."""
    config = serve_config(tmp_path, with_token=with_token)
    proc = start_serve(tmp_path, "--config", str(config), *flags, listen="0.0.0.0:0",
                       env={"RT_SERVE_TOKEN": WEBHOOK_TOKEN})
    try:
        url, lines = listening_url(proc)
        assert url.startswith("http://0.0.0.0:")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert proc.stdout is not None
        out = "".join(lines) + proc.stdout.read()
        assert "refusing" not in out
        assert WEBHOOK_TOKEN not in out
    finally:
        reap(proc)


@pytest.mark.parametrize(("listen", "tokens", "insecure", "refused"), [
    pytest.param("127.0.0.1:9095", False, False, False, id="loopback-no-auth"),
    pytest.param("0.0.0.0:9095", False, False, True, id="any-no-auth"),
    pytest.param("0.0.0.0:9095", True, False, False, id="any-with-token"),
    pytest.param("0.0.0.0:9095", False, True, False, id="any-insecure-flag"),
    pytest.param("[::]:9095", False, False, True, id="ipv6-any-no-auth"),
])
def test_listen_refusal_decision(listen: str, tokens: bool, insecure: bool, refused: bool,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """serve refuses exactly one case: beyond loopback, no credentials, no --insecure-no-auth."""
    monkeypatch.setenv("RM_LISTEN_TOKEN", "t0k3n")
    data: dict[str, Any] = {"listen": listen}
    if tokens:
        data["auth"] = {"tokens": [{"name": "am", "role": "webhook", "token": "env:RM_LISTEN_TOKEN"}]}
    why = listen_refusal(settings_from_mapping(data), insecure_no_auth=insecure)
    assert (why is not None) is refused
