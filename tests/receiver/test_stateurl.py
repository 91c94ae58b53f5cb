"""Redis state URLs: the forms read (one server, Cluster, Sentinel), the ones refused, and how settings
(and so ``config check``) report a bad one without its password."""

from __future__ import annotations

import pytest

from receiver.errors import ConfigError
from receiver.settings import settings_from_mapping
from receiver.stateurl import RedisUrl, parse_redis_url


@pytest.mark.parametrize(("url", "parsed"), [
    pytest.param("redis://127.0.0.1:6379/0", RedisUrl("server", "redis://127.0.0.1:6379/0", ()), id="server"),
    pytest.param("rediss://u:pw@h:6380/2?ssl_cert_reqs=none&replicas=1",
                 RedisUrl("server", "rediss://u:pw@h:6380/2?ssl_cert_reqs=none", (), replicas=1),
                 id="server-tls-replicas"),
    pytest.param("unix:///run/redis.sock?db=3", RedisUrl("server", "unix:///run/redis.sock?db=3", ()),
                 id="unix-socket"),
    pytest.param("redis+cluster://10.0.0.1:7000,10.0.0.2:7001",
                 RedisUrl("cluster", "redis://10.0.0.1:7000/0", (("10.0.0.1", 7000), ("10.0.0.2", 7001))),
                 id="cluster"),
    pytest.param("rediss+cluster://:pw@[::1]:7000,h2/0?ssl_ca_certs=/ca.pem",
                 RedisUrl("cluster", "rediss://:pw@[::1]:7000/0?ssl_ca_certs=/ca.pem",
                          (("::1", 7000), ("h2", 6379))), id="cluster-tls-ipv6-default-port"),
    pytest.param("redis+sentinel://s1:26379,s2/mymaster/4?replicas=1&sentinel_password=spw",
                 RedisUrl("sentinel", "redis://s1:26379/4", (("s1", 26379), ("s2", 26379)),
                          service="mymaster", replicas=1, sentinel_password="spw"), id="sentinel"),
    pytest.param("rediss+sentinel://u:pw@s1:5000/svc",
                 RedisUrl("sentinel", "rediss://u:pw@s1:5000/0", (("s1", 5000),), service="svc"),
                 id="sentinel-tls-db-0"),
])
def test_state_urls_read(url: str, parsed: RedisUrl) -> None:
    """Each form gives the kind, redis-py's URL (credentials, db, its own options) and the nodes."""
    assert parse_redis_url(url) == parsed


@pytest.mark.parametrize(("url", "message"), [
    pytest.param("redis+memcached://h:1", "a Redis state URL is", id="unknown-mode"),
    pytest.param("unix+cluster:///s", "a Redis state URL is", id="unix-cluster"),
    pytest.param("redis+cluster://", "at least one HOST:PORT", id="cluster-no-hosts"),
    pytest.param("redis+cluster://h:notaport", "'h:notaport' is not HOST:PORT", id="cluster-bad-port"),
    pytest.param("redis+cluster://h:70000", "is not HOST:PORT", id="cluster-port-range"),
    pytest.param("redis+cluster://h:7000/3", "only database 0", id="cluster-db"),
    pytest.param("redis+cluster://h:7000?replicas=1", "not a Redis Cluster", id="cluster-replicas"),
    pytest.param("redis+sentinel://s:26379", "names the service", id="sentinel-no-service"),
    pytest.param("redis+sentinel://s:26379/svc/x", "names the service", id="sentinel-bad-db"),
    pytest.param("redis://h/0?replicas=many", "replicas= must be a number", id="replicas-not-a-number"),
    pytest.param("redis://h/0#frag", "no #fragment", id="fragment"),
])
def test_bad_state_urls_say_why(url: str, message: str) -> None:
    """A URL of no supported form is a ValueError saying what is expected."""
    with pytest.raises(ValueError, match=message):
        parse_redis_url(url)


@pytest.mark.parametrize("url", [
    "redis+cluster://:s3cretpw@h:7000/5",
    "redis+sentinel://u:s3cretpw@s:26379",
    "redis+sentinel://s:26379/svc?sentinel_password=s3cretpw&replicas=x",
])
def test_settings_refuse_a_bad_url_without_its_password(url: str) -> None:
    """``state:`` is checked when the config is read (``config check``); the message names ``state``
    and never the password."""
    with pytest.raises(ConfigError) as info:
        settings_from_mapping({"state": url})
    assert "state:" in str(info.value)
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize("url", ["redis+cluster://h1:7000,h2:7001", "rediss+sentinel://h:26379/svc/1?replicas=1",
                                 "unix:///run/redis.sock"])
def test_settings_accept_cluster_and_sentinel_urls(url: str) -> None:
    assert settings_from_mapping({"state": url}).state == url
