"""The two ends agree: the Auth0 Action's own JavaScript, run under Node, against the Python API.

`auth0/actions/scripts/sign.js` signs with the Action's `signWebhook`; `action_driver.js` runs the
real `onExecutePostLogin` with an Auth0-shaped `event` and a recording `api`. Both talk to the
API over a real socket (uvicorn), backed by the time-skipping Temporal server, a worker and the
fakes, for an invitation created through the API whose token comes from the mail SendGrid got.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import Api
from tests.support.auth0 import ASSIGN_ROLES, user_payload
from tests.support.webhooks import WEBHOOK, random_secret, redeem_body

ROOT = Path(__file__).resolve().parents[2]
ACTIONS = ROOT / "auth0" / "actions"
SIGN = ACTIONS / "scripts" / "sign.js"
DRIVER = Path(__file__).with_name("action_driver.js")
NODE_TIMEOUT_S = 30
ROLES_CLAIM = "https://invites.dev/roles"
ERROR_CLAIM = "https://invites.dev/invitation_error"


@pytest.fixture(scope="module")
def node() -> str:
    """The `node` binary, with the Action's npm dependencies installed: never a silent skip."""
    found = shutil.which("node")
    if found is None:
        pytest.fail("node is not on PATH: install Node.js 20+, then run ./scripts/test", pytrace=False)
    if not (ACTIONS / "node_modules" / "standardwebhooks").is_dir():
        pytest.fail(
            "auth0/actions/node_modules is missing: run ./scripts/test (it runs npm ci there)", pytrace=False
        )
    return found


async def run_node(node: str, script: Path, stdin: dict[str, Any]) -> dict[str, Any]:
    """Run a Node script with JSON on stdin; its stdout is one JSON document."""
    proc = await asyncio.create_subprocess_exec(
        node,
        str(script),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        # The API answers the Action from this same event loop: never block it while Node runs.
        async with asyncio.timeout(NODE_TIMEOUT_S):
            out, err = await proc.communicate(json.dumps(stdin).encode())
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        pytest.fail(f"{script.name} exited {proc.returncode}: {err.decode(errors='replace')}", pytrace=False)
    return json.loads(out)


async def sign(node: str, secret: str, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """{"headers", "body"} from the Action's own signing function."""
    return await run_node(node, SIGN, {"secret": secret, "payload": payload, **extra})


async def status_of(api: Api, invitation_id: str) -> dict[str, Any]:
    response = await api.http.get(f"/v1/invitations/{invitation_id}", headers=api.key)
    assert response.status_code == 200, response.text
    return response.json()


# --- the Action's signing code -------------------------------------------------------------


async def test_a_message_signed_by_the_action_code_redeems_the_invitation(api: Api, node: str):
    invitation, token = await api.pending("ada@example.com", roles=["customer", "member"])
    user = api.stack.auth0.create_user("ada@example.com")  # signs up from the link
    signed = await sign(
        node, api.secret, redeem_body(token, user_payload(api.stack.auth0, "ada@example.com"))
    )

    response = await api.http.post(WEBHOOK, content=signed["body"], headers=signed["headers"])

    assert response.status_code == 200, response.text
    assert response.json() == {
        "result": "accepted",
        "invitation_id": invitation["id"],
        "roles": ["customer", "member"],
        "grant": "done",
    }
    assert api.stack.auth0.role_names(user["user_id"]) == ["customer", "member"]
    assert (await status_of(api, invitation["id"]))["accepted_by"] == user["user_id"]

    # The Action retries with the very same message when an answer is lost: same answer, no regrant.
    again = await api.http.post(WEBHOOK, content=signed["body"], headers=signed["headers"])
    assert (again.status_code, again.json()) == (200, response.json())
    assert again.headers["webhook-replayed"] == "true"
    assert api.stack.auth0.faults.count(ASSIGN_ROLES) == 1


@pytest.mark.parametrize("how", ["body", "signature", "other-secret", "stale"])
async def test_an_altered_or_foreign_message_is_401_and_changes_nothing(api: Api, node: str, how: str):
    invitation, token = await api.pending("grace@example.com", roles=["member"])
    user_id = api.stack.auth0.create_user("grace@example.com")["user_id"]
    body = redeem_body(token, user_payload(api.stack.auth0, "grace@example.com"))
    secret = random_secret() if how == "other-secret" else api.secret
    age = 6 * 60 if how == "stale" else 0  # the API accepts 5 minutes of clock difference
    signed = await sign(node, secret, body, timestamp=int(time.time()) - age)
    if how == "body":  # one character of the user id: the grant re-aimed at another account
        other = user_id[:-1] + ("x" if user_id[-1] != "x" else "y")
        signed["body"] = signed["body"].replace(user_id, other, 1)
    elif how == "signature":
        version, _, mac = signed["headers"]["webhook-signature"].partition(",")
        signed["headers"]["webhook-signature"] = f"{version},{'A' if mac[0] != 'A' else 'B'}{mac[1:]}"

    response = await api.http.post(WEBHOOK, content=signed["body"], headers=signed["headers"])

    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "invalid_signature"
    assert (await status_of(api, invitation["id"]))["status"] == "pending"
    assert not api.stack.auth0.role_assignments


# --- the real onExecutePostLogin, end to end -----------------------------------------------


async def run_action(api: Api, node: str, token: str, user: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Run `onExecutePostLogin` for `user` logging in with `token`; returns the recorded calls."""
    calls = await run_node(
        node,
        DRIVER,
        {
            "token": token,
            "user": user,
            "logins_count": 1,
            "webhook_url": f"{api.url}{WEBHOOK}",
            "webhook_secret": api.secret,
            **extra,
        },
    )
    assert calls["error"] is None
    assert calls["denied"] == []  # the invitation never blocks a login
    assert not any(token in line for line in calls["logs"])  # the token is a credential
    return calls


async def test_the_real_action_accepts_and_puts_the_roles_in_both_tokens(api: Api, node: str):
    invitation, token = await api.pending(
        "Ada@Example.com", roles=["customer", "member"], data={"plan": "pro"}
    )
    user = api.stack.auth0.create_user("ada@example.com")

    calls = await run_action(api, node, token, user_payload(api.stack.auth0, "ada@example.com", name="Ada"))

    assert calls["idToken"] == {ROLES_CLAIM: ["customer", "member"]}
    assert calls["accessToken"] == {ROLES_CLAIM: ["customer", "member"]}
    assert any(
        f"redeem ok: accepted invitation_id={invitation['id']} grant=done" in line for line in calls["logs"]
    )
    state = await status_of(api, invitation["id"])
    assert (state["status"], state["accepted_by"]) == ("accepted", user["user_id"])
    assert api.stack.auth0.role_names(user["user_id"]) == ["customer", "member"]


async def test_the_real_action_reports_email_mismatch_and_the_right_person_can_still_accept(
    api: Api, node: str
):
    invitation, token = await api.pending("ada@example.com", roles=["customer"], email_policy="match")
    mallory = api.stack.auth0.create_user("mallory@example.com")

    calls = await run_action(api, node, token, user_payload(api.stack.auth0, "mallory@example.com"))

    assert calls["idToken"] == {ERROR_CLAIM: "email_mismatch"}
    assert calls["accessToken"] == {ERROR_CLAIM: "email_mismatch"}
    assert (await status_of(api, invitation["id"]))["status"] == "pending"
    assert api.stack.auth0.role_names(mallory["user_id"]) == []

    ada = api.stack.auth0.create_user("ada@example.com")
    calls = await run_action(api, node, token, user_payload(api.stack.auth0, "ada@example.com"))
    assert calls["idToken"] == {ROLES_CLAIM: ["customer"]}
    assert (await status_of(api, invitation["id"]))["accepted_by"] == ada["user_id"]


async def test_the_real_action_with_a_wrong_secret_lets_the_login_through_as_unavailable(api: Api, node: str):
    invitation, token = await api.pending("lin@example.com", roles=["customer"])
    api.stack.auth0.create_user("lin@example.com")
    wrong = random_secret()

    calls = await run_action(
        api, node, token, user_payload(api.stack.auth0, "lin@example.com"), webhook_secret=wrong
    )

    assert calls["idToken"] == {ERROR_CLAIM: "unavailable"}
    assert any("status=401 (check INVITES_WEBHOOK_SECRET)" in line for line in calls["logs"])
    assert (await status_of(api, invitation["id"]))["status"] == "pending"


# --- the token-less bodies: a provisioned account's first login, and a claim -----------------


async def provisioned_account(api: Api, email: str, **body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A provisioned invitation created over HTTP, its mail sent; it and the account it made."""
    invitation = await api.created(email, mode="provisioned", **body)
    state = await api.stack.sent(api.stack.handles[-1])
    assert state.provisioned_user_id is not None
    return invitation, api.stack.auth0.user(state.provisioned_user_id)


async def test_a_provisioned_redeem_signed_by_the_action_code_accepts_for_that_account_only(
    api: Api, node: str
):
    invitation, account = await provisioned_account(api, "pia@example.com", roles=["customer"])
    other = api.stack.auth0.create_user("someone@example.com")
    body = {
        "type": "invitation.redeem",
        "invitation_id": invitation["id"],
        "user": {"user_id": other["user_id"], "email": "pia@example.com", "email_verified": True},
        "connection": {"name": "Username-Password-Authentication", "strategy": "auth0"},
        "is_new_user": True,
    }
    signed = await sign(node, api.secret, body)
    refused = await api.http.post(WEBHOOK, content=signed["body"], headers=signed["headers"])
    assert (refused.status_code, refused.json()["error"]["code"]) == (404, "invalid_link")

    body["user"]["user_id"] = account["user_id"]
    signed = await sign(node, api.secret, body)
    response = await api.http.post(WEBHOOK, content=signed["body"], headers=signed["headers"])
    assert response.status_code == 200, response.text
    assert response.json()["invitation_id"] == invitation["id"]
    assert (await status_of(api, invitation["id"]))["accepted_by"] == account["user_id"]


async def test_the_real_action_redeems_a_provisioned_account_at_its_first_login(api: Api, node: str):
    invitation, account = await provisioned_account(api, "lea@example.com", roles=["member"])
    user = {**account, "email_verified": True}  # the ticket marked it verified

    calls = await run_node(
        node,
        DRIVER,
        {"user": user, "webhook_url": f"{api.url}{WEBHOOK}", "webhook_secret": api.secret},
    )

    assert calls["error"] is None and calls["denied"] == []
    assert calls["idToken"] == {ROLES_CLAIM: ["member"]}
    state = await status_of(api, invitation["id"])
    assert (state["status"], state["mode"]) == ("accepted", "provisioned")
    assert api.stack.auth0.user(account["user_id"])["app_metadata"]["invites"]["status"] == "active"


async def test_a_claim_signed_by_the_action_code_is_answered(api: Api, node: str):
    # Unverified: the API answers `none` before any look-up (the claim itself runs on the dev
    # server's visibility: tests/devserver/test_claims.py).
    user = api.stack.auth0.create_user("cleo@example.com")
    body = {
        "type": "invitation.claim",
        "user": {"user_id": user["user_id"], "email": "cleo@example.com", "email_verified": False},
        "connection": {"name": "Username-Password-Authentication", "strategy": "auth0"},
        "is_new_user": False,
    }
    signed = await sign(node, api.secret, body)

    response = await api.http.post(WEBHOOK, content=signed["body"], headers=signed["headers"])

    assert (response.status_code, response.json()) == (200, {"result": "none", "invitations": []})
    tampered = signed["body"].replace('"email_verified":false', '"email_verified":true')
    forged = await api.http.post(WEBHOOK, content=tampered, headers=signed["headers"])
    assert forged.status_code == 401
