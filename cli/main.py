"""The `invites` command line (SPEC §8).

Ops verbs talk to Temporal and the database directly, with the worker's settings (`INVITES_*`).
Exit codes: 0 done; 1 refused (the reason code is printed, `refused: already_redeemed`), also
for an unknown invitation; 2 bad usage or an invalid value; 3 Temporal, the database or Auth0
did not answer (nothing was decided: try again). See docs/cli.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Awaitable, Callable
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError

from bench.main import bench
from cli.dev_mail import DevMail
from invites.models import Status

if TYPE_CHECKING:
    from temporalio.client import Client

    from cli.ops import Ops
    from invites.creation import Created
    from invites.models import InvitationState
    from invites.settings import Settings

# The verbs import the Temporal SDK, SQLAlchemy and auth0 inside their bodies: `--help` and
# usage errors answer at once, without loading them.


class _Invites(typer.Typer):
    """The `invites` program: ends the process without interpreter teardown.

    The Temporal SDK's Rust threads can abort CPython's finalization after a client was used
    ("PyGILState_Release: thread state must be current", temporalio/sdk-python#300), turning a
    clean exit code into 134. Everything is flushed and finished by then, so skip the teardown.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        code = 0
        try:
            super().__call__(*args, **kwargs)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if isinstance(exc.code, str):
                print(exc.code, file=sys.stderr)
        except Exception:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


app = _Invites(
    help="Durable invitations for Auth0, one Temporal workflow each.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

EXIT_REFUSED, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_INTERRUPTED = 1, 2, 3, 130
IMPORT_CONCURRENCY = 8
# Where a field of `InvitationCreate` comes from on the `create` command line.
CREATE_OPTIONS = {
    "email": "--email",
    "roles": "--role",
    "data": "--data",
    "external_ref": "--ref",
    "expires_in": "--expires-in",
    "email_policy": "--policy",
    "locale": "--locale",
    "mode": "--mode",
}


class Policy(StrEnum):
    match = "match"
    any = "any"


class CreateMode(StrEnum):
    link = "link"
    provisioned = "provisioned"


def _invitation_id(value: str) -> str:
    from invites.ids import is_invitation_id

    value = value.strip()
    if not is_invitation_id(value):
        raise typer.BadParameter(
            "not an invitation id (inv_ followed by 26 characters, as `invites list` shows)"
        )
    return value


InvitationId = Annotated[str, typer.Argument(help="The invitation's id (inv_…).", callback=_invitation_id)]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON only.")]


@app.command()
def worker() -> None:
    """Run the Temporal worker (workflow + activities) with settings from INVITES_* variables."""
    import worker as worker_module  # the CLI sits above the worker; the core never imports it

    _settings()  # a refusal is one clear message, not a traceback; main() reads the same cache
    worker_module.main()


@app.command()
def api() -> None:
    """Run the HTTP API (uvicorn) on INVITES_API_HOST:INVITES_API_PORT."""
    import uvicorn

    from invites.logs import configure_logging

    settings = _settings()
    configure_logging(settings)
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,  # X-Forwarded-For only from these
        log_config=None,  # uvicorn's access and error lines go through our handler
    )


@app.command()
def dev(
    mail: Annotated[
        DevMail,
        typer.Option(
            help="sendgrid: through the sandbox's SendGrid stand-in, with delivery events; "
            "outbox: kept in the outbox only (what the benchmark uses)."
        ),
    ] = DevMail.sendgrid,
) -> None:
    """Run the product on this machine: Temporal dev server and UI, Auth0 sandbox, worker."""
    from cli.dev import STATE_DIR, run_dev

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    STATE_DIR.mkdir(exist_ok=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_dev(mail=mail))


# --- read -----------------------------------------------------------------------------------


@app.command("list")
def list_invitations(
    status: Annotated[Status | None, typer.Option(help="Only invitations in this state.")] = None,
    email: Annotated[str | None, typer.Option(help="Only invitations sent to this address.")] = None,
    ref: Annotated[str | None, typer.Option(help="Only the invitation with this external_ref.")] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=10_000, help="At most this many (pending ones first when more match).")
    ] = 50,
    json_output: JsonFlag = False,
) -> None:
    """List invitations from Temporal visibility, newest first (by creation).

    Temporal lists pending invitations before ended ones and cannot sort otherwise, so when more
    than --limit match, the rows are the first --limit it lists (sorted newest first), not the
    newest --limit. The `accepted by` column needs each invitation's state: it is asked for only
    when --limit is 50 or less (the default), and left blank for longer listings.
    """
    from cli import ops as cli_ops
    from cli import output as cli_output
    from invites.invitations import list_query
    from invites.schemas import is_safe_text

    for name, value in (("--email", email), ("--ref", ref)):
        if value is not None and not is_safe_text(value.strip()):
            raise typer.BadParameter("1 to 200 characters, without quotes or backslashes", param_hint=name)
    with_state = limit <= cli_ops.STATE_LOOKUP_MAX

    async def run(ops: cli_ops.Ops) -> None:
        query = list_query(
            ops.settings, status and status.value, email and email.strip(), ref and ref.strip()
        )
        listing = await cli_ops.list_invitations(ops, query, limit, with_state=with_state)
        if json_output:
            cli_output.print_json([cli_output.listed_json(row) for row in listing.rows])
        else:
            more_than = limit if listing.more else None
            cli_output.print_list(listing.rows, with_state=with_state, more_than=more_than)

    _run(run, as_json=json_output)


@app.command()
def show(invitation_id: InvitationId, json_output: JsonFlag = False) -> None:
    """Show one invitation: its state, the timeline read from its workflow history, its mails."""
    from cli import ops as cli_ops
    from cli import output as cli_output
    from cli.timeline import timeline
    from invites.invitations import get_state

    async def run(ops: cli_ops.Ops) -> None:
        state = await get_state(ops.temporal, invitation_id)
        moments = await timeline(ops.temporal, state)
        mails = await cli_ops.mails_of(ops, invitation_id)
        if json_output:
            cli_output.print_json(cli_output.show_json(state, moments, mails))
        else:
            cli_output.print_show(state, moments, mails)

    _run(run, as_json=json_output, database=True)


# --- create ---------------------------------------------------------------------------------


@app.command()
def create(
    email: Annotated[str, typer.Option(help="The address to invite.")],
    role: Annotated[list[str] | None, typer.Option(help="An Auth0 role to grant (repeat for more).")] = None,
    data: Annotated[
        list[str] | None, typer.Option(help="Funnel data as key=value (repeat for more; values are text).")
    ] = None,
    ref: Annotated[
        str | None, typer.Option(help="The funnel's external_ref: makes the create idempotent.")
    ] = None,
    expires_in: Annotated[
        int | None, typer.Option(help="Seconds until it expires (3600 .. 7776000; default 14 days).")
    ] = None,
    policy: Annotated[
        Policy | None, typer.Option(help="Who may accept: the invited address only, or anyone.")
    ] = None,
    locale: Annotated[str | None, typer.Option(help="Language of the mails, e.g. en, fr, de-CH.")] = None,
    mode: Annotated[
        CreateMode | None,
        typer.Option(help="link (default), or provisioned: the account made ahead, a ticket mailed."),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Invite a person: store the data and start the invitation (the API's create, from the shell)."""
    from invites.schemas import InvitationCreate

    fields: dict[str, Any] = {"email": email.strip(), "roles": role or [], "data": _pairs(data or [])}
    optional = {
        "external_ref": ref,
        "expires_in": expires_in,
        "locale": locale,
        "email_policy": policy,
        "mode": mode,
    }
    fields.update(
        {k: (v.value if isinstance(v, StrEnum) else v) for k, v in optional.items() if v is not None}
    )
    try:
        body = InvitationCreate.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "email"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise typer.BadParameter(message, param_hint=CREATE_OPTIONS.get(field, field)) from None

    async def run(ops: Ops) -> None:
        outcome = await ops.creator.create(body)
        again = "Already existed (the same request was made before):"
        _print_created(outcome, "Created:" if outcome.created else again, json_output)

    _run(run, as_json=json_output, database=True, auth0=True)


def _pairs(items: list[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{item!r} is not key=value", param_hint="--data")
        pairs[key.strip()] = value
    return pairs


# --- steer ----------------------------------------------------------------------------------


@app.command()
def revoke(
    invitation_id: InvitationId,
    reason: Annotated[str, typer.Option(help="Why, kept with the invitation (500 characters at most).")] = "",
    json_output: JsonFlag = False,
) -> None:
    """Withdraw a pending invitation: its link stops working."""
    from invites import steering

    if len(reason) > 500:
        raise typer.BadParameter("at most 500 characters", param_hint="--reason")
    _steer(
        lambda client: steering.revoke(client, invitation_id, reason),
        lambda state: (
            "Revoked:"
            if state.status == Status.REVOKED
            else "Revocation sent; the workflow applies it shortly:"
        ),
        json_output,
    )


@app.command()
def resend(
    invitation_id: InvitationId,
    rotate: Annotated[bool, typer.Option(help="Send a new link; earlier links answer stale_link.")] = False,
    json_output: JsonFlag = False,
) -> None:
    """Send the invitation mail again (the same link stays valid unless --rotate)."""
    from invites import steering

    _steer(
        lambda client: steering.resend(client, invitation_id, rotate),
        lambda _: "Resend requested:",
        json_output,
    )


@app.command()
def extend(
    invitation_id: InvitationId,
    days: Annotated[int, typer.Option(min=1, max=90, help="Days to add to the current expiry.")],
    json_output: JsonFlag = False,
) -> None:
    """Push a pending invitation's expiry N days later (at most 90 days from now)."""
    from invites import steering

    _steer(
        lambda client: steering.extend_by(client, invitation_id, timedelta(days=days)),
        lambda _: "Extended:",
        json_output,
    )


@app.command()
def rollback(
    invitation_id: InvitationId,
    reason: Annotated[str, typer.Option(help="Why, kept with the invitation (500 characters at most).")],
    json_output: JsonFlag = False,
) -> None:
    """Undo a wrong acceptance: remove the roles and app_metadata its grant wrote and the link to
    the funnel data; the invitation ends revoked with the reason."""
    from invites import rollback as rolling

    if not reason.strip() or len(reason) > 500:
        raise typer.BadParameter("1 to 500 characters", param_hint="--reason")

    async def step(client: Client) -> InvitationState:
        return await rolling.roll_back(client, _settings().task_queue, invitation_id, reason)

    _steer(
        step,
        lambda state: "Rolled back:" if state.rollback == "done" else f"Rollback {state.rollback}:",
        json_output,
    )


@app.command()
def reissue(invitation_id: InvitationId, json_output: JsonFlag = False) -> None:
    """A new invitation with the same data for an expired, revoked or undeliverable one."""

    async def run(ops: Ops) -> None:
        outcome = await ops.creator.reissue(invitation_id)
        _print_created(outcome, "Reissued as:" if outcome.created else "Reissued before, as:", json_output)

    _run(run, as_json=json_output, database=True, auth0=True)


def _steer(
    step: Callable[[Client], Awaitable[InvitationState]],
    title: Callable[[InvitationState], str],
    json_output: bool,
) -> None:
    """Run one steering call on the Temporal client; print the state it answers with, titled."""
    from cli import output as cli_output

    async def run(ops: Ops) -> None:
        state = await step(ops.temporal)
        if json_output:
            cli_output.print_json(cli_output.invitation_json(state))
        else:
            cli_output.print_invitation(state, title(state))

    _run(run, as_json=json_output)


def _print_created(outcome: Created, title: str, json_output: bool) -> None:
    """A create's or reissue's outcome: the invitation, and whether this call made it."""
    from cli import output as cli_output

    if json_output:
        cli_output.print_json({**cli_output.invitation_json(outcome.state), "created": outcome.created})
    else:
        cli_output.print_invitation(outcome.state, title)


# --- import ---------------------------------------------------------------------------------


@app.command("import")
def import_csv(
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, readable=True, help="The CSV file (see docs/cli.md)."),
    ],
    concurrency: Annotated[
        int, typer.Option(min=1, max=256, help="Invitations created at once.")
    ] = IMPORT_CONCURRENCY,
    rejects: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Where skipped rows go (default FILE.rejects.csv).")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Create invitations from a CSV file: one per row, idempotent, bad rows skipped and reported.

    Exit 0 when every row was created or already existed, 1 when some were rejected or failed
    (see the rejects file), 2 when the file cannot be imported at all.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from cli import bulk_import
    from cli import ops as cli_ops
    from cli import output as cli_output

    try:
        bulk_import.check_header(file)
    except bulk_import.ImportFileError as exc:
        raise typer.BadParameter(str(exc), param_hint="FILE") from None
    rejects_path = rejects or file.with_name(file.name.removesuffix(".csv") + ".rejects.csv")
    if not rejects_path.parent.is_dir():
        raise typer.BadParameter(f"there is no folder {rejects_path.parent}", param_hint="--rejects")
    summary = bulk_import.Summary(rejects_path=str(rejects_path))
    total = bulk_import.count_rows(file)
    progress = Progress(
        TextColumn("importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=cli_output.err(),
    )

    async def run(ops: cli_ops.Ops) -> None:
        task = progress.add_task("import", total=total)
        with rejects_path.open("w", newline="", encoding="utf-8") as stream, progress:
            await bulk_import.import_file(
                file,
                ops.creator,
                bulk_import.RejectsWriter(stream),
                concurrency=concurrency,
                on_row=lambda: progress.advance(task),
                summary=summary,
            )

    try:
        _run(run, as_json=json_output, database=True, auth0=True)
    except bulk_import.ImportFileError as exc:  # found past the rows already handled
        message = f"{file} cannot be imported further: {exc}"
        if json_output:
            cli_output.print_json(
                {"error": {"code": "invalid_file", "message": message}, **summary.as_dict()}
            )
        else:
            cli_output.print_error(message)
            _print_summary(summary, json_output)
        raise typer.Exit(EXIT_USAGE) from None
    except typer.Exit as exc:
        if exc.exit_code == EXIT_INTERRUPTED:
            summary.interrupted = True
            _print_summary(summary, json_output)
        raise
    _print_summary(summary, json_output)
    if summary.rejected or summary.failed:
        raise typer.Exit(EXIT_REFUSED)


def _print_summary(summary: Any, json_output: bool) -> None:
    from cli import output as cli_output

    if json_output:
        cli_output.print_json({**summary.as_dict(), "interrupted": summary.interrupted})
        return
    console = cli_output.out()
    if summary.interrupted:
        console.print("Interrupted: run the same command again to finish (rows already done are skipped).")
    reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(summary.reasons.items()))
    console.print(f"created           {summary.created:>8}")
    console.print(f"already existing  {summary.existing:>8}")
    console.print(f"rejected          {summary.rejected:>8}" + (f"   ({reasons})" if reasons else ""))
    if summary.failed:
        console.print(f"failed            {summary.failed:>8}   (a dependency was down: import again)")
    if summary.rejected or summary.failed:
        console.print(f"skipped rows are listed in {summary.rejects_path}", markup=False)


# --- bench ----------------------------------------------------------------------------------

# Its options are declared with the load generator (bench/main.py; BENCHMARKS.md explains it).
app.command("bench")(bench)


# --- running a command ----------------------------------------------------------------------


def _run(
    command: Callable[[Any], Awaitable[None]],
    *,
    as_json: bool = False,
    database: bool = False,
    auth0: bool = False,
) -> None:
    """Run an async command with the connections it needs; map refusals and outages to exit codes."""
    from cli import ops as cli_ops
    from cli import output as cli_output
    from invites import errors

    settings = _settings(as_json)

    async def main() -> None:
        async with cli_ops.connect(settings, database=database, auth0=auth0) as ops:
            await command(ops)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as exc:
        refused = errors.refused(exc)
        if refused is not None:
            cli_output.print_refused(refused.code, refused.message, as_json=as_json)
            raise typer.Exit(EXIT_REFUSED) from None
        down = cli_ops.unavailable(exc)
        if down is not None:
            cli_output.print_error(down, as_json=as_json)
            raise typer.Exit(EXIT_UNAVAILABLE) from None
        raise


def _settings(as_json: bool = False) -> Settings:
    """The settings, or exit 2 with what is wrong with them (a production refusal names each
    setting and how to make a good value)."""
    from cli import output as cli_output
    from invites.settings import get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        cli_output.print_error(f"invalid settings: {exc}", code="invalid_settings", as_json=as_json)
        raise typer.Exit(EXIT_USAGE) from None
