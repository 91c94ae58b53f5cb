"""``docker.restart`` and ``docker.diagnose`` against a real, private Docker engine.

The engine (``tests.support.dockerd``) is Debian's dockerd on its own socket, started once per
session; each test names its containers with its own prefix and force-removes them at the
end. Params, the allow-list and error classification are tables; the rest runs for real.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import docker
import pytest
import requests
from docker.errors import APIError, DockerException, NotFound
from docker.models.containers import Container

import remediations.docker.diagnose
from remediations.base import (
    ActionContext,
    InvalidParams,
    PermanentError,
    Plan,
    RemediationError,
    TargetNotAllowed,
    TemporaryError,
)
from remediations.docker.diagnose import DockerDiagnose
from remediations.docker.engine import DockerAction, engine_error
from remediations.docker.restart import DockerRestart
from remediations.targets import DockerTarget, HttpTarget
from rules.alert import Alert
from rules.templating import compile_value, render_value
from tests.support.dockerd import (
    IMAGE,
    Engine,
    remove_prefixed,
    wait_until,
)
from tests.support.sdkpool import SDK_CALLS

# PID 1 ignores SIGTERM unless it traps it: this one stops at once, as a real service would.
SERVICE = ["sh", "-c", "echo started; trap 'exit 0' TERM; sleep 3600 & wait"]
WAIT = 20.0  # seconds any real event in these tests may take, at most


def alert(**labels: str) -> Alert:
    return Alert(fingerprint="fp", status="firing", labels={"alertname": "ContainerDown", **labels},
                 annotations={}, starts_at=datetime(2026, 1, 1, tzinfo=UTC),
                 starts_at_raw="2026-01-01T00:00:00Z")


def context(target: DockerTarget | HttpTarget, **labels: str) -> ActionContext:
    return ActionContext(calls=SDK_CALLS,
                         decision_id="d", rule="r", alert=alert(**labels), target_name="compose",
                         target=target, dry_run=False)


def docker_target(url: str, pattern: str) -> DockerTarget:
    return DockerTarget(kind="docker", url=url, containers=pattern)


# --- the engine and per-test containers ---------------------------------------------------------


@pytest.fixture
def client(engine: Engine) -> Iterator[docker.DockerClient]:
    c = engine.client()
    yield c
    c.close()


@pytest.fixture
def prefix(client: docker.DockerClient) -> Iterator[str]:
    """A name prefix of this test's own; its containers are force-removed afterwards."""
    p = f"rdt{uuid.uuid4().hex[:8]}-"
    yield p
    remove_prefixed(client, p)


@pytest.fixture
def restart() -> Iterator[DockerRestart]:
    action = DockerRestart()
    yield action
    action.close()


@pytest.fixture
def diagnose() -> Iterator[DockerDiagnose]:
    action = DockerDiagnose()
    yield action
    action.close()


def run(client: docker.DockerClient, name: str, command: list[str] | None = None, **kwargs: Any) -> Container:
    return client.containers.run(IMAGE, command or SERVICE, name=name, detach=True, network_mode="none",
                                 **kwargs)


def state(client: docker.DockerClient, name: str) -> dict[str, Any]:
    found: dict[str, Any] = client.api.inspect_container(name)
    return {"id": found["Id"], "running": found["State"]["Running"],
            "started_at": found["State"]["StartedAt"]}


# --- params, allow-list, classification (pure) --------------------------------------------------


@pytest.mark.parametrize(("action", "raw"), [
    pytest.param(DockerRestart, {"container": "superset-web-1"}, id="restart-name"),
    pytest.param(DockerRestart, {"label": "com.docker.compose.service=superset-web"}, id="restart-label"),
    pytest.param(DockerRestart, {"label": "maintenance"}, id="restart-label-key-only"),
    pytest.param(DockerRestart, {"container": "ab", "timeout": 0, "max_containers": 20}, id="restart-bounds"),
    pytest.param(DockerDiagnose, {"container": "superset_web.1"}, id="diagnose-name"),
    pytest.param(DockerDiagnose, {"label": "app=web", "log_lines": 1000}, id="diagnose-max-lines"),
    pytest.param(DockerDiagnose, {"label": "app=web", "log_lines": 1}, id="diagnose-min-lines"),
])
def test_valid_params_are_accepted(action: type[DockerAction[Any]], raw: dict[str, Any]) -> None:
    """Names, labels and in-bounds numbers pass the schema."""
    action().parse_params(raw)


@pytest.mark.parametrize(("action", "raw", "field"), [
    pytest.param(DockerRestart, {}, "params", id="neither"),
    pytest.param(DockerRestart, {"container": "web", "label": "a=b"}, "params", id="both"),
    pytest.param(DockerRestart, {"container": "a"}, "container", id="one-char-name"),
    pytest.param(DockerRestart, {"container": "../web"}, "container", id="name-path"),
    pytest.param(DockerRestart, {"container": "web 1"}, "container", id="name-space"),
    pytest.param(DockerRestart, {"container": "web\n"}, "container", id="name-newline"),
    pytest.param(DockerRestart, {"container": "-web"}, "container", id="name-leading-dash"),
    pytest.param(DockerRestart, {"label": "a=b,c=d"}, "label", id="label-two-filters"),
    pytest.param(DockerRestart, {"label": "a=b c"}, "label", id="label-space"),
    pytest.param(DockerRestart, {"label": "=web"}, "label", id="label-no-key"),
    pytest.param(DockerRestart, {"label": "app="}, "label", id="label-empty-value"),
    pytest.param(DockerRestart, {"container": "web", "timeout": -1}, "timeout", id="timeout-negative"),
    pytest.param(DockerRestart, {"container": "web", "timeout": 121}, "timeout", id="timeout-too-long"),
    pytest.param(DockerRestart, {"label": "a", "max_containers": 0}, "max_containers", id="cap-zero"),
    pytest.param(DockerRestart, {"label": "a", "max_containers": 21}, "max_containers", id="cap-too-big"),
    pytest.param(DockerRestart, {"container": "web", "force": True}, "force", id="unknown-param"),
    pytest.param(DockerDiagnose, {"container": "web", "log_lines": 0}, "log_lines", id="lines-zero"),
    pytest.param(DockerDiagnose, {"container": "web", "log_lines": 1001}, "log_lines", id="lines-too-many"),
    pytest.param(DockerDiagnose, {"container": "web", "timeout": 5}, "timeout", id="diagnose-no-timeout"),
])
def test_invalid_params_are_refused(action: type[DockerAction[Any]], raw: dict[str, Any],
                                    field: str) -> None:
    """Bad params are InvalidParams naming the action and the field."""
    a = action()
    with pytest.raises(InvalidParams, match=rf"^{a.name}: {field}"):
        a.parse_params(raw)


@pytest.mark.parametrize(("name", "allowed"), [
    pytest.param("superset-web", True, id="match"),
    pytest.param("superset-worker-2", True, id="match-longer"),
    pytest.param("postgres", False, id="other"),
    pytest.param("xsuperset-web", False, id="not-anchored-start"),
    pytest.param("superset", False, id="pattern-needs-dash"),
])
def test_container_name_must_fully_match_the_pattern(name: str, allowed: bool) -> None:
    """check_allowed applies re.fullmatch of the target's pattern to the rendered name."""
    target = docker_target("unix:///nonexistent.sock", "superset-.*")
    action = DockerRestart()
    params = action.parse_params({"container": name})
    if allowed:
        action.check_allowed(context(target), params)
    else:
        with pytest.raises(TargetNotAllowed, match=name):
            action.check_allowed(context(target), params)


def test_label_form_is_left_to_plan_time_and_subject_names_the_object() -> None:
    """A label passes check_allowed (checked against real containers later); subject is the object."""
    target = docker_target("unix:///nonexistent.sock", "superset-.*")
    action = DockerDiagnose()
    by_label = action.parse_params({"label": "com.docker.compose.service=superset-web"})
    action.check_allowed(context(target), by_label)
    label_subject = "compose/label/com.docker.compose.service=superset-web"
    assert action.subject(context(target), by_label) == label_subject
    by_name = action.parse_params({"container": "superset-web-1"})
    assert action.subject(context(target), by_name) == "compose/container/superset-web-1"
    restart = DockerRestart()
    assert restart.subject(context(target), restart.parse_params({"container": "superset-web-1"})) \
        == "compose/container/superset-web-1"


@pytest.mark.parametrize("action", [DockerRestart, DockerDiagnose])
async def test_a_target_of_another_kind_is_a_permanent_error(action: type[DockerAction[Any]]) -> None:
    """A rule that points a docker action at an http target is refused, not retried."""
    a = action()
    params = a.parse_params({"container": "web-1"})
    ctx = context(HttpTarget(kind="http", base_url="http://svc:1"))
    with pytest.raises(PermanentError, match="needs a docker target") as caught:
        a.check_allowed(ctx, params)
    assert not isinstance(caught.value, TargetNotAllowed)
    with pytest.raises(PermanentError, match="needs a docker target"):
        await a.plan(ctx, params)


def _api_error(status: int) -> APIError:
    response = requests.Response()
    response.status_code = status
    return APIError("engine said no", response=response, explanation="boom")


def _wrapped_connection_error() -> DockerException:
    try:
        try:
            raise requests.exceptions.ConnectionError("refused")
        except requests.exceptions.ConnectionError as inner:
            raise DockerException("Error while fetching server API version: refused") from inner
    except DockerException as outer:
        return outer


@pytest.mark.parametrize(("exc", "kind"), [
    pytest.param(NotFound("404 No such container"), PermanentError, id="not-found"),
    pytest.param(_api_error(400), PermanentError, id="400"),
    pytest.param(_api_error(403), PermanentError, id="403"),
    pytest.param(_api_error(409), PermanentError, id="409-conflict"),
    pytest.param(_api_error(408), TemporaryError, id="408"),
    pytest.param(_api_error(429), TemporaryError, id="429"),
    pytest.param(_api_error(500), TemporaryError, id="500"),
    pytest.param(_api_error(503), TemporaryError, id="503"),
    pytest.param(APIError("no response"), TemporaryError, id="no-status"),
    pytest.param(requests.exceptions.ConnectionError("refused"), TemporaryError, id="connection"),
    pytest.param(requests.exceptions.ReadTimeout("slow"), TemporaryError, id="read-timeout"),
    pytest.param(requests.exceptions.ConnectTimeout("slow"), TemporaryError, id="connect-timeout"),
    pytest.param(ConnectionRefusedError(111, "refused"), TemporaryError, id="oserror"),
    pytest.param(_wrapped_connection_error(), TemporaryError, id="version-probe-unreachable"),
    pytest.param(DockerException("Invalid bind address format"), PermanentError, id="bad-url"),
])
def test_errors_are_classified(exc: BaseException, kind: type[RemediationError]) -> None:
    """404 and 4xx are permanent; 5xx, 408/429, timeouts and an unreachable engine are temporary."""
    classified = engine_error(exc, "docker.restart on compose")
    assert type(classified) is kind
    assert str(classified).startswith("docker.restart on compose: ")


# --- against the real engine ---------------------------------------------------------------------


async def test_restart_restarts_the_named_container_and_nothing_else(
    engine: Engine, client: docker.DockerClient, prefix: str, restart: DockerRestart,
) -> None:
    """The container keeps its id, gets a new StartedAt and runs; its neighbour is untouched."""
    run(client, f"{prefix}web-1")
    run(client, f"{prefix}web-2")
    before, neighbour = state(client, f"{prefix}web-1"), state(client, f"{prefix}web-2")
    ctx = context(docker_target(engine.url, f"{prefix}web-.*"))
    params = restart.parse_params({"container": f"{prefix}web-1", "timeout": 5})
    restart.check_allowed(ctx, params)
    plan = await restart.plan(ctx, params)
    result = await restart.execute(ctx, params, plan)

    after = state(client, f"{prefix}web-1")
    assert after["id"] == before["id"]
    assert after["running"]
    assert after["started_at"] != before["started_at"]
    assert result.details["containers"] == [{
        "name": f"{prefix}web-1", "id": before["id"], "state": "running",
        "started_at_before": before["started_at"], "started_at": after["started_at"],
    }]
    assert after["started_at"] in result.summary
    assert state(client, f"{prefix}web-2") == neighbour


async def test_restart_reads_back_whether_the_container_started_after_the_request(
    engine: Engine, client: docker.DockerClient, prefix: str, restart: DockerRestart,
) -> None:
    """read_back (a step found ``sending`` after a crash): StartedAt before the request went out,
    not done; a restart since, done; evidence names the container and its StartedAt."""
    run(client, f"{prefix}web-1")
    ctx = context(docker_target(engine.url, f"{prefix}web-.*"))
    params = restart.parse_params({"container": f"{prefix}web-1", "timeout": 1})
    plan = await restart.plan(ctx, params)
    sent_at = time.time()
    before = await restart.read_back(ctx, params, plan, since=sent_at)
    assert before is not None
    assert before.done is False
    await restart.execute(ctx, params, plan)
    after = await restart.read_back(ctx, params, plan, since=sent_at)
    assert after is not None
    assert after.done is True
    [seen] = after.evidence["containers"]
    assert seen["name"] == f"{prefix}web-1"
    assert seen["started_at"] == state(client, f"{prefix}web-1")["started_at"]


async def test_plan_lists_the_containers_and_changes_nothing(
    engine: Engine, client: docker.DockerClient, prefix: str, restart: DockerRestart,
) -> None:
    """plan() names each container with short id, state and start time; StartedAt stays the same."""
    run(client, f"{prefix}web-1", labels={"svc": "web"})
    before = state(client, f"{prefix}web-1")
    ctx = context(docker_target(engine.url, f"{prefix}web-.*"))
    plan = await restart.plan(ctx, restart.parse_params({"label": "svc=web", "timeout": 7}))

    short = before["id"][:12]
    assert plan.destructive
    assert plan.steps == (
        f"containers with label svc=web: {prefix}web-1",
        f"restart {prefix}web-1 (id {short}, running, started {before['started_at']}): "
        "SIGTERM, SIGKILL after 7s, then start",
    )
    assert plan.details["containers"] == [{"name": f"{prefix}web-1", "id": before["id"], "short_id": short,
                                           "state": "running", "started_at": before["started_at"]}]
    assert state(client, f"{prefix}web-1") == before


async def test_a_label_value_cannot_steer_the_restart_outside_the_pattern(
    engine: Engine, client: docker.DockerClient, prefix: str, restart: DockerRestart,
) -> None:
    """A name rendered from an alert label that the pattern disallows is refused; that container lives on."""
    run(client, f"{prefix}db")
    before = state(client, f"{prefix}db")
    ctx = context(docker_target(engine.url, f"{prefix}web-.*"), container=f"{prefix}db")
    rendered = render_value(compile_value({"container": "{{ labels.container }}"}), ctx.alert)
    params = restart.parse_params(rendered)
    assert params.container == f"{prefix}db"
    with pytest.raises(TargetNotAllowed, match=f"{prefix}db"):
        restart.check_allowed(ctx, params)
    # plan and execute check it again, so a caller that skipped check_allowed is refused too
    with pytest.raises(TargetNotAllowed):
        await restart.plan(ctx, params)
    assert state(client, f"{prefix}db") == before


async def test_restart_by_label_restarts_every_carrier_and_nothing_else(
    engine: Engine, client: docker.DockerClient, prefix: str, restart: DockerRestart,
) -> None:
    """Both containers with the label restart; one with another value of that label does not."""
    for name in ("web-1", "web-2"):
        run(client, f"{prefix}{name}", labels={"com.docker.compose.service": "superset-web"})
    run(client, f"{prefix}worker", labels={"com.docker.compose.service": "superset-worker"})
    before = {n: state(client, f"{prefix}{n}") for n in ("web-1", "web-2", "worker")}
    ctx = context(docker_target(engine.url, f"{prefix}.*"), service="superset-web")
    rendered = render_value(compile_value({"label": "com.docker.compose.service={{ labels.service }}",
                                           "max_containers": 2}), ctx.alert)
    params = restart.parse_params(rendered)
    plan = await restart.plan(ctx, params)
    result = await restart.execute(ctx, params, plan)

    assert [c["name"] for c in result.details["containers"]] == [f"{prefix}web-1", f"{prefix}web-2"]
    for name in ("web-1", "web-2"):
        after = state(client, f"{prefix}{name}")
        assert after["id"] == before[name]["id"]
        assert after["running"]
        assert after["started_at"] != before[name]["started_at"]
    assert state(client, f"{prefix}worker") == before["worker"]


async def test_a_label_that_chooses_a_disallowed_container_refuses_the_whole_restart(
    engine: Engine, client: docker.DockerClient, prefix: str, restart: DockerRestart,
) -> None:
    """Refused at plan, and at execute when the disallowed carrier appeared after the plan; none restarts."""
    run(client, f"{prefix}web-1", labels={"svc": "web"})
    before = state(client, f"{prefix}web-1")
    ctx = context(docker_target(engine.url, f"{prefix}web-.*"))
    params = restart.parse_params({"label": "svc=web", "max_containers": 5})
    plan = await restart.plan(ctx, params)  # only web-1 carries it yet

    run(client, f"{prefix}db", labels={"svc": "web"})
    db = state(client, f"{prefix}db")
    with pytest.raises(TargetNotAllowed, match=rf"container\(s\) {prefix}db outside"):
        await restart.plan(ctx, params)
    with pytest.raises(TargetNotAllowed, match=f"{prefix}db"):
        await restart.execute(ctx, params, plan)
    assert state(client, f"{prefix}web-1") == before
    assert state(client, f"{prefix}db") == db


async def test_diagnose_by_label_refuses_a_disallowed_carrier_and_caps_the_rest(
    engine: Engine, client: docker.DockerClient, prefix: str, diagnose: DockerDiagnose,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Diagnose reads no container outside the pattern; past its cap it names the ones it skipped."""
    monkeypatch.setattr(remediations.docker.diagnose, "_DIAGNOSE_MAX", 1)
    for name in ("web-1", "web-2", "db"):
        run(client, f"{prefix}{name}", labels={"svc": f"{prefix}web"})
    params = diagnose.parse_params({"label": f"svc={prefix}web"})
    with pytest.raises(TargetNotAllowed, match=rf"container\(s\) {prefix}db outside"):
        await diagnose.plan(context(docker_target(engine.url, f"{prefix}web-.*")), params)
    client.containers.get(f"{prefix}db").remove(force=True)
    ctx = context(docker_target(engine.url, f"{prefix}web-.*"))
    plan = await diagnose.plan(ctx, params)
    assert plan.steps[-1] == f"skip 1 more (at most 1 per diagnose): {prefix}web-2"
    result = await diagnose.execute(ctx, params, plan)
    assert [c["name"] for c in result.details["containers"]] == [f"{prefix}web-1"]
    assert result.details["omitted"] == [f"{prefix}web-2"]


async def test_a_label_choosing_more_than_max_containers_is_refused(
    engine: Engine, client: docker.DockerClient, prefix: str, restart: DockerRestart,
) -> None:
    """Two carriers and max_containers 1 (the default): a permanent refusal naming both."""
    for name in ("web-1", "web-2"):
        run(client, f"{prefix}{name}", labels={"svc": "web"})
    ctx = context(docker_target(engine.url, f"{prefix}web-.*"))
    with pytest.raises(PermanentError, match=r"chooses 2 containers .*max_containers=1") as caught:
        await restart.plan(ctx, restart.parse_params({"label": "svc=web"}))
    assert not isinstance(caught.value, TargetNotAllowed)


async def test_execute_refuses_when_the_container_was_replaced_since_the_plan(
    engine: Engine, client: docker.DockerClient, prefix: str, restart: DockerRestart,
) -> None:
    """A container recreated under the same name after approval is not restarted blindly."""
    run(client, f"{prefix}web-1")
    ctx = context(docker_target(engine.url, f"{prefix}web-.*"))
    params = restart.parse_params({"container": f"{prefix}web-1"})
    plan = await restart.plan(ctx, params)
    client.containers.get(f"{prefix}web-1").remove(force=True)
    run(client, f"{prefix}web-1")
    replaced = state(client, f"{prefix}web-1")
    with pytest.raises(PermanentError, match="changed since the plan"):
        await restart.execute(ctx, params, plan)
    assert state(client, f"{prefix}web-1") == replaced


@pytest.mark.parametrize("form", ["name", "id-prefix", "label"])
async def test_an_unknown_container_is_a_permanent_error(
    engine: Engine, client: docker.DockerClient, prefix: str, restart: DockerRestart,
    diagnose: DockerDiagnose, form: str,
) -> None:
    """No such name (an id prefix is not a name) or no carrier of the label: permanent, for both actions."""
    existing = run(client, f"{prefix}web-1")
    raw = {"name": {"container": f"{prefix}nothing"},
           "id-prefix": {"container": str(existing.id)[:12]},
           "label": {"label": f"{prefix}nothing"}}[form]
    ctx = context(docker_target(engine.url, ".*"))
    actions: tuple[DockerAction[Any], ...] = (restart, diagnose)
    for action in actions:
        with pytest.raises(PermanentError, match="no container") as caught:
            await action.plan(ctx, action.parse_params(raw))
        assert not isinstance(caught.value, (TargetNotAllowed, TemporaryError))


@pytest.mark.parametrize("url", [
    pytest.param("unix:///tmp/rd-missing/docker.sock", id="no-socket"),
    pytest.param("tcp://127.0.0.1:9", id="refused"),
])
async def test_an_unreachable_engine_is_a_temporary_error(
    url: str, restart: DockerRestart, diagnose: DockerDiagnose,
) -> None:
    """No engine behind the URL: temporary (the executor retries), and no broken client is cached."""
    ctx = context(docker_target(url, "web-.*"))
    actions: tuple[DockerAction[Any], ...] = (restart, diagnose)
    for action in actions:
        params = action.parse_params({"container": "web-1"})
        with pytest.raises(TemporaryError, match="engine unreachable"):
            await action.plan(ctx, params)
        with pytest.raises(TemporaryError, match="engine unreachable"):
            await action.execute(ctx, params, A_PLAN)
        assert action._clients == {}


A_PLAN = Plan(action="docker.restart", target="compose", steps=(), destructive=True,
              details={"containers": [{"name": "web-1", "id": "0" * 64}]})


async def test_one_client_per_engine_url(engine: Engine, client: docker.DockerClient, prefix: str,
                                         diagnose: DockerDiagnose) -> None:
    """Two targets on one engine URL share one cached client."""
    run(client, f"{prefix}web-1")
    params = diagnose.parse_params({"container": f"{prefix}web-1"})
    for pattern in (f"{prefix}web-.*", ".*"):
        await diagnose.plan(context(docker_target(engine.url, pattern)), params)
    assert list(diagnose._clients) == [engine.url]


async def test_diagnose_reads_state_logs_and_stats_of_a_running_container(
    engine: Engine, client: docker.DockerClient, prefix: str, diagnose: DockerDiagnose,
) -> None:
    """Last N log lines, restart count, no OOM, live memory and CPU; diagnosing changes nothing."""
    run(client, f"{prefix}web-1", ["sh", "-c", "seq 1 20; trap 'exit 0' TERM; sleep 3600 & wait"])
    container = client.containers.get(f"{prefix}web-1")
    wait_until(lambda: b"20\n" in container.logs(), "the 20th log line", WAIT)
    before = state(client, f"{prefix}web-1")
    ctx = context(docker_target(engine.url, f"{prefix}web-.*"))
    params = diagnose.parse_params({"container": f"{prefix}web-1", "log_lines": 5})
    plan = await diagnose.plan(ctx, params)
    assert not plan.destructive
    assert plan.steps == (f"inspect {prefix}web-1 (id {before['id'][:12]}, running, started "
                          f"{before['started_at']}), read its last 5 log lines and its memory and CPU stats",)
    result = await diagnose.execute(ctx, params, plan)

    [found] = result.details["containers"]
    assert [line.split(" ", 1)[1] for line in found["logs"]] == ["16", "17", "18", "19", "20"]
    assert found | {"logs": None, "stats": None} == {
        "name": f"{prefix}web-1", "id": before["id"], "short_id": before["id"][:12], "state": "running",
        "started_at": before["started_at"], "image": IMAGE, "running": True, "restarting": False,
        "restart_count": 0, "oom_killed": False, "exit_code": 0, "error": None,
        "finished_at": "0001-01-01T00:00:00Z", "health": None, "logs": None, "stats": None,
        "log_lines_read": 5,
    }
    assert found["stats"]["memory_usage_bytes"] > 0
    assert found["stats"]["memory_limit_bytes"] > 0
    assert found["stats"]["cpu_percent"] >= 0
    assert result.summary == f"{prefix}web-1: running, restarts 0, OOMKilled False, exit code 0"
    assert state(client, f"{prefix}web-1") == before


async def test_diagnose_reports_a_real_oom_kill(
    engine: Engine, client: docker.DockerClient, prefix: str, diagnose: DockerDiagnose,
) -> None:
    """A container that outgrows an 8 MiB memory limit is OOM-killed by the kernel; diagnose says so."""
    hog = run(client, f"{prefix}hog", ["sh", "-c", "echo filling; x=a; while true; do x=$x$x; done"],
              mem_limit="8m", memswap_limit="8m")
    outcome = hog.wait(timeout=WAIT)
    assert outcome["StatusCode"] == 137, outcome
    ctx = context(docker_target(engine.url, f"{prefix}hog"))
    params = diagnose.parse_params({"container": f"{prefix}hog"})
    plan = await diagnose.plan(ctx, params)
    assert plan.steps[0].endswith("read its last 50 log lines")  # no stats for a stopped container
    result = await diagnose.execute(ctx, params, plan)

    [found] = result.details["containers"]
    assert found["oom_killed"] is True, found
    assert (found["state"], found["running"], found["exit_code"]) == ("exited", False, 137)
    assert found["stats"] is None
    assert found["logs"][-1].endswith(" filling")
    assert result.summary == f"{prefix}hog: exited, restarts 0, OOMKilled True, exit code 137"
