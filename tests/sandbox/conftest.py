"""Fixtures starting each fake on an ephemeral port, and the real SDK clients pointed at it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import httpx
import pytest
from auth0.management import AsyncAuth0
from hubspot import HubSpot
from sendgrid import SendGridAPIClient

from sandbox.auth0_api import DEV_CLIENT_ID, DEV_CLIENT_SECRET, Auth0Fake
from sandbox.hubspot_api import HubSpotFake
from sandbox.sendgrid_api import SendGridFake
from tests.support.stack import HUBSPOT_TOKEN, SENDGRID_KEY


class ManualClock:
    """A clock the test moves by hand, for rate limits, token expiry and timed faults."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


TokenFor = Callable[[str], Awaitable[str]]
ClientFor = Callable[[str, str], AsyncAuth0]


@pytest.fixture
def token_for(http: httpx.AsyncClient) -> TokenFor:
    """Fetch a client-credentials token from the fake at a URL, as the service will."""

    async def fetch(url: str) -> str:
        response = await http.post(
            f"{url}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": DEV_CLIENT_ID,
                "client_secret": DEV_CLIENT_SECRET,
                "audience": f"{url}/api/v2/",
            },
        )
        response.raise_for_status()
        return response.json()["access_token"]

    return fetch


@pytest.fixture
def client_for(http: httpx.AsyncClient) -> ClientFor:
    """The SDK for a fake's URL and token, its own retries off: retrying is Temporal's job."""

    def build(url: str, token: str) -> AsyncAuth0:
        return AsyncAuth0(base_url=f"{url}/api/v2", token=token, max_retries=0, httpx_client=http)

    return build


@pytest.fixture
def auth0_fake() -> Auth0Fake:
    return Auth0Fake()


@pytest.fixture
async def auth0_url(auth0_fake: Auth0Fake) -> AsyncIterator[str]:
    async with auth0_fake.serve() as url:
        yield url


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


@pytest.fixture
async def auth0(auth0_url: str, token_for: TokenFor, client_for: ClientFor) -> AsyncAuth0:
    return client_for(auth0_url, await token_for(auth0_url))


def _served(fake: SendGridFake | HubSpotFake) -> Iterator[str]:
    """The fake on an ephemeral port for the test's duration; yields its base URL."""
    with fake.serve() as url:
        yield url


@pytest.fixture
def sendgrid_fake() -> SendGridFake:
    return SendGridFake(api_key=SENDGRID_KEY)


@pytest.fixture
def hubspot_fake() -> HubSpotFake:
    return HubSpotFake(access_token=HUBSPOT_TOKEN)


@pytest.fixture
def sendgrid_url(sendgrid_fake: SendGridFake) -> Iterator[str]:
    yield from _served(sendgrid_fake)


@pytest.fixture
def hubspot_url(hubspot_fake: HubSpotFake) -> Iterator[str]:
    yield from _served(hubspot_fake)


@pytest.fixture
def sendgrid(sendgrid_url: str) -> SendGridAPIClient:
    return SendGridAPIClient(SENDGRID_KEY, host=sendgrid_url)


@pytest.fixture
def hubspot(hubspot_url: str) -> HubSpot:
    # Every client setting is copied onto each API package's Configuration; `host` replaces
    # https://api.hubapi.com (hubspot/discovery/discovery_base.py).
    return HubSpot(access_token=HUBSPOT_TOKEN, host=hubspot_url)
