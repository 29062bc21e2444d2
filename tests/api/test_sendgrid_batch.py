"""A big SendGrid batch: 1,000 events for 1,000 invitations in one signed post, applied once each,
and the same batch again applies nothing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from sandbox.sendgrid_events import event, public_key_b64, signed_headers
from tests.support.api import Api

KEY = ec.generate_private_key(ec.SECP256R1())
N = 1000


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"sendgrid_event_public_key": public_key_b64(KEY), "crm_backend": "none"}


async def test_a_batch_of_a_thousand_events_is_applied_once_each(api: Api):
    handles = await asyncio.gather(
        *(api.stack.invite(f"batch{n}@example.com", reminders=()) for n in range(N))
    )
    ids = [handle.id.removeprefix("invitation-") for handle in handles]
    batch = [
        event("delivered", f"batch{n}@example.com", f"m{n}", {"invitation_id": ids[n], "seq": "0"})
        for n in range(N)
    ]
    body = json.dumps(batch).encode()

    response = await api.http.post("/v1/webhooks/sendgrid", content=body, headers=signed_headers(KEY, body))
    assert response.status_code == 200, response.text
    assert response.json() == {"received": N, "applied": N, "duplicates": 0, "ignored": 0, "invalid": 0}

    again = await api.http.post("/v1/webhooks/sendgrid", content=body, headers=signed_headers(KEY, body))
    assert again.json() == {"received": N, "applied": 0, "duplicates": N, "ignored": 0, "invalid": 0}

    async with asyncio.timeout(120):  # each workflow records its delivery in the funnel
        while True:
            groups = (await api.http.get("/v1/stats/funnel", headers=api.key)).json()["groups"]
            if groups and (groups[0]["created"], groups[0]["delivered"]) == (N, N):
                break
            await asyncio.sleep(0.5)
    sample = await asyncio.gather(*(api.stack.state(handle) for handle in handles[::97]))
    assert all(state.delivered_at is not None and state.status == "pending" for state in sample)
