"""Private Redis servers for the Cluster and Sentinel tests: started on free ports, stopped by PID.

``start_cluster`` makes a three-master Redis Cluster (``redis-server --cluster-enabled yes``,
joined with ``redis-cli --cluster create``); ``start_sentinel`` a master, a replica and one
sentinel (quorum 1) watching them as service ``svc``. Each lives in a temp directory that
``Nodes.stop`` removes after killing every process it started. Debian's ``redis-server``
and ``redis-sentinel`` (installed by ``.ci/run`` when missing) are required.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

DEADLINE = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _until(check: object, what: str, deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            if check():  # type: ignore[operator]
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


@dataclass
class Nodes:
    """Redis processes of one test setup, by port; ``url`` is the state URL that reaches them."""

    root: Path
    url: str = ""
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    args: dict[int, list[str]] = field(default_factory=dict)

    def start(self, port: int, *args: str, program: str = "redis-server") -> None:
        """Start (or restart) the server of ``port`` with ``args`` (kept for a restart) and wait for PING."""
        self.args.setdefault(port, [program, *args])
        self.procs[port] = subprocess.Popen(self.args[port], cwd=self.root, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL)
        _until(lambda: self._running(port) and self.client(port).ping(), f"redis on port {port}")

    def _running(self, port: int) -> bool:
        if self.procs[port].poll() is not None:
            raise RuntimeError(f"{' '.join(self.args[port])} exited with {self.procs[port].returncode}")
        return True

    def client(self, port: int) -> Any:
        """A plain synchronous client (strings) on the server of ``port``."""
        return redis.Redis(port=port, socket_timeout=2, decode_responses=True, retry=Retry(NoBackoff(), 0))

    def kill(self, port: int) -> None:
        """SIGKILL the server of ``port`` (by its PID) and reap it."""
        proc = self.procs.pop(port)
        proc.kill()
        proc.wait(DEADLINE)

    def stop(self) -> None:
        for port in list(self.procs):
            self.kill(port)
        shutil.rmtree(self.root, ignore_errors=True)


def _server_args(port: int, root: Path, *extra: str) -> list[str]:
    (root / str(port)).mkdir(exist_ok=True)
    base = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(root / str(port)), "--repl-diskless-sync-delay", "0"]
    assert len(base) == _BASE_ARGS
    return [*base, *extra]


_BASE_ARGS = 12  # the arguments every server gets (a restart keeps them, drops the rest)


def start_cluster(masters: int = 3) -> Nodes:
    """A Redis Cluster of ``masters`` masters (no replicas), every slot covered."""
    nodes = Nodes(Path(tempfile.mkdtemp(prefix="redis-cluster-")))
    try:
        ports = [free_port() for _ in range(masters)]
        for port in ports:
            nodes.start(port, *_server_args(port, nodes.root, "--cluster-enabled", "yes",
                                            "--cluster-config-file", f"nodes-{port}.conf",
                                            "--cluster-port", str(free_port()),  # not port + 10000
                                            "--cluster-node-timeout", "2000"))
        subprocess.run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
                        "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=DEADLINE)
        for port in ports:
            _until(lambda p=port: "cluster_state:ok" in nodes.client(p).execute_command("CLUSTER", "INFO"),
                   f"cluster node {port} to see every slot covered")
        nodes.url = "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports[:2])
    except BaseException:
        nodes.stop()
        raise
    return nodes


@dataclass
class SentinelSet:
    """A master, a replica and one sentinel watching service ``svc``; ``url`` has ``replicas=1``."""

    nodes: Nodes
    data_ports: tuple[int, int]
    sentinel_port: int

    def master(self) -> int:
        """The port of the current master, as the sentinel says."""
        sentinel = self.nodes.client(self.sentinel_port)
        _, port = sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "svc")
        return int(port)

    def failover(self) -> int:
        """Ask the sentinel to fail over now; wait until the other server is master; its port."""
        old = self.master()
        self.nodes.client(self.sentinel_port).execute_command("SENTINEL", "FAILOVER", "svc")
        new = next(p for p in self.data_ports if p != old)
        _until(lambda: self._is_master(new), "the sentinel to promote the replica")
        return new

    def _is_master(self, port: int) -> bool:
        role: str = self.nodes.client(port).info("replication")["role"]
        return self.master() == port and role == "master"

    def kill_master(self) -> int:
        """SIGKILL the master (by PID); wait for the sentinel to promote the replica (about 2 s: it is
        declared down after 1 s); restart the killed server as its replica. The new master's port."""
        old = self.master()
        self.nodes.kill(old)
        new = next(p for p in self.data_ports if p != old)
        _until(lambda: self._is_master(new), "the sentinel to promote the replica after the kill")
        self.nodes.args[old] = [*self.nodes.args[old][:_BASE_ARGS + 1], "--replicaof", "127.0.0.1", str(new)]
        self.nodes.start(old)
        _until(self.replicating, "the restarted server to replicate")
        return new

    def replicating(self) -> bool:
        """Both servers up, the master with one replica in sync."""
        info = self.nodes.client(self.master()).info("replication")
        return bool(info["role"] == "master" and info["connected_slaves"] == 1
                    and info["slave0"]["state"] == "online")


def start_sentinel() -> SentinelSet:
    """A master and its replica (each ``redis-server``) and one ``redis-sentinel``, quorum 1."""
    nodes = Nodes(Path(tempfile.mkdtemp(prefix="redis-sentinel-")))
    try:
        master, replica, sentinel = free_port(), free_port(), free_port()
        nodes.start(master, *_server_args(master, nodes.root))
        nodes.start(replica, *_server_args(replica, nodes.root, "--replicaof", "127.0.0.1", str(master)))
        conf = nodes.root / "sentinel.conf"
        conf.write_text(f"port {sentinel}\nbind 127.0.0.1\ndir {nodes.root}\n"
                        f"sentinel monitor svc 127.0.0.1 {master} 1\n"
                        "sentinel down-after-milliseconds svc 1000\n"
                        "sentinel failover-timeout svc 4000\n")
        nodes.start(sentinel, str(conf), program="redis-sentinel")
        made = SentinelSet(nodes, (master, replica), sentinel)
        _until(made.replicating, "the replica to sync")
        _until(lambda: nodes.client(sentinel).execute_command("SENTINEL", "REPLICAS", "svc"),
               "the sentinel to find the replica")
        nodes.url = f"redis+sentinel://127.0.0.1:{sentinel}/svc/0?replicas=1"
    except BaseException:
        nodes.stop()
        raise
    return made
