"""`/app`, the dev customer space, over HTTP: the account's roles (every accepted invitation's,
not the latest login's claim) and dates written as the other dev pages write them."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from tests.support.api import Api

EMAIL = "twice@example.com"
PAGE_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC")


async def accept(api: Api, user_id: str, roles: list[str], data: dict[str, str]) -> dict:
    created, token = await api.pending(EMAIL, roles=roles, data=data)
    redeemed = await api.webhook(token, {"user_id": user_id, "email": EMAIL})
    assert redeemed.status_code == 200, redeemed.text
    await api.stack.until(api.stack.handles[-1], lambda s: s.grant == "done")
    return created


async def customer_space(api: Api, user_id: str, **claims: object) -> str:
    """/app as the sandbox's login leaves it: an access token and an ID token in cookies."""
    id_token = api.stack.auth0.signing.sign({"sub": user_id, "email": EMAIL, **claims})
    cookie = f"invites_dev_at={api.user_token(user_id)}; invites_dev_id={id_token}"
    page = await api.http.get("/app", headers={"Cookie": cookie})
    assert page.status_code == 200
    return page.text


def role_pills(page: str) -> list[str]:
    card = page.split('id="roles"', 1)[1].split("</div>", 1)[0]
    return re.findall(r'<span class="pill role">([^<]*)</span>', card)


async def test_an_account_invited_twice_sees_the_roles_of_both_invitations(api: Api):
    user = api.stack.auth0.create_user(EMAIL)
    first = await accept(api, user["user_id"], ["customer"], {"company": "First Ltd"})
    second = await accept(api, user["user_id"], ["member"], {"company": "Second Ltd"})

    # The second login's token claims only what that invitation granted.
    namespace = api.stack.settings.claim_namespace
    page = await customer_space(api, user["user_id"], **{f"{namespace}roles": ["member"]})

    assert role_pills(page) == ["customer", "member"]
    assert "First Ltd" in page and "Second Ltd" in page
    assert f"{second['id']}</code>, accepted" in page and f"{first['id']}</code>, accepted" in page
    assert "roles member" in page and "roles customer" in page


async def test_dates_are_written_as_the_other_pages_write_them(api: Api):
    user = api.stack.auth0.create_user(EMAIL)
    await accept(api, user["user_id"], ["customer"], {"company": "Dated Ltd"})
    me = await api.http.get("/v1/me", headers=api.bearer(api.user_token(user["user_id"])))
    [linked] = me.json()["invitations"]

    page = await customer_space(api, user["user_id"])

    [shown] = re.findall(r'<span class="accepted-at">([^<]*)</span>', page)
    assert PAGE_TIME.fullmatch(shown), shown
    accepted = datetime.fromisoformat(linked["accepted_at"]).astimezone(UTC)
    assert shown == accepted.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", page)  # no raw ISO timestamp anywhere


async def test_an_account_without_an_accepted_invitation_has_no_roles(api: Api):
    user = api.stack.auth0.create_user(EMAIL)
    page = await customer_space(api, user["user_id"])
    assert role_pills(page) == []
    assert "No roles from an accepted invitation yet" in page
    assert "No invitation is linked to this account yet" in page
