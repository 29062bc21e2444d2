"""`invites list` is newest first by creation, though Temporal's visibility lists running runs
(pending invitations) before closed ones (accepted, expired, ...), whatever their age."""

from __future__ import annotations

import asyncio

import pytest

from invites.invitations import handle_for
from tests.cli.conftest import Cli, unique_email
from tests.cli.test_verbs import listed, until_sent
from tests.support.api import api_for
from tests.support.auth0 import user_payload

pytestmark = pytest.mark.devserver

VISIBILITY_TIMEOUT = 10.0


async def older_pending_newer_accepted(cli: Cli) -> tuple[str, dict, dict]:
    """An address with a pending invitation and a newer one, accepted (so closed)."""
    s = cli.stack
    email = unique_email()
    older = await cli.create(email, "--role", "customer")
    newer = await cli.create(email, "--role", "member")
    await until_sent(cli, newer["id"])
    s.auth0.create_user(email)
    [token] = [t for t in s.links(email) if s.signer.verify(t).invitation_id == newer["id"]]
    result = await s.redeem(handle_for(s.client, newer["id"]), user_payload(s.auth0, email), token)
    assert result.result == "accepted"
    # The status reads `accepted` as soon as the grant starts; visibility orders by the run's close.
    async with asyncio.timeout(VISIBILITY_TIMEOUT):
        while not any(row["closed_at"] for row in await listed(cli, "--email", email, count=2)):
            await asyncio.sleep(0.2)
    return email, older, newer


async def test_a_newer_accepted_invitation_is_listed_before_an_older_pending_one(cli: Cli):
    email, older, newer = await older_pending_newer_accepted(cli)

    rows = await listed(cli, "--email", email, count=2)
    assert [(row["id"], row["status"]) for row in rows] == [
        (newer["id"], "accepted"),
        (older["id"], "pending"),
    ]
    assert rows[0]["created_at"] > rows[1]["created_at"]

    table = await cli("list", "--email", email)
    assert table.exit_code == 0, table.stderr
    assert table.stdout.index(newer["id"]) < table.stdout.index(older["id"])
    assert "More than" not in table.stderr


async def test_past_the_limit_the_rows_are_the_first_visibility_lists_and_the_table_says_so(cli: Cli):
    email, older, _ = await older_pending_newer_accepted(cli)

    [row] = await cli.json("list", "--email", email, "--limit", "1")
    assert (row["id"], row["status"]) == (older["id"], "pending")  # running runs come first

    table = await cli("list", "--email", email, "--limit", "1")
    assert table.exit_code == 0, table.stderr
    assert older["id"] in table.stdout
    assert "More than 1 invitations match" in table.stderr
    assert "Raise --limit" in table.stderr


async def test_the_api_lists_in_visibility_order_as_documented(cli: Cli):
    """GET /v1/invitations pages through visibility and cannot sort across pages: pending
    invitations first, then ended ones (docs/api.md says so)."""
    email, older, newer = await older_pending_newer_accepted(cli)
    async with api_for(cli.stack) as api:
        page = await api.http.get("/v1/invitations", params={"email": email}, headers=api.key)
        assert page.status_code == 200, page.text
        assert [item["id"] for item in page.json()["items"]] == [older["id"], newer["id"]]
        description = (await api.http.get("/openapi.json")).json()["paths"]["/v1/invitations"]["get"]
        assert "pending invitations first" in description["description"]
