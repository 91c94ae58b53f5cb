"""``remediator approvals show`` and ``--token-file`` against the real app over HTTP."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from receiver.cli.main import main
from tests.conftest import ClientFactory
from tests.support.approvals import TOKENS, approval_settings, fire, pending
from tests.support.httptarget import ServerFactory, serve_target
from tests.support.webhooks import alert


async def test_show_an_approval_with_a_token_file(
        tmp_path: Path, make_client: ClientFactory, make_settings: Any, aiohttp_server: ServerFactory,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in TOKENS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REMEDIATOR_TOKEN", raising=False)
    _, base = await serve_target(aiohttp_server)
    client = await make_client(approval_settings(make_settings, base))
    await fire(client, alert())
    (approval,) = await pending(client)
    url = str(client.make_url("/"))
    token = tmp_path / "token"
    token.write_text("oncall-secret\n")
    capsys.readouterr()

    def cli(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    code, out, err = await asyncio.to_thread(cli, "approvals", "show", approval["id"], "--url", url,
                                             "--token-file", str(token))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"approval   {approval['id']}"
    assert lines[1:4] == ["status     pending", "rule       purge-cache", "priority   P3"]
    assert lines[4].startswith("alert      HighErrorRate ")
    plan = lines.index("plan:")
    assert lines[plan + 1:plan + 3] == [f"  1. POST {base}/purge/prod", "  2. expect status any 2xx"], out
    assert lines[-2:] == [f"approve: remediator approvals approve {approval['id']}",
                          f"reject:  remediator approvals reject {approval['id']}"]

    code, out, err = await asyncio.to_thread(cli, "approvals", "list", "--url", url,
                                             "--token-file", str(token))
    lines = out.splitlines()
    assert (code, err) == (0, "")
    assert lines[0].split() == ["ID", "STATUS", "PRIORITY", "RULE", "ALERT", "EXPIRES", "DECIDED", "BY"]
    assert lines[1].split()[:5] == [approval["id"], "pending", "P3", "purge-cache", "HighErrorRate"]
    assert lines[1].index("pending") == lines[0].index("STATUS")  # aligned
    assert lines[3:] == [f"{approval['id']} plan:", f"  1. POST {base}/purge/prod",
                         "  2. expect status any 2xx"]

    code, out, _ = await asyncio.to_thread(cli, "approvals", "show", approval["id"], "--url", url,
                                           "--token-file", str(token), "--json")
    assert (code, json.loads(out)["id"]) == (0, approval["id"])

    code, out, err = await asyncio.to_thread(cli, "approvals", "show", "feedface", "--url", url,
                                             "--token-file", str(token))
    assert (code, out) == (1, "")
    assert err == "remediator: GET /api/v1/approvals/feedface: 404: no approval 'feedface'\n"

    code, _, err = await asyncio.to_thread(cli, "approvals", "show", approval["id"], "--url", url,
                                           "--token-file", str(tmp_path / "missing"))
    assert code == 2
    assert err.startswith("remediator: --token-file: ")

    token.write_text("wrong\n")
    code, _, err = await asyncio.to_thread(cli, "approvals", "show", approval["id"], "--url", url,
                                           "--token-file", str(token))
    assert code == 2
    assert ": 401: " in err


def test_token_and_token_file_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["approvals", "show", "x", "--token", "env:A", "--token-file", "/tmp/t"])
    assert info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
