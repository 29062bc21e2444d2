"""What the bench's no-op worker has done: kept out of `bench.noop`, which the workflow sandbox
re-imports for every no-op run (an import there would slow the baseline it measures)."""

from __future__ import annotations

import threading
from typing import Any

from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)


class FirstTasks(Interceptor):
    """Counts the no-op runs whose first workflow task has run in this worker.

    The raw starts are timed to the last start's answer, and the worker runs their first tasks
    behind them; the bench waits for those to finish before it times the creates, so that neither
    the server nor this process spends the creates' time on the raw starts' work. A run replayed
    after its eviction from the worker's cache is counted again; between the raw starts and the
    creates none is.
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
