"""Container images made from Debian's packages, for the tests that build and run the real
image and bring the Compose quick start up (``tests/deploy/test_image.py``,
``tests/deploy/test_compose.py``), in the private engine of ``tests.support.dockerd``.

No image registry is reachable here, so every image is made from Debian's packages, under
the name the Dockerfile or the compose file uses: a root filesystem by ``debootstrap
--variant=minbase`` from the mirror apt uses (the host's CA certificates added, as the
package index is reached through them), ``docker import``-ed as :data:`DEBIAN`; each
image of :data:`IMAGES` is then built on it by ``docker build --network host`` (the
engine has no bridge) with ``apt-get install`` of its packages: ``python:3.11-slim``
(python3, pip, a ``python`` link, Debian's EXTERNALLY-MANAGED marker removed),
``redis:7-alpine`` (redis-server), ``prom/prometheus:v2.42.0`` and
``prom/alertmanager:v0.25.0`` (Debian's prometheus and prometheus-alertmanager, the
versions the compose file names).

Building them takes about two minutes, so each is kept as a tar under
``~/.cache/remediator-tests/images`` (``$REMEDIATOR_TEST_CACHE``), keyed by a hash of
everything it is made from (the mirror, the packages, the CA certificates, its Dockerfile
text); a test loads the tar when present and builds (and stores) it when absent, so a
fresh machine works and a warm one skips the build. The images live in the private
engine only and go with it. ``.ci/run`` installs debootstrap.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import BuildError, ImageNotFound

DEBIAN = "remediator-test/debian:bookworm"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEBOOTSTRAP_DEADLINE = 900  # seconds
BUILD_TIMEOUT = 900  # seconds, for one docker build (the engine's HTTP call)
HOST_CAS = Path("/usr/local/share/ca-certificates")


@dataclass(frozen=True, slots=True)
class Spec:
    """One image made on :data:`DEBIAN`: its name, its packages and the rest of its Dockerfile."""

    name: str
    packages: tuple[str, ...]
    setup: str = "true"  # shell, run after the install
    tail: tuple[str, ...] = ()  # further Dockerfile lines (ENTRYPOINT, WORKDIR, USER...)

    def dockerfile(self) -> str:
        install = " ".join(self.packages)
        return "\n".join([
            f"FROM {DEBIAN}",
            "RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
            f"--no-install-recommends {install} >/dev/null && rm -rf /var/lib/apt/lists/* "
            f"/var/cache/apt/archives/*.deb && {self.setup}",
            *self.tail, "",
        ])


PYTHON = Spec("python:3.11-slim", ("python3", "python3-venv", "python3-pip"),
              setup="rm -f /usr/lib/python3*/EXTERNALLY-MANAGED "
                    "&& ln -s /usr/bin/python3 /usr/local/bin/python",
              tail=('CMD ["python3"]',))
# As the official image's entrypoint does: a redis-server started without a config file
# has protected mode off, so other containers on the compose network may connect.
REDIS = Spec("redis:7-alpine", ("redis-server",),
             setup="install -d -o redis -g redis /data && printf '%s\\n' '#!/bin/sh' "
                   "'if [ \"$1\" = redis-server ]; then shift; "
                   "exec redis-server --protected-mode no \"$@\"; fi' "
                   "'exec \"$@\"' > /usr/local/bin/docker-entrypoint.sh "
                   "&& chmod 755 /usr/local/bin/docker-entrypoint.sh",
             tail=("WORKDIR /data", "USER redis", 'ENTRYPOINT ["docker-entrypoint.sh"]',
                   'CMD ["redis-server"]'))
PROMETHEUS = Spec("prom/prometheus:v2.42.0", ("prometheus",),
                  setup="install -d -o nobody /prometheus /etc/prometheus",  # /bin is /usr/bin (merged /usr)
                  tail=("USER nobody", "WORKDIR /prometheus", 'ENTRYPOINT ["/bin/prometheus"]',
                        'CMD ["--config.file=/etc/prometheus/prometheus.yml", '
                        '"--storage.tsdb.path=/prometheus"]'))
ALERTMANAGER = Spec("prom/alertmanager:v0.25.0", ("prometheus-alertmanager",),
                    setup="ln -s prometheus-alertmanager /usr/bin/alertmanager "
                          "&& install -d -o nobody /alertmanager /etc/alertmanager",
                    tail=("USER nobody", "WORKDIR /alertmanager", 'ENTRYPOINT ["/bin/alertmanager"]',
                          'CMD ["--config.file=/etc/alertmanager/alertmanager.yml", '
                          '"--storage.path=/alertmanager"]'))
IMAGES = {spec.name: spec for spec in (PYTHON, REDIS, PROMETHEUS, ALERTMANAGER)}


class ImageUnavailable(RuntimeError):
    """An image could not be made here; the message carries the tool's own words."""


def cache_dir() -> Path:
    root = Path(os.environ.get("REMEDIATOR_TEST_CACHE") or Path.home() / ".cache" / "remediator-tests")
    path = root / "images"
    path.mkdir(parents=True, exist_ok=True)
    return path


def mirror() -> str:
    """The Debian mirror apt uses on this host (``URIs:`` of a deb822 source, or a ``deb`` line)."""
    sources = sorted(Path("/etc/apt").glob("sources.list.d/*.sources"))
    for path in sources:
        for block in path.read_text(errors="replace").split("\n\n"):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", block, re.MULTILINE))
            if SUITE in fields.get("Suites", "").split() and "deb" in fields.get("Types", "deb").split():
                return str(fields.get("URIs", DEFAULT_MIRROR)).split()[0].rstrip("/")
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt").glob("sources.list.d/*.list"))]:
        if path.is_file():
            for m in re.finditer(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", path.read_text(errors="replace"),
                                 re.MULTILINE):
                if m.group(2) == SUITE:
                    return m.group(1).rstrip("/")
    return DEFAULT_MIRROR


def _host_cas() -> list[Path]:
    return sorted(HOST_CAS.glob("*.crt")) if HOST_CAS.is_dir() else []


def _key(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def base_key() -> str:
    return _key("debootstrap minbase", SUITE, mirror(), "ca-certificates",
                *(p.read_bytes() for p in _host_cas()))


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    """One builder of a cache entry at a time (other test runs on this machine wait)."""
    with (cache_dir() / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _debootstrap(target: Path) -> None:
    tool = shutil.which("debootstrap") or shutil.which("debootstrap", path="/usr/sbin:/sbin")
    if tool is None:
        raise ImageUnavailable("debootstrap is not installed (.ci/run installs Debian debootstrap)")
    rootfs = target / "rootfs"
    try:
        done = subprocess.run(
            [tool, "--variant=minbase", "--include=ca-certificates", SUITE, str(rootfs), mirror()],
            capture_output=True, text=True, timeout=DEBOOTSTRAP_DEADLINE, check=False)
    except subprocess.TimeoutExpired:
        raise ImageUnavailable(f"debootstrap took over {DEBOOTSTRAP_DEADLINE}s") from None
    if done.returncode != 0:
        output = done.stdout[-2000:] + done.stderr[-2000:]
        raise ImageUnavailable(f"debootstrap failed ({done.returncode}):\n{output}")
    cas = _host_cas()
    for ca in cas:
        shutil.copy(ca, rootfs / "usr/local/share/ca-certificates" / ca.name)
    if cas:
        subprocess.run(["chroot", str(rootfs), "update-ca-certificates"], capture_output=True, check=True,
                       timeout=120)
    for leftover in (rootfs / "var/cache/apt/archives").glob("*.deb"):
        leftover.unlink()


def _base_tar() -> Path:
    """The cached root filesystem tar of :data:`DEBIAN`, made by debootstrap when absent."""
    tar = cache_dir() / f"debian-{SUITE}-{base_key()}.rootfs.tar"
    with _locked("debian"):
        if tar.is_file():
            return tar
        work = Path(tempfile.mkdtemp(prefix="rd-rootfs-", dir="/tmp"))
        try:
            _debootstrap(work)
            partial = tar.with_suffix(".partial")
            subprocess.run(["tar", "-C", str(work / "rootfs"), "-cf", str(partial), "."], check=True,
                           capture_output=True, timeout=300)
            partial.replace(tar)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return tar


def _has(client: docker.DockerClient, name: str) -> bool:
    try:
        client.images.get(name)
    except ImageNotFound:
        return False
    return True


def ensure_debian(client: docker.DockerClient) -> None:
    if _has(client, DEBIAN):
        return
    repository, tag = DEBIAN.rsplit(":", 1)
    client.api.import_image_from_file(str(_base_tar()), repository=repository, tag=tag)


def _spec_tar(spec: Spec) -> Path:
    slug = re.sub(r"[^A-Za-z0-9.-]+", "_", spec.name)
    return cache_dir() / f"{slug}-{_key(base_key(), spec.dockerfile())}.image.tar"


def build(client: docker.DockerClient, *, path: Path, dockerfile: str, tag: str,
          fileobj: io.BytesIO | None = None) -> None:
    """``docker build --network host`` (the engine has no bridge), failing with the build's log."""
    try:
        if fileobj is not None:
            client.images.build(fileobj=fileobj, tag=tag, network_mode="host", rm=True, forcerm=True,
                                timeout=BUILD_TIMEOUT)
        else:
            client.images.build(path=str(path), dockerfile=dockerfile, tag=tag, network_mode="host", rm=True,
                                forcerm=True, timeout=BUILD_TIMEOUT)
    except BuildError as exc:
        log = "".join(str(chunk.get("stream") or chunk.get("error") or "") for chunk in exc.build_log)
        raise ImageUnavailable(f"docker build of {tag} failed: {exc.msg}\n{log[-4000:]}") from None


def ensure_image(client: docker.DockerClient, name: str) -> None:
    """Make image ``name`` of :data:`IMAGES` in this engine: from the cache, else built (and cached)."""
    if _has(client, name):
        return
    spec = IMAGES[name]
    tar = _spec_tar(spec)
    with _locked(tar.name.rsplit("-", 1)[0]):
        if not tar.is_file():
            ensure_debian(client)
            build(client, path=Path("."), dockerfile="", tag=name,
                  fileobj=io.BytesIO(spec.dockerfile().encode()))
            partial = tar.with_suffix(".partial")
            with partial.open("wb") as out:
                for chunk in client.api.get_image(name):
                    out.write(chunk)
            partial.replace(tar)
            for stale in tar.parent.glob(f"{tar.name.rsplit('-', 1)[0]}-*.image.tar"):
                if stale != tar:  # made from inputs that have changed since: never loaded again
                    stale.unlink(missing_ok=True)
            return
    with tar.open("rb") as data:
        client.api.load_image(data)  # type: ignore[no-untyped-call]
