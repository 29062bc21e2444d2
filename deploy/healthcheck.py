"""Container health checks of the invites image (`Dockerfile` HEALTHCHECK, `docker-compose.yml`).

    python healthcheck.py api            GET /healthz on this container's API: the process answers
    python healthcheck.py api --ready    GET /readyz: Temporal and the database answer too
    python healthcheck.py worker         this container's worker polls both of its task queues

Exits 0 when healthy, 1 otherwise with one line saying why (`docker inspect` keeps it).
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from invites.settings import Settings

CHECK_TIMEOUT_S = 8
# A worker long-polls each queue about once a minute; the server records each poll's start.
# Three minutes without one means the worker is stuck or gone.
POLL_FRESHNESS = timedelta(minutes=3)


def check_api(port: int, *, ready: bool) -> str | None:
    """None when the API answers 200 on /healthz (or /readyz), else the reason."""
    url = f"http://127.0.0.1:{port}/{'readyz' if ready else 'healthz'}"
    try:
        with urllib.request.urlopen(url, timeout=CHECK_TIMEOUT_S):
            return None
    except urllib.error.HTTPError as exc:
        return f"{url} answered {exc.code}"
    except OSError as exc:
        return f"{url} did not answer ({exc})"


async def check_worker(settings: Settings, identity_suffix: str | None = None) -> str | None:
    """None when a worker of this host polls the workflow queue and the Auth0 activity queue.

    The SDK names each worker `<pid>@<hostname>`, and in a container the hostname is the
    container's own, so replicas of the worker are told apart.
    """
    # Imported here, so that the API's check (every 15 s) stays a quick stdlib call.
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    from invites.temporal import auth0_task_queue, build_temporal_client

    suffix = identity_suffix or f"@{socket.gethostname()}"
    client = await build_temporal_client(settings)
    queues = {
        settings.task_queue: TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        auth0_task_queue(settings.task_queue): TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    }
    now = datetime.now(UTC)
    for name, kind in queues.items():
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=settings.temporal_namespace,
                task_queue=TaskQueue(name=name),
                task_queue_type=kind,
            )
        )
        fresh = [
            p
            for p in described.pollers
            if p.identity.endswith(suffix)
            and now - p.last_access_time.ToDatetime(tzinfo=UTC) < POLL_FRESHNESS
        ]
        if not fresh:
            return f"no poller of this container ({suffix}) on task queue {name}"
    return None


def main(argv: list[str]) -> int:
    if argv[:1] == ["api"]:
        problem = check_api(int(os.environ.get("INVITES_API_PORT", "8000")), ready="--ready" in argv)
    elif argv == ["worker"]:
        from invites.settings import get_settings

        try:
            settings = get_settings()
            problem = asyncio.run(asyncio.wait_for(check_worker(settings), CHECK_TIMEOUT_S))
        except Exception as exc:  # any failure to ask Temporal is a failed check, said in one line
            problem = f"cannot ask Temporal ({type(exc).__name__}: {exc})"
    else:
        print("usage: healthcheck.py api [--ready] | worker", file=sys.stderr)
        return 2
    print(problem or "ok")
    return 1 if problem else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
