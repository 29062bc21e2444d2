"""GET /v1/stats/time-to-accept: how long accepted invitations took, as a histogram per group.

The companion of `GET /v1/stats/funnel` (same window, same groups, same permission), for the
`/ops` page's histogram: the funnel gives p50 and p90, this gives the whole distribution.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ReaderDep, ServicesDep
from api.routes.stats import WindowDep
from invites.db.time_to_accept import BOUNDS_S, TimeToAcceptStore
from invites.schemas import ErrorBody

router = APIRouter(prefix="/v1/stats", tags=["ops"])


class TimeToAcceptGroup(BaseModel):
    key: str | None = Field(description="The source or campaign; null for invitations without one.")
    counts: list[int] = Field(description="Accepted invitations per bucket of `bounds_s`.")


class TimeToAcceptHistogram(BaseModel):
    """The invitations created in [from, to) and accepted, by time to accept, per group."""

    model_config = ConfigDict(populate_by_name=True)

    from_: datetime = Field(alias="from")
    to: datetime
    bounds_s: list[int] = Field(
        description="Upper bounds in seconds (excluded) of the buckets; the last bucket is "
        "everything from the last bound on, so `counts` has one more entry."
    )
    groups: list[TimeToAcceptGroup]


@router.get(
    "/time-to-accept",
    response_model=TimeToAcceptHistogram,
    response_model_by_alias=True,
    responses={422: {"model": ErrorBody, "description": "`invalid_request`: a bad `from`, `to` or `by`"}},
)
async def time_to_accept(services: ServicesDep, _: ReaderDep, window: WindowDep) -> TimeToAcceptHistogram:
    """Of the invitations created in [from, to), the accepted ones per source or campaign,
    counted by how long they took to accept (buckets from under a minute to a week and more)."""
    histograms = await TimeToAcceptStore(services.store).histograms(window.start, window.end, window.by)
    return TimeToAcceptHistogram.model_validate(
        {
            "from": window.start,
            "to": window.end,
            "bounds_s": list(BOUNDS_S),
            "groups": [TimeToAcceptGroup(key=h.key, counts=h.counts) for h in histograms],
        }
    )
