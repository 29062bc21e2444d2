"""The baseline for `invites bench`: a workflow that does nothing but wait for one update.

Starting it measures what a bare `client.start_workflow` costs on the same server; updating it
measures a bare update round-trip (one workflow task, no activities). Kept in its own small
module because the workflow sandbox re-imports the module that defines a workflow.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

# Left unfinished (a run stopped half-way, a shared cluster), a no-op run closes itself.
NOOP_LIFETIME = timedelta(hours=1)


@workflow.defn(name="BenchNoopWorkflow")
class NoopWorkflow:
    def __init__(self) -> None:
        self._done = False

    @workflow.run
    async def run(self) -> None:
        # wait_condition with a timeout starts one timer: the bare shape of an invitation's wait.
        try:
            await workflow.wait_condition(lambda: self._done, timeout=NOOP_LIFETIME)
        except TimeoutError:
            return

    @workflow.update
    def finish(self) -> str:
        """Answer at once and let the run end (the bare counterpart of a redeem)."""
        self._done = True
        return "done"
