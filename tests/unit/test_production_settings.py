"""Production fails closed (SPEC §10, issue 15 finding 2): the API and the worker run as production
unless INVITES_ENV=development, and production refuses to start on settings that would serve
with public or guessable secrets, the sandbox's Auth0, or no mail at all."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from invites.settings import DEV_API_KEY, DEV_WEBHOOK_SECRET, Settings

ROOT = Path(__file__).resolve().parents[2]


def b64(size: int, fill: bytes = b"k") -> str:
    return base64.b64encode(fill * size).decode()


# A production start that passes: every value a real deployment would hold.
GOOD: dict[str, Any] = {
    "env": "production",
    "token_keys": "k1:" + b64(32, b"t"),
    "payload_keys": "p1:" + b64(32, b"p"),
    "webhook_secret": "whsec_" + b64(32, b"w"),
    "api_keys": "funnel-" + "f" * 32 + "=create:invitations,ops-" + "o" * 32 + "=read:invitations",
    "auth0_base_url": "https://acme.eu.auth0.com",
    "auth0_client_secret": "a-real-client-secret-from-the-auth0-dashboard",
    "mail_backend": "sendgrid",
    "sendgrid_api_key": "SG." + "s" * 40,
    "crm_backend": "webhook",
    "events_url": "https://hooks.acme.test/invites",
    "events_secret": "whsec_" + b64(32, b"e"),
}


def production(**over: Any) -> Settings:
    return Settings(_env_file=None, **{**GOOD, **over})


def test_production_with_good_values_starts():
    settings = production()
    assert settings.env == "production"
    assert settings.mail_backend == "sendgrid"


@pytest.mark.parametrize(
    ("setting", "over"),
    [
        ("INVITES_MAIL_BACKEND", {"mail_backend": "outbox"}),
        ("INVITES_AUTH0_BASE_URL", {"auth0_base_url": "https://127.0.0.1:8100"}),
        ("INVITES_AUTH0_BASE_URL", {"auth0_base_url": "https://localhost"}),
        ("INVITES_AUTH0_BASE_URL", {"auth0_base_url": "http://acme.eu.auth0.com"}),
        ("INVITES_TOKEN_KEYS", {"token_keys": "k1:" + b64(31)}),
        ("INVITES_PAYLOAD_KEYS", {"payload_keys": "p1:" + b64(16)}),
        ("INVITES_WEBHOOK_SECRET", {"webhook_secret": "whsec_" + b64(1)}),
        ("INVITES_WEBHOOK_SECRET", {"webhook_secret": "whsec_" + b64(31)}),
        ("INVITES_WEBHOOK_PREVIOUS_SECRETS", {"webhook_previous_secrets": "whsec_" + b64(8)}),
        (
            "INVITES_API_KEYS",
            {"api_keys": "funnel-" + "f" * 32 + "=create:invitations,ops-key1=read:invitations"},
        ),
        ("INVITES_API_KEYS", {"api_keys": f"{DEV_API_KEY}=read:invitations"}),
        ("INVITES_EVENTS_SECRET", {"events_secret": DEV_WEBHOOK_SECRET}),
        ("INVITES_EVENTS_SECRET", {"events_secret": "whsec_" + b64(16)}),
        ("INVITES_METRICS_TOKEN", {"metrics_token": "scrape-me"}),
    ],
    ids=[
        "outbox",
        "auth0-on-127.0.0.1",
        "auth0-on-localhost",
        "auth0-over-http",
        "short-token-key",
        "short-payload-key",
        "1-byte-webhook-secret",
        "31-byte-webhook-secret",
        "short-previous-webhook-secret",
        "short-api-key",
        "dev-api-key",
        "dev-events-secret",
        "short-events-secret",
        "short-metrics-token",
    ],
)
def test_production_refuses_each_bad_setting_naming_it_and_how_to_fix_it(setting: str, over: dict[str, Any]):
    with pytest.raises(ValidationError) as refused:
        production(**over)
    message = str(refused.value)
    assert setting in message
    # One line per problem (the heading names INVITES_ENV): this setting's is the only one, and it
    # says what to do.
    named = [line for line in message.splitlines() if "INVITES_" in line.replace("INVITES_ENV=", "")]
    assert len(named) == 1, message
    assert any(verb in named[0] for verb in ("Generate one with", "Generate each key with", "Set ")), message


def test_production_lists_every_problem_in_one_error():
    with pytest.raises(ValidationError) as refused:
        production(mail_backend="outbox", auth0_base_url="http://127.0.0.1:8100", webhook_secret="whsec_AA==")
    message = str(refused.value)
    for setting in ("INVITES_MAIL_BACKEND", "INVITES_AUTH0_BASE_URL", "INVITES_WEBHOOK_SECRET"):
        assert setting in message


def test_the_events_secret_is_only_checked_when_set():
    settings = production(crm_backend="none", events_url=None, events_secret=None)
    assert settings.events_secret is None


def test_development_starts_with_the_dev_defaults():
    settings = Settings(_env_file=None, env="development")
    assert settings.mail_backend == "outbox"
    assert settings.auth0_base_url.startswith("http://127.0.0.1")
    assert DEV_API_KEY in settings.api_key_permissions


def test_the_default_env_is_production(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("INVITES_ENV", raising=False)
    assert Settings(_env_file=None, **{k: v for k, v in GOOD.items() if k != "env"}).env == "production"
    # With nothing set, the public dev defaults are refused.
    with pytest.raises(ValidationError, match="INVITES_API_KEYS"):
        Settings(_env_file=None)


@pytest.mark.parametrize("command", ["worker", "api"])
def test_the_worker_and_the_api_refuse_to_start_without_invites_env(command: str, tmp_path: Path):
    """Nothing set but a database: the process stops at settings load (before connecting to
    anything, so within seconds) and names the settings to fix."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVITES_")}
    env["INVITES_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path}/invites.db"
    done = subprocess.run(
        [sys.executable, "-m", "cli", command],
        cwd=tmp_path,  # no .env there
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    output = done.stdout + done.stderr
    for setting in (
        "INVITES_MAIL_BACKEND",
        "INVITES_AUTH0_BASE_URL",
        "INVITES_API_KEYS",
        "INVITES_TOKEN_KEYS",
    ):
        assert setting in output, output
    assert not (tmp_path / "invites.db").exists()  # it never reached the database


class _Started(Exception):
    """Stops `run_dev` at its first child, once the child's environment is seen."""


async def test_invites_dev_runs_itself_and_every_part_in_development(monkeypatch: pytest.MonkeyPatch):
    """Even when the shell says production: `invites dev` runs on the dev defaults and the sandbox."""
    from cli import dev

    monkeypatch.setenv("INVITES_ENV", "production")
    monkeypatch.setattr(dev, "check_ports", lambda items: None)
    seen: list[dict[str, str]] = []

    async def start(*argv: str, env: dict[str, str], **kwargs: Any) -> None:
        seen.append(env)
        raise _Started

    monkeypatch.setattr(dev.asyncio, "create_subprocess_exec", start)
    with pytest.raises(_Started):
        await dev.run_dev()  # settings read here: production would refuse the dev defaults
    assert seen[0]["INVITES_ENV"] == "development"
