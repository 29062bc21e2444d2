"""The SendGrid fake, driven by the `sendgrid` SDK (`host=`) over a real socket."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from python_http_client.exceptions import (
    BadRequestsError,
    ServiceUnavailableError,
    UnauthorizedError,
)
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import CustomArg, Mail

from sandbox.sendgrid_api import SendGridFake

SEND = "POST /v3/mail/send"


def invitation_mail(to: str) -> Mail:
    mail = Mail(
        from_email="invites@example.com",
        to_emails=to,
        subject="You are invited",
        html_content='<a href="http://127.0.0.1:8000/i/tok">Accept</a>',
    )
    mail.custom_arg = CustomArg("invitation_id", "inv_01")
    return mail


def test_accepted_mail_is_202_with_message_id_and_kept(
    sendgrid_fake: SendGridFake, sendgrid: SendGridAPIClient
) -> None:
    response = sendgrid.send(invitation_mail("ann@example.com"))

    (sent,) = sendgrid_fake.messages
    assert response.status_code == 202
    assert response.headers["X-Message-Id"] == sent.message_id
    assert sent.to == ["ann@example.com"]
    assert sent.subject == "You are invited"
    assert sent.custom_args == {"invitation_id": "inv_01"}
    assert "/i/tok" in sent.text
    assert sendgrid_fake.faults.calls(SEND)[0].headers["Authorization"] == "Bearer SG.test-key"


def test_rejected_address_is_400_naming_the_field(
    sendgrid_fake: SendGridFake, sendgrid: SendGridAPIClient
) -> None:
    sendgrid_fake.reject("Bounce@Example.com")
    with pytest.raises(BadRequestsError) as caught:
        sendgrid.send(invitation_mail("bounce@example.com"))

    assert json.loads(caught.value.body) == {
        "errors": [
            {
                "message": "Does not contain a valid address.",
                "field": "personalizations.0.to.0.email",
                "help": None,
            }
        ]
    }
    assert sendgrid_fake.messages == []
    assert sendgrid.send(invitation_mail("ann@example.com")).status_code == 202
    assert [m.to for m in sendgrid_fake.messages_to("ANN@example.com")] == [["ann@example.com"]]


def test_invalid_body_lists_every_error_like_sendgrid(sendgrid: SendGridAPIClient) -> None:
    with pytest.raises(BadRequestsError) as caught:
        sendgrid.send({"personalizations": [{"to": [{"email": "not-an-address"}]}]})
    fields = [e["field"] for e in json.loads(caught.value.body)["errors"]]
    assert fields == ["personalizations.0.to.0.email", "from", "subject", "content"]


def test_template_mail_needs_no_subject_or_content(
    sendgrid_fake: SendGridFake, sendgrid: SendGridAPIClient
) -> None:
    mail = Mail(from_email="invites@example.com", to_emails="ann@example.com")
    mail.template_id = "d-0123456789abcdef"
    mail.dynamic_template_data = {"link": "http://127.0.0.1:8000/i/tok"}

    assert sendgrid.send(mail).status_code == 202
    assert sendgrid_fake.messages[0].template_id == "d-0123456789abcdef"
    assert sendgrid_fake.messages[0].dynamic_template_data == {"link": "http://127.0.0.1:8000/i/tok"}


def test_wrong_api_key_is_401(sendgrid_fake: SendGridFake, sendgrid_url: str) -> None:
    with pytest.raises(UnauthorizedError):
        SendGridAPIClient("SG.other", host=sendgrid_url).send(invitation_mail("a@example.com"))
    assert sendgrid_fake.messages == []


def test_503_then_success_and_a_dropped_connection(
    sendgrid_fake: SendGridFake, sendgrid: SendGridAPIClient
) -> None:
    sendgrid_fake.faults.status(SEND, 503)
    sendgrid_fake.faults.drop(SEND)

    with pytest.raises(ServiceUnavailableError) as unavailable:
        sendgrid.send(invitation_mail("ann@example.com"))
    with pytest.raises(ConnectionError):
        sendgrid.send(invitation_mail("ann@example.com"))
    sendgrid.send(invitation_mail("ann@example.com"))

    assert json.loads(unavailable.value.body)["errors"][0]["message"] == "Injected fault."
    assert [c.status for c in sendgrid_fake.faults.calls(SEND)] == [503, None, 202]
    assert len(sendgrid_fake.messages) == 1


def test_sandbox_mode_validates_without_sending(
    sendgrid_fake: SendGridFake, sendgrid: SendGridAPIClient
) -> None:
    body = invitation_mail("ann@example.com").get()
    body["mail_settings"] = {"sandbox_mode": {"enable": True}}
    assert sendgrid.send(body).status_code == 200
    assert sendgrid_fake.messages == []


def test_hold_blocks_a_synchronous_send_until_released(
    sendgrid_fake: SendGridFake, sendgrid: SendGridAPIClient
) -> None:
    hold = sendgrid_fake.faults.hold(SEND)
    with ThreadPoolExecutor(1) as pool:
        sending = pool.submit(sendgrid.send, invitation_mail("ann@example.com"))
        hold.wait_arrived(timeout=2)
        assert not sending.done()
        assert sendgrid_fake.messages == []
        hold.release()
        assert sending.result(timeout=2).status_code == 202
    assert len(sendgrid_fake.messages) == 1
