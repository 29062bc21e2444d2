"""Each `invites` verb against the real dev server: what it prints, its JSON, its exit code."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

import pytest

from cli.ops import STATE_LOOKUP_MAX
from invites.invitations import handle_for
from tests.cli.conftest import Cli, unique_email
from tests.support.auth0 import user_payload

pytestmark = pytest.mark.devserver

UNKNOWN_ID = "inv_01JD0Z3Q6W7N9V4X2B8C5M1K0T"
VISIBILITY_TIMEOUT = 10.0


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def listed(cli: Cli, *args: str, count: int = 1) -> list[dict]:
    """`invites list ARGS --json`, polled until visibility lists `count` rows."""
    async with asyncio.timeout(VISIBILITY_TIMEOUT):
        while len(rows := await cli.json("list", *args)) != count:
            await asyncio.sleep(0.2)
    return rows


async def until_sent(cli: Cli, invitation_id: str, mails: int = 1) -> dict:
    async with asyncio.timeout(VISIBILITY_TIMEOUT):
        while (shown := await cli.json("show", invitation_id))["invitation"]["mails_sent"] < mails:
            await asyncio.sleep(0.1)
    return shown


async def test_create_prints_the_invitation_and_a_repeat_with_the_same_ref_finds_it(cli: Cli):
    invited, ref = unique_email("Ada"), f"lead-{unique_email('ref')}"
    args = ("--role", "customer", "--role", "member", "--data", "plan=pro", "--ref", ref, "--locale", "fr")
    first = await cli.create(invited, *args, "--expires-in", "86400", "--policy", "any")
    assert first["created"] is True
    assert first["id"].startswith("inv_")
    assert (first["email"], first["status"], first["roles"]) == (
        invited,
        "pending",
        ["customer", "member"],
    )
    assert first["external_ref"] == ref
    assert first["email_policy"] == "any"
    assert at(first["expires_at"]) - at(first["created_at"]) == timedelta(days=1)

    again = await cli.create(invited, *args, "--expires-in", "86400", "--policy", "any")
    assert (again["id"], again["created"]) == (first["id"], False)

    changed = await cli("create", "--email", invited, "--ref", ref)
    assert changed.exit_code == 1
    assert "refused: idempotency_conflict" in changed.stderr

    human = await cli("create", "--email", unique_email(), "--role", "customer")
    assert human.exit_code == 0, human.stderr
    assert "Created:" in human.stdout
    assert "customer" in human.stdout
    new_id = next(word for word in human.stdout.split() if word.startswith("inv_"))
    cli.stack.handles.append(handle_for(cli.stack.client, new_id))


async def test_show_has_the_state_the_timeline_and_the_mails(cli: Cli):
    email = unique_email()
    created = await cli.create(email, "--role", "customer")
    shown = await until_sent(cli, created["id"])

    assert shown["invitation"]["id"] == created["id"]
    assert shown["invitation"]["status"] == "pending"
    events = [moment["event"] for moment in shown["timeline"]]
    assert events[:3] == ["created", "looked up", "sent"]
    assert "roles customer" in shown["timeline"][0]["detail"]
    assert shown["timeline"][1]["detail"] == "no account yet: sign-up"
    assert [(m["kind"], m["to"]) for m in shown["mails"]] == [("invite", email)]
    assert "link" not in shown["mails"][0]  # the link carries the token: never printed

    human = await cli("show", created["id"])
    assert human.exit_code == 0, human.stderr
    for text in (created["id"], email, "Timeline", "looked up", "Mails", "invite"):
        assert text in human.stdout


async def test_show_tells_reminders_expiry_and_an_undeliverable_mail_from_the_history(cli: Cli):
    s = cli.stack
    expiring = await s.invite(
        unique_email(), reminders=(timedelta(seconds=1),), expires_in=timedelta(seconds=3)
    )
    bounced_to = unique_email("bounce")
    s.sendgrid.reject(bounced_to)
    bounced = await s.invite(bounced_to)
    async with asyncio.timeout(30):
        expired, undeliverable = await asyncio.gather(expiring.result(), bounced.result())

    shown = await cli.json("show", expired.invitation_id)
    events = [m["event"] for m in shown["timeline"]]
    assert events == ["created", "looked up", "sent", "reminded", "expired", "closed"]
    assert shown["invitation"]["status"] == "expired"
    assert [m["kind"] for m in shown["mails"]] == ["invite", "reminder"]

    shown = await cli.json("show", undeliverable.invitation_id)
    moments = {m["event"]: m["detail"] for m in shown["timeline"]}
    assert list(moments) == ["created", "looked up", "mail failed", "undeliverable", "closed"]
    assert "SendGrid rejected the mail" in moments["mail failed"]
    assert moments["undeliverable"] == undeliverable.undeliverable_reason
    assert shown["mails"] == []


async def test_show_tells_a_first_mail_that_failed_once_then_went_out(cli: Cli):
    cli.stack.sendgrid.faults.status("POST /v3/mail/send", 503, times=1)
    created = await cli.create(unique_email(), "--role", "customer")
    shown = await until_sent(cli, created["id"])  # send_mail, scheduled at once, sends it
    moments = [(m["event"], m["detail"]) for m in shown["timeline"]]
    assert [event for event, _ in moments[:4]] == ["created", "looked up", "mail failed", "sent"]
    assert "SendGrid answered 503" in moments[2][1]
    assert moments[2][1].endswith("retried as send_mail")


async def test_list_filters_by_status_email_and_ref_and_fills_accepted_by(cli: Cli):
    s = cli.stack
    email, ref = unique_email(), f"crm-{unique_email('x')}"
    accepted = await cli.create(email, "--role", "customer", "--ref", ref)
    other = await cli.create(email, "--role", "member")
    await until_sent(cli, accepted["id"])
    await until_sent(cli, other["id"])
    user = s.auth0.create_user(email)
    [token] = [t for t in s.links(email) if s.signer.verify(t).invitation_id == accepted["id"]]
    result = await s.redeem(handle_for(s.client, accepted["id"]), user_payload(s.auth0, email), token)
    assert result.result == "accepted"

    # The address is matched lower-cased, whatever case the operator types.
    both = await listed(cli, "--email", email.upper(), count=2)
    assert {row["id"] for row in both} == {accepted["id"], other["id"]}
    [row] = await listed(cli, "--email", email, "--status", "accepted")
    assert row["id"] == accepted["id"]
    assert row["accepted_by"] == user["user_id"]  # --limit 50 (default): the state is asked for
    [by_ref] = await listed(cli, "--ref", ref)
    assert by_ref["id"] == accepted["id"]
    [pending] = await listed(cli, "--email", email, "--status", "pending")
    assert (pending["id"], pending["accepted_by"]) == (other["id"], None)

    [long_listing] = await listed(cli, "--ref", ref, "--limit", str(STATE_LOOKUP_MAX + 1))
    assert long_listing["accepted_by"] is None  # past 50 rows the states are not asked for

    table = await cli("list", "--email", email)
    assert table.exit_code == 0, table.stderr
    assert accepted["id"] in table.stdout
    assert user["user_id"] in table.stdout
    assert "accepted by" in table.stdout

    refused = await cli("revoke", accepted["id"])
    assert refused.exit_code == 1
    assert "refused: already_redeemed" in refused.stderr

    shown = await cli.json("show", accepted["id"])
    moments = [(m["event"], m["detail"]) for m in shown["timeline"]]
    assert ("accepted", f"by {user['user_id']}") in moments
    assert ("roles assigned", "") in moments
    assert ("account linked", "") in moments


async def test_revoke_then_every_steering_verb_is_refused_with_the_reason(cli: Cli):
    created = await cli.create(unique_email(), "--role", "customer")
    await until_sent(cli, created["id"])

    revoked = await cli.json("revoke", created["id"], "--reason", "sent by mistake")
    assert revoked["status"] == "revoked"
    assert revoked["revoked_reason"] == "sent by mistake"

    for verb in (("revoke",), ("resend",), ("extend", "--days", "3")):
        result = await cli(verb[0], created["id"], *verb[1:])
        assert result.exit_code == 1, (verb, result.stdout, result.stderr)
        assert result.stderr.startswith("refused: revoked"), result.stderr
        error = await cli.json(verb[0], created["id"], *verb[1:], exit_code=1)
        assert error["error"]["code"] == "revoked"

    shown = await cli.json("show", created["id"])
    events = [(m["event"], m["detail"]) for m in shown["timeline"]]
    assert ("revoked", "sent by mistake") in events
    assert events[-1] == ("closed", "revoked")


async def test_resend_with_rotation_and_extend_move_the_invitation_on(cli: Cli):
    created = await cli.create(unique_email(), "--role", "customer")
    await until_sent(cli, created["id"])

    resent = await cli.json("resend", created["id"], "--rotate")
    assert resent["mails_sent"] == 2
    assert resent["link_generation"] == 1

    extended = await cli.json("extend", created["id"], "--days", "3")
    assert at(extended["expires_at"]) == at(created["expires_at"]) + timedelta(days=3)

    too_far = await cli("extend", created["id"], "--days", "90")  # 14 + 90 days: past the ceiling
    assert too_far.exit_code == 1
    assert "refused: invalid_expiry" in too_far.stderr

    shown = await cli.json("show", created["id"])
    events = [m["event"] for m in shown["timeline"]]
    assert events.count("resend requested") == 1
    assert "resent" in events
    assert "extended" in events
    assert [m["kind"] for m in shown["mails"]] == ["invite", "invite"]


async def test_reissue_makes_one_new_invitation_for_an_ended_one(cli: Cli):
    created = await cli.create(unique_email(), "--role", "member", "--data", "plan=team")
    await until_sent(cli, created["id"])

    pending = await cli("reissue", created["id"])
    assert pending.exit_code == 1
    assert "refused: not_reissuable" in pending.stderr

    await cli.json("revoke", created["id"])
    reissued = await cli.json("reissue", created["id"])
    cli.stack.handles.append(handle_for(cli.stack.client, reissued["id"]))
    assert reissued["created"] is True
    assert reissued["id"] != created["id"]
    assert (reissued["email"], reissued["roles"], reissued["status"]) == (
        created["email"],
        ["member"],
        "pending",
    )
    again = await cli.json("reissue", created["id"])
    assert (again["id"], again["created"]) == (reissued["id"], False)

    record = await cli.stack.store.get_invitation(reissued["id"])
    assert record is not None
    assert (record.data, record.reissued_from) == ({"plan": "team"}, created["id"])


async def test_unknown_invitation_and_ungrantable_role_are_refused_with_exit_1(cli: Cli):
    for verb in (("show",), ("revoke",), ("resend",), ("extend", "--days", "1"), ("reissue",)):
        result = await cli(verb[0], UNKNOWN_ID, *verb[1:])
        assert result.exit_code == 1, (verb, result.stdout, result.stderr)
        assert result.stderr.startswith("refused: not_found"), result.stderr
    assert (await cli.json("show", UNKNOWN_ID, exit_code=1))["error"]["code"] == "not_found"

    # `admin` exists in the tenant; INVITES_GRANTABLE_ROLES (customer,member) does not list it.
    result = await cli("create", "--email", unique_email(), "--role", "admin")
    assert result.exit_code == 1
    assert "refused: role_not_grantable" in result.stderr
    assert "admin" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("create", "--email", "not-an-email"),
        ("create", "--email", "ada@example.com", "--data", "no-equals-sign"),
        ("create", "--email", "ada@example.com", "--expires-in", "60"),
        ("create", "--email", "ada@example.com", "--policy", "everyone"),
        ("create", "--email", "ada@example.com", "--role", "bad role!"),
        ("create",),
        ("show", "inv_not-an-id"),
        ("list", "--limit", "0"),
        ("list", "--email", 'x" OR WorkflowType="y'),
        ("extend", UNKNOWN_ID),
        ("extend", UNKNOWN_ID, "--days", "91"),
        ("frobnicate",),
    ],
)
async def test_bad_usage_and_invalid_values_exit_2_with_a_message(cli: Cli, args: tuple[str, ...]):
    result = await cli(*args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.strip()
    assert not result.stdout.strip()


async def test_bad_email_names_the_option(cli: Cli):
    result = await cli("create", "--email", "not-an-email")
    assert "--email" in result.stderr
    assert "valid email" in result.stderr


async def test_an_unreachable_temporal_exits_3(cli: Cli, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("INVITES_TEMPORAL_ADDRESS", "127.0.0.1:1")
    result = await cli("list")
    assert result.exit_code == 3
    assert "Cannot reach Temporal at 127.0.0.1:1" in result.stderr


async def test_the_installed_program_reports_exit_codes_and_json(cli: Cli):
    """`python -m cli` in its own process, as ops run it."""
    created = await cli.create(unique_email(), "--role", "customer")
    listed_ = await asyncio.to_thread(cli.process, "list", "--json", "--limit", "5")
    assert listed_.returncode == 0, listed_.stderr
    assert isinstance(json.loads(listed_.stdout), list)

    shown = await asyncio.to_thread(cli.process, "show", created["id"], "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["invitation"]["id"] == created["id"]

    missing = await asyncio.to_thread(cli.process, "show", UNKNOWN_ID)
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr.startswith("refused: not_found")

    usage = await asyncio.to_thread(cli.process, "create", "--email", "nope")
    assert usage.returncode == 2


async def test_rollback_undoes_an_acceptance_and_show_tells_both_runs(cli: Cli):
    s = cli.stack
    email = unique_email()
    created = await cli.create(email, "--role", "customer")
    await until_sent(cli, created["id"])
    user = s.auth0.create_user(email)
    result = await s.redeem(handle_for(s.client, created["id"]), user_payload(s.auth0, email))
    assert result.grant == "done"

    missing = await cli("rollback", created["id"])
    assert missing.exit_code == 2  # --reason is required
    rolled = await cli.json("rollback", created["id"], "--reason", "wrong account")
    assert (rolled["status"], rolled["rollback"]) == ("revoked", "done")
    assert rolled["revoked_reason"] == "wrong account"
    assert s.auth0.role_names(user["user_id"]) == []
    again = await cli("rollback", created["id"], "--reason", "again")
    assert again.exit_code == 0 and "Rolled back:" in again.stdout

    async with asyncio.timeout(VISIBILITY_TIMEOUT):  # the accepted run is found through visibility
        while True:
            shown = await cli.json("show", created["id"])
            events = [(m["event"], m["detail"]) for m in shown["timeline"]]
            if ("accepted", f"by {user['user_id']}") in events:
                break
            await asyncio.sleep(0.2)
    names = [event for event, _ in events]
    assert names.index("accepted") < names.index("rollback requested") < names.index("rolled back")
    assert ("rolled back", "removed customer; account unlinked") in events

    pending = await cli.create(unique_email(), "--role", "customer")
    refused = await cli("rollback", pending["id"], "--reason", "no")
    assert refused.exit_code == 1
    assert "refused: not_accepted" in refused.stderr
