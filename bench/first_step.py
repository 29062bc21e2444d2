"""The import's baseline for `invites bench`: the bare shape of an invitation's first step.

A workflow task schedules one activity on a second task queue (the counterpart of the look-up
and first mail on the Auth0 queue, doing nothing), the activity runs, and a second workflow task
starts the wait's timer. What Temporal alone takes to do that for N workflows started at once is
the pace a bulk import can approach; `import_vs_bare` is the import's rate over this one.

Kept in its own small module because the workflow sandbox re-imports the module that defines a
workflow for every run.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

# Left waiting (a run stopped half-way, a shared cluster), a run closes itself, as a no-op's does.
FIRST_STEP_LIFETIME = timedelta(hours=1)
FIRST_STEP_ACTIVITY = "BenchFirstStep"  # by name: the activity's module stays out of the sandbox
FIRST_STEP_TIMEOUT = timedelta(minutes=5)


def first_step_queue(task_queue: str) -> str:
    """The activity's queue, beside the workflow's (as the Auth0 queue is beside ours)."""
    return f"{task_queue}-step"


@workflow.defn(name="BenchFirstStepWorkflow")
class FirstStepWorkflow:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(
            FIRST_STEP_ACTIVITY,
            task_queue=first_step_queue(workflow.info().task_queue),
            start_to_close_timeout=FIRST_STEP_TIMEOUT,
        )
        await workflow.sleep(FIRST_STEP_LIFETIME)  # the wait, as an invitation's: one timer
