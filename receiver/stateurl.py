"""What a Redis ``state:`` URL names: one server, a Redis Cluster, or a master watched by Sentinel.

Pure parsing, no I/O and no password in any message (:func:`redacted` is the form logs and
``config check`` show). ``receiver.settings.Settings`` checks ``state`` with it (so ``config
check`` names a bad URL before anything connects) and ``receiver.store.redis.core.RedisCore``
builds its clients from what it returns. Forms:

- ``redis://[user:password@]host:port/db`` (``rediss://`` for TLS, ``unix:///path?db=N``):
  one server;
- ``redis+cluster://[user:password@]host:port,host:port…`` (``rediss+cluster://``): a Redis
  Cluster, found from any of the nodes listed (database 0 only);
- ``redis+sentinel://[user:password@]host:port,host:port…/service[/db]``
  (``rediss+sentinel://``): the master the sentinels listed name ``service``; the
  credentials and TLS are the master's, ``sentinel_password=`` authenticates to the sentinels.

Query options are redis-py's (``ssl_ca_certs=``, ``ssl_cert_reqs=``, ``password=`` …) plus
``replicas=N`` (one server or Sentinel): a write is answered only once N replicas hold it
(``WAIT``), so a failover cannot lose what the store said was done.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

DEFAULT_PORT = 6379
SENTINEL_PORT = 26379
_OURS = ("replicas", "sentinel_password")
_USERINFO_PASSWORD = re.compile(r"(?<=://)([^:@/]*):[^@]*@")
_QUERY_PASSWORD = re.compile(r"(password=)[^&#]*")  # password= and sentinel_password=


def redacted(url: str) -> str:
    """``url`` with its passwords (user info, ``password=``, ``sentinel_password=``) as ``***``:
    what logs, errors and ``config check`` may show."""
    return _QUERY_PASSWORD.sub(r"\1***", _USERINFO_PASSWORD.sub(r"\1:***@", url))


@dataclass(frozen=True)
class RedisUrl:
    """A parsed Redis state URL: what to connect to and how (see the module's forms)."""

    kind: str  # "server", "cluster" or "sentinel"
    url: str  # what redis-py reads: redis[s]:// or unix:// with credentials, db, its own options
    nodes: tuple[tuple[str, int], ...]  # cluster nodes or sentinels to start from; () for a server
    service: str = ""  # the Sentinel service name
    replicas: int = 0  # WAIT for this many replicas after every write
    sentinel_password: str = ""


def _split_query(query: str) -> tuple[str, dict[str, str]]:
    """The query without our own options, and our options."""
    kept, ours = [], {}
    for piece in query.split("&") if query else []:
        name, _, value = piece.partition("=")
        if name in _OURS:
            ours[name] = unquote(value)
        else:
            kept.append(piece)
    return "&".join(kept), ours


def _node(text: str, default_port: int) -> tuple[str, int]:
    if text.startswith("["):  # [ipv6]:port
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = text.partition(":")
    if not host or (port and not port.isdigit()) or not 0 < int(port or default_port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host, int(port or default_port)


def _replicas(ours: dict[str, str]) -> int:
    value = ours.get("replicas", "0")
    if not value.isdigit() or int(value) > 100:
        raise ValueError("replicas= must be a number of replicas (0 to 100)")
    return int(value)


def parse_redis_url(url: str) -> RedisUrl:
    """The Redis a ``state:`` URL names; ValueError (saying what is wrong, never the password) if none."""
    scheme, sep, rest = url.partition("://")
    base, _, mode = scheme.partition("+")
    if not sep or base not in ("redis", "rediss", "unix") or mode not in ("", "cluster", "sentinel") \
            or (base == "unix" and mode):
        raise ValueError("a Redis state URL is redis[s]://HOST:PORT/DB, unix:///PATH, "
                         "redis[s]+cluster://HOST:PORT,HOST:PORT… or "
                         "redis[s]+sentinel://HOST:PORT,HOST:PORT…/SERVICE[/DB]")
    rest, _, fragment = rest.partition("#")
    rest, _, query = rest.partition("?")
    query, ours = _split_query(query)
    suffix = f"?{query}" if query else ""
    if fragment:
        raise ValueError("a Redis state URL has no #fragment")
    if not mode:
        return RedisUrl("server", f"{base}://{rest}{suffix}", (), replicas=_replicas(ours))
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if not hosts:
        raise ValueError(f"a {scheme}:// URL lists at least one HOST:PORT")
    nodes = tuple(_node(h, SENTINEL_PORT if mode == "sentinel" else DEFAULT_PORT) for h in hosts.split(","))
    first = f"{base}://{userinfo}{at}{hosts.split(',')[0]}"
    if mode == "cluster":
        if path not in ("", "0"):
            raise ValueError("a Redis Cluster has only database 0: no /DB other than /0")
        if "replicas" in ours:
            raise ValueError("replicas= is for one server or Sentinel, not a Redis Cluster")
        return RedisUrl("cluster", f"{first}/0{suffix}", nodes)
    service, _, db = path.partition("/")
    if not service or (db and not db.isdigit()) or "/" in db:
        raise ValueError("a redis+sentinel:// URL names the service after the hosts: …/SERVICE[/DB]")
    return RedisUrl("sentinel", f"{first}/{db or 0}{suffix}", nodes, service=unquote(service),
                    replicas=_replicas(ours), sentinel_password=ours.get("sentinel_password", ""))
