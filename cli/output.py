"""How the `invites` CLI prints: rich tables for people, plain JSON (`--json`) for scripts.

JSON goes to stdout and nothing else does in that mode; refusals and errors go to stderr as one
line (`refused: <code>: ...`), or as the API's error body `{"error": {"code", "message"}}` on
stdout under `--json`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from cli.ops import Listed
from cli.timeline import Moment
from invites.db.records import OutboxMail
from invites.models import InvitationState, Status
from invites.schemas import InvitationPublic


def _console(stderr: bool = False) -> Console:
    """A console on the current stdout/stderr; off a terminal, wide enough that no table wraps."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(file=stream, highlight=False, width=None if stream.isatty() else 1000)


def out() -> Console:
    return _console()


def print_table(console: Console, table: Table) -> None:
    """Print a table; off a terminal without the padding rich leaves at line ends."""
    if console.is_terminal:
        console.print(table)
        return
    with console.capture() as captured:
        console.print(table)
    console.file.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def err() -> Console:
    return _console(stderr=True)


STATUS_STYLE = {
    Status.PENDING: "yellow",
    Status.ACCEPTED: "green",
    Status.EXPIRED: "dim",
    Status.REVOKED: "red",
    Status.UNDELIVERABLE: "red",
}


def when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


def status_text(status: Status | None) -> Text:
    if status is None:
        return Text("?")
    return Text(status.value, style=STATUS_STYLE[status])


def cells(*values: str | Text) -> list[Text]:
    """Table cells as plain text: addresses, reasons and refs are never read as rich markup."""
    return [v if isinstance(v, Text) else Text(v) for v in values]


# --- one invitation -----------------------------------------------------------------------


def invitation_json(state: InvitationState) -> dict[str, Any]:
    """The API's `InvitationPublic`, plus what ops want to see beyond it."""
    public = InvitationPublic.from_state(state).model_dump(mode="json")
    for name in ("created_at", "expires_at", "accepted_at", "delivered_at", "opened_at"):
        public[name] = iso(getattr(state, name))
    return {
        **public,
        "mails_sent": state.mails_sent,
        "link_generation": state.generation,
        "email_policy": state.email_policy,
        "grant_error": state.grant_error,
        "rollback_error": state.rollback_error,
        "undeliverable_reason": state.undeliverable_reason,
        "reminders_stopped": state.reminders_stopped,
        "ended_at": iso(state.ended_at),
    }


def print_invitation(state: InvitationState, title: str | None = None) -> None:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    rows: list[tuple[str, str | Text]] = [
        ("id", state.invitation_id),
        ("email", state.email),
        ("status", status_text(state.status)),
        ("roles", ", ".join(state.roles) or "-"),
        ("external ref", state.external_ref or "-"),
        ("email policy", state.email_policy),
        ("created", when(state.created_at) + " UTC"),
        ("expires", when(state.expires_at) + " UTC"),
        (
            "mails sent",
            f"{state.mails_sent} (reminders {state.reminders_sent}, link generation {state.generation})",
        ),
    ]
    if state.source or state.campaign:
        rows.append(("source, campaign", f"{state.source or '-'}, {state.campaign or '-'}"))
    rows.append(("delivered", when(state.delivered_at) + " UTC" if state.delivered_at else "not reported"))
    rows.append(("opened", when(state.opened_at) + " UTC" if state.opened_at else "not yet"))
    if state.reminders_stopped:
        rows.append(("reminders stopped", f"SendGrid reported a {state.reminders_stopped}"))
    if state.accepted_by:
        rows.append(("accepted by", f"{state.accepted_by} at {when(state.accepted_at)} UTC"))
    if state.grant:
        rows.append(("grant", state.grant + (f": {state.grant_error}" if state.grant_error else "")))
    if state.revoked_reason:
        rows.append(("revoked because", state.revoked_reason))
    if state.rollback:
        done = f" at {when(state.rolled_back_at)} UTC" if state.rolled_back_at else ""
        error = f": {state.rollback_error}" if state.rollback_error else ""
        rows.append(("rollback", f"{state.rollback}{done}{error}"))
    if state.undeliverable_reason:
        rows.append(("undeliverable", state.undeliverable_reason))
    for name, value in rows:
        table.add_row(*cells(name, value))
    console = out()
    if title:
        console.print(title, markup=False)
    print_table(console, table)


# --- list ------------------------------------------------------------------------------------


def listed_json(row: Listed) -> dict[str, Any]:
    s = row.summary
    return {
        "id": s.id,
        "email": row.email,
        "status": s.status.value if s.status else None,
        "external_ref": s.external_ref,
        "created_at": iso(s.created_at),
        "expires_at": iso(s.expires_at),
        "closed_at": iso(s.closed_at),
        "accepted_by": row.state.accepted_by if row.state else None,
    }


def print_list(rows: Sequence[Listed], *, with_state: bool, more_than: int | None = None) -> None:
    """The rows as a table; `more_than`: the --limit that more invitations match than."""
    if not rows:
        err().print("No invitations match.")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name in ("id", "email", "status", "created (UTC)", "expires (UTC)", "accepted by"):
        table.add_column(name, no_wrap=True)
    for row in rows:
        s = row.summary
        table.add_row(
            *cells(
                s.id,
                row.email or "",
                status_text(s.status),
                when(s.created_at),
                when(s.expires_at),
                (row.state.accepted_by or "") if row.state else "",
            )
        )
    print_table(out(), table)
    if not with_state:
        err().print("[dim]accepted by is left blank above 50 rows (--limit 50 or less fills it).[/]")
    if more_than is not None:
        err().print(
            f"[dim]More than {more_than} invitations match: these are the first {more_than} Temporal "
            "lists (pending ones first), newest first. Raise --limit or narrow with --status or "
            "--email to see newer ended ones.[/]"
        )


# --- show ------------------------------------------------------------------------------------


def show_json(
    state: InvitationState, moments: Sequence[Moment], mails: Sequence[OutboxMail]
) -> dict[str, Any]:
    return {
        "invitation": invitation_json(state),
        "timeline": [{"at": iso(m.at), "event": m.event, "detail": m.detail} for m in moments],
        "mails": [
            {"id": m.id, "kind": m.kind, "to": m.to, "subject": m.subject, "sent_at": iso(m.sent_at)}
            for m in mails
        ],
    }


def print_show(state: InvitationState, moments: Sequence[Moment], mails: Sequence[OutboxMail]) -> None:
    print_invitation(state)
    console = out()
    console.print()
    console.print("[bold]Timeline[/] (UTC)")
    timeline = Table(box=None, show_header=False, pad_edge=False)
    for _ in range(3):
        timeline.add_column()
    for m in moments:
        timeline.add_row(*cells(when(m.at), m.event, m.detail))
    print_table(console, timeline)
    console.print()
    console.print("[bold]Mails[/]" + ("" if mails else ": none recorded"))
    if mails:
        table = Table(box=None, header_style="bold", pad_edge=False)
        for name in ("sent (UTC)", "kind", "to", "subject"):
            table.add_column(name)
        for mail in mails:
            table.add_row(*cells(when(mail.sent_at), mail.kind, mail.to, mail.subject))
        print_table(console, table)


# --- refusals and errors ---------------------------------------------------------------------


def print_refused(code: str, message: str, *, as_json: bool) -> None:
    if as_json:
        print_json({"error": {"code": code, "message": message}})
    else:
        err().print(f"refused: {code}: {message}", markup=False)


def print_error(message: str, *, code: str = "unavailable", as_json: bool = False) -> None:
    if as_json:
        print_json({"error": {"code": code, "message": message}})
    else:
        err().print(f"error: {message}", markup=False)
