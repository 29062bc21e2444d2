"""Log lines: one per event, JSON or text, carrying the invitation id, never a token or a secret."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from temporalio import activity, workflow
from temporalio.testing import ActivityEnvironment

from invites.logs import QUIET_LOGGERS, REDACTED, configure_logging
from invites.settings import DEV_WEBHOOK_SECRET, Settings
from invites.tokens import TokenSigner
from tests.support.network import free_port

ROOT = Path(__file__).resolve().parents[2]
INVITATION = "inv_01JD0Z3Q6W7N9V4X2B8C5M1K0T"
SENDGRID_KEY = "SG." + "unit-test-sendgrid-key.0123456789abcdef"  # fake, split so no scanner mistakes it
OPS_KEY = "ops-key-0123456789-0123456789-0123456789"
FUNNEL_KEY = "funnel-key-0123456789-0123456789-0123456789"

Capture = Callable[[Settings], io.StringIO]


def make_settings(**over: Any) -> Settings:
    values: dict[str, Any] = {
        "api_keys": SecretStr(f"{FUNNEL_KEY}=create:invitations,{OPS_KEY}=read:invitations"),
        "mail_backend": "sendgrid",
        "sendgrid_api_key": SecretStr(SENDGRID_KEY),
        **over,
    }
    return Settings(_env_file=None, **values)


@pytest.fixture
def capture() -> Iterator[Capture]:
    """`capture(settings)` routes every logger to a buffer; the logging setup is restored after."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    saved_info = activity.logger.activity_info_on_message, workflow.logger.workflow_info_on_message

    def install(s: Settings) -> io.StringIO:
        buffer = io.StringIO()
        configure_logging(s, stream=buffer)
        return buffer

    yield install
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    for name, level in saved_levels.items():
        logging.getLogger(name).setLevel(level)
    activity.logger.activity_info_on_message, workflow.logger.workflow_info_on_message = saved_info


def json_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    """Every line of the output parses as one JSON object."""
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def link_token(s: Settings) -> str:
    return TokenSigner(s.token_keyring).create(INVITATION, 7)


def test_json_lines_carry_the_core_fields_and_the_extra_ones(capture: Capture):
    out = capture(make_settings(log_format="json"))
    log = logging.getLogger("invites.api.webhook")
    log.info("redeem accepted", extra={"invitation_id": INVITATION, "grant": "pending"})
    log.warning("two\nlines %s", "here")

    first, second = json_lines(out)
    assert first["level"] == "INFO"
    assert first["logger"] == "invites.api.webhook"
    assert first["message"] == "redeem accepted"
    assert first["invitation_id"] == INVITATION
    assert first["grant"] == "pending"
    assert first["ts"].endswith("Z")
    assert second["message"] == "two\nlines here"  # still one line: JSON escapes the newline
    assert "invitation_id" not in second


@activity.defn(name="send_mail")
async def logging_activity() -> None:
    activity.logger.info("mail sent", extra={"kind": "reminder"})


async def test_activity_logger_lines_get_the_invitation_id_from_the_workflow_id(capture: Capture):
    """The SDK's own `activity.logger` (a real activity context) names the workflow, not us."""
    out = capture(make_settings(log_format="json"))
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info, workflow_id=f"invitation-{INVITATION}", activity_type="send_mail"
    )
    await env.run(logging_activity)

    (line,) = json_lines(out)
    assert line["invitation_id"] == INVITATION
    assert line["workflow_id"] == f"invitation-{INVITATION}"
    assert line["activity_type"] == "send_mail"
    assert line["kind"] == "reminder"
    assert line["message"] == "mail sent"  # the SDK's context is in fields, not appended


def test_workflow_logger_records_get_the_invitation_id_and_an_explicit_one_wins(capture: Capture):
    """`workflow.logger` puts a `temporal_workflow` dict on the record (SDK `_build_log_context`)."""
    out = capture(make_settings(log_format="json"))
    log = logging.getLogger("temporalio.workflow")
    context = {"workflow_id": f"invitation-{INVITATION}", "run_id": "run-1", "workflow_type": "W"}
    log.error("grant failed", extra={"temporal_workflow": context})
    log.info("explicit", extra={"temporal_workflow": context, "invitation_id": "inv_OTHER"})
    log.info("not an invitation", extra={"temporal_workflow": {**context, "workflow_id": "billing-7"}})

    derived, explicit, other = json_lines(out)
    assert (derived["invitation_id"], derived["run_id"]) == (INVITATION, "run-1")
    assert explicit["invitation_id"] == "inv_OTHER"
    assert "invitation_id" not in other


def test_access_log_lines_name_the_request_and_its_invitation_without_the_token(capture: Capture):
    s = make_settings(log_format="json")
    out = capture(s)
    access = logging.getLogger("uvicorn.access")  # uvicorn's call, without api/redaction's filter
    fmt = '%s - "%s %s HTTP/%s" %d'
    access.info(fmt, "10.0.0.1:5000", "POST", f"/v1/invitations/{INVITATION}/revoke", "1.1", 409)
    access.info(fmt, "10.0.0.1:5000", "GET", f"/i/{link_token(s)}", "1.1", 302)

    steer, link = json_lines(out)
    assert steer["invitation_id"] == INVITATION
    assert (steer["method"], steer["status"]) == ("POST", 409)
    assert link["path"] == f"/i/{REDACTED}"
    assert link_token(s) not in out.getvalue()


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_no_token_or_secret_reaches_the_output(capture: Capture, log_format: str):
    s = make_settings(log_format=log_format)
    out = capture(s)
    token = link_token(s)
    token_key = base64.b64encode(s.token_keyring[0][1]).decode()
    secrets = [token, DEV_WEBHOOK_SECRET, "eyJhbGciOi.eyJzdWIiOiJhZGEi.c2lnbmF0dXJl", FUNNEL_KEY, OPS_KEY]
    secrets += [SENDGRID_KEY, token_key, "opaque-bearer-credential"]
    log = logging.getLogger("invites.test")

    log.info(f"in the message: {token} https://x.test/i/{token}?a=1 {DEV_WEBHOOK_SECRET}")
    log.info(
        "in the args: %s %s %s",
        f"invitation={token}",
        "Authorization: Bearer opaque-bearer-credential",
        OPS_KEY,
    )
    log.info(
        "in the extra",
        extra={
            "link": f"https://x.test/i/{token}",
            "headers": {
                "x-api-key": FUNNEL_KEY,
                "authorization": "Bearer eyJhbGciOi.eyJzdWIiOiJhZGEi.c2lnbmF0dXJl",
            },
            "token": "anything at all",
            "keys": [token_key, SENDGRID_KEY],
        },
    )
    log.info("a format with more placeholders %s %s than arguments", token)  # logging would echo args
    try:
        raise RuntimeError(f"SendGrid said no to {SENDGRID_KEY} for /i/{token}")
    except RuntimeError:
        log.exception("in the traceback")

    text = out.getvalue()
    for secret in [*secrets, "anything at all"]:
        assert secret not in text
    assert text.count(REDACTED) >= 12
    if log_format == "json":
        assert len(json_lines(out)) == 5  # the traceback too stays on its line


def test_ids_and_other_long_values_are_not_mistaken_for_tokens(capture: Capture):
    out = capture(make_settings(log_format="json"))
    run_id = "0195f1b2-8c3d-7e4f-9a0b-1c2d3e4f5a6b"
    logging.getLogger("t").info("started invitation-%s run %s on invitations-auth0", INVITATION, run_id)
    (line,) = json_lines(out)
    assert line["message"] == f"started invitation-{INVITATION} run {run_id} on invitations-auth0"


def test_text_in_development_and_json_in_production_by_default(capture: Capture):
    out = capture(make_settings())  # INVITES_ENV=development, INVITES_LOG_FORMAT=auto
    logging.getLogger("invites.worker").info(
        "mail sent", extra={"invitation_id": INVITATION, "kind": "invite"}
    )
    line = out.getvalue().strip()
    assert line.endswith(f"INFO    invites.worker [{INVITATION}]: mail sent  kind=invite")
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)

    production = make_settings(
        env="production",
        token_keys=SecretStr("k1:" + base64.b64encode(b"p" * 32).decode()),
        webhook_secret=SecretStr("whsec_" + base64.b64encode(b"w" * 32).decode()),
        auth0_client_secret=SecretStr("a-real-client-secret"),
        auth0_base_url="https://acme.eu.auth0.com",
    )
    out = capture(production)
    logging.getLogger("invites.worker").info("worker started")
    assert json_lines(out)[0]["message"] == "worker started"


def test_leaky_library_loggers_stay_quiet_even_at_debug(capture: Capture):
    out = capture(make_settings(log_format="json", log_level="debug"))
    logging.getLogger("httpx").info(
        "HTTP Request: GET http://auth0/api/v2/users-by-email?email=ada%40example.com"
    )
    logging.getLogger("python_http_client.client").debug("POST body with the link and the API key")
    logging.getLogger("sqlalchemy.engine.Engine").info("INSERT ... ('ada@example.com', ...)")
    logging.getLogger("invites.worker").debug("our own debug line")
    logging.getLogger("httpx").warning("httpx warnings still show")

    assert [line["message"] for line in json_lines(out)] == [
        "our own debug line",
        "httpx warnings still show",
    ]


def get(url: str) -> int:
    return httpx.get(url, timeout=10).status_code


def test_the_api_command_logs_uvicorn_lines_as_json_without_tokens(tmp_path: Path):
    """`invites api` as production runs it: uvicorn's own lines go through our handler."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVITES_")}
    env.update(
        INVITES_API_PORT=str(port),
        INVITES_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/invites.db",
        INVITES_TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",  # nothing there: never reached here
        INVITES_LOG_FORMAT="json",
        INVITES_ENV="development",
        PYTHONUNBUFFERED="1",
    )
    # A well-formed token signed by a key the API does not hold: refused before any Temporal call.
    foreign = TokenSigner([("zz", b"z" * 32)]).create(INVITATION, 1)
    log = tmp_path / "api.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "api"],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while not (_listening(port) and get(f"http://127.0.0.1:{port}/healthz") == 200):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the API did not start:\n{log.read_text()}")
            time.sleep(0.1)
        assert get(f"http://127.0.0.1:{port}/i/{foreign}") == 404
        assert get(f"http://127.0.0.1:{port}/v1/invitations/{INVITATION}/revoke") == 405
        time.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(timeout=15)

    output = log.read_text()
    assert foreign not in output
    records = [json.loads(line) for line in output.splitlines()]  # every line is JSON
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert {(r["path"], r["status"]) for r in access} >= {
        ("/healthz", 200),
        (f"/i/{REDACTED}", 404),
        (f"/v1/invitations/{INVITATION}/revoke", 405),
    }
    assert next(r for r in access if r["status"] == 405)["invitation_id"] == INVITATION
    assert any(r["logger"] == "uvicorn.error" and "Uvicorn running" in r["message"] for r in records)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
