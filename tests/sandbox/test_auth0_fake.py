"""The Auth0 fake, driven by auth0-python's async client over a real socket."""

from __future__ import annotations

import httpx
import pytest
from auth0.management import AsyncAuth0
from auth0.management.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    UnauthorizedError,
)

from sandbox.auth0_api import DEV_CLIENT_ID, DEV_CLIENT_SECRET, Auth0Fake

DB = "Username-Password-Authentication"


async def test_token_endpoint_accepts_form_and_json_client_credentials(
    auth0_fake: Auth0Fake, auth0_url: str, http: httpx.AsyncClient
) -> None:
    credentials = {
        "grant_type": "client_credentials",
        "client_id": DEV_CLIENT_ID,
        "client_secret": DEV_CLIENT_SECRET,
    }
    form = await http.post(f"{auth0_url}/oauth/token", data=credentials)
    audience = f"{auth0_url}/api/v2/"
    json_body = await http.post(f"{auth0_url}/oauth/token", json={**credentials, "audience": audience})
    assert form.status_code == json_body.status_code == 200
    assert form.json()["token_type"] == "Bearer"
    assert form.json()["expires_in"] == 86_400
    assert form.json()["access_token"] != json_body.json()["access_token"]
    assert auth0_fake.tokens_issued == 2


async def test_token_endpoint_refuses_wrong_secret_and_foreign_audience(
    auth0_fake: Auth0Fake, auth0_url: str, http: httpx.AsyncClient
) -> None:
    grant = {"grant_type": "client_credentials", "client_id": DEV_CLIENT_ID}
    wrong = await http.post(f"{auth0_url}/oauth/token", data={**grant, "client_secret": "x"})
    foreign = await http.post(
        f"{auth0_url}/oauth/token",
        data={**grant, "client_secret": DEV_CLIENT_SECRET, "audience": "https://other/api/v2/"},
    )
    assert (wrong.status_code, wrong.json()["error"]) == (401, "access_denied")
    assert foreign.status_code == 403
    assert auth0_fake.tokens_issued == 0


async def test_management_api_requires_a_token_it_issued(
    auth0_fake: Auth0Fake, auth0_url: str, client_for
) -> None:
    user = auth0_fake.create_user("ann@example.com")
    forged = client_for(auth0_url, "not-a-token")
    with pytest.raises(UnauthorizedError) as caught:
        await forged.users.get(user["user_id"])
    assert caught.value.body == {
        "statusCode": 401,
        "error": "Unauthorized",
        "message": "Invalid token",
        "attributes": {"error": "Invalid token"},
    }


async def test_expired_token_is_refused_and_a_new_one_works(clock, token_for, client_for) -> None:
    fake = Auth0Fake(token_ttl=60, clock=clock)
    user = fake.create_user("ann@example.com")
    async with fake.serve() as url:
        old = client_for(url, await token_for(url))
        clock.advance(61)
        with pytest.raises(UnauthorizedError) as caught:
            await old.users.get(user["user_id"])
        fresh = client_for(url, await token_for(url))
        assert (await fresh.users.get(user["user_id"])).email == "ann@example.com"
    assert "Expired token" in caught.value.body["message"]


async def test_users_by_email_is_exact_and_case_sensitive(auth0_fake: Auth0Fake, auth0: AsyncAuth0) -> None:
    user = auth0_fake.create_user("Ann.Lee@Example.com")
    social = auth0_fake.create_user("Ann.Lee@Example.com", connection="google-oauth2")

    stored = await auth0.users.list_users_by_email(email="ann.lee@example.com")
    as_typed = await auth0.users.list_users_by_email(email="Ann.Lee@Example.com")

    assert [u.user_id for u in stored] == [user["user_id"]]
    # Social identities keep the provider's spelling; only database users are lower-cased.
    assert [u.user_id for u in as_typed] == [social["user_id"]]
    assert as_typed[0].identities[0].is_social is True
    assert as_typed[0].email_verified is True


async def test_create_user_stores_lowercase_email_and_refuses_duplicate(
    auth0_fake: Auth0Fake, auth0: AsyncAuth0
) -> None:
    created = await auth0.users.create(connection=DB, email="Bob@Example.com", password="s3cret-pw")
    with pytest.raises(ConflictError) as caught:
        await auth0.users.create(connection=DB, email="bob@example.com", password="s3cret-pw")

    assert created.email == "bob@example.com"
    assert created.user_id.startswith("auth0|")
    assert auth0_fake.tenant.check_password(created.user_id, "s3cret-pw")
    assert caught.value.body["errorCode"] == "auth0_idp_error"


async def test_create_user_validates_payload_like_auth0(auth0: AsyncAuth0) -> None:
    with pytest.raises(BadRequestError) as missing:
        await auth0.users.create(connection=DB, email="c@example.com")
    with pytest.raises(BadRequestError) as weak:
        await auth0.users.create(connection=DB, email="c@example.com", password="short")
    assert missing.value.body["message"] == (
        "Payload validation error: 'Missing required property: password'."
    )
    assert weak.value.body["errorCode"] == "invalid_password"


async def test_get_unknown_user_is_auth0_404(auth0: AsyncAuth0) -> None:
    with pytest.raises(NotFoundError) as caught:
        await auth0.users.get("auth0|000000000000000000000000")
    assert caught.value.body == {
        "statusCode": 404,
        "error": "Not Found",
        "message": "The user does not exist.",
        "errorCode": "inexistent_user",
    }


async def test_patch_merges_metadata_at_top_level_and_null_deletes(
    auth0_fake: Auth0Fake, auth0: AsyncAuth0
) -> None:
    user = auth0_fake.create_user(
        "ann@example.com",
        app_metadata={"plan": {"tier": "free", "seats": 2}, "legacy": 1, "keep": True},
    )
    updated = await auth0.users.update(
        user["user_id"],
        app_metadata={"plan": {"tier": "pro"}, "legacy": None, "invitations": [{"id": "inv_1"}]},
        email_verified=True,
    )
    expected = {"plan": {"tier": "pro"}, "keep": True, "invitations": [{"id": "inv_1"}]}
    assert updated.app_metadata == expected
    assert updated.email_verified is True
    assert auth0_fake.user(user["user_id"])["app_metadata"] == expected


async def test_patch_email_change_unverifies_and_unknown_field_is_refused(
    auth0_fake: Auth0Fake, auth0: AsyncAuth0, auth0_url: str, http: httpx.AsyncClient
) -> None:
    user = auth0_fake.create_user("ann@example.com", email_verified=True)
    updated = await auth0.users.update(user["user_id"], email="Ann2@Example.com")
    token = auth0_fake.tenant.issue_token(60)
    bad = await http.patch(
        f"{auth0_url}/api/v2/users/{user['user_id']}",
        json={"favourite_colour": "blue"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert (updated.email, updated.email_verified) == ("ann2@example.com", False)
    assert bad.status_code == 400
    assert bad.json()["errorCode"] == "invalid_body"


async def test_enterprise_users_email_verified_cannot_be_patched(
    auth0_fake: Auth0Fake, auth0: AsyncAuth0
) -> None:
    user = auth0_fake.create_user("Eve@Acme.example", connection="acme-saml", email_verified=False)
    with pytest.raises(BadRequestError) as refused:
        await auth0.users.update(user["user_id"], email_verified=True, app_metadata={"a": 1})
    kept = await auth0.users.update(user["user_id"], app_metadata={"a": 1})
    assert user["user_id"].startswith("samlp|")
    assert refused.value.body["errorCode"] == "operation_not_supported"
    # Refused whole: nothing of the refused body was applied.
    assert (kept.email_verified, kept.app_metadata) == (False, {"a": 1})
    assert kept.identities[0].provider == "samlp"


async def test_roles_are_seeded_filtered_by_name_and_paged(auth0_fake: Auth0Fake, auth0: AsyncAuth0) -> None:
    filtered = [r async for r in await auth0.roles.list(name_filter="MEM")]
    auth0_fake.faults.reset()
    everything = [r async for r in await auth0.roles.list(per_page=2)]

    assert [(r.id, r.name) for r in filtered] == [(auth0_fake.role_id("member"), "member")]
    assert sorted(r.name for r in everything) == ["admin", "customer", "member"]
    assert all(r.id.startswith("rol_") and len(r.id) == 20 for r in everything)
    # The SDK's pager asks for pages until one comes back empty: 2 + 1 + 0 roles.
    pages = [c.query["page"] for c in auth0_fake.faults.calls("GET /api/v2/roles")]
    assert pages == ["0", "1", "2"]


async def test_role_assignment_counts_only_newly_granted_roles(
    auth0_fake: Auth0Fake, auth0: AsyncAuth0
) -> None:
    user_id = auth0_fake.create_user("ann@example.com")["user_id"]
    customer, member = auth0_fake.role_id("customer"), auth0_fake.role_id("member")

    await auth0.users.roles.assign(user_id, roles=[customer])
    await auth0.users.roles.assign(user_id, roles=[customer])
    await auth0.users.roles.assign(user_id, roles=[customer, member])
    held = [r.name async for r in await auth0.users.roles.list(user_id)]

    assert auth0_fake.role_assignments[user_id] == 2
    assert sorted(held) == ["customer", "member"]
    assert auth0_fake.faults.count("POST /api/v2/users/{id}/roles", status=204) == 3


async def test_unknown_role_id_is_404_and_role_name_is_400(auth0_fake: Auth0Fake, auth0: AsyncAuth0) -> None:
    user_id = auth0_fake.create_user("ann@example.com")["user_id"]
    with pytest.raises(NotFoundError):
        await auth0.users.roles.assign(user_id, roles=["rol_0000000000000000"])
    with pytest.raises(BadRequestError):
        await auth0.users.roles.assign(user_id, roles=["customer"])
    assert auth0_fake.role_assignments[user_id] == 0
    assert auth0_fake.role_names(user_id) == []


async def test_removing_roles_leaves_the_others(auth0_fake: Auth0Fake, auth0: AsyncAuth0) -> None:
    user_id = auth0_fake.create_user("ann@example.com")["user_id"]
    admin, member = auth0_fake.role_id("admin"), auth0_fake.role_id("member")
    await auth0.users.roles.assign(user_id, roles=[admin, member])
    await auth0.users.roles.delete(user_id, roles=[admin])
    assert auth0_fake.role_names(user_id) == ["member"]


async def test_state_file_survives_a_restart(tmp_path, token_for, client_for) -> None:
    path = tmp_path / "tenant.json"
    first = Auth0Fake(state_path=path)
    async with first.serve() as url:
        token = await token_for(url)
        client = client_for(url, token)
        created = await client.users.create(connection=DB, email="d@example.com", password="pw-12345")
        await client.users.roles.assign(created.user_id, roles=[first.role_id("customer")])

    second = Auth0Fake(state_path=path)
    async with second.serve() as url:
        client = client_for(url, token)
        again = await client.users.get(created.user_id)
    assert again.email == "d@example.com"
    assert second.role_id("customer") == first.role_id("customer")
    assert second.role_names(created.user_id) == ["customer"]
