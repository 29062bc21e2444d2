import asyncio
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import StatementError

from invites.db.records import LinkConflict, OutboxMail, UnknownInvitation
from invites.db.store import Store
from tests.support.records import T0, invitation

PARIS = timezone(timedelta(hours=2))


def mail(mail_id: str, sent_at: datetime, invitation_id: str = "inv_a", **changes) -> OutboxMail:
    return replace(
        OutboxMail(
            id=mail_id,
            invitation_id=invitation_id,
            to="ada@example.com",
            kind="invite",
            subject="You are invited",
            html="<p>Join us</p>",
            text="Join us",
            link="http://127.0.0.1:8000/i/tok",
            sent_at=sent_at,
        ),
        **changes,
    )


# --- invitations ---------------------------------------------------------------------


async def test_save_invitation_creates_it(store: Store):
    result = await store.save_invitation(invitation(external_ref="crm-1", idempotency_key="k1"))

    assert result.created is True
    assert result.invitation_id == "inv_01JTESTAAAAAAAAAAAAAAAAAAA"
    assert result.request_hash == "hash-1"
    stored = await store.get_invitation("inv_01JTESTAAAAAAAAAAAAAAAAAAA")
    assert stored == invitation(email="ada@example.com", external_ref="crm-1", idempotency_key="k1")


async def test_saving_the_same_id_again_leaves_the_first_row(store: Store):
    await store.save_invitation(invitation())

    again = await store.save_invitation(
        invitation(email="eve@example.com", data={"plan": "free"}, request_hash="hash-2")
    )

    assert again.created is False
    assert again.request_hash == "hash-1"
    stored = await store.get_invitation(invitation().id)
    assert stored is not None
    assert stored.email == "ada@example.com"
    assert stored.data == {"plan": "pro"}


async def test_same_idempotency_key_under_another_id_returns_the_existing_invitation(store: Store):
    await store.save_invitation(invitation("inv_first", idempotency_key="key-1"))

    again = await store.save_invitation(
        invitation("inv_second", idempotency_key="key-1", request_hash="hash-2")
    )

    assert again.created is False
    assert again.invitation_id == "inv_first"
    assert again.request_hash == "hash-1"
    assert await store.get_invitation("inv_second") is None


async def test_same_external_ref_under_another_id_returns_the_existing_invitation(store: Store):
    await store.save_invitation(invitation("inv_first", external_ref="crm-7"))

    again = await store.save_invitation(invitation("inv_second", external_ref="crm-7"))

    assert (again.created, again.invitation_id) == (False, "inv_first")


async def test_concurrent_saves_of_one_id_create_it_exactly_once(store: Store):
    recs = [invitation(request_hash=f"hash-{n}") for n in range(20)]

    results = await asyncio.gather(*(store.save_invitation(rec) for rec in recs))

    winners = [r for r in results if r.created]
    assert len(winners) == 1
    assert {r.request_hash for r in results} == {winners[0].request_hash}
    stored = await store.get_invitation(invitation().id)
    assert stored is not None
    assert stored.request_hash == winners[0].request_hash


async def test_get_unknown_invitation_is_none(store: Store):
    assert await store.get_invitation("inv_nobody") is None


async def test_find_by_idempotency_key(store: Store):
    await store.save_invitation(invitation("inv_keyed", idempotency_key="idem-42"))
    await store.save_invitation(invitation("inv_other"))

    found = await store.find_by_idempotency_key("idem-42")

    assert found is not None
    assert found.id == "inv_keyed"
    assert await store.find_by_idempotency_key("idem-unknown") is None


async def test_nested_json_survives_a_round_trip(store: Store):
    data = {
        "answers": [{"q": "size", "a": 42}, {"q": "ok", "a": True}, {"q": "none", "a": None}],
        "utm": {"source": "ads", "tags": ["a", "b"], "depth": {"deeper": {"x": 1.5}}},
        "name": "Zoë 李 🚀",
        "empty": {},
    }
    await store.save_invitation(invitation(data=data, app_metadata={"crm": {"id": 7}}))

    stored = await store.get_invitation(invitation().id)

    assert stored is not None
    assert stored.data == data
    assert stored.app_metadata == {"crm": {"id": 7}}


async def test_timestamps_come_back_aware_in_utc(store: Store):
    created = datetime(2025, 6, 1, 9, 30, 15, 654321, tzinfo=PARIS)
    await store.save_invitation(invitation(created_at=created))

    stored = await store.get_invitation(invitation().id)

    assert stored is not None
    assert stored.created_at == created
    assert stored.created_at.tzinfo is not None
    assert stored.created_at.utcoffset() == timedelta(0)
    assert stored.created_at.hour == 7


async def test_naive_timestamps_are_refused(store: Store):
    with pytest.raises(StatementError, match="naive datetime"):
        await store.save_invitation(invitation(created_at=datetime(2025, 1, 1)))
    assert await store.get_invitation(invitation().id) is None


# --- account links -------------------------------------------------------------------


async def test_link_account_links_once(store: Store):
    await store.save_invitation(invitation())

    first = await store.link_account(invitation().id, "auth0|ada", "ada@example.com", T0)
    again = await store.link_account(invitation().id, "auth0|ada", "ada@example.com", T0)

    assert (first, again) == (True, False)
    links = await store.links_for_user("auth0|ada")
    assert [link.invitation_id for link in links] == [invitation().id]


async def test_link_account_to_another_user_conflicts(store: Store):
    await store.save_invitation(invitation())
    await store.link_account(invitation().id, "auth0|ada", "ada@example.com", T0)

    with pytest.raises(LinkConflict) as caught:
        await store.link_account(invitation().id, "google-oauth2|eve", "eve@example.com", T0)

    assert caught.value.linked_user_id == "auth0|ada"
    assert await store.links_for_user("google-oauth2|eve") == []


async def test_link_account_for_an_unknown_invitation_is_refused(store: Store):
    with pytest.raises(UnknownInvitation):
        await store.link_account("inv_nobody", "auth0|ada", "ada@example.com", T0)


async def test_concurrent_links_by_the_same_user_change_it_once(store: Store):
    await store.save_invitation(invitation())

    results = await asyncio.gather(
        *(store.link_account(invitation().id, "auth0|ada", "ada@x.com", T0) for _ in range(10))
    )

    assert sorted(results) == [False] * 9 + [True]


async def test_links_for_user_lists_newest_first_with_the_funnel_data(store: Store):
    for n in range(3):
        roles = (
            {"roles": ["customer", "member"][:n]} if n else {}
        )  # inv_0: a row from before `options` held them
        await store.save_invitation(
            invitation(f"inv_{n}", data={"n": n}, created_at=T0 + timedelta(days=n), options=roles)
        )
    await store.link_account("inv_0", "auth0|ada", "ada@work.com", T0 + timedelta(days=5))
    await store.link_account("inv_2", "auth0|ada", "ada@work.com", T0 + timedelta(days=9))
    await store.link_account("inv_1", "auth0|bob", "bob@example.com", T0 + timedelta(days=7))

    links = await store.links_for_user("auth0|ada")

    assert [link.invitation_id for link in links] == ["inv_2", "inv_0"]
    newest = links[0]
    assert newest.user_id == "auth0|ada"
    assert newest.account_email == "ada@work.com"
    assert newest.email == "ada@example.com"
    assert newest.data == {"n": 2}
    assert newest.created_at == T0 + timedelta(days=2)
    assert newest.accepted_at == T0 + timedelta(days=9)
    assert newest.accepted_at.tzinfo is not None
    assert [link.roles for link in links] == [["customer", "member"], []]
    assert await store.links_for_user("auth0|nobody") == []


# --- outbox --------------------------------------------------------------------------


async def test_record_mail_keeps_a_mail_once(store: Store):
    first = await store.record_mail(mail("inv_a:invite:0", T0))
    again = await store.record_mail(mail("inv_a:invite:0", T0, subject="changed"))

    assert (first, again) == (True, False)
    assert await store.list_outbox() == [mail("inv_a:invite:0", T0)]


async def test_record_mail_refuses_an_unknown_kind(store: Store):
    with pytest.raises(ValueError, match="kind"):
        await store.record_mail(mail("inv_a:spam:0", T0, kind="spam"))


async def test_list_outbox_is_newest_first_limited_and_filtered(store: Store):
    await store.record_mail(mail("inv_a:invite:0", T0))
    await store.record_mail(mail("inv_b:invite:0", T0 + timedelta(minutes=1), "inv_b"))
    await store.record_mail(mail("inv_a:reminder:0", T0 + timedelta(days=3), kind="reminder"))

    everything = await store.list_outbox()
    latest = await store.list_outbox(limit=1)
    for_a = await store.list_outbox(invitation_id="inv_a")

    assert [m.id for m in everything] == ["inv_a:reminder:0", "inv_b:invite:0", "inv_a:invite:0"]
    assert [m.id for m in latest] == ["inv_a:reminder:0"]
    assert [m.id for m in for_a] == ["inv_a:reminder:0", "inv_a:invite:0"]
    assert everything[0].kind == "reminder"
    assert everything[0].sent_at.utcoffset() == timedelta(0)


# --- webhook receipts ----------------------------------------------------------------


async def test_remember_webhook_keeps_the_first_reply(store: Store):
    first = await store.remember_webhook("msg_1", 200, {"result": "accepted"}, timedelta(hours=1), now=T0)
    second = await store.remember_webhook(
        "msg_1", 409, {"result": "rejected"}, timedelta(hours=1), now=T0 + timedelta(minutes=5)
    )

    assert first.status_code == 200
    assert first.response == {"result": "accepted"}
    assert first.expires_at == T0 + timedelta(hours=1)
    assert second == first
    assert await store.get_webhook("msg_1", now=T0 + timedelta(minutes=59)) == first


async def test_an_expired_webhook_receipt_is_replaced(store: Store):
    await store.remember_webhook("msg_1", 200, {"v": 1}, timedelta(hours=1), now=T0)
    later = T0 + timedelta(hours=2)

    assert await store.get_webhook("msg_1", now=later) is None
    replaced = await store.remember_webhook("msg_1", 410, {"v": 2}, timedelta(hours=1), now=later)

    assert (replaced.status_code, replaced.response) == (410, {"v": 2})
    assert replaced.expires_at == later + timedelta(hours=1)


async def test_concurrent_webhook_receipts_all_get_the_first(store: Store):
    receipts = await asyncio.gather(
        *(
            store.remember_webhook("msg_race", 200 + n, {"n": n}, timedelta(hours=1), now=T0)
            for n in range(20)
        )
    )

    assert len(set(map(repr, receipts))) == 1
    assert await store.get_webhook("msg_race", now=T0) == receipts[0]


async def test_concurrent_replacements_of_an_expired_receipt_agree(store: Store):
    await store.remember_webhook("msg_race", 200, {"v": 0}, timedelta(minutes=5), now=T0)
    later = T0 + timedelta(hours=1)

    receipts = await asyncio.gather(
        *(
            store.remember_webhook("msg_race", 300 + n, {"n": n}, timedelta(hours=1), now=later)
            for n in range(20)
        )
    )

    assert len(set(map(repr, receipts))) == 1
    assert receipts[0].status_code != 200


async def test_purge_expired_webhooks_deletes_only_expired_ones(store: Store):
    await store.remember_webhook("old", 200, {}, timedelta(minutes=5), now=T0)
    await store.remember_webhook("new", 200, {}, timedelta(hours=5), now=T0)

    purged = await store.purge_expired_webhooks(T0 + timedelta(hours=1))

    assert purged == 1
    assert await store.get_webhook("old", now=T0) is None
    assert await store.get_webhook("new", now=T0) is not None


async def test_get_unknown_webhook_is_none(store: Store):
    assert await store.get_webhook("msg_unknown") is None


async def test_remember_webhook_defaults_to_the_current_time(store: Store):
    receipt = await store.remember_webhook("msg_now", 200, [1, 2], timedelta(minutes=5))

    assert receipt.response == [1, 2]
    assert await store.get_webhook("msg_now") == receipt
    assert await store.purge_expired_webhooks() == 0


async def test_ping(store: Store):
    await store.ping()
