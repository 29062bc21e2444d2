"""`invites import FILE.csv`: rows created once, bad rows reported by line (10,000: test_import_10k.py)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from cli.bulk_import import KEY_PREFIX
from invites.creation import request_fingerprint
from invites.db.engine import create_engine
from invites.db.records import InvitationRecord
from invites.db.tables import Invitation
from invites.ids import invitation_id_for_key, invitation_id_for_ref
from invites.invitations import handle_for
from invites.schemas import InvitationCreate
from tests.cli.conftest import Cli, rejects_of, summary_of

pytestmark = pytest.mark.devserver

HEADER = "email,roles,external_ref,locale,expires_in,email_policy,plan,source\n"


async def test_import_creates_valid_rows_once_and_reports_bad_ones_by_line(cli: Cli, tmp_path: Path):
    tag = uuid.uuid4().hex[:8]
    a, b, c = (f"{name}.{tag}@example.com" for name in "abc")
    lines = [
        HEADER,  # line 1
        f"{a},customer,ref-{tag},fr,86400,any,pro,ads\n",  # 2: every known column
        f"{b},customer|member,,,,,team,\n",  # 3: no ref: named by its content
        f'{c},"customer member",,,,,"two\nlines",x\n',  # 4-5: a quoted field across lines
        "not-an-email,customer,,,,,,\n",  # 6
        f"d.{tag}@example.com,customer|admin,,,,,,\n",  # 7: admin is not grantable
        ",customer,,,,,,\n",  # 8
        f"e.{tag}@example.com,customer,,,abc,,,\n",  # 9
        "\n",  # 10: blank, skipped
        f"f.{tag}@example.com,customer,,,,,,,extra\n",  # 11: one field too many
        f"{b},customer|member,,,,,team,\n",  # 12: the same as line 3
    ]
    path = tmp_path / "leads.csv"
    path.write_text("".join(lines))

    first = await cli("import", str(path), "--json")
    assert first.exit_code == 1, first.stderr  # some rows were rejected
    summary = summary_of(first.stdout)
    assert (summary["created"], summary["already_existing"], summary["rejected"]) == (3, 1, 5)
    assert summary["failed"] == 0
    rejects = tmp_path / "leads.rejects.csv"
    assert summary["rejects_file"] == str(rejects)
    assert rejects_of(rejects) == [
        (6, "invalid_email"),
        (7, "role_not_grantable"),
        (8, "missing_email"),
        (9, "invalid_expires_in"),
        (11, "invalid_row"),
    ]

    assert await _invitations_to(cli, f"d.{tag}@example.com") == []  # nothing stored for line 7

    store = cli.stack.store
    by_ref = await store.get_invitation(invitation_id_for_ref(f"ref-{tag}"))
    assert by_ref is not None
    assert (by_ref.email, by_ref.data) == (a, {"plan": "pro"})
    assert by_ref.options["source"] == "ads"  # the funnel's keyword, not data
    assert by_ref.options["locale"] == "fr"
    assert by_ref.options["email_policy"] == "any"
    assert by_ref.options["expires_in"] == 86400
    body = InvitationCreate(email=b, roles=["customer", "member"], data={"plan": "team"})
    by_content = await store.get_invitation(invitation_id_for_key(KEY_PREFIX + request_fingerprint(body)))
    assert by_content is not None
    assert by_content.options["roles"] == ["customer", "member"]
    ids = [by_ref.id, by_content.id]
    [multi] = [r for r in await _invitations_to(cli, c)]
    assert (multi.data, multi.options["source"]) == ({"plan": "two\nlines"}, "x")
    ids.append(multi.id)
    cli.stack.handles.extend(handle_for(cli.stack.client, i) for i in ids)
    # Imported invitations are real ones: each mails its link (once: line 12 repeats line 3).
    for handle in cli.stack.handles:
        await cli.stack.sent(handle)
    assert [len(cli.stack.links(address)) for address in (a, b, c)] == [1, 1, 1]

    second = await cli("import", str(path), "--json")
    again = summary_of(second.stdout)
    assert (again["created"], again["already_existing"], again["rejected"]) == (0, 4, 5)

    human = await cli("import", str(path))
    assert human.exit_code == 1
    assert "already existing         4" in human.stdout
    assert f"skipped rows are listed in {rejects}" in human.stdout


async def _invitations_to(cli: Cli, email: str) -> list[InvitationRecord]:
    engine = create_engine(cli.stack.settings.database_url)
    try:
        async with engine.connect() as db:
            ids = (await db.scalars(select(Invitation.id).where(Invitation.email == email))).all()
    finally:
        await engine.dispose()
    return [r for i in ids if (r := await cli.stack.store.get_invitation(i)) is not None]


async def test_a_file_that_cannot_be_imported_is_bad_usage(cli: Cli, tmp_path: Path):
    no_email = tmp_path / "no-email.csv"
    no_email.write_text("name,plan\nada,pro\n")
    result = await cli("import", str(no_email))
    assert result.exit_code == 2
    assert "email" in result.stderr
    assert not (tmp_path / "no-email.rejects.csv").exists()

    assert (await cli("import", str(tmp_path / "missing.csv"))).exit_code == 2
    assert (await cli("import", str(no_email), "--concurrency", "0")).exit_code == 2
