"""`invites dev`: the embedded default on one machine, each part a supervised child process.

Parts: the Temporal dev server with its UI (state in `.invites/temporal.db`, search attributes
registered), the Auth0 sandbox (`python -m sandbox`, state in `.invites/`), the worker and the
API.
Each part's output is prefixed with its name; a second start finds the earlier state. Children
are separate processes, so nothing here imports the worker or sandbox.

Ctrl-C stops the parts that use Temporal first (API, worker, sandbox), then Temporal, and ends
with a "stopped" line. The dev server's own system workers log a warning for each poll its
shutdown cuts off (`Failed to poll for task.`, a `network dial error`): a dozen lines of noise
on every stop, so Temporal's WARN lines are not relayed once it has been asked to stop (its
errors still are).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from cli import dev_mail
from cli.dev_mail import DevMail
from invites.settings import DEV_WEBHOOK_SECRET, Settings
from invites.temporal import SEARCH_ATTRIBUTES

STATE_DIR = Path(".invites")
# `invites dev` is development, whatever the shell or .env says: it runs on the public dev
# defaults and the sandbox, which production refuses (SPEC §10). Every part it starts gets it.
DEV_ENV = {"INVITES_ENV": "development"}
READY_TIMEOUT_S = 60
STOP_GRACE_S = 15  # per part, after SIGTERM
RELAY_DRAIN_S = 2  # for the parts' last lines once they have exited


@dataclass
class Part:
    name: str
    argv: list[str]
    port: int
    setting: str  # the setting that moves this part's port, for the "port in use" message


class PortInUse(Exception):
    pass


# The history service reads each shard's queue of transfer tasks (a workflow task after an
# activity completes, an activity task to dispatch) and of timers at most 20 times a second by
# default: on a quiet single-shard server a workflow task then waits up to 50 ms before any
# worker can take it, a wait a redeem pays several times over. 200 reads a second, as Temporal's
# own load tests run, removes the wait.
DEV_SERVER_TUNING = (
    "--dynamic-config-value",
    "history.transferProcessorMaxPollRPS=200",
    "--dynamic-config-value",
    "history.timerProcessorMaxPollRPS=200",
)


def parts(settings: Settings, mail: DevMail = DevMail.sendgrid) -> list[Part]:
    bin_dir = Path(sys.executable).parent
    host, _, port = settings.temporal_address.rpartition(":")
    sa_args = [
        a for name, kind in SEARCH_ATTRIBUTES.items() for a in ("--search-attribute", f"{name}={kind}")
    ]
    temporal = [
        str(bin_dir / "temporal"),
        "server",
        "start-dev",
        "--ip",
        host or "127.0.0.1",
        "--port",
        port,
        "--ui-port",
        str(settings.temporal_ui_port),
        "--db-filename",
        str(STATE_DIR / "temporal.db"),
        "--ui-disable-news-fetch",
        # SQLite's defaults (rollback journal, full sync per transaction) make the dev server the
        # bottleneck; WAL with normal sync keeps up. State still survives a restart.
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
        "--log-level",
        "warn",
        *DEV_SERVER_TUNING,
        *sa_args,
    ]
    if settings.payload_keys is not None:
        # The UI decrypts payloads for display through our codec endpoint.
        temporal += ["--ui-codec-endpoint", f"{settings.public_base_url.rstrip('/')}/codec"]
    sandbox_port = int(settings.auth0_base_url.rsplit(":", 1)[-1].rstrip("/"))
    return [
        Part("temporal", temporal, int(port), "INVITES_TEMPORAL_ADDRESS"),
        Part(
            "auth0",
            [
                sys.executable,
                "-m",
                "sandbox",
                "--port",
                str(sandbox_port),
                "--state",
                str(STATE_DIR / "auth0.json"),
                "--webhook-url",
                f"{settings.public_base_url.rstrip('/')}/v1/webhooks/auth0",
                "--claim-namespace",
                settings.claim_namespace,
                "--api-audience",
                settings.api_audience,
                "--home-url",
                f"{settings.public_base_url.rstrip('/')}/dev",
                *dev_mail.sandbox_args(settings, mail),
            ],
            sandbox_port,
            "INVITES_AUTH0_BASE_URL",
        ),
        Part("worker", [sys.executable, "-m", "cli", "worker"], 0, ""),
        Part("api", [sys.executable, "-m", "cli", "api"], settings.api_port, "INVITES_API_PORT"),
    ]


def check_ports(items: list[Part]) -> None:
    for part in items:
        if not part.port:
            continue
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", part.port))
            except OSError:
                message = f"port {part.port} ({part.name}) is already in use"
                raise PortInUse(f"{message}: stop what holds it or set {part.setting}") from None


async def wait_for_port(port: int) -> None:
    async with asyncio.timeout(READY_TIMEOUT_S):
        while True:
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                return
            await asyncio.sleep(0.2)


async def _relay(name: str, stream: asyncio.StreamReader, quiet: asyncio.Event) -> None:
    """Copy a part's output, each line prefixed with its name; once `quiet` is set, Temporal's
    warnings are dropped (its shutdown noise, see the module's docstring)."""
    width = 9
    while line := await stream.readline():
        text = line.decode(errors="replace")
        if quiet.is_set() and name == "temporal" and "level=WARN" in text:
            continue
        sys.stdout.write(f"{name:<{width}}| {text}")
        sys.stdout.flush()


async def run_dev(settings: Settings | None = None, mail: DevMail = DevMail.sendgrid) -> None:
    settings = settings or Settings(env="development")
    items = parts(settings, mail)
    try:
        check_ports(items)
    except PortInUse as exc:
        print(f"invites dev: {exc}", file=sys.stderr)
        raise SystemExit(1) from None

    procs: list[asyncio.subprocess.Process] = []
    relays: list[asyncio.Task[None]] = []
    stop, quiet = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        for part in items:
            proc = await asyncio.create_subprocess_exec(
                *part.argv,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                # The Action's webhook secret reaches the sandbox by environment, never argv.
                env={
                    **os.environ,
                    **DEV_ENV,
                    **dev_mail.mail_env(settings, mail),
                    "INVITES_WEBHOOK_SECRET": settings.webhook_secret.get_secret_value(),
                },
                start_new_session=True,  # Ctrl-C reaches us; we stop children in order
            )
            procs.append(proc)
            if proc.stdout is not None:
                relays.append(asyncio.create_task(_relay(part.name, proc.stdout, quiet)))
            if part.port:
                await wait_for_port(part.port)
        print(banner(settings, mail), flush=True)
        waits = [asyncio.create_task(p.wait()) for p in procs]
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([*waits, stopper], return_when=asyncio.FIRST_COMPLETED)
        if stopper not in done:
            dead = next(i for i, w in enumerate(waits) if w in done)
            print(
                f"invites dev: {items[dead].name} exited ({procs[dead].returncode}); stopping",
                file=sys.stderr,
            )
    finally:
        # Temporal (the first part) last: the others use it until they have stopped.
        await _stop(procs[1:])
        quiet.set()
        await _stop(procs[:1])
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(RELAY_DRAIN_S):  # the parts' last lines, then ours
                await asyncio.gather(*relays, return_exceptions=True)
        for task in relays:
            task.cancel()
        print("invites dev: stopped", flush=True)


async def _stop(procs: list[asyncio.subprocess.Process]) -> None:
    """SIGTERM to each (together), then wait for each; one that outstays its grace is killed."""
    for proc in reversed(procs):
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
    for proc in reversed(procs):
        try:
            await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def banner(settings: Settings, mail: DevMail = DevMail.sendgrid) -> str:
    """What `invites dev` prints once every part is up: where the story starts, then the parts."""
    api = settings.public_base_url.rstrip("/")
    story = [
        (f"{api}/dev", "the funnel form: create an invitation"),
        (f"{api}/dev/outbox", "the invitation mail: open its link, sign up or sign in"),
        (f"{api}/app", "the customer space: the account, its roles, the data sent"),
        (settings.temporal_ui_url.rstrip("/"), "the Temporal UI: the invitation's workflow"),
    ]
    width = max(len(url) for url, _ in story)
    return "\n".join(
        [
            "",
            "invites dev is up. The story starts here:",
            *(f"  {n}. {url:<{width}}  {what}" for n, (url, what) in enumerate(story, 1)),
            "",
            f"  API             {api} (docs {api}/docs, ops {api}/ops)",
            f"  Temporal        {settings.temporal_address}",
            f"  Auth0 sandbox   {settings.auth0_base_url} (client dev-client / dev-secret)",
            "  API key         dev-api-key",
            f"  webhook secret  {DEV_WEBHOOK_SECRET}",
            dev_mail.banner_line(mail),
            "Ctrl-C stops everything; state stays in .invites/",
            "",
        ]
    )
