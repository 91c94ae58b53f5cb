"""TLS and mutual TLS with certificates the test makes (trustme), over real sockets.

The real app runs behind ``web.TCPSite`` with ``receiver.http.server.ssl_context(settings.tls)``
on an ephemeral loopback port, exactly as ``remediator serve`` sets it up. A client that
cannot complete the handshake never reaches the app: nothing is audited or counted.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from aiohttp import web
from prometheus_client import CollectorRegistry

from receiver.errors import ConfigError
from receiver.http.app import create_app
from receiver.http.keys import RUNTIME
from receiver.http.server import ssl_context
from receiver.runtime import Runtime
from receiver.settings import Settings, settings_from_mapping
from tests.conftest import HIGH_CPU_BODY, HIGH_CPU_RULES, JSON_HEADERS
from tests.support.fakeclock import FakeClock

RULES = HIGH_CPU_RULES
RAW = HIGH_CPU_BODY
JSON = JSON_HEADERS


@dataclass(frozen=True)
class Pki:
    """Files of a server CA, its server and client certs, and an unrelated CA's client cert."""

    ca: Path
    cert: Path
    key: Path
    client_cert: Path
    client_key: Path
    other_cert: Path
    other_key: Path
    expired_cert: Path
    expired_key: Path


def write_leaf(leaf: Any, directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA with a server cert for 127.0.0.1/localhost, a client cert and an expired one; another CA's."""
    directory = tmp_path_factory.mktemp("pki")
    ca, other_ca = trustme.CA(), trustme.CA()
    ca.cert_pem.write_to_path(str(directory / "ca.crt"))
    cert, key = write_leaf(ca.issue_cert("127.0.0.1", "localhost"), directory, "server")
    client_cert, client_key = write_leaf(ca.issue_cert("alertmanager@example.org"), directory, "client")
    other_cert, other_key = write_leaf(other_ca.issue_cert("intruder@example.org"), directory, "other")
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    expired = ca.issue_cert("alertmanager@example.org", not_before=long_ago,
                            not_after=long_ago + timedelta(days=30))
    expired_cert, expired_key = write_leaf(expired, directory, "expired")
    return Pki(directory / "ca.crt", cert, key, client_cert, client_key, other_cert, other_key,
               expired_cert, expired_key)


def tls_settings(tmp_path: Path, pki: Pki, *, mtls: bool) -> Settings:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    tls = {"cert": str(pki.cert), "key": str(pki.key)}
    if mtls:
        tls["client_ca"] = str(pki.ca)
    return settings_from_mapping({"state": f"sqlite:///{tmp_path / 'state.db'}",
                                  "audit": str(tmp_path / "audit.jsonl"), "rules": [str(rules)],
                                  "tls": tls})


@dataclass
class Served:
    port: int
    runtime: Runtime


@contextlib.asynccontextmanager
async def serve_tls(settings: Settings, clock: FakeClock) -> AsyncIterator[Served]:
    """The real app over TLS on an ephemeral loopback port, as ``remediator serve`` listens."""
    assert settings.tls is not None
    app = create_app(settings, clock=clock, metrics_registry=CollectorRegistry())
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context(settings.tls))
        await site.start()
        yield Served(runner.addresses[0][1], app[RUNTIME])
    finally:
        await runner.cleanup()


def client_context(pki: Pki, *, trust: bool, cert: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca) if trust else None)
    if cert == "ours":
        ctx.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    elif cert == "other-ca":
        ctx.load_cert_chain(str(pki.other_cert), str(pki.other_key))
    elif cert == "expired":
        ctx.load_cert_chain(str(pki.expired_cert), str(pki.expired_key))
    return ctx


@dataclass(frozen=True)
class Conn:
    """How the client connects, and whether the request reaches the app."""

    mtls: bool  # the server requires client certificates
    scheme: str = "https"
    trust: bool = True  # the client trusts the server's CA
    cert: str | None = None  # the client's certificate: None, "ours", "other-ca" or "expired"
    fails: type[Exception] | None = None


CASES = [
    pytest.param(Conn(mtls=False), id="https-trusted-ca"),
    pytest.param(Conn(mtls=False, cert="ours"), id="https-client-cert-not-asked-for"),
    pytest.param(Conn(mtls=False, scheme="http", fails=aiohttp.ClientError), id="plain-http-to-tls-port"),
    pytest.param(Conn(mtls=False, trust=False, fails=aiohttp.ClientConnectorCertificateError),
                 id="client-does-not-trust-server"),
    pytest.param(Conn(mtls=True, cert="ours"), id="mtls-client-cert"),
    pytest.param(Conn(mtls=True, fails=aiohttp.ClientError), id="mtls-without-client-cert"),
    pytest.param(Conn(mtls=True, cert="other-ca", fails=aiohttp.ClientError), id="mtls-cert-from-other-ca"),
    pytest.param(Conn(mtls=True, cert="expired", fails=aiohttp.ClientError), id="mtls-expired-client-cert"),
    pytest.param(Conn(mtls=True, scheme="http", fails=aiohttp.ClientError), id="mtls-plain-http"),
    pytest.param(Conn(mtls=True, trust=False, cert="ours", fails=aiohttp.ClientConnectorCertificateError),
                 id="mtls-client-does-not-trust-server"),
]


@pytest.mark.parametrize("conn", CASES)
async def test_tls_connections(conn: Conn, pki: Pki, tmp_path: Path, clock: FakeClock) -> None:
    """A trusted HTTPS (and, with client_ca, certified) client gets 202; any other handshake fails, unseen."""
    clock.t = 1_795_416_148.909 + 300
    settings = tls_settings(tmp_path, pki, mtls=conn.mtls)
    async with serve_tls(settings, clock) as served:
        await served.runtime.audit.sync()
        audit_before = settings.audit.read_bytes()
        url = f"{conn.scheme}://127.0.0.1:{served.port}/webhook"
        ssl_arg = client_context(pki, trust=conn.trust, cert=conn.cert) if conn.scheme == "https" else False
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_arg)) as session:
            if conn.fails is None:
                async with session.post(url, data=RAW, headers=JSON) as resp:
                    assert resp.status == 202
                    assert await resp.json() == {"received": 2, "matched": 2, "queued": 2}
            else:
                with pytest.raises(conn.fails):
                    async with session.post(url, data=RAW, headers=JSON) as resp:
                        await resp.read()
                await served.runtime.audit.sync()
                assert settings.audit.read_bytes() == audit_before
                received = served.runtime.metrics.registry.get_sample_value(
                    "remediator_alerts_received_total", {"status": "firing"})
                assert received is None


def test_server_context_wants_tls12_and_client_certs_only_with_client_ca(pki: Pki, tmp_path: Path) -> None:
    """Nothing older than TLS 1.2; client certs required only with client_ca, which is the only CA trusted."""
    plain = ssl_context(tls_settings(tmp_path, pki, mtls=False).tls)  # type: ignore[arg-type]
    mutual = ssl_context(tls_settings(tmp_path, pki, mtls=True).tls)  # type: ignore[arg-type]
    assert plain.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert (plain.verify_mode, mutual.verify_mode) == (ssl.CERT_NONE, ssl.CERT_REQUIRED)
    # No system CAs: a cert any public CA signed must not pass for a client of this service.
    trusted = mutual.get_ca_certs(binary_form=True)
    assert trusted == [ssl.PEM_cert_to_DER_cert(pki.ca.read_text())]


@pytest.mark.parametrize("missing", ["cert", "key", "client_ca"])
def test_tls_files_that_do_not_exist_are_refused(missing: str, pki: Pki, tmp_path: Path) -> None:
    """A ``tls:`` entry pointing at a missing file is a ConfigError naming the key and the file."""
    tls = {"cert": str(pki.cert), "key": str(pki.key), "client_ca": str(pki.ca)}
    tls[missing] = str(tmp_path / f"no-such-{missing}.pem")
    with pytest.raises(ConfigError) as err:
        settings_from_mapping({"tls": tls})
    assert f"tls.{missing}" in str(err.value)
    assert f"no-such-{missing}.pem" in str(err.value)
