"""What the bench's own workers have done: kept out of `bench.noop` and `bench.first_step`, which
the workflow sandbox re-imports for every run (an import there would slow the baselines they
measure)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from temporalio import activity
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from bench.first_step import FIRST_STEP_ACTIVITY


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


class FirstSteps:
    """Counts the bare first steps done: the activity of `bench.first_step.FirstStepWorkflow`,
    the counterpart of an invitation's first mail."""

    def __init__(self) -> None:
        self.count = 0  # the activity runs on the worker's event loop: no lock
        self._ran = asyncio.Event()

    @activity.defn(name=FIRST_STEP_ACTIVITY)
    async def step(self) -> None:
        self.count += 1
        self._ran.set()

    async def reach(self, count: int) -> None:
        """Return once `count` steps have run in all."""
        while self.count < count:
            self._ran.clear()
            await self._ran.wait()
