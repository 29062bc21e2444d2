"""Settings: formats an operator would type, and production refusing the public dev defaults
(the rest of production's refusals: test_production_settings.py)."""

from datetime import timedelta

import pytest
from pydantic import ValidationError

from invites.settings import DEV_WEBHOOK_SECRET, Settings


def test_durations_accept_seconds_and_iso8601(monkeypatch):
    monkeypatch.setenv("INVITES_DEFAULT_EXPIRES_IN", "1209600")
    monkeypatch.setenv("INVITES_DEFAULT_REMINDERS", "P7D,259200")
    s = Settings(_env_file=None)
    assert s.default_expires_in == timedelta(days=14)
    assert s.default_reminders == [timedelta(days=3), timedelta(days=7)]
    monkeypatch.setenv("INVITES_DEFAULT_REMINDERS", "[86400]")
    assert Settings(_env_file=None).default_reminders == [timedelta(days=1)]


def test_the_dev_webhook_secret_is_the_documented_one():
    assert DEV_WEBHOOK_SECRET == "whsec_" + "aW52aXRlcy1kZXYtd2ViaG9vay1zZWNyZXQtMDAwMSE="


def test_production_refuses_every_dev_default():
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, env="production")
    for name in ("TOKEN_KEYS", "WEBHOOK_SECRET", "AUTH0_CLIENT_SECRET", "API_KEYS"):
        assert f"INVITES_{name}" in str(refused.value)


@pytest.mark.parametrize(
    "bad", ["nokid", "k1:not-base64!", "k1:c2hvcnQ=", "k1:" + "a" * 44 + ",k1:" + "b" * 44]
)
def test_malformed_token_keys_are_refused_with_a_clear_message(bad):
    with pytest.raises(ValidationError, match="INVITES_TOKEN_KEYS"):
        Settings(_env_file=None, token_keys=bad)


def test_sendgrid_backend_needs_its_key():
    with pytest.raises(ValidationError, match="INVITES_SENDGRID_API_KEY"):
        Settings(_env_file=None, mail_backend="sendgrid")
