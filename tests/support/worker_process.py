"""The worker as production runs it (`worker.main()` in its own process, configured only by
`INVITES_*` variables), and which worker process ran an invitation's grant."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from invites.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
READY_LINE = "worker started on task queue"
READY_TIMEOUT = 30.0


def settings_env(settings: Settings) -> dict[str, str]:
    """The `INVITES_*` variables that make `Settings()` in another process equal `settings`."""
    env: dict[str, str] = {}
    for name, value in settings:
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, timedelta):
            value = iso_duration(value)
        elif isinstance(value, list):
            value = json.dumps([iso_duration(v) if isinstance(v, timedelta) else v for v in value])
        elif isinstance(value, bool):
            value = "true" if value else "false"
        env[f"INVITES_{name.upper()}"] = str(value)
    return env


def iso_duration(value: timedelta) -> str:
    """pydantic reads a timedelta from a string only as ISO 8601 (`PT1209600S`), not as seconds."""
    return f"PT{value.total_seconds()}S"


class WorkerProcess:
    """`python -c 'import worker; worker.main()'`, its output in a log file for failures."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.log = log
        env = {k: v for k, v in os.environ.items() if not k.startswith("INVITES_")}
        env.update(settings_env(settings), PYTHONUNBUFFERED="1")
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", "import worker; worker.main()"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def ready(self) -> None:
        """Wait until both Temporal workers poll (the worker logs it), failing fast if it died."""
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                while READY_LINE not in self.output():
                    if self.proc.poll() is not None:
                        raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.output()}")
                    await asyncio.sleep(0.1)
        except TimeoutError:
            raise AssertionError(f"worker not ready after {READY_TIMEOUT} s:\n{self.output()}") from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)

    def dump(self) -> None:
        """Its output on stderr, for the test report."""
        sys.stderr.write(f"--- worker pid {self.pid} ({self.log.name}) ---\n{self.output()}\n")


async def grant_started(handle: WorkflowHandle[Any, Any]) -> dict[str, Any]:
    """Attempt and worker identity of the grant activity's recorded start (`grant_access`, which
    assigns the roles)."""
    scheduled_id = None
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if event.activity_task_scheduled_event_attributes.activity_type.name == "grant_access":
                scheduled_id = event.event_id
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = event.activity_task_started_event_attributes
            if attrs.scheduled_event_id == scheduled_id:
                return {"attempt": attrs.attempt, "identity": attrs.identity}
    raise AssertionError("no recorded start of grant_access")
