"""The store tests' private Redis Cluster: three masters started once per session, stopped by PID."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.redisnodes import start_cluster


@pytest.fixture(scope="session")
def cluster_url() -> Iterator[str]:
    """``redis+cluster://…`` of a three-master Redis Cluster on free ports (about 2 s to start)."""
    try:
        nodes = start_cluster()
    except (OSError, RuntimeError) as exc:
        pytest.fail(f"the private Redis Cluster could not start: {exc}")
    yield nodes.url
    nodes.stop()
