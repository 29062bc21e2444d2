"""GET /v1/stats/funnel: how many invitations reach each stage, and how fast they are accepted.

Read from the funnel table the workflow writes at every transition (`invites/db/funnel.py`),
never from Temporal, so it answers in milliseconds for a large window (`bench/funnel_stats.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from api.deps import ReaderDep, ServicesDep
from api.errors import ApiError
from invites.db.funnel import FunnelStore
from invites.schemas import DateTime, ErrorBody, FunnelGroup, FunnelStats, TimeToAccept

router = APIRouter(prefix="/v1/stats", tags=["ops"])

DEFAULT_WINDOW = timedelta(days=30)
MAX_WINDOW = timedelta(days=400)


@dataclass(frozen=True)
class Window:
    """The invitations a stats route counts: created in [start, end), grouped by `by`."""

    start: datetime
    end: datetime
    by: Literal["source", "campaign"]


async def stats_window(
    services: ServicesDep,
    from_: Annotated[
        DateTime | None,
        Query(alias="from", description="Start of the window (RFC 3339); default `to` minus 30 days."),
    ] = None,
    to: Annotated[
        DateTime | None, Query(description="End of the window, excluded (RFC 3339); default now.")
    ] = None,
    by: Annotated[
        Literal["source", "campaign"], Query(description="Group by `source` or `campaign`.")
    ] = "source",
) -> Window:
    """The window of `from`, `to` and `by`, shared by every stats route; 422 when it is empty or
    longer than MAX_WINDOW."""
    end = to or await services.clock()
    start = from_ or end - DEFAULT_WINDOW
    if start >= end:
        raise ApiError(422, "invalid_request", "`from` must be before `to`.")
    if end - start > MAX_WINDOW:
        raise ApiError(422, "invalid_request", f"The window may span at most {MAX_WINDOW.days} days.")
    return Window(start, end, by)


WindowDep = Annotated[Window, Depends(stats_window)]


@router.get(
    "/funnel",
    response_model=FunnelStats,
    response_model_by_alias=True,
    responses={422: {"model": ErrorBody, "description": "`invalid_request`: a bad `from`, `to` or `by`"}},
)
async def funnel_stats(services: ServicesDep, _: ReaderDep, window: WindowDep) -> FunnelStats:
    """The invitations created in [from, to) per source or campaign: how many reached each stage
    (created, delivered, opened, accepted, expired, revoked, undeliverable), the acceptance rate
    and the time to accept (p50, p90, in seconds)."""
    groups = await FunnelStore(services.store).counts(window.start, window.end, window.by)
    return FunnelStats.model_validate(
        {
            "from": window.start,
            "to": window.end,
            "groups": [
                FunnelGroup(
                    key=g.key,
                    created=g.created,
                    delivered=g.delivered,
                    opened=g.opened,
                    accepted=g.accepted,
                    expired=g.expired,
                    revoked=g.revoked,
                    undeliverable=g.undeliverable,
                    accept_rate=g.accept_rate,
                    time_to_accept_s=TimeToAccept(p50=g.p50, p90=g.p90),
                )
                for g in groups
            ],
        }
    )
