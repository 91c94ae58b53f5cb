"""Logs and resource usage of pods, as ``kubernetes.diagnose`` reports them.

Used by ``remediations.kubernetes.diagnose`` only: :func:`read_logs` is ``kubectl logs
--tail=N`` (optionally ``| grep -iE PATTERN``) for each container of a few pods, and
:func:`usage` is ``kubectl top pods`` from metrics.k8s.io's PodMetrics, with each
container's memory as a share of its limit. Failures of either are recorded in the
findings (a container that has not started has no log; a cluster without metrics-server
has no metrics), never raised: evidence is gathered as far as it goes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from remediations.base import RemediationError
from remediations.kubernetes.calls import KubeApi
from remediations.quantity import parse_quantity

MAX_PODS_WITH_LOGS = 5  # pods whose containers' logs one diagnose reads (unhealthy first)
LOG_LINE_MAX = 2000  # characters kept of one log line
LOG_BYTES_MAX = 512 * 1024  # bytes the API server sends of one container's tail, at most


def _containers(pod: Mapping[str, Any]) -> list[str]:
    return [str(c.get("name")) for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name")]


def _restarted(pod: Mapping[str, Any], container: str) -> bool:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return any(s.get("name") == container and int(s.get("restartCount") or 0) > 0 for s in statuses)


def filter_lines(text: str, pattern: str | None, keep: int) -> tuple[list[str], int]:
    """The last ``keep`` lines (those matching ``pattern``, case-insensitive), cut to a length, and
    how many lines were read."""
    lines = text.splitlines()[-keep:]
    if pattern is not None:
        found = re.compile(pattern, re.IGNORECASE)
        chosen = [line for line in lines if found.search(line)]
    else:
        chosen = lines
    return [line[:LOG_LINE_MAX] for line in chosen], len(lines)


async def read_logs(api: KubeApi, namespace: str, pods: list[dict[str, Any]], *, lines: int,
                    pattern: str | None) -> list[dict[str, Any]]:
    """Each container's last ``lines`` log lines (and, after a restart, its previous instance's)."""
    found: list[dict[str, Any]] = []
    for pod in pods[:MAX_PODS_WITH_LOGS]:
        name = str((pod.get("metadata") or {}).get("name"))
        for container in _containers(pod):
            for previous in (False, True) if _restarted(pod, container) else (False,):
                entry: dict[str, Any] = {"pod": name, "container": container, "previous": previous}
                try:
                    text = await api.read_pod_log(namespace, name, container, tail_lines=lines,
                                                  limit_bytes=LOG_BYTES_MAX, previous=previous)
                except RemediationError as exc:
                    entry |= {"lines": [], "read": 0, "error": str(exc)}
                else:
                    kept, read = filter_lines(text, pattern, lines)
                    entry |= {"lines": kept, "read": read, "error": None}
                found.append(entry)
    return found


def _limits(pods: list[dict[str, Any]]) -> dict[tuple[str, str], Mapping[str, Any]]:
    return {(str(p["metadata"]["name"]), str(c.get("name"))): (c.get("resources") or {}).get("limits") or {}
            for p in pods for c in (p.get("spec") or {}).get("containers") or []}


def _millicores(text: str) -> int:
    return int((parse_quantity(text) * 1000).to_integral_value())


def usage(metrics: list[dict[str, Any]], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``kubectl top pods --containers`` for ``pods``: CPU millicores, memory bytes, share of limits."""
    wanted = {str(p["metadata"]["name"]) for p in pods}
    limits = _limits(pods)
    found = []
    for item in sorted(metrics, key=lambda m: str((m.get("metadata") or {}).get("name"))):
        pod = str((item.get("metadata") or {}).get("name"))
        if pod not in wanted:
            continue
        for c in item.get("containers") or []:
            used = c.get("usage") or {}
            try:
                cpu = _millicores(str(used.get("cpu", "0")))
                memory = int(parse_quantity(str(used.get("memory", "0"))))
            except ValueError:
                continue  # a quantity the API server would not have written
            limit = limits.get((pod, str(c.get("name"))), {})
            memory_limit = int(parse_quantity(str(limit["memory"]))) if "memory" in limit else None
            cpu_limit = _millicores(str(limit["cpu"])) if "cpu" in limit else None
            found.append({
                "pod": pod, "container": c.get("name"), "cpu_millicores": cpu, "memory_bytes": memory,
                "memory_limit_bytes": memory_limit, "cpu_limit_millicores": cpu_limit,
                "memory_percent_of_limit": round(memory / memory_limit * 100, 1) if memory_limit else None,
                "cpu_percent_of_limit": round(cpu / cpu_limit * 100, 1) if cpu_limit else None,
                "window": item.get("window"), "timestamp": item.get("timestamp"),
            })
    return found


def top_line(found: list[dict[str, Any]]) -> str:
    """The busiest container by memory, in a summary's words."""
    if not found:
        return "no metrics"
    top = max(found, key=lambda u: u["memory_bytes"])
    share = f" ({top['memory_percent_of_limit']}% of its limit)" if top["memory_percent_of_limit"] else ""
    mib = Decimal(top["memory_bytes"]) / 2**20
    return f"most memory: {top['pod']}/{top['container']} {mib:.0f}Mi{share}, {top['cpu_millicores']}m CPU"
