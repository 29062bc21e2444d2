"""`invites bench`: how fast and how heavy the service is, next to bare Temporal on the same server.

One run, against a fresh `invites dev` (or a stack given by `--api` / `--temporal`):

1. raw starts: `client.start_workflow` of a no-op workflow (`bench.noop`), run by a
   worker inside this process on its own task queue;
2. creates: `POST /v1/invitations` with the dev API key, at the same concurrency. Starts and
   creates run in alternating blocks (`--rounds` of each: raw, create | create, raw | …), each
   on a quiet stack, so that the machine's drift from minute to minute falls on both alike;
3. redeems: for a sample of those invitations, a sandbox user each (Management API), then the
   signed webhook the Auth0 Action would send, timed to the `200 {grant: "done"}` answer; in
   turn with them, a bare update round-trip on no-op workflows (the last started, still in the
   no-op worker's cache, as the redeemed invitations are in ours);
4. histories: the events of one accepted and one expired invitation (started through `Creator`
   with a few seconds to live, the API's one-hour minimum skipped) and their billable actions;
5. memory: the worker's RSS with `--open-invitations` pending invitations open (created through
   `Creator`, as the API does, without HTTP);
6. cold redeems: the first invitations created, redeemed last, once the worker no longer holds
   them (the usual case of a link clicked days later); next to them, when more no-op workflows
   than the no-op worker's cache were started, bare updates on the first ones, likewise evicted;
7. import (`--import-rows`): a CSV of new addresses through the CLI's own import code
   (`cli/bulk_import.py`), timed until the last first mail is in the outbox, and the Auth0 calls
   it cost (the sandbox's counters); next to it, as many bare first steps (`bench.first_step`:
   the same shape in bare Temporal), half before the import and half after.

The figures go to a table and a JSON file; BENCHMARKS.md explains them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import secrets
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from bench.stack import (
    Stack,
    cpu_seconds,
    dev_stack,
    external_stack,
    machine,
    rss_mb,
    worker_pids,
)
from invites.eventloop import loop_factory
from invites.temporal import GRANT_ACTIVITY

# (key, comparison, bound): what the issue asks the service to reach.
TARGETS: list[tuple[str, str, float]] = [
    ("create_vs_raw", ">=", 0.7),
    ("redeem_vs_raw", "<=", 4.0),
    ("history_events_accepted", "<=", 40),
    ("worker_rss_mb_10k_open", "<=", 400),
]
# With an import phase (`--import-rows`): its look-ups in batches (issue 18).
IMPORT_TARGETS: list[tuple[str, str, float]] = [
    ("auth0_calls_per_invitation", "<=", 0.05),
    ("import_vs_bare", ">=", 0.7),
]
REDEEM_SAMPLE = 100  # invitations redeemed (and no-op updates timed), one after another
HISTORY_SAMPLE = 5  # accepted histories read; the figure is their median (timing moves it a little)
WARM_UP = 8  # untimed creates and starts first: connection pools, role cache, first imports
# Starts in flight while the open invitations are created. More only makes the embedded dev
# server (one SQLite writer) fail persistence calls ("context canceled") and retry them.
OPEN_CONCURRENCY = 16
EXPIRES_AFTER_S = 10
SETTLE_RATE_FLOOR = 10  # invitations per second the worker must at least reach while settling
SETTLE_MIN_S = 120
POLL_S = 0.5
HTTP_TIMEOUT_S = 60
DEV_API_KEY = "dev-api-key"
USER_PASSWORD = "Bench-password-1!"  # noqa: S105 - sandbox users only
DATABASE_CONNECTION = "Username-Password-Authentication"
ROLES = ["member"]


class BenchError(Exception):
    """The run could not measure something; the message says what and where to look."""


@dataclass
class Options:
    invitations: int = 2000
    concurrency: int = 32
    api: str | None = None
    temporal: str | None = None
    open_invitations: int = 10_000
    output: Path = Path("bench.json")
    api_processes: int = 1
    worker_processes: int = 1
    rounds: int = 4
    import_rows: int = 0


def bench(
    invitations: Annotated[
        int, typer.Option(min=1, help="Invitations created through the HTTP API (and raw starts).")
    ] = 2000,
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight at once.")] = 32,
    api: Annotated[
        str | None,
        typer.Option(help="Use this running API (comma-separate several to split the load)."),
    ] = None,
    temporal: Annotated[
        str | None, typer.Option(help="Use this Temporal server (host:port) instead of starting one.")
    ] = None,
    open_invitations: Annotated[
        int, typer.Option(min=0, help="Pending invitations open while the worker's memory is read.")
    ] = 10_000,
    output: Annotated[Path, typer.Option(help="Where the JSON figures go.")] = Path("bench.json"),
    api_processes: Annotated[
        int, typer.Option(min=1, help="API processes of the started stack (the create load is split).")
    ] = 1,
    worker_processes: Annotated[int, typer.Option(min=1, help="Worker processes of the started stack.")] = 1,
    rounds: Annotated[
        int, typer.Option(min=1, help="Alternating blocks of raw starts and of creates (the load split).")
    ] = 4,
    import_rows: Annotated[
        int,
        typer.Option(
            min=0, help="Rows of a CSV imported last through the CLI's import code (0: no import phase)."
        ),
    ] = 0,
) -> None:
    """Measure creates, redeems, history size, worker memory and a bulk import against bare Temporal.

    Starts `invites dev` on free ports in a temporary folder unless `--api` / `--temporal`
    name a running stack (the other settings then come from INVITES_* variables). Prints a
    table with PASS/MISS per target and writes the figures to `--output`.
    """
    from rich.console import Console

    console = Console()
    opts = Options(
        invitations,
        concurrency,
        api,
        temporal,
        open_invitations,
        output,
        api_processes,
        worker_processes,
        rounds,
        import_rows,
    )
    results: dict[str, Any] = {}
    try:
        # uvloop, as the API and the worker run: the load generator and the in-process no-op worker
        # share the machine with what they measure.
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            runner.run(run(opts, console, results))
    except BenchError as exc:
        # What was measured before the failure is kept, beside the reason.
        output.write_text(json.dumps({**results, "error": str(exc)}, indent=2, default=str) + "\n")
        console.print(f"[red]bench failed:[/] {exc} (partial figures in {output})")
        raise typer.Exit(1) from None
    output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print_results(results, console)
    console.print(f"figures written to {output}")


# --- the run ------------------------------------------------------------------------------------


async def run(opts: Options, console: Any, results: dict[str, Any]) -> dict[str, Any]:
    """Measure everything into `results` (filled as the run goes, so a failure keeps the rest)."""
    results["machine"] = machine()
    results["config"] = {
        "invitations": opts.invitations,
        "concurrency": opts.concurrency,
        "open_invitations": opts.open_invitations,
        "redeem_sample": redeem_sample(opts.invitations),
        "started_stack": opts.api is None and opts.temporal is None,
        "api_processes": opts.api_processes,
        "worker_processes": opts.worker_processes,
        "rounds": len(rounds_of(opts.invitations, opts.rounds)),
        "import_rows": opts.import_rows,
    }
    async with _stack(opts, console) as stack:
        results["config"]["apis"] = stack.apis
        # The Auth0 ceiling in calls per second, and addresses per call: the defaults on the
        # stack started here, as a tenant's free plan would have it.
        results["config"]["auth0_calls_per_s"] = stack.settings.max_task_queue_activities_per_second
        results["config"]["auth0_lookup_batch"] = stack.settings.auth0_lookup_batch
        async with Bench.open(opts, stack, console) as b:
            results["machine"]["temporal_server"] = await b.server_version()
            await b.run(results)
    results["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    targets = TARGETS + (IMPORT_TARGETS if opts.import_rows else [])
    results["targets"] = {
        key: {"bound": f"{op} {bound:g}", "value": v, "pass": _meets(v, op, bound)}
        for key, op, bound in targets
        for v in [results.get(key)]
    }
    return results


@contextlib.asynccontextmanager
async def _stack(opts: Options, console: Any) -> AsyncIterator[Stack]:
    if opts.api is not None or opts.temporal is not None:
        yield external_stack(opts.api, opts.temporal)
        return
    log = opts.output.with_suffix(".log")
    console.print(f"starting invites dev on free ports (output in {log}) …")
    async with dev_stack(log, opts.api_processes, opts.worker_processes) as stack:
        yield stack


@dataclass
class Bench:
    opts: Options
    stack: Stack
    console: Any
    client: Any  # temporalio.client.Client
    http: httpx.AsyncClient
    store: Any  # invites.db.store.Store
    engine: Any
    creator: Any  # invites.creation.Creator
    noop_queue: str
    first_tasks: Any  # bench.first_tasks.FirstTasks
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, opts: Options, stack: Stack, console: Any) -> AsyncIterator[Bench]:
        from temporalio.worker import Worker

        from bench.first_tasks import FirstTasks
        from bench.noop import NoopWorkflow
        from invites.auth0 import Auth0Management
        from invites.creation import Creator
        from invites.db.engine import create_engine
        from invites.db.store import Store
        from invites.temporal import build_temporal_client
        from worker import MAX_CACHED_WORKFLOWS

        settings = stack.settings
        client = await build_temporal_client(settings)
        engine = create_engine(settings.database_url)
        noop_queue = f"bench-noop-{uuid.uuid4().hex[:8]}"
        first_tasks = FirstTasks()
        limits = httpx.Limits(max_connections=max(opts.concurrency, OPEN_CONCURRENCY) + 16)
        try:
            async with (
                httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, limits=limits) as http,
                Worker(
                    client,
                    task_queue=noop_queue,
                    workflows=[NoopWorkflow],
                    interceptors=[first_tasks],
                    # As many as ours: warm and cold updates then compare with warm and cold
                    # redeems.
                    max_cached_workflows=MAX_CACHED_WORKFLOWS,
                ),
            ):
                store = Store(engine)
                try:
                    creator = Creator(settings, client, store, Auth0Management(settings, http).roles)
                    yield cls(
                        opts, stack, console, client, http, store, engine, creator, noop_queue, first_tasks
                    )
                finally:
                    store.close()
        finally:
            await engine.dispose()

    async def server_version(self) -> str:
        from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

        info = await self.client.workflow_service.get_system_info(GetSystemInfoRequest())
        return info.server_version or "unknown"

    def say(self, text: str) -> None:
        self.console.print(f"[dim]{datetime.now():%H:%M:%S}[/] {text}")

    async def run(self, results: dict[str, Any]) -> None:
        from worker import MAX_CACHED_WORKFLOWS  # ours, and the no-op worker's (`open`)

        opts = self.opts
        n = opts.invitations
        sample = redeem_sample(n)
        # Users for the invitations that will be redeemed: the last `sample` ones, so that once
        # they are mailed the worker has caught up with the rest too.
        redeemed = list(range(n - sample, n))
        # And the first `sample` ones, redeemed at the very end, once the worker has long
        # evicted them (as a link clicked days later finds its invitation): when there are enough.
        cold = list(range(sample)) if n >= 2 * sample else []
        users = await self._users(redeemed + cold)
        expired_id = await self._create_expiring()
        await self._warm_up()

        noop_ids, created = await self._throughput(results)

        self.say(f"updates and redeems: {sample} of each, in turn, one after another …")
        # The last started no-op workflows, as the redeemed invitations are the last created:
        # both still cached. In turn, so that both meet the same minute of the machine.
        update_ms, redeem_ms, pending = await self._updates_and_redeems(
            noop_ids[-sample:], {i: created[i] for i in redeemed if i in created}, users
        )
        results["raw_update_p50_ms"] = _pct(update_ms, 50)
        results["raw_update_p95_ms"] = _pct(update_ms, 95)
        results["redeem_p50_ms"] = _pct(redeem_ms, 50)
        results["redeem_p95_ms"] = _pct(redeem_ms, 95)
        results["redeem_vs_raw"] = round(results["redeem_p50_ms"] / results["raw_update_p50_ms"], 2)
        results["redeem_grant_pending"] = pending

        self.say(f"histories of {HISTORY_SAMPLE} accepted invitations and an expired one …")
        accepted = [await self._history(created[i]) for i in redeemed[:HISTORY_SAMPLE]]
        phases = [f["redeem_phases_ms"] for f in accepted if f["redeem_phases_ms"]]
        if phases:
            results["redeem_phases_ms"] = {k: _pct([p[k] for p in phases], 50) for k in phases[0]}
            # The answer waits for the grant's completion, not for the run's end.
            waited = sum(v for k, v in results["redeem_phases_ms"].items() if k != "closing")
            # The rest of a redeem: the webhook's HTTP, signature, receipt reads and writes, and
            # the update's round trip between the API and the server.
            results["redeem_outside_workflow_ms"] = round(results["redeem_p50_ms"] - waited, 1)
        median = sorted(accepted, key=lambda f: f["history_events"])[(len(accepted) - 1) // 2]
        results.update(_prefixed("accepted", median))
        results["history_events_accepted_range"] = [
            min(f["history_events"] for f in accepted),
            max(f["history_events"] for f in accepted),
        ]
        results.update(_prefixed("expired", await self._history(expired_id)))
        results["actions_estimate"] = results["actions_accepted"]
        results["actions_estimate_expired"] = results["actions_expired"]

        # While the stack is idle (every created invitation mailed), so the counts are the probes'.
        metrics = self.stack.server_metrics_url()
        if metrics is not None:
            self.say("billable actions, counted by the server: one invitation accepted, one expired …")
            results["actions_measured_accepted"] = await self._measured(metrics, self._probe_accepted)
            results["actions_measured_expired"] = await self._measured(metrics, self._probe_expired)
            # A cross-check only: the frontend counts a request the overloaded dev server then
            # fails and the SDK retries, so under load these run above the history's figures.

        pids = worker_pids(self.stack.roots)
        results["worker_pids"] = pids
        results["worker_rss_mb_idle"] = _rss(pids)
        if opts.open_invitations:
            self.say(f"memory: {opts.open_invitations} pending invitations through Creator …")
            cpu = cpu_seconds(self.stack.roots)
            open_ids, open_s = await self._open(opts.open_invitations)
            results["open_create_per_s"] = round(len(open_ids) / open_s, 1)
            settle_start = time.perf_counter()
            by_open: dict[int, float] = {}
            results["open_mailed"] = await self._mailed(open_ids, "open", by_open)
            results["worker_rss_mb_by_open"] = by_open
            results["open_settle_s"] = round(time.perf_counter() - settle_start, 1)
            await asyncio.sleep(2)  # let the last workflow tasks finish
            # What one invitation costs each part from its start to resting after its mail (the
            # starts through Creator, in this process).
            results["cpu_ms_per_open_invitation"] = _cpu_per(
                cpu, cpu_seconds(self.stack.roots), len(open_ids)
            )
        results["worker_rss_mb_10k_open"] = _rss(pids)
        results["worker_rss_mb_each"] = [round(rss_mb(p), 1) for p in pids]
        if cold_created := {i: created[i] for i in cold if i in created}:
            # The first no-op workflows beside them when at least the no-op worker's cache size
            # of others ran after them (each update then rebuilds its run, as a cold redeem does).
            evicted = len(noop_ids) - sample >= MAX_CACHED_WORKFLOWS
            await self._cold_redeems(cold_created, noop_ids[:sample] if evicted else [], users, results)
        if opts.import_rows:
            await self._import(opts.import_rows, results)

    async def _import(self, rows: int, results: dict[str, Any]) -> None:
        """The import (`_import_rows`) and, next to it, as many bare first steps
        (`bench.first_step`): half before the import and half after, so that both meet the same
        minutes of the machine. Their workers run in this process for this phase only."""
        from temporalio.worker import Worker

        from bench.first_step import FirstStepWorkflow, first_step_queue
        from bench.first_tasks import FirstSteps
        from worker import MAX_CACHED_WORKFLOWS

        queue = f"bench-steps-{uuid.uuid4().hex[:8]}"
        steps = FirstSteps()
        cpu: dict[str, float] = {}
        async with (
            # The workflows' worker caches as many as ours; both otherwise keep the SDK's
            # defaults, as ours do.
            Worker(
                self.client,
                task_queue=queue,
                workflows=[FirstStepWorkflow],
                max_cached_workflows=MAX_CACHED_WORKFLOWS,
            ),
            Worker(self.client, task_queue=first_step_queue(queue), activities=[steps.step]),
        ):
            bare = [await self._first_steps(queue, steps, range(rows // 2), cpu)]
            await self._import_rows(rows, results)
            bare.append(await self._first_steps(queue, steps, range(rows // 2, rows), cpu))
        done, seconds = sum(n for n, _ in bare), sum(t for _, t in bare)
        results["bare_first_step_per_s"] = round(done / seconds, 1)
        results["bare_first_step_by_half"] = [round(n / t, 1) for n, t in bare if t]
        results["import_vs_bare"] = round(results["import_rows_per_s"] / results["bare_first_step_per_s"], 3)
        results["cpu_ms_per_bare_first_step"] = _cpu_per({}, cpu, done)

    async def _import_rows(self, rows: int, results: dict[str, Any]) -> None:
        """A CSV of `rows` new addresses through the CLI's own import code (`invites import
        --concurrency`, at the run's concurrency, as the raw starts), timed from the first row
        read until the last first mail is in the outbox; the Auth0 calls it made, from the
        sandbox's counters."""
        from cli.bulk_import import RejectsWriter, import_file

        prefix = f"bench-{self.run_id}-import-"
        path = self.opts.output.with_suffix(".import.csv")
        with path.open("w", newline="") as f:
            f.write("email,roles,source\n")
            f.writelines(f"{prefix}{i:06d}@example.com,{' '.join(ROLES)},bench\n" for i in range(rows))
        self.say(f"import: {rows} rows through the CLI's import code, until every first mail is out …")
        before = await self._auth0_counts()
        cpu = cpu_seconds(self.stack.roots)
        started, started_at = time.perf_counter(), datetime.now(UTC)
        with path.with_suffix(".rejects.csv").open("w", newline="") as stream:
            rejects = RejectsWriter(stream)
            summary = await import_file(path, self.creator, rejects, concurrency=self.opts.concurrency)
        created_s = time.perf_counter() - started
        mailed, last_sent = await self._mailed_to(prefix, summary.created)
        cpu_after = cpu_seconds(self.stack.roots)
        elapsed = (last_sent - started_at).total_seconds() if last_sent else time.perf_counter() - started
        after = await self._auth0_counts()
        results["import_summary"] = summary.as_dict()
        results["import_created_per_s"] = round(summary.created / created_s, 1)
        results["import_mailed"] = mailed
        results["import_s"] = round(elapsed, 1)
        results["import_rows_per_s"] = round(mailed / elapsed, 1)
        results["import_vs_raw"] = round(results["import_rows_per_s"] / results["raw_start_per_s"], 3)
        results["cpu_ms_per_import_row"] = _cpu_per(cpu, cpu_after, mailed)
        if before is not None and after is not None:
            calls = {k: v - before.get(k, 0) for k, v in after.items() if v > before.get(k, 0)}
            results["auth0_calls_import"] = calls
            results["auth0_calls_per_invitation"] = round(sum(calls.values()) / max(mailed, 1), 4)

    async def _first_steps(
        self, queue: str, steps: Any, indices: range, cpu: dict[str, float]
    ) -> tuple[int, float]:
        """Bare first steps (`bench.first_step`), one per index, started on `queue` at the run's
        concurrency, timed from the first start until the last one's activity has run (`steps`,
        a `bench.first_tasks.FirstSteps`, counts them); their CPU is added to `cpu`. How many
        ran, and the seconds."""
        from bench.first_step import FirstStepWorkflow

        count = len(indices)
        self.say(f"bare first steps: {count} workflows, one activity each on a second queue …")
        base = steps.count
        before = cpu_seconds(self.stack.roots)
        started = time.perf_counter()

        async def start(i: int) -> None:
            workflow_id = f"bench-{self.run_id}-step-{i:06d}"
            await self.client.start_workflow(FirstStepWorkflow.run, id=workflow_id, task_queue=queue)

        _, errors = await _timed(indices, self.opts.concurrency, start)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(SETTLE_MIN_S, count / SETTLE_RATE_FLOOR)):
                await steps.reach(base + count - errors)
        elapsed = time.perf_counter() - started
        _add_cpu(cpu, before, cpu_seconds(self.stack.roots))
        done = steps.count - base
        if done < count:
            self.say(f"[yellow]bare first steps: only {done} of {count} ran in {elapsed:.0f} s[/]")
        return done, elapsed

    async def _auth0_counts(self) -> dict[str, int] | None:
        """The sandbox's calls per route (its `/__fake/counts`), the Management API and token
        only; None when the stack is not on the sandbox."""
        if not self.stack.started_here:
            return None
        auth0 = self.stack.settings.auth0_base_url.rstrip("/")
        response = await self.http.get(f"{auth0}/__fake/counts")
        _check(response, 200, "the Auth0 sandbox's call counts")
        counts: dict[str, int] = response.json()["counts"]
        return {k: v for k, v in counts.items() if " /api/v2/" in k or k == "POST /oauth/token"}

    async def _cold_redeems(
        self,
        invitations: dict[int, str],
        noop_ids: list[str],
        users: dict[int, dict[str, Any]],
        results: dict[str, Any],
    ) -> None:
        """The first invitations created, redeemed last: each has left the worker's cache (at
        least its size of other invitations went through the worker since), so the redeem's
        workflow task first rebuilds the run from its history in a new sandboxed instance."""
        self.say(f"redeems of {len(invitations)} invitations the worker no longer holds …")
        update_ms, redeem_ms, pending = await self._updates_and_redeems(noop_ids, invitations, users)
        results["redeem_cold_p50_ms"] = _pct(redeem_ms, 50)
        results["redeem_cold_p95_ms"] = _pct(redeem_ms, 95)
        results["redeem_cold_grant_pending"] = pending
        if update_ms:
            results["raw_update_cold_p50_ms"] = _pct(update_ms, 50)
            results["raw_update_cold_p95_ms"] = _pct(update_ms, 95)
        histories = [await self._history(i) for i in list(invitations.values())[:HISTORY_SAMPLE]]
        phases = [f["redeem_phases_ms"] for f in histories if f["redeem_phases_ms"]]
        if phases:
            results["redeem_cold_phases_ms"] = {k: _pct([p[k] for p in phases], 50) for k in phases[0]}

    async def _throughput(self, results: dict[str, Any]) -> tuple[list[str], dict[int, str]]:
        """Raw starts and creates in alternating blocks (`--rounds` of each, in the order raw,
        create | create, raw | …), each block starting on a quiet stack: the machine's speed
        drifts from minute to minute, and alternating gives both the same minutes. The rates
        are over all blocks; `by_round` keeps each round's."""
        opts = self.opts
        noop_ids: list[str] = []
        created: dict[int, str] = {}
        elapsed = {"raw": 0.0, "create": 0.0}
        errors = {"raw_start": 0, "create": 0}
        cpu: dict[str, dict[str, float]] = {"raw": {}, "create": {}}
        by_round: list[dict[str, float | None]] = []
        settle_s = 0.0
        blocks = rounds_of(opts.invitations, opts.rounds)
        for r, indices in enumerate(blocks):
            rates: dict[str, float] = {}
            for phase in ("raw", "create") if r % 2 == 0 else ("create", "raw"):
                self.say(
                    f"round {r + 1}/{len(blocks)}: {len(indices)} "
                    + ("no-op starts" if phase == "raw" else "POST /v1/invitations")
                    + f", {opts.concurrency} at once …"
                )
                before, first_tasks = cpu_seconds(self.stack.roots), self.first_tasks.count
                if phase == "raw":
                    ids, took, failed = await self._raw_starts(indices)
                    noop_ids += ids
                    errors["raw_start"] += failed
                    done = len(ids)
                else:
                    made, took, failed = await self._creates(indices)
                    created.update(made)
                    errors["create"] += failed
                    done = len(made)
                _add_cpu(cpu[phase], before, cpu_seconds(self.stack.roots))
                elapsed[phase] += took
                rates[phase] = done / took
                # Untimed: the stack catches up before the next block.
                if phase == "raw":
                    await self._first_tasks_run(first_tasks + done)
                else:
                    settling = time.perf_counter()
                    await self._mailed(list(made.values()), "created")
                    settle_s += time.perf_counter() - settling
            by_round.append(
                {
                    "raw_start_per_s": round(rates["raw"], 1),
                    "create_per_s": round(rates["create"], 1),
                    "create_vs_raw": round(rates["create"] / rates["raw"], 3) if rates["raw"] else None,
                }
            )
        if not created or not noop_ids:
            raise BenchError("every create or every raw start failed; see the stack's log")
        results["raw_start_per_s"] = round(len(noop_ids) / elapsed["raw"], 1)
        results["create_per_s"] = round(len(created) / elapsed["create"], 1)
        results["create_vs_raw"] = round(results["create_per_s"] / results["raw_start_per_s"], 3)
        results["by_round"] = by_round
        results["cpu_ms_per_raw_start"] = _cpu_per({}, cpu["raw"], len(noop_ids))
        results["cpu_ms_per_create"] = _cpu_per({}, cpu["create"], len(created))
        results["errors"] = errors
        results["create_settle_s"] = round(settle_s, 1)
        results["worker_invitations_per_s"] = round(len(created) / (elapsed["create"] + settle_s), 1)
        return noop_ids, created

    # --- phases --------------------------------------------------------------------------------

    async def _users(self, indices: list[int]) -> dict[int, dict[str, Any]]:
        """Sandbox accounts through the Management API, as a sign-up would leave them."""
        settings = self.stack.settings
        auth0 = settings.auth0_base_url.rstrip("/")
        token = await self.http.post(
            f"{auth0}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": settings.auth0_client_id,
                "client_secret": settings.auth0_client_secret.get_secret_value(),
                "audience": settings.auth0_audience,
            },
        )
        _check(token, 200, "the sandbox token request")
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        users: dict[int, dict[str, Any]] = {}

        async def one(i: int) -> None:
            body = {
                "connection": DATABASE_CONNECTION,
                "email": self._email(i),
                "password": USER_PASSWORD,
                "name": f"Bench user {i}",
            }
            response = await self.http.post(f"{auth0}/api/v2/users", json=body, headers=headers)
            _check(response, 201, "creating a sandbox user")
            users[i] = response.json()

        await _gather_limited([lambda i=i: one(i) for i in indices], 8)
        return users

    async def _create_expiring(self, tag: str = "expiring") -> str:
        """An invitation that expires seconds from now, through the API's own `Creator`.

        The API refuses expiries under an hour, so the body is built without validation
        (`model_construct`); the row, the workflow input and the start are Creator's.
        """
        from invites.schemas import InvitationCreate

        body = InvitationCreate.model_construct(
            email=f"bench-{self.run_id}-{tag}@example.com",
            roles=ROLES,
            data={"source": "bench"},
            app_metadata={},
            external_ref=None,
            crm_contact_id=None,
            locale="en",
            expires_in=EXPIRES_AFTER_S,
            reminders=[],
            email_policy=None,
        )
        return (await self.creator.create(body)).state.invitation_id

    async def _warm_up(self) -> None:
        from bench.noop import NoopWorkflow

        async def create(i: int) -> None:
            api = self.stack.apis[i % len(self.stack.apis)]
            body = {"email": f"bench-{self.run_id}-warm{i}@example.com", "roles": ROLES}
            _check(await self.http.post(f"{api}/v1/invitations", json=body, headers=_key()), 201, "a create")

        async def start(i: int) -> None:
            handle = await self.client.start_workflow(
                NoopWorkflow.run, id=f"bench-{self.run_id}-warm{i}", task_queue=self.noop_queue
            )
            await handle.execute_update(NoopWorkflow.finish)

        count = WARM_UP * len(self.stack.apis)
        await _gather_limited([lambda i=i: create(i) for i in range(count)], 4)
        await _gather_limited([lambda i=i: start(i) for i in range(WARM_UP)], 4)

    async def _raw_starts(self, indices: range) -> tuple[list[str], float, int]:
        from bench.noop import NoopWorkflow

        ids: dict[int, str] = {}

        async def start(i: int) -> None:
            workflow_id = f"bench-{self.run_id}-noop-{i:06d}"
            await self.client.start_workflow(NoopWorkflow.run, id=workflow_id, task_queue=self.noop_queue)
            ids[i] = workflow_id

        elapsed, errors = await _timed(indices, self.opts.concurrency, start)
        return [ids[i] for i in sorted(ids)], elapsed, errors

    async def _first_tasks_run(self, count: int) -> None:
        """Untimed, between the raw starts and the creates: the no-op worker runs the started
        workflows' first tasks (it lags behind the starts), so that neither the server nor this
        process spends the creates' time on the raw starts' work."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_MIN_S
        while self.first_tasks.count < count:
            if loop.time() > deadline:
                ran = self.first_tasks.count
                raise BenchError(f"the no-op worker ran {ran} of {count} first tasks in time")
            await asyncio.sleep(0.05)
        await asyncio.sleep(POLL_S)  # their completions reach the server

    async def _creates(self, indices: range) -> tuple[dict[int, str], float, int]:
        """POST /v1/invitations on kept-alive connections (`bench.http_client`: the load generator
        shares the cores with what it measures, so it is kept light), split round-robin across the
        APIs."""
        from bench.http_client import Connection

        created: dict[int, str] = {}
        apis = self.stack.apis
        idle: dict[str, list[Connection]] = {api: [] for api in apis}

        async def create(i: int) -> None:
            body = {"email": self._email(i), "roles": ROLES, "data": {"source": "bench", "n": i}}
            api = apis[i % len(apis)]
            while idle[api] and not idle[api][-1].usable:
                idle[api].pop()
            conn = idle[api].pop() if idle[api] else await Connection.open(api, _key())
            try:
                status, payload = await conn.post("/v1/invitations", body)
            finally:
                if conn.usable:
                    idle[api].append(conn)
            if status != 201:
                raise BenchError(f"POST /v1/invitations answered {status}: {payload}")
            created[i] = payload["id"]

        try:
            elapsed, errors = await _timed(indices, self.opts.concurrency, create)
        finally:
            for conn in (c for conns in idle.values() for c in conns):
                conn.close()
        return created, elapsed, errors

    async def _updates_and_redeems(
        self, noop_ids: list[str], invitations: dict[int, str], users: dict[int, dict[str, Any]]
    ) -> tuple[list[float], list[float], int]:
        """A bare update on each no-op workflow and a redeem of each invitation, in turn (an
        update, a redeem, an update, …; one after another): the milliseconds of each, and how
        many redeems answered `grant: "pending"`."""
        from standardwebhooks import Webhook

        from bench.noop import NoopWorkflow

        links = await self._links(list(invitations.values()))
        missing = [i for i in invitations.values() if i not in links]
        if missing:
            raise BenchError(f"{len(missing)} invitations to redeem were never mailed (first: {missing[0]})")
        webhook = Webhook(self.stack.settings.webhook_secret.get_secret_value())
        updates: list[float] = []
        redeems: list[float] = []
        pending = 0
        pairs = list(invitations.items())
        for k in range(max(len(noop_ids), len(pairs))):
            if k < len(noop_ids):
                handle = self.client.get_workflow_handle(noop_ids[k])
                started = time.perf_counter()
                await handle.execute_update(NoopWorkflow.finish)
                updates.append((time.perf_counter() - started) * 1000)
            if k < len(pairs):
                i, invitation_id = pairs[k]
                link, user = links[invitation_id], users[i]
                took, was_pending = await self._redeem(webhook, i, invitation_id, link, user)
                redeems.append(took)
                pending += was_pending
        return updates, redeems, pending

    async def _redeem(
        self, webhook: Any, i: int, invitation_id: str, link: str, user: dict[str, Any]
    ) -> tuple[float, bool]:
        """Webhook to `200 {grant: "done"}` in ms; a `pending` answer is timed until the grant is
        done (True then)."""
        from invites.invitations import get_state

        raw = json.dumps(
            {
                "type": "invitation.redeem",
                "invitation": link.rsplit("/i/", 1)[1],
                "user": {
                    "user_id": user["user_id"],
                    "email": user["email"],
                    "email_verified": user.get("email_verified", False),
                    "name": user.get("name"),
                },
                "connection": {"name": DATABASE_CONNECTION, "strategy": "auth0"},
                "is_new_user": True,
            }
        ).encode()
        msg_id, at = f"msg_{uuid.uuid4().hex}", datetime.now(UTC)
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": webhook.sign(msg_id, at, raw.decode()),
            "content-type": "application/json",
        }
        api = self.stack.apis[i % len(self.stack.apis)]
        started = time.perf_counter()
        response = await self.http.post(f"{api}/v1/webhooks/auth0", content=raw, headers=headers)
        _check(response, 200, "the redeem webhook")
        pending = response.json()["grant"] != "done"
        if pending:
            # Polls the workflow's state: nothing local to wait on.
            while (await get_state(self.client, invitation_id)).grant != "done":  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        return (time.perf_counter() - started) * 1000, pending

    async def _history(self, invitation_id: str) -> dict[str, Any]:
        from invites.invitations import handle_for

        handle = handle_for(self.client, invitation_id)
        async with asyncio.timeout(EXPIRES_AFTER_S + SETTLE_MIN_S):
            await handle.result()
        history = await handle.fetch_history()
        return history_figures(history.events)

    async def _open(self, count: int) -> tuple[list[str], float]:
        from invites.schemas import InvitationCreate

        ids: dict[int, str] = {}

        async def create(i: int) -> None:
            body = InvitationCreate(
                email=f"bench-{self.run_id}-open{i:06d}@example.com", roles=ROLES, data={"source": "bench"}
            )
            ids[i] = (await self.creator.create(body)).state.invitation_id

        elapsed, errors = await _timed(range(count), OPEN_CONCURRENCY, create)
        if errors:
            self.say(f"[yellow]{errors} open invitations could not be created[/]")
        return list(ids.values()), elapsed

    # --- billable actions as the server counts them --------------------------------------------

    async def _measured(self, metrics_url: str, probe: Callable[[], Awaitable[None]]) -> dict[str, int]:
        """The server's `action` counter (what Temporal Cloud bills) around one probe, by type.

        Run when the stack is idle (every other invitation waits on a far timer), so the
        difference is the probe's own.
        """
        before = await self._actions(metrics_url)
        await probe()
        await asyncio.sleep(1)  # the last workflow task's commands are counted as it completes
        after = await self._actions(metrics_url)
        return {k: int(after[k] - before.get(k, 0)) for k in sorted(after) if after[k] > before.get(k, 0)}

    async def _actions(self, metrics_url: str) -> dict[str, float]:
        response = await self.http.get(metrics_url)
        _check(response, 200, "the Temporal server's metrics")
        return server_actions(response.text, self.stack.settings.temporal_namespace)

    async def _probe_accepted(self) -> None:
        from invites.invitations import handle_for

        i = self.opts.invitations + 1  # past the numbered ones
        users = await self._users([i])
        body = {"email": self._email(i), "roles": ROLES, "data": {"source": "bench", "probe": True}}
        response = await self.http.post(f"{self.stack.apis[0]}/v1/invitations", json=body, headers=_key())
        _check(response, 201, "POST /v1/invitations")
        invitation_id = response.json()["id"]
        await self._updates_and_redeems([], {i: invitation_id}, users)
        async with asyncio.timeout(SETTLE_MIN_S):
            await handle_for(self.client, invitation_id).result()

    async def _probe_expired(self) -> None:
        from invites.invitations import handle_for

        invitation_id = await self._create_expiring("probe")
        async with asyncio.timeout(EXPIRES_AFTER_S + SETTLE_MIN_S):
            await handle_for(self.client, invitation_id).result()

    # --- the database: the outbox tells which invitations the worker has mailed ---------------

    async def _mailed(self, ids: list[str], what: str, rss: dict[int, float] | None = None) -> int:
        """Wait until every invitation in `ids` has its invitation mail; return how many do.

        With `rss`, the worker's memory is noted there at each quarter of the way (mailed count
        -> MiB), to show where it levels off."""
        timeout = max(SETTLE_MIN_S, len(ids) / SETTLE_RATE_FLOOR)
        deadline = time.monotonic() + timeout
        done = 0
        marks = sorted({len(ids) * q // 4 for q in (1, 2, 3)})
        while time.monotonic() < deadline:
            done = await self._count_mailed(ids)
            while rss is not None and marks and done >= marks[0]:
                rss[marks.pop(0)] = _rss(worker_pids(self.stack.roots)) or 0.0
            if done >= len(ids):
                return done
            await asyncio.sleep(POLL_S)
        self.say(f"[yellow]{what}: only {done} of {len(ids)} invitations were mailed in {timeout:.0f} s[/]")
        return done

    async def _mailed_to(self, prefix: str, count: int) -> tuple[int, datetime | None]:
        """Wait until `count` invitations to addresses starting with `prefix` have their
        invitation mail; return how many do, and when the last of those mails was sent (the
        outbox's `sent_at`, so the figure does not depend on how often this asks: each ask reads
        the whole outbox, and asking often would take CPU from the import it measures)."""
        from sqlalchemy import func, select

        from invites.db.tables import Mail

        stmt = select(func.count(func.distinct(Mail.invitation_id)), func.max(Mail.sent_at)).where(
            Mail.kind == "invite", Mail.to.startswith(prefix)
        )
        timeout = max(SETTLE_MIN_S, count / SETTLE_RATE_FLOOR)
        deadline = time.monotonic() + timeout
        done, last = 0, None
        while time.monotonic() < deadline:
            async with self.engine.connect() as conn:
                done, last = (await conn.execute(stmt)).one()
            if done >= count:
                break
            await asyncio.sleep(POLL_S)
        else:
            self.say(f"[yellow]import: only {done} of {count} invitations were mailed in {timeout:.0f} s[/]")
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=UTC)  # SQLite keeps no time zone; the worker writes UTC
        return done, last

    async def _count_mailed(self, ids: list[str]) -> int:
        from sqlalchemy import func, select

        from invites.db.tables import Mail

        total = 0
        async with self.engine.connect() as conn:
            for chunk in _chunks(ids, 500):
                stmt = select(func.count(func.distinct(Mail.invitation_id))).where(
                    Mail.kind == "invite", Mail.invitation_id.in_(chunk)
                )
                total += (await conn.execute(stmt)).scalar_one()
        return total

    async def _links(self, ids: list[str]) -> dict[str, str]:
        """The link each invitation's mail carried (its token is what the Action sends back)."""
        from sqlalchemy import select

        from invites.db.tables import Mail

        await self._mailed(ids, "redeem sample")
        links: dict[str, str] = {}
        async with self.engine.connect() as conn:
            for chunk in _chunks(ids, 500):
                stmt = select(Mail.invitation_id, Mail.link).where(
                    Mail.kind == "invite", Mail.invitation_id.in_(chunk)
                )
                links.update({row.invitation_id: row.link for row in await conn.execute(stmt)})
        return links

    def _email(self, i: int) -> str:
        return f"bench-{self.run_id}-{i:06d}@example.com"


# --- history and billable actions ------------------------------------------------------------


def history_figures(events: Any) -> dict[str, Any]:
    """Events of one run and its Temporal Cloud billable actions, estimated from history.

    Counted as the Cloud documents them: the start (1), every activity attempt, every timer
    (the implicit ones of `wait_condition(timeout=...)` too), every search-attribute upsert,
    signal and accepted update, and the markers of a workflow task as one (`workflow.patched`
    writes one when a change to the workflow ships). Not in history: heartbeats (an Auth0 call heartbeats only
    once it has lasted a second, `activities/heartbeat.py`, so a healthy run sends none) and
    client queries (none on the create or redeem path). The server's own `action` counter is
    the cross-check (`_measured`).
    """
    from temporalio.api.enums.v1 import EventType

    types = Counter(EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in events)
    attempts = 0
    marker_tasks: set[int] = set()
    upserts = 0
    for e in events:
        if e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            # The SDK's own TemporalChangeVersion upsert (from `workflow.patched`) is not billed.
            upserts += set(fields) != {"TemporalChangeVersion"}
        elif e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            marker_tasks.add(e.marker_recorded_event_attributes.workflow_task_completed_event_id)
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attempts += e.activity_task_started_event_attributes.attempt
    breakdown = {
        "start": types["WORKFLOW_EXECUTION_STARTED"],
        "activity_attempts": attempts,
        "timers": types["TIMER_STARTED"],
        "search_attribute_upserts": upserts,
        "signals": types["WORKFLOW_EXECUTION_SIGNALED"],
        "updates": types["WORKFLOW_EXECUTION_UPDATE_ACCEPTED"],
        # The markers of one workflow task are one action.
        "marker_batches": len(marker_tasks),
    }
    return {
        "history_events": len(events),
        "redeem_phases_ms": redeem_phases(events),
        "event_types": dict(sorted(types.items())),
        "actions": sum(breakdown.values()),
        "actions_breakdown": breakdown,
    }


def redeem_phases(events: Any) -> dict[str, float]:
    """Where an accepted invitation's redeem spent its time inside Temporal, by event times (ms):
    `update_task` (the workflow task that accepts, from its scheduling to the acceptance),
    `grant_dispatch` (acceptance to the grant activity's start: the server handing the task to
    the worker), `grant_calls` (from there to the grant's completion: the Auth0 calls and the
    account link) and `closing` (from there to the run's end). They add up to the time from the
    accepting task's scheduling to the run's end; the webhook's answer waits for all but
    `closing` (the API follows the history to the grant's completion). Empty without a redeem."""
    from temporalio.api.enums.v1 import EventType

    def at(e: Any) -> float:
        return e.event_time.seconds * 1000 + e.event_time.nanos / 1e6

    def first(kind: int, among: Any) -> Any:
        return next((e for e in among if e.event_type == kind), None)

    accepted = next(
        (
            i
            for i, e in enumerate(events)
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        ),
        None,
    )
    closed = first(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, events)
    if accepted is None or closed is None:
        return {}
    scheduled = first(EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, reversed(events[:accepted]))
    after = events[accepted:]
    grant = {
        e.event_id
        for e in after
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == GRANT_ACTIVITY
    }
    # A start is written with its completion, stamped with the time the attempt started.
    started = [
        at(e)
        for e in after
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and e.activity_task_started_event_attributes.scheduled_event_id in grant
    ]
    granted = [
        at(e)
        for e in after
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
        and e.activity_task_completed_event_attributes.scheduled_event_id in grant
    ]
    accepted_at = at(events[accepted])
    first_start = min(started, default=accepted_at)
    granted_at = max(granted, default=first_start)
    return {
        "update_task": round(accepted_at - at(scheduled), 1),
        "grant_dispatch": round(first_start - accepted_at, 1),
        "grant_calls": round(granted_at - first_start, 1),
        "closing": round(at(closed) - granted_at, 1),
    }


def server_actions(metrics: str, namespace: str) -> dict[str, float]:
    """`action{action_type=...,namespace=...}` counters of a Temporal server's /metrics page."""
    totals: dict[str, float] = {}
    for line in metrics.splitlines():
        if not line.startswith("action{") or f'namespace="{namespace}"' not in line:
            continue
        labels, value = line.rsplit(" ", 1)
        kind = labels.split('action_type="', 1)[1].split('"', 1)[0]
        totals[kind] = totals.get(kind, 0) + float(value)
    return totals


def _prefixed(kind: str, figures: dict[str, Any]) -> dict[str, Any]:
    return {
        f"history_events_{kind}": figures["history_events"],
        f"history_event_types_{kind}": figures["event_types"],
        f"actions_{kind}": figures["actions"],
        f"actions_breakdown_{kind}": figures["actions_breakdown"],
    }


# --- helpers ---------------------------------------------------------------------------------


async def _timed(indices: range, concurrency: int, fn: Callable[[int], Awaitable[None]]) -> tuple[float, int]:
    """Run fn(i) for each index with `concurrency` in flight; the elapsed seconds and the failures."""
    n = len(indices)
    errors: list[BaseException] = []
    next_index = iter(indices)

    async def lane() -> None:
        for i in next_index:
            try:
                await fn(i)
            except Exception as exc:  # counted and reported, the run goes on
                errors.append(exc)

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(min(concurrency, n))))
    elapsed = time.perf_counter() - started
    if errors:
        print(f"{len(errors)} of {n} calls failed; the first: {errors[0]!r}", file=sys.stderr)
    return elapsed, len(errors)


def redeem_sample(invitations: int) -> int:
    """Invitations redeemed warm (the last ones created) and, when there are enough, cold (the
    first ones): at most REDEEM_SAMPLE each, half the run when it is smaller."""
    return max(1, min(REDEEM_SAMPLE, invitations // 2))


def rounds_of(n: int, rounds: int) -> list[range]:
    """0..n-1 in `rounds` consecutive slices of near-equal size (fewer when n is smaller)."""
    rounds = max(1, min(rounds, n))
    size, extra = divmod(n, rounds)
    bounds = [r * size + min(r, extra) for r in range(rounds + 1)]
    return [range(bounds[r], bounds[r + 1]) for r in range(rounds)]


def _add_cpu(total: dict[str, float], before: dict[str, float], after: dict[str, float]) -> None:
    """Add each part's CPU seconds between two readings to `total`."""
    for part, seconds in after.items():
        total[part] = total.get(part, 0.0) + seconds - before.get(part, 0.0)


def _cpu_per(before: dict[str, float], after: dict[str, float], count: int) -> dict[str, float]:
    """Milliseconds of CPU per item each part used between two readings, and their total."""
    used = {k: round((after[k] - before.get(k, 0.0)) * 1000 / max(count, 1), 2) for k in sorted(after)}
    used["total"] = round(sum(used.values()), 2)
    return used


async def _gather_limited(calls: list[Callable[[], Awaitable[None]]], limit: int) -> None:
    gate = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            await call()

    await asyncio.gather(*(one(c) for c in calls))


def _check(response: httpx.Response, status: int, what: str) -> None:
    if response.status_code != status:
        raise BenchError(f"{what} answered {response.status_code}: {response.text[:300]}")


def _key() -> dict[str, str]:
    return {"Authorization": f"Bearer {DEV_API_KEY}"}


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile, in the values' unit, rounded to 0.1."""
    if not values:
        raise BenchError("nothing was measured")
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 1)


def _rss(pids: list[int]) -> float | None:
    """The largest worker's RSS (the target is per worker process)."""
    return round(max(rss_mb(p) for p in pids), 1) if pids else None


def _meets(value: Any, op: str, bound: float) -> bool | None:
    if not isinstance(value, int | float):
        return None
    return value >= bound if op == ">=" else value <= bound


# --- output ----------------------------------------------------------------------------------

ROWS = [
    ("create_per_s", "creates / s (HTTP API)"),
    ("raw_start_per_s", "raw starts / s (no-op workflow)"),
    ("create_vs_raw", "create / raw"),
    ("redeem_p50_ms", "redeem p50 ms (webhook → grant done)"),
    ("redeem_p95_ms", "redeem p95 ms"),
    ("raw_update_p50_ms", "raw update p50 ms"),
    ("redeem_vs_raw", "redeem / raw update"),
    ("redeem_outside_workflow_ms", "redeem ms outside the workflow"),
    ("redeem_cold_p50_ms", "redeem p50 ms, invitation out of the worker's cache"),
    ("raw_update_cold_p50_ms", "raw update p50 ms, no-op out of the worker's cache"),
    ("history_events_accepted", "history events, accepted"),
    ("history_events_expired", "history events, expired"),
    ("actions_estimate", "billable actions, accepted"),
    ("actions_estimate_expired", "billable actions, expired"),
    ("worker_rss_mb_idle", "worker RSS MiB, before the open ones"),
    ("worker_rss_mb_10k_open", "worker RSS MiB, open invitations"),
    ("import_rows_per_s", "import: rows mailed / s"),
    ("bare_first_step_per_s", "bare first steps / s (start, activity, timer)"),
    ("import_vs_bare", "import / bare first step"),
    ("import_vs_raw", "import / raw start"),
    ("auth0_calls_per_invitation", "import: Auth0 calls per invitation"),
]


def print_results(results: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    m, cfg = results["machine"], results["config"]
    table = Table(
        title=(
            f"invites bench — {cfg['invitations']} invitations, concurrency {cfg['concurrency']}, "
            f"{cfg['open_invitations']} open, {cfg['api_processes']} API / {cfg['worker_processes']} worker"
        )
    )
    for name, justify in (("figure", "left"), ("value", "right"), ("target", "left"), ("", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    targets = results["targets"]
    for key, label in ROWS:
        target = targets.get(key)
        verdict = ""
        if target is not None:
            verdict = {True: "[green]PASS[/]", False: "[red]MISS[/]", None: "[yellow]n/a[/]"}[target["pass"]]
        table.add_row(label, _show(results.get(key)), target["bound"] if target else "", verdict)
    console.print(table)
    for key, label in (("redeem_phases_ms", "redeem"), ("redeem_cold_phases_ms", "redeem out of cache")):
        if phases := results.get(key):
            console.print(
                f"{label} inside the workflow, ms (p50): " + ", ".join(f"{k} {v}" for k, v in phases.items())
            )
    for key, label in (
        ("cpu_ms_per_raw_start", "raw start"),
        ("cpu_ms_per_create", "create"),
        ("cpu_ms_per_open_invitation", "open invitation, started to mailed"),
        ("cpu_ms_per_import_row", "imported row, read to mailed"),
        ("cpu_ms_per_bare_first_step", "bare first step, start to activity"),
    ):
        if used := results.get(key):
            console.print(f"CPU ms per {label}: " + ", ".join(f"{k} {v}" for k, v in used.items()))
    console.print(
        f"{m['cores']} cores ({m['cpu']}), {m['memory_gb']} GB, Python {m['python']}, "
        f"Temporal server {m.get('temporal_server')} ({m['temporal_cli']}), "
        f"load {m['load_avg_start']} → {m.get('load_avg_end')}"
    )


def _show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"
