"""``Action.read_back`` of the actions that can tell whether a lost execution took effect: the real
``kubernetes`` client against the in-test API server (tests.support.kubeapi), every read asserted
read-only. Called by ``receiver.flow.guards.once`` for a step found ``sending`` after a crash;
docker.restart's read-back is tested with the other Docker actions (tests/remediations/test_docker.py)."""

from __future__ import annotations

import pytest

from remediations.kubernetes.rollout import RESTARTED_AT, KubernetesRolloutRestart
from remediations.kubernetes.scale import KubernetesScale
from tests.remediations.test_kubernetes import NOW, WEB, Cluster, kube, plan_only, roundtrip

__all__ = ["kube"]  # the fixture, used by name


@pytest.mark.parametrize(("now", "done"), [
    pytest.param(5, True, id="at-the-planned-count-done"),
    pytest.param(3, False, id="still-at-the-count-planned-from-not-done"),
    pytest.param(4, None, id="another-count-someone-else-changed-it"),
])
async def test_scale_reads_the_replicas_back(kube: Cluster, now: int, done: bool | None) -> None:
    kube.fake.add_deployment("prod", "web", replicas=3)
    action = kube.action(KubernetesScale)
    raw = {**WEB, "replicas": 5}
    plan = roundtrip(await plan_only(kube, action, raw))
    kube.fake.deployments["prod", "web"]["spec"]["replicas"] = now
    found = await action.read_back(kube.ctx(), action.parse_params(raw), plan, since=NOW.timestamp())
    assert found is not None
    assert found.done is done
    assert found.evidence == {"replicas_now": now, "planned_from": 3, "planned_to": 5}
    assert {r.method for r in kube.fake.requests} == {"GET"}


@pytest.mark.parametrize(("annotation", "since", "done"), [
    pytest.param(None, 0, False, id="never-restarted-not-done"),
    pytest.param("2026-03-01T12:30:05Z", 4.9, True, id="restarted-in-the-second-it-was-sent-done"),
    pytest.param("2026-03-01T12:30:05Z", -30, True, id="restarted-after-it-was-sent-done"),
    pytest.param("2026-03-01T12:30:05Z", 60, False, id="restarted-before-it-was-sent-not-done"),
    pytest.param("yesterday", 0, None, id="unreadable-cannot-tell"),
])
async def test_rollout_restart_reads_its_annotation_back(kube: Cluster, annotation: str | None, since: float,
                                                         done: bool | None) -> None:
    """The value execute would have written (to the second) against when the request went out."""
    kube.fake.add_deployment("prod", "web")
    action = kube.action(KubernetesRolloutRestart, now=lambda: NOW)
    plan = roundtrip(await plan_only(kube, action, WEB))
    if annotation is not None:
        template = kube.fake.deployments["prod", "web"]["spec"]["template"]
        template["metadata"].setdefault("annotations", {})[RESTARTED_AT] = annotation
    sent_at = NOW.timestamp() - 5 + since  # `since` seconds after 12:30:00
    found = await action.read_back(kube.ctx(), action.parse_params(WEB), plan, since=sent_at)
    assert found is not None
    assert found.done is done
    assert found.evidence[RESTARTED_AT] == annotation
    assert {r.method for r in kube.fake.requests} == {"GET"}


async def test_a_restart_read_back_after_executing_it_is_done(kube: Cluster) -> None:
    """What execute writes is what read_back recognises: before, not done; after, done."""
    kube.fake.add_deployment("prod", "web")
    action = kube.action(KubernetesRolloutRestart, now=lambda: NOW)
    params = action.parse_params(WEB)
    plan = roundtrip(await plan_only(kube, action, WEB))
    sent_at = NOW.timestamp() - 0.5
    before = await action.read_back(kube.ctx(), params, plan, since=sent_at)
    assert before is not None
    assert before.done is False
    await action.execute(kube.ctx(), params, plan)
    after = await action.read_back(kube.ctx(), params, plan, since=sent_at)
    assert after is not None
    assert after.done is True
