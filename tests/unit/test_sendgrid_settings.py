"""The SendGrid Event Webhook's settings: development verifies with the fake SendGrid's key,
production refuses that key and the outbox copy of links, and starts without a key (the
webhook then refuses every post)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from invites.settings import DEV_SENDGRID_EVENT_PUBLIC_KEY, Settings
from sandbox.sendgrid_events import dev_private_key, public_key_b64
from tests.unit.test_production_settings import production


def test_development_verifies_with_the_fake_sendgrids_key():
    settings = Settings(_env_file=None, env="development")
    assert settings.sendgrid_event_public_key == DEV_SENDGRID_EVENT_PUBLIC_KEY
    assert public_key_b64(dev_private_key()) == DEV_SENDGRID_EVENT_PUBLIC_KEY


def test_production_starts_without_a_key():
    assert production().sendgrid_event_public_key is None


@pytest.mark.parametrize(
    ("setting", "values"),
    [
        ("INVITES_SENDGRID_EVENT_PUBLIC_KEY", {"sendgrid_event_public_key": DEV_SENDGRID_EVENT_PUBLIC_KEY}),
        ("INVITES_MAIL_OUTBOX_COPY", {"mail_outbox_copy": True}),
    ],
)
def test_production_refuses_the_dev_key_and_the_outbox_copy(setting: str, values: dict):
    with pytest.raises(ValidationError) as refused:
        production(**values)
    assert setting in str(refused.value)


def test_funnel_sources_are_a_comma_separated_list():
    assert Settings(_env_file=None, env="development", funnel_sources=" web, ads ,").funnel_sources == [
        "web",
        "ads",
    ]
