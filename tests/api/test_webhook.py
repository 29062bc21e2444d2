"""POST /v1/webhooks/auth0: signatures, replays, races, and the spec's answers."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from tests.support.api import Api
from tests.support.auth0 import account
from tests.support.webhooks import WEBHOOK


def _user(api: Api, email: str) -> dict:
    return account(api.stack.auth0, email, name="Someone")


async def test_accepted_with_the_grant_done(api: Api):
    created, token = await api.pending("hook@example.com", roles=["customer", "member"])
    user = _user(api, "hook@example.com")
    response = await api.webhook(token, user)
    assert response.status_code == 200
    assert response.json() == {
        "result": "accepted",
        "invitation_id": created["id"],
        "roles": ["customer", "member"],
        "grant": "done",
    }
    assert api.stack.auth0.role_names(user["user_id"]) == ["customer", "member"]


async def test_bad_signature_is_401_and_changes_nothing(api: Api):
    _, token = await api.pending("sig@example.com")
    user = _user(api, "sig@example.com")
    body = json.dumps({"type": "invitation.redeem", "invitation": token, "user": user}).encode()
    headers = api.sign(body)
    tampered = body.replace(b"sig@example.com", b"sig@example.org")
    assert (await api.http.post(WEBHOOK, content=tampered, headers=headers)).status_code == 401
    headers_bad = {**headers, "webhook-signature": "v1,AAAA" + headers["webhook-signature"][7:]}
    response = await api.http.post(WEBHOOK, content=body, headers=headers_bad)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    unsigned = await api.http.post(WEBHOOK, content=body, headers={"content-type": "application/json"})
    assert unsigned.status_code == 401
    assert (await api.stack.state(api.stack.handles[-1])).status == "pending"


async def test_a_timestamp_six_minutes_old_is_401(api: Api):
    _, token = await api.pending("stale@example.com")
    response = await api.webhook(
        token, _user(api, "stale@example.com"), at=datetime.now(UTC) - timedelta(minutes=6)
    )
    assert response.status_code == 401
    assert (await api.stack.state(api.stack.handles[-1])).status == "pending"


async def test_the_same_webhook_id_twice_is_one_redemption_with_the_first_answer(api: Api):
    _, token = await api.pending("replay@example.com", roles=["customer"])
    user = _user(api, "replay@example.com")
    first = await api.webhook(token, user, msg_id="msg_replay_1")
    second = await api.webhook(token, user, msg_id="msg_replay_1")
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert second.headers.get("webhook-replayed") == "true"
    await api.stack.handles[-1].result()
    assert api.stack.auth0.faults.count("POST /api/v2/users/{id}/roles") == 1
    redemptions = (await api.http.get("/metrics")).text
    assert 'invites_redemptions_total{result="accepted"} 1.0' in redemptions


async def test_twenty_users_racing_on_one_link_one_wins_and_is_granted_once(api: Api):
    _, token = await api.pending("race@example.com", roles=["customer"], email_policy="any")
    users = [_user(api, f"racer{i}@example.com") for i in range(20)]
    responses = await asyncio.gather(*(api.webhook(token, user) for user in users))
    codes = sorted(r.status_code for r in responses)
    assert codes.count(200) == 1, codes
    losers = [r for r in responses if r.status_code != 200]
    # Temporal admits 10 in-flight updates per workflow: the rest may be told to retry.
    assert {r.status_code for r in losers} <= {409, 503}
    assert all(r.json()["reason"] == "already_redeemed" for r in losers if r.status_code == 409)
    assert all("retry-after" in r.headers for r in losers if r.status_code == 503)
    final = await api.stack.handles[-1].result()
    winner = next(u for u, r in zip(users, responses, strict=True) if r.status_code == 200)
    assert final.accepted_by == winner["user_id"]
    assigned = api.stack.auth0.role_assignments
    assert dict(assigned) == {winner["user_id"]: 1}


async def test_rejections_use_the_spec_codes(api: Api):
    created, token = await api.pending("owner@example.com")
    mismatch = await api.webhook(token, _user(api, "someone@example.com"))
    assert (mismatch.status_code, mismatch.json()) == (
        409,
        {"result": "rejected", "reason": "email_mismatch"},
    )
    revoked = await api.http.post(f"/v1/invitations/{created['id']}/revoke", json={}, headers=api.key)
    assert revoked.status_code == 200
    after = await api.webhook(token, _user(api, "owner@example.com"))
    assert (after.status_code, after.json()) == (410, {"result": "rejected", "reason": "revoked"})


async def test_a_forged_token_in_a_signed_webhook_is_404(api: Api):
    await api.pending("forge@example.com")
    response = await api.webhook(
        "AQRkZXYxAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", _user(api, "forge@example.com")
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "invalid_link"


async def test_a_signed_but_malformed_body_is_422(api: Api):
    raw = json.dumps({"type": "invitation.redeem", "invitation": "x"}).encode()
    response = await api.http.post(WEBHOOK, content=raw, headers=api.sign(raw))
    assert response.status_code == 422
    assert "user" in response.json()["error"]["message"]
