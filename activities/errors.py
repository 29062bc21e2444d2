"""Map an outside system's HTTP answer to Temporal's retry semantics, the same way for all of them.

- 429: retryable, next attempt after `Retry-After` (seconds or HTTP date) or `x-ratelimit-reset`
  (epoch seconds), when the server said so.
- 5xx, network errors, and 401/403 (a credential ops can fix; the invitation must not be lost
  meanwhile): retryable with the policy's backoff.
- any other 4xx: it cannot succeed by retrying: non-retryable, typed `<Service><Kind>`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from temporalio.exceptions import ApplicationError

MAX_SERVER_DELAY = timedelta(hours=1)


def retry_delay(headers: Mapping[str, str] | None, now: float | None = None) -> timedelta | None:
    """The delay a 429 answer asks for, capped at an hour; None when it names none."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    now = time.time() if now is None else now
    seconds: float | None = None
    if (value := lowered.get("retry-after")) is not None:
        seconds = _parse_retry_after(value, now)
    elif (value := lowered.get("x-ratelimit-reset")) is not None:
        try:
            seconds = float(value) - now
        except ValueError:
            seconds = None
    if seconds is None:
        return None
    return min(timedelta(seconds=max(seconds, 1.0)), MAX_SERVER_DELAY)


def _parse_retry_after(value: str, now: float) -> float | None:
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp() - now


def http_error(
    service: str,
    status: int | None,
    headers: Mapping[str, str] | None,
    detail: str,
    *,
    not_found_type: str | None = None,
) -> ApplicationError:
    """The ApplicationError an activity raises for a failed HTTP call to `service`."""
    message = f"{service} answered {status}: {detail}"[:500]
    if status is None:
        return ApplicationError(message, type=f"{service}Unavailable")
    if status == 429:
        return ApplicationError(message, type=f"{service}RateLimited", next_retry_delay=retry_delay(headers))
    if status >= 500 or status in (401, 403, 408):
        return ApplicationError(message, type=f"{service}Unavailable")
    if status == 404 and not_found_type:
        return ApplicationError(message, type=not_found_type, non_retryable=True)
    return ApplicationError(message, type=f"{service}Rejected", non_retryable=True)


def now_utc() -> datetime:
    return datetime.now(UTC)
