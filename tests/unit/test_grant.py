"""Which failure version 4's one grant call reports when its parts fail differently."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.exceptions import ApplicationError

from activities.grant import failure_to_report


def _final(message: str) -> ApplicationError:
    return ApplicationError(message, type="Auth0Rejected", non_retryable=True)


def _rate_limited(seconds: int) -> ApplicationError:
    return ApplicationError("429", type="Auth0RateLimited", next_retry_delay=timedelta(seconds=seconds))


def test_only_final_failures_report_the_first():
    first, second = _final("user gone"), _final("link held")
    assert failure_to_report([first, second]) is first


def test_a_failure_that_may_pass_wins_over_a_final_one():
    outage = ApplicationError("503", type="Auth0Unavailable")
    assert failure_to_report([_final("user gone"), outage]) is outage


def test_an_unexpected_error_is_retried_like_any_other():
    bug = RuntimeError("database is locked")
    assert failure_to_report([_final("user gone"), bug]) is bug


def test_the_longest_delay_a_server_asked_for_wins():
    short, long = _rate_limited(3), _rate_limited(7)
    outage = ApplicationError("503", type="Auth0Unavailable")
    assert failure_to_report([outage, short, long, _final("x")]) is long


def test_a_cancellation_is_passed_on():
    cancelled = asyncio.CancelledError()
    assert failure_to_report([_rate_limited(3), cancelled]) is cancelled
