"""The sandbox's user search (`GET /api/v2/users`, search engine v3), through auth0-python's
async client over a real socket, and the batcher's query building against it."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from auth0.management import AsyncAuth0
from auth0.management.errors import BadRequestError
from pydantic import ValidationError

from activities.lookups import MAX_QUERY_CHARS, LookupBatcher, search_query
from invites.auth0 import Auth0Management, CallPace
from invites.schemas import InvitationCreate
from invites.settings import Settings
from sandbox.auth0_api import DEV_CLIENT_ID, DEV_CLIENT_SECRET, Auth0Fake

SEARCH = "GET /api/v2/users"


def emails(users: list) -> list[str]:
    return sorted(u.email for u in users)


async def test_email_or_query_matches_whole_addresses_ignoring_case(auth0_fake: Auth0Fake, auth0: AsyncAuth0):
    auth0_fake.create_user("ada+news@example.com")
    auth0_fake.create_user("Grace@Example.com", connection="google-oauth2")  # a provider's case
    auth0_fake.create_user("news@example.com")  # inside another address, never a match for it
    auth0_fake.create_user("bob@example.org")
    q = search_query(["ADA+News@example.com", "grace@example.com", "nobody@example.com"])
    pager = await auth0.users.list(q=q, search_engine="v3", include_totals=True)
    assert emails(pager.items) == ["Grace@Example.com", "ada+news@example.com"]
    assert pager.response.total == 2


async def test_operators_parentheses_wildcards_and_other_fields(auth0_fake: Auth0Fake, auth0: AsyncAuth0):
    ada = auth0_fake.create_user("ada@example.com", name="Ada Lovelace")
    auth0_fake.create_user("alan@example.org", name="Alan Turing")
    auth0_fake.create_user("grace@example.com", connection="google-oauth2")

    async def found(q: str) -> list[str]:
        return emails((await auth0.users.list(q=q, search_engine="v3")).items)

    assert await found('email:"ada@example.com" OR email:alan@example.org') == [
        "ada@example.com",
        "alan@example.org",
    ]
    assert await found("email.domain:example.com AND NOT identities.connection:google-oauth2") == [
        "ada@example.com"
    ]
    assert await found('name:"ada lovelace"') == ["ada@example.com"]
    assert await found("email:a*") == ["ada@example.com", "alan@example.org"]
    assert await found(f'user_id:"{ada["user_id"]}"') == ["ada@example.com"]
    assert await found('email:("ada@example.com" "grace@example.com")') == [  # side by side: OR
        "ada@example.com",
        "grace@example.com",
    ]
    assert await found("app_metadata.plan:gold") == []  # a field the sandbox does not index


async def test_paging_with_and_without_totals(auth0_fake: Auth0Fake, auth0_url: str, auth0: AsyncAuth0, http):
    for i in range(7):
        auth0_fake.create_user(f"p{i}@example.com")
    q = search_query([f"p{i}@example.com" for i in range(7)])
    first = await auth0.users.list(q=q, search_engine="v3", per_page=3, include_totals=True, fields="email")
    second = await first.next_page()
    third = await second.next_page()
    pages = [first, second, third]
    assert [len(p.items) for p in pages] == [3, 3, 1]
    assert [(p.response.start, p.response.limit, p.response.length) for p in pages] == [
        (0, 3, 3),
        (3, 3, 3),
        (6, 3, 1),
    ]
    assert {p.response.total for p in pages} == {7}
    assert sorted(u.email for p in pages for u in p.items) == [f"p{i}@example.com" for i in range(7)]
    assert first.items[0].user_id is None  # only the fields asked for
    # Without include_totals Auth0 answers a bare list (the SDK always asks for totals).
    token = (await http.post(f"{auth0_url}/oauth/token", data=_credentials(auth0_url))).json()["access_token"]
    bare = await http.get(
        f"{auth0_url}/api/v2/users",
        params={"q": q, "search_engine": "v3", "per_page": 2},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert bare.status_code == 200 and isinstance(bare.json(), list) and len(bare.json()) == 2


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"q": 'email:("a@example.com" OR'}, "invalid_query_string"),  # the query ends too early
        ({"q": 'email:"unclosed'}, "invalid_query_string"),
        ({"q": "email:(a@example.com"}, "invalid_query_string"),  # a parenthesis not closed
        ({"q": "lonely"}, "invalid_query_string"),  # no field
        ({"q": "email:a", "search_engine": "v2"}, "invalid_query_string"),
        ({"q": "email:a", "per_page": 101}, "invalid_query_string"),
        ({"q": "email:a", "page": 10, "per_page": 100}, "invalid_paging"),  # past the first 1000
    ],
)
async def test_a_bad_query_is_auth0s_400(auth0: AsyncAuth0, params: dict, code: str):
    with pytest.raises(BadRequestError) as caught:
        await auth0.users.list(**{"search_engine": "v3", **params})
    body = caught.value.body
    assert (body["statusCode"], body["error"], body["errorCode"]) == (400, "Bad Request", code)
    assert body["message"]


async def test_calls_are_counted_per_route(auth0_fake: Auth0Fake, auth0_url: str, auth0: AsyncAuth0, http):
    await auth0.users.list(q=search_query(["a@example.com"]), search_engine="v3")
    await auth0.users.list(q=search_query(["b@example.com"]), search_engine="v3")
    counts = (await http.get(f"{auth0_url}/__fake/counts")).json()["counts"]
    assert counts[SEARCH] == 2
    assert counts["POST /oauth/token"] == 1
    assert auth0_fake.faults.counts() == counts


async def test_the_batcher_pages_through_a_search_with_more_accounts_than_a_page(
    auth0_fake: Auth0Fake, auth0_url: str, http: httpx.AsyncClient
):
    """An address can hold several accounts (one per connection): 60 addresses with two
    accounts each make 120 results, two pages of 100."""
    wanted = [f"twice{i}@example.com" for i in range(60)]
    for email in wanted:
        auth0_fake.create_user(email)
        auth0_fake.create_user(email, connection="google-oauth2")
    batcher = LookupBatcher(_paced(auth0_url, http), batch=100)
    answers = await _all(batcher, [*wanted, "none@example.com"])
    assert answers == [True] * 60 + [False]
    pages = [c.query["page"] for c in auth0_fake.faults.calls(SEARCH)]
    assert pages == ["0", "1"]


async def test_the_batcher_keeps_each_query_under_the_length_limit(
    auth0_fake: Auth0Fake, auth0_url: str, http: httpx.AsyncClient
):
    long = [f"{'x' * 200}.{i}@example.com" for i in range(50)]
    auth0_fake.create_user(long[-1])
    batcher = LookupBatcher(_paced(auth0_url, http), batch=50)
    answers = await _all(batcher, long)
    assert answers == [False] * 49 + [True]
    calls = auth0_fake.faults.calls(SEARCH)
    assert len(calls) > 1
    assert all(len(httpx.QueryParams({"q": c.query["q"]}).__str__()) <= MAX_QUERY_CHARS + 2 for c in calls)
    assert sum(c.query["q"].count("@") for c in calls) == 50


def test_quotes_never_reach_a_query():
    """The API refuses an address with a quote (a quoted local part) before it is stored, and
    the query escapes `"` and `\\` anyway."""
    with pytest.raises(ValidationError):
        InvitationCreate(email='"ada lovelace"@example.com')
    assert search_query(['a"b\\c@x']) == 'email:("a\\"b\\\\c@x")'


async def _all(batcher: LookupBatcher, addresses: list[str]) -> list[bool]:
    try:
        return list(await asyncio.gather(*(batcher.has_account(a) for a in addresses)))
    finally:
        await batcher.aclose()


def _paced(url: str, http: httpx.AsyncClient) -> Auth0Management:
    audience = f"{url}/api/v2/"
    settings = Settings(_env_file=None, env="development", auth0_base_url=url, auth0_audience=audience)
    return Auth0Management(settings, http).paced(CallPace(100))


def _credentials(url: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": DEV_CLIENT_ID,
        "client_secret": DEV_CLIENT_SECRET,
        "audience": f"{url}/api/v2/",
    }
