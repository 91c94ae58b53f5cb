"""No secret in any log line, audit record or answer, whatever the service goes through.

One ``remediator serve`` runs with every secret the config can hold as a reference, each a
distinctive string: tokens and a basic-auth password, the state URL (a Redis with a
password, given as ``env:``), an http target's header, a webhook notifier's URL and header,
the console's session secret. It then meets what makes services log: wrong credentials,
a webhook that acts on the target (an endpoint that echoes every header back, and a
notifier that answers 500 with the same echo), ``/ready`` asked by an admin, its Redis
killed and started again, a reload, SIGTERM. Each secret is one row: it must appear in
none of serve's output, the audit log, or any answer a client got.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.error import HTTPError, URLError

import pytest
import redis

from tests.conftest import HIGH_CPU_BODY
from tests.support.redisnodes import free_port
from tests.support.serveproc import listening_url, reap

SECRETS = {
    "webhook-token": "wh-6f1e0c2a9b7d4e35",
    "admin-token": "ad-2c8b5e1f7a0d9c46",
    "basic-password": "bp-Yq3!rT8#mK1z",
    "state-password": "st-pw-41d9e7c05ab2",
    "target-header": "Bearer tg-93a0e6d2c7f1b845",
    "notifier-url-token": "nt-url-0b5f3e9c1d7a",
    "notifier-header": "nt-hd-7e2c4a9f0b1d",
    "console-session": "cs-5a8d1f3b9e0c7264",
}
ENV = {
    "HOSTILE_WEBHOOK_TOKEN": SECRETS["webhook-token"], "HOSTILE_ADMIN_TOKEN": SECRETS["admin-token"],
    "HOSTILE_BASIC_PASSWORD": SECRETS["basic-password"], "HOSTILE_TARGET_AUTH": SECRETS["target-header"],
    "HOSTILE_NOTIFIER_HEADER": SECRETS["notifier-header"], "HOSTILE_SESSION": SECRETS["console-session"],
}
RULES = """rules:
  - name: cache-flush
    match: ['alertname = "HighCPU"', 'deployment =~ ".+"']
    approval: auto
    actions:
      - action: http.request
        target: api
        params: {method: POST, path: /cache/flush, expect_status: [200]}
      - action: notify.webhook
        params: {notifier: hook, text: "flushed {{ labels.deployment }}"}
"""


class _Echo(http.server.BaseHTTPRequestHandler):
    """Answers every request with its own headers: the worst a target can do with a secret."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        body = json.dumps({"path": self.path, "headers": dict(self.headers)}).encode()
        self.send_response(500 if self.path.startswith("/hook") else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@dataclass
class Seen:
    """Everything the run produced that a secret must not be in."""

    output: str
    audit: str
    answers: str


def _call(url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None) -> str:
    request = urllib.request.Request(url, data=data, headers=headers or {},
                                     method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=15) as resp:
            return f"{resp.status} {resp.read().decode()}"
    except HTTPError as exc:
        return f"{exc.code} {exc.read().decode()}"
    except URLError as exc:
        return f"error {exc}"


def _redis(port: int, root: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(root),
                             "--requirepass", SECRETS["state-password"]],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port, password=SECRETS["state-password"], socket_timeout=1)
    end = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.RedisError:
            assert time.monotonic() < end, "redis did not start"
            time.sleep(0.05)
    client.close()
    return proc


@pytest.fixture(scope="module")
def seen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seen]:
    tmp = tmp_path_factory.mktemp("secrets")
    echo = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    echo_url = f"http://127.0.0.1:{echo.server_address[1]}"
    port = free_port()
    store = _redis(port, tmp)
    (tmp / "rules.yaml").write_text(RULES)
    (tmp / "basic").write_text(SECRETS["basic-password"] + "\n")
    env = {**os.environ, **ENV, "PYTHONUNBUFFERED": "1",
           "HOSTILE_STATE": f"redis://:{SECRETS['state-password']}@127.0.0.1:{port}/0",
           "HOSTILE_NOTIFIER_URL": f"{echo_url}/hook?token={SECRETS['notifier-url-token']}"}
    (tmp / "remediator.yaml").write_text(json.dumps({
        "dry_run": False, "state": "env:HOSTILE_STATE", "state_prefix": f"hostile-{port}",
        "audit": str(tmp / "audit.jsonl"), "rules": [str(tmp / "rules.yaml")],
        "auth": {"tokens": [{"name": "am", "role": "webhook", "token": "env:HOSTILE_WEBHOOK_TOKEN"},
                            {"name": "boss", "role": "admin", "token": "env:HOSTILE_ADMIN_TOKEN"}],
                 "basic": [{"username": "oncall", "role": "approver", "password": f"file:{tmp / 'basic'}"}]},
        "targets": {"api": {"kind": "http", "base_url": echo_url,
                            "headers": {"Authorization": "env:HOSTILE_TARGET_AUTH"}}},
        "notifiers": {"hook": {"kind": "webhook", "url": "env:HOSTILE_NOTIFIER_URL",
                               "headers": {"X-Token": "env:HOSTILE_NOTIFIER_HEADER"}}},
        "console": {"session_secret": "env:HOSTILE_SESSION"},
        "guards": {"retries": 0},
    }))
    proc = subprocess.Popen([sys.executable, "-m", "receiver", "serve", "--config",
                             str(tmp / "remediator.yaml"), "--listen", "127.0.0.1:0"],
                            cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    answers: list[str] = []
    try:
        url, lines = listening_url(proc)
        rest: list[str] = []
        reader = threading.Thread(target=lambda: rest.extend(proc.stdout or []), daemon=True)
        reader.start()
        json_headers = {"Content-Type": "application/json"}
        wrong_basic = base64.b64encode(f"oncall:{SECRETS['basic-password']}x".encode()).decode()
        answers.extend(_call(f"{url}/webhook", data=HIGH_CPU_BODY,
                             headers={**json_headers, "Authorization": authorization})
                       for authorization in (f"Bearer {SECRETS['webhook-token']}x", f"Basic {wrong_basic}",
                                             f"Bearer {SECRETS['admin-token'][::-1]}", "Bearer "))
        answers.append(_call(f"{url}/webhook", data=HIGH_CPU_BODY,
                             headers={**json_headers, "Authorization": f"Bearer {SECRETS['webhook-token']}"}))
        time.sleep(2.0)  # real time: the workers run the http.request and the notifier
        admin = {"Authorization": f"Bearer {SECRETS['admin-token']}"}
        answers.append(_call(f"{url}/ready", headers=admin))
        store.kill()
        store.wait(10)
        answers.append(_call(f"{url}/ready", headers=admin))
        answers.append(_call(f"{url}/api/v1/approvals", headers=admin))
        answers.append(_call(f"{url}/webhook", data=HIGH_CPU_BODY.replace(b"HighCPU", b"Other"),
                             headers={**json_headers, **admin}))
        store = _redis(port, tmp)
        answers.append(_call(f"{url}/-/reload", data=b"", headers=admin))
        answers.append(_call(f"{url}/metrics"))
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        reader.join(timeout=10)
        yield Seen("".join(lines + rest), (tmp / "audit.jsonl").read_text(), "\n".join(answers))
    finally:
        reap(proc)
        store.kill()
        store.wait(10)
        echo.shutdown()
        echo.server_close()


def test_the_run_did_what_it_should(seen: Seen) -> None:
    """The scenario is real: the action reached the echo, the notifier failed, the store went away."""
    assert "action.succeeded" in seen.audit
    assert "notifier answered 500" in seen.audit
    assert "state store" in seen.answers


@pytest.mark.parametrize("secret", SECRETS.values(), ids=SECRETS.keys())
def test_no_secret_in_any_log_line_record_or_answer(seen: Seen, secret: str) -> None:
    for where, text in (("serve's output", seen.output), ("the audit log", seen.audit),
                        ("an answer", seen.answers)):
        assert secret not in text, f"{secret!r} in {where}"
        assert secret.rsplit(" ", maxsplit=1)[-1] not in text, f"{secret!r} in {where}"
