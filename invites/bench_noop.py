"""The baseline for `invites bench`: a workflow that does nothing but wait for one update.

Starting it measures what a bare `client.start_workflow` costs on the same server; updating it
measures a bare update round-trip (one workflow task, no activities). Kept in its own small
module because the workflow sandbox re-imports the module that defines a workflow.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

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


class FirstTasks(Interceptor):
    """Counts the no-op runs whose first workflow task has run in this worker.

    The raw starts are timed to the last start's answer, and the worker runs their first tasks
    behind them; the bench waits for those to finish before it times the creates, so that neither
    the server nor this process spends the creates' time on the raw starts' work.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # activations run on the worker's threads
        self.count = 0

    def seen(self) -> None:
        with self._lock:
            self.count += 1

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        counter = self

        class _Inbound(WorkflowInboundInterceptor):
            async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
                counter.seen()
                return await super().execute_workflow(input)

        return _Inbound
