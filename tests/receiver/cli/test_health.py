"""``remediator health`` follows where ``serve`` really listens: a real serve process writes
``$REMEDIATOR_ENDPOINT_FILE`` (plain HTTP, TLS, mutual TLS; an ephemeral port that no
default could guess), health answers 0 from it, and once serve stops the file is gone and
health answers 1, saying why."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import trustme
import yaml

from receiver.cli.main import main
from tests.support.serveproc import listening_url, reap, start_serve


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(directory / "ca.crt"))
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    leaf.private_key_pem.write_to_path(str(directory / "server.key"))
    leaf.cert_chain_pems[0].write_to_path(str(directory / "server.crt"))
    return {"cert": str(directory / "server.crt"), "key": str(directory / "server.key"),
            "ca": str(directory / "ca.crt")}


@pytest.mark.parametrize("tls", ["none", "tls", "mtls"])
def test_health_follows_the_listen_address_and_scheme(tmp_path: Path, tls: str, pki: dict[str, str],
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = tmp_path / "endpoint"
    config: dict[str, object] = {"state": f"sqlite:///{tmp_path / 'state.db'}",
                                 "audit": str(tmp_path / "audit.jsonl")}
    if tls != "none":
        config["tls"] = {"cert": pki["cert"], "key": pki["key"],
                         **({"client_ca": pki["ca"]} if tls == "mtls" else {})}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    endpoint.write_text(json.dumps({"url": "http://127.0.0.1:1"}))  # a stale one from an earlier run
    monkeypatch.setenv("REMEDIATOR_ENDPOINT_FILE", str(endpoint))
    proc = start_serve(tmp_path, "--config", str(tmp_path / "config.yaml"),
                       env={"REMEDIATOR_ENDPOINT_FILE": str(endpoint)})
    try:
        url, _ = listening_url(proc)
        written = json.loads(endpoint.read_text())
        assert written["url"] == url
        assert url.startswith("https://" if tls != "none" else "http://")
        assert written["client_cert"] is (tls == "mtls")
        assert main(["health"]) == 0
        out = capsys.readouterr().out
        assert url in out
        assert ("client certificate" in out) is (tls == "mtls")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        reap(proc)
    assert not endpoint.exists()
    assert main(["health"]) == 1
    assert "serve has not said where it listens" in capsys.readouterr().out


def test_health_against_nothing_listening_says_why(capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REMEDIATOR_ENDPOINT_FILE", raising=False)
    assert main(["health", "--url", "http://127.0.0.1:1", "--timeout", "1"]) == 1
    assert capsys.readouterr().out.startswith("remediator: unhealthy: http://127.0.0.1:1/health: ")
