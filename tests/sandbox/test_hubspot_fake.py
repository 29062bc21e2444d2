"""The HubSpot fake, driven by `hubspot-api-client` through its `host` setting."""

from __future__ import annotations

import json

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInputUpsert,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.contacts.exceptions import ApiException, NotFoundException

from sandbox.hubspot_api import BATCH_UPSERT, HubSpotFake


def upsert(client: HubSpot, email: str, **properties: str):
    batch = BatchInputSimplePublicObjectBatchInputUpsert(
        inputs=[SimplePublicObjectBatchInputUpsert(id=email, id_property="email", properties=properties)]
    )
    return client.crm.contacts.batch_api.upsert(batch)


def by_email(email: str) -> PublicObjectSearchRequest:
    return PublicObjectSearchRequest(
        filter_groups=[FilterGroup(filters=[Filter(property_name="email", operator="EQ", value=email)])],
        properties=["email", "invites_status"],
    )


def test_host_setting_points_every_api_at_the_fake(
    hubspot_fake: HubSpotFake, hubspot: HubSpot, hubspot_url: str
) -> None:
    basic = hubspot.crm.contacts.basic_api
    created = basic.create(SimplePublicObjectInputForCreate(properties={"email": "a@example.com"}))

    assert basic.api_client.configuration.host == hubspot_url
    assert hubspot.crm.contacts.search_api.api_client.configuration.host == hubspot_url
    assert created.id in hubspot_fake.contacts
    call = hubspot_fake.faults.calls("POST /crm/v3/objects/contacts")[0]
    assert call.headers["Authorization"] == "Bearer pat-test-token"


def test_upsert_twice_by_email_keeps_one_contact(hubspot_fake: HubSpotFake, hubspot: HubSpot) -> None:
    first = upsert(hubspot, "Ann@Example.com", firstname="Ann", invites_status="invited")
    second = upsert(hubspot, "ann@example.com", invites_status="accepted")

    assert (first.results[0].new, second.results[0].new) == (True, False)
    assert first.results[0].id == second.results[0].id
    (contact,) = hubspot_fake.contacts.values()
    assert contact["properties"]["email"] == "ann@example.com"
    assert contact["properties"]["firstname"] == "Ann"
    assert contact["properties"]["invites_status"] == "accepted"
    assert hubspot_fake.faults.count(BATCH_UPSERT) == 2


def test_get_by_id_and_by_email(hubspot_fake: HubSpotFake, hubspot: HubSpot) -> None:
    contact = hubspot_fake.add_contact({"email": "ann@example.com", "firstname": "Ann"})
    basic = hubspot.crm.contacts.basic_api

    by_id = basic.get_by_id(contact["id"], properties=["firstname", "phone"])
    by_mail = basic.get_by_id("ANN@example.com", id_property="email")

    assert by_id.properties["firstname"] == "Ann"
    assert by_id.properties["phone"] is None
    assert by_mail.id == contact["id"]
    assert by_mail.properties["email"] == "ann@example.com"


def test_unknown_contact_is_404_object_not_found(hubspot: HubSpot) -> None:
    with pytest.raises(NotFoundException) as caught:
        hubspot.crm.contacts.basic_api.get_by_id("nobody@example.com", id_property="email")
    assert json.loads(caught.value.body)["category"] == "OBJECT_NOT_FOUND"


def test_create_with_a_taken_email_is_409(hubspot_fake: HubSpotFake, hubspot: HubSpot) -> None:
    existing = hubspot_fake.add_contact({"email": "ann@example.com"})
    with pytest.raises(ApiException) as caught:
        hubspot.crm.contacts.basic_api.create(
            SimplePublicObjectInputForCreate(properties={"email": "Ann@example.com"})
        )
    body = json.loads(caught.value.body)
    assert caught.value.status == 409
    assert body["message"] == f"Contact already exists. Existing ID: {existing['id']}"


def test_update_by_email_sets_and_clears_properties(hubspot_fake: HubSpotFake, hubspot: HubSpot) -> None:
    contact = hubspot_fake.add_contact({"email": "ann@example.com", "phone": "123"})
    updated = hubspot.crm.contacts.basic_api.update(
        "ann@example.com",
        SimplePublicObjectInput(properties={"invites_status": "accepted", "phone": ""}),
        id_property="email",
    )
    assert updated.properties["invites_status"] == "accepted"
    assert "phone" not in hubspot_fake.contacts[contact["id"]]["properties"]


def test_search_by_email_is_case_insensitive_and_paged(hubspot_fake: HubSpotFake, hubspot: HubSpot) -> None:
    hubspot_fake.add_contact({"email": "ann@example.com", "invites_status": "invited"})
    hubspot_fake.add_contact({"email": "bob@example.com"})
    found = hubspot.crm.contacts.search_api.do_search(by_email("ANN@example.com"))
    everyone = hubspot.crm.contacts.search_api.do_search(PublicObjectSearchRequest(limit=1))

    assert found.total == 1
    assert found.results[0].properties["invites_status"] == "invited"
    assert (everyone.total, len(everyone.results)) == (2, 1)
    assert everyone.paging.next.after == "1"


def test_wrong_token_is_401(hubspot_url: str) -> None:
    intruder = HubSpot(access_token="pat-wrong", host=hubspot_url)
    with pytest.raises(ApiException) as caught:
        intruder.crm.contacts.search_api.do_search(by_email("ann@example.com"))
    assert caught.value.status == 401
    assert json.loads(caught.value.body)["category"] == "INVALID_AUTHENTICATION"


def test_429_fault_carries_hubspot_body_and_headers(hubspot_fake: HubSpotFake, hubspot: HubSpot) -> None:
    hubspot_fake.faults.status(BATCH_UPSERT, 429, headers={"Retry-After": "10"})
    with pytest.raises(ApiException) as caught:
        upsert(hubspot, "ann@example.com")
    upsert(hubspot, "ann@example.com")

    assert caught.value.status == 429
    assert caught.value.headers["Retry-After"] == "10"
    assert json.loads(caught.value.body)["status"] == "error"
    assert len(hubspot_fake.contacts) == 1
