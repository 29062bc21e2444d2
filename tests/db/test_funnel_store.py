"""The funnel table on SQLite and PostgreSQL: stages recorded once, counts and percentiles of a
known set of invitations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from invites.db.funnel import FunnelStore
from invites.db.store import Store
from invites.models import FunnelFact, FunnelStage

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


async def _reach(
    funnel: FunnelStore, n: int, stages: dict[FunnelStage, timedelta], **keys: str | None
) -> None:
    created = T0 + timedelta(minutes=n)
    fact = {"invitation_id": f"inv_{n:026d}", "created_at": created, **keys}
    await funnel.record(FunnelFact(stage="created", at=created, **fact))
    for stage, after in stages.items():
        await funnel.record(FunnelFact(stage=stage, at=created + after, **fact))


async def test_a_stage_recorded_twice_counts_once_and_keeps_its_first_time(store: Store):
    funnel = FunnelStore(store)
    fact = FunnelFact(invitation_id="inv_1", stage="accepted", at=T0 + timedelta(hours=2), created_at=T0)
    assert await funnel.record(fact)
    assert not await funnel.record(fact)
    assert not await funnel.record(fact.model_copy(update={"at": T0 + timedelta(hours=5)}))
    assert not await funnel.record(FunnelFact(invitation_id="inv_1", stage="created", at=T0, created_at=T0))

    [group] = await funnel.counts(T0, T0 + timedelta(days=1), "source")
    assert (group.created, group.accepted, group.p50, group.p90) == (1, 1, 7200.0, 7200.0)


async def test_an_invitation_ends_once(store: Store):
    funnel = FunnelStore(store)
    base = {"invitation_id": "inv_2", "created_at": T0}
    assert await funnel.record(FunnelFact(stage="undeliverable", at=T0 + timedelta(minutes=1), **base))
    assert not await funnel.record(FunnelFact(stage="expired", at=T0 + timedelta(days=14), **base))
    [group] = await funnel.counts(T0, T0 + timedelta(days=1), "source")
    assert (group.undeliverable, group.expired, group.created) == (1, 0, 1)


async def test_counts_per_source_equal_a_known_mix(store: Store):
    funnel = FunnelStore(store)
    hour = timedelta(hours=1)
    # web: 10 created, all delivered, 6 opened, 4 accepted after 1, 2, 3 and 10 hours.
    for n, hours in enumerate([1, 2, 3, 10]):
        await _reach(
            funnel,
            n,
            {"delivered": timedelta(seconds=5), "opened": hour / 2, "accepted": hours * hour},
            source="web",
            campaign="spring",
        )
    for n in range(4, 6):
        await _reach(funnel, n, {"delivered": timedelta(seconds=5), "opened": hour}, source="web")
    await _reach(funnel, 6, {"delivered": timedelta(seconds=5), "expired": 14 * 24 * hour}, source="web")
    await _reach(funnel, 7, {"delivered": timedelta(seconds=5), "revoked": hour}, source="web")
    await _reach(funnel, 8, {"delivered": timedelta(seconds=5)}, source="web")
    await _reach(funnel, 9, {"delivered": timedelta(seconds=5)}, source="web")
    # ads: one bounced, one accepted after 30 s; no source: one pending.
    await _reach(funnel, 10, {"undeliverable": timedelta(seconds=3)}, source="ads")
    await _reach(
        funnel, 11, {"delivered": timedelta(seconds=1), "accepted": timedelta(seconds=30)}, source="ads"
    )
    await _reach(funnel, 12, {})
    # Created outside the window: not counted.
    await _reach(funnel, 60 * 24 * 3, {"accepted": hour}, source="web")

    groups = {g.key: g for g in await funnel.counts(T0, T0 + timedelta(days=1), "source")}
    web, ads, none = groups["web"], groups["ads"], groups[None]
    assert list(groups) == ["web", "ads", None]  # largest first
    assert (web.created, web.delivered, web.opened, web.accepted) == (10, 10, 6, 4)
    assert (web.expired, web.revoked, web.undeliverable) == (1, 1, 0)
    assert web.accept_rate == 0.4
    assert (web.p50, web.p90) == (2 * 3600.0, 10 * 3600.0)  # nearest rank of 1, 2, 3, 10 hours
    assert (ads.created, ads.delivered, ads.accepted, ads.undeliverable) == (2, 1, 1, 1)
    assert (ads.p50, ads.p90, ads.accept_rate) == (30.0, 30.0, 0.5)
    assert (none.created, none.accepted, none.p50, none.p90, none.accept_rate) == (1, 0, None, None, 0.0)

    campaigns = {g.key: g for g in await funnel.counts(T0, T0 + timedelta(days=1), "campaign")}
    assert (campaigns["spring"].created, campaigns["spring"].accepted) == (4, 4)
    assert campaigns[None].created == 9

    totals = await funnel.totals(["web"])
    assert totals[("created", "web")] == 11
    assert totals[("created", "other")] == 2
    assert totals[("created", "none")] == 1
    assert (await funnel.totals(None))[("accepted", "all")] == 6
