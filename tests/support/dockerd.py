"""A private Docker engine for the Docker action tests, and the busybox image they run.

Used by ``tests/remediations/test_docker.py`` (a session fixture starts one engine and
stops it at the end). The engine is Debian's ``dockerd`` with its own socket, data root,
exec root and PID file under one short temp dir (a unix socket path must stay under 108
bytes), no bridge, no iptables: containers run on network ``none``. No registry is
reachable, so the image is made by ``docker import`` (the Engine API's
``POST /images/create?fromSrc=-``) of a tar holding ``/bin/busybox`` (Debian's
``busybox-static``) and its applet links. ``.ci/run`` installs both packages.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker
import requests
from docker.errors import DockerException

BUSYBOX = Path("/bin/busybox")
IMAGE = "remediator-test/busybox:1"
APPLETS = ("sh", "sleep", "echo", "head", "tail", "cat", "true", "seq")
START_DEADLINE = 30.0  # seconds for dockerd to answer /_ping
STOP_DEADLINE = 20.0  # seconds after SIGTERM before SIGKILL


class EngineUnavailable(RuntimeError):
    """dockerd could not be started here; the message carries its own words."""


@dataclass(frozen=True, slots=True)
class Engine:
    """One running private engine."""

    url: str
    root: Path
    process: subprocess.Popen[bytes]

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.url, version="auto", timeout=30)


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start_engine() -> Engine:
    """Start dockerd in a fresh temp dir and wait (bounded) until it answers on its socket."""
    dockerd = shutil.which("dockerd") or shutil.which("dockerd", path="/usr/sbin:/sbin")
    if dockerd is None:
        raise EngineUnavailable("dockerd is not installed (Debian package docker.io)")
    root = Path(tempfile.mkdtemp(prefix="rd-", dir="/tmp"))
    sock = root / "docker.sock"
    log = root / "dockerd.log"
    args = [
        dockerd, "--bridge=none", "--iptables=false", "--ip-forward=false",
        "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
        "--pidfile", str(root / "pid"), "-H", f"unix://{sock}",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    engine = Engine(url=f"unix://{sock}", root=root, process=process)
    deadline = time.monotonic() + START_DEADLINE
    while True:
        if process.poll() is not None:
            stop_engine(engine)
            raise EngineUnavailable(f"dockerd exited with {process.returncode}:\n{_log_tail(log)}")
        if sock.exists():
            with contextlib.suppress(DockerException, requests.exceptions.RequestException):
                client = docker.DockerClient(base_url=engine.url, version="auto", timeout=5)
                try:
                    if client.ping():
                        return engine
                finally:
                    client.close()
        if time.monotonic() > deadline:
            log_text = _log_tail(log)
            stop_engine(engine)
            raise EngineUnavailable(f"dockerd did not answer within {START_DEADLINE}s:\n{log_text}")
        time.sleep(0.1)


def _unmount_under(root: Path) -> None:
    """Lazily unmount whatever a killed engine left mounted under ``root`` (deepest first)."""
    try:
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    except OSError:
        return
    for point in sorted((m for m in mounts if m.startswith(f"{root}/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


def stop_engine(engine: Engine) -> None:
    """Stop the engine by its PID (SIGTERM, then SIGKILL after a deadline) and remove its dirs."""
    process = engine.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_DEADLINE)
    _unmount_under(engine.root)
    shutil.rmtree(engine.root, ignore_errors=True)


def _is_static(binary: Path) -> bool:
    """A dynamically linked ELF names its loader (``ld-linux…``) near the start of the file."""
    with binary.open("rb") as f:
        head = f.read(4096)
    return b"/ld-linux" not in head and b"/ld-musl" not in head


def import_busybox(client: docker.DockerClient, image: str = IMAGE) -> str:
    """Make the busybox image by ``docker import`` of a tar of ``/bin/busybox`` and its links."""
    if not BUSYBOX.is_file() or not os.access(BUSYBOX, os.X_OK):
        raise EngineUnavailable(f"{BUSYBOX} is missing (Debian package busybox-static)")
    if not _is_static(BUSYBOX):
        raise EngineUnavailable(f"{BUSYBOX} is dynamically linked: install busybox-static, not busybox")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(BUSYBOX, arcname="bin/busybox")
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
        tmp = tarfile.TarInfo("tmp")
        tmp.type = tarfile.DIRTYPE
        tmp.mode = 0o1777
        tar.addfile(tmp)
    repository, tag = image.rsplit(":", 1)
    client.api.import_image_from_data(buf.getvalue(), repository=repository, tag=tag)
    return image


def wait_until(check: Callable[[], bool], what: str, seconds: float) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {seconds}s")
        time.sleep(0.05)


def remove_prefixed(client: docker.DockerClient, prefix: str) -> None:
    """Force-remove every container whose name starts with ``prefix`` (a test's own)."""
    mine = client.containers.list(all=True, filters={"name": f"^/?{re.escape(prefix)}"}, ignore_removed=True)
    for container in mine:
        if (container.name or "").startswith(prefix):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
