"""The image is built from deploy/Dockerfile and run, for real, in the tests' private engine.

Its base (``python:3.11-slim``) is made from Debian's packages (``tests.support.images``:
cached under ~/.cache/remediator-tests, built on a fresh machine); the build itself reaches
the package index the host uses (``--network host``). Run as the image is meant to be run
(``--read-only``, nothing but the volume writable): non-root, the root filesystem refuses
writes, ``/health`` answers, the HEALTHCHECK turns healthy on the configured listen
address and scheme (plain, then TLS on another port), and the shipped pack is inside.
The image's own healthcheck command is used; only its interval is cut to 1 s.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import trustme
import yaml
from docker.models.containers import Container

from remediations.registry import default_registry
from rules.loader import default_pack_paths, load_rules
from tests.e2e.stack import free_port
from tests.support.dockerd import Engine
from tests.support.images import PYTHON, build, ensure_image
from tests.support.paths import REPO

HEALTHY_DEADLINE = 60.0


@pytest.fixture(scope="module")
def image(engine: Engine) -> Iterator[tuple[docker.DockerClient, str]]:
    client = engine.client()
    tag = f"remediator-test/remediator:{uuid.uuid4().hex[:8]}"
    try:
        ensure_image(client, PYTHON.name)
        build(client, path=REPO, dockerfile="deploy/Dockerfile", tag=tag)
        yield client, tag
    finally:
        with contextlib.suppress(docker.errors.DockerException):
            client.images.remove(tag, force=True)
        client.close()


def output(raw: object) -> str:
    """What an ``exec_run`` printed (not streamed), as text."""
    assert isinstance(raw, bytes)
    return raw.decode(errors="replace")


def _health_status(container: Container) -> str:
    container.reload()
    state: dict[str, Any] = container.attrs["State"]
    return str(state.get("Health", {}).get("Status", "none"))


def _wait_healthy(container: Container) -> None:
    deadline = time.monotonic() + HEALTHY_DEADLINE
    while (status := _health_status(container)) != "healthy":
        if container.status == "exited" or time.monotonic() > deadline:
            logs = container.logs().decode(errors="replace")[-3000:]
            health = json.dumps(container.attrs["State"].get("Health"), indent=1)[-2000:]
            pytest.fail(f"container not healthy ({status}, {container.status}):\n{logs}\n{health}")
        time.sleep(0.5)


@contextlib.contextmanager
def running(client: docker.DockerClient, tag: str, command: list[str], **kwargs: Any) -> Iterator[Container]:
    """The image run read-only on the host's network, its own healthcheck every second."""
    configured = client.images.get(tag).attrs["Config"]["Healthcheck"]
    container = client.containers.run(
        tag, command, detach=True, read_only=True, network_mode="host",
        name=f"rt-image-{uuid.uuid4().hex[:8]}",
        healthcheck={"test": configured["Test"], "interval": 1_000_000_000, "timeout": 5_000_000_000,
                     "retries": 3, "start_period": 0}, **kwargs)
    try:
        yield container
    finally:
        container.remove(force=True, v=True)


def test_the_image_runs_non_root_read_only_healthy_with_the_pack(
        image: tuple[docker.DockerClient, str]) -> None:
    client, tag = image
    port = free_port()
    with running(client, tag, ["serve", "--listen", f"127.0.0.1:{port}"]) as container:
        _wait_healthy(container)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
            assert json.loads(resp.read()) == {"status": "ok"}
        uid = container.exec_run(["id", "-u"])
        assert (uid.exit_code, output(uid.output).strip()) == (0, "10001")
        assert container.attrs["HostConfig"]["ReadonlyRootfs"] is True
        refused = container.exec_run(["sh", "-c", "touch /usr/local/x"])
        assert refused.exit_code != 0
        assert "Read-only file system" in output(refused.output)
        assert container.exec_run(["sh", "-c", "touch /var/lib/remediator/x"]).exit_code == 0
        pack = container.exec_run(["ls", "/opt/remediator/pack"])
        shipped = sorted(p.name for p in (REPO / "rules" / "packs").iterdir())
        assert sorted(output(pack.output).split()) == shipped
        audit = output(container.exec_run(["cat", "/var/lib/remediator/remediator-audit.jsonl"]).output)
        started = json.loads(audit.splitlines()[0])
        assert started["event"] == "admin.started"
        pack_rules = load_rules(default_pack_paths(), catalogue=default_registry()).ruleset.rules
        assert started["rules"] == len(pack_rules)  # the shipped pack, loaded from the installed package


def test_the_healthcheck_follows_the_configured_listen_and_tls(image: tuple[docker.DockerClient, str],
                                                              tmp_path: Path) -> None:
    client, tag = image
    port = free_port()
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    leaf.private_key_pem.write_to_path(str(tmp_path / "tls.key"))
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "tls.crt"))
    config = {"listen": f"127.0.0.1:{port}", "tls": {"cert": "/etc/remediator/tls.crt",
                                                     "key": "/etc/remediator/tls.key"}}
    (tmp_path / "remediator.yaml").write_text(yaml.safe_dump(config))
    tmp_path.chmod(0o755)
    for path in tmp_path.iterdir():
        path.chmod(0o644)  # readable by the image's user
    volumes = {str(tmp_path): {"bind": "/etc/remediator", "mode": "ro"}}
    with running(client, tag, ["serve", "--config", "/etc/remediator/remediator.yaml"], volumes=volumes) as c:
        _wait_healthy(c)
        context = ssl.create_default_context(cadata=ca.cert_pem.bytes().decode())
        url = f"https://127.0.0.1:{port}/-/healthy"
        with urllib.request.urlopen(url, timeout=5, context=context) as resp:
            assert resp.status == 200
        log = c.attrs["State"]["Health"]["Log"][-1]
        assert (log["ExitCode"], log["Output"].strip()) == (0, f"https://127.0.0.1:{port}/health: ok")
