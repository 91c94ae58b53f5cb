"""What remediator posts back to Slack after a press: escaped whatever the press carried.

A press whose button ``value`` (the approval id) is text Slack would read as markup is
answered with an ephemeral "nothing was changed" quoting it; the quote must stay text: no
mention, no link. Each row is one such value, signed as Slack signs, through the real app.
"""

from __future__ import annotations

import re

import pytest

from tests.receiver.http.test_slack import Setup, press, secrets_env, setup  # noqa: F401 - fixtures
from tests.support.approvals import pending
from tests.support.fakeclock import FakeClock
from tests.support.slackapi import interaction, sign


@pytest.mark.parametrize("value", [
    pytest.param("<!channel>", id="channel-mention"),
    pytest.param("<https://evil.example/x|Approve in remediator>", id="forged-link"),
    pytest.param("<@U0ALICE> approved", id="user-mention"),
    pytest.param("a&b", id="ampersand"),
])
async def test_a_hostile_button_value_is_quoted_as_text(setup: Setup, clock: FakeClock,  # noqa: F811
                                                         value: str) -> None:
    client, target, slack, _ = setup
    [approval] = await pending(client)
    payload = interaction(value, response_url=slack.response_url)
    assert await press(client, payload, sign(payload, int(clock.now()))) == 200
    told = slack.responses[0]
    assert told["response_type"] == "ephemeral"
    assert "nothing was changed" in told["text"].lower()
    assert re.search(r"<[^<>]*>", told["text"]) is None
    assert "&lt;" in told["text"] or "&amp;" in told["text"]
    assert [a["id"] for a in await pending(client)] == [approval["id"]]
    assert target.calls == []
