"""The scripts that run inside the containers, run for real: the health check of the API and of
the worker (deploy/healthcheck.py), and the job that registers the namespace and our search
attributes (deploy/temporal/register.sh) against a Temporal dev server."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from uuid import uuid4

import pytest
import yaml
from temporalio import activity, workflow
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from invites.settings import Settings
from invites.temporal import SEARCH_ATTRIBUTES, auth0_task_queue
from tests.support.network import free_port
from tests.support.temporal import binary

ROOT = Path(__file__).resolve().parents[1]


def load_healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_healthcheck", ROOT / "deploy" / "healthcheck.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script", sorted((ROOT / "deploy").rglob("*.sh")), ids=lambda p: p.name)
def test_shell_scripts_parse_as_posix_sh(script: Path) -> None:
    subprocess.run(["sh", "-n", str(script)], check=True)


@pytest.fixture
def fake_api() -> Iterator[int]:
    """A local HTTP server answering like the API: /healthz 200, /readyz 503."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/healthz" else 503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_api_health_check_reads_healthz_and_readyz(fake_api: int) -> None:
    check = load_healthcheck()
    assert check.check_api(fake_api, ready=False) is None
    assert "answered 503" in check.check_api(fake_api, ready=True)
    assert "did not answer" in check.check_api(free_port(), ready=False)


@workflow.defn
class _Idle:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


@activity.defn
async def _noop() -> None:
    return None


@pytest.mark.devserver
async def test_worker_health_check_finds_this_hosts_pollers(dev_env: WorkflowEnvironment) -> None:
    check = load_healthcheck()
    address = dev_env.client.service_client.config.target_host
    settings = Settings(_env_file=None, temporal_address=address, task_queue=f"hc-{uuid4().hex[:8]}")
    assert "no poller" in await check.check_worker(settings)
    workflows = Worker(
        dev_env.client,
        task_queue=settings.task_queue,
        workflows=[_Idle],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    activities = Worker(dev_env.client, task_queue=auth0_task_queue(settings.task_queue), activities=[_noop])
    async with workflows, activities:
        async with asyncio.timeout(10):
            while (problem := await check.check_worker(settings)) is not None:
                await asyncio.sleep(0.1)
        assert problem is None
        other_host = await check.check_worker(settings, "@another-container")
        assert "no poller of this container (@another-container)" in other_host


async def run_register(address: str, namespace: str, attributes: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("TEMPORAL_")}
    env |= {
        "PATH": f"{Path(binary('temporal')).parent}{os.pathsep}{os.environ['PATH']}",
        "TEMPORAL_ADDRESS": address,
        "NAMESPACE": namespace,
        "SEARCH_ATTRIBUTES": attributes,
    }
    proc = await asyncio.create_subprocess_exec(
        "sh",
        str(ROOT / "deploy" / "temporal" / "register.sh"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return subprocess.CompletedProcess(["register.sh"], proc.returncode or 0, out.decode(), "")


@pytest.mark.devserver
async def test_register_job_creates_namespace_and_search_attributes_and_can_rerun() -> None:
    # A server of its own, without our search attributes: the job is what registers them.
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=binary("temporal"), ui=False)
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    try:
        address = env.client.service_client.config.target_host
        attributes = compose["services"]["temporal-register"]["environment"]["SEARCH_ATTRIBUTES"]
        for _ in range(2):  # `docker compose up` runs the job at every start
            run = await run_register(address, "invites-deploy", attributes)
            assert run.returncode == 0, run.stdout
            assert "ready for invitations" in run.stdout
        client = await Client.connect(address, namespace="invites-deploy")
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace="invites-deploy")
        )
        registered = {
            name: IndexedValueType.Name(kind).removeprefix("INDEXED_VALUE_TYPE_").title()
            for name, kind in listed.custom_attributes.items()
            if name.startswith("Invitation")
        }
        assert registered == SEARCH_ATTRIBUTES
        clash = await run_register(address, "invites-deploy", "InvitationStatus=Int")
        assert clash.returncode != 0
        assert "exists with another type" in clash.stdout
    finally:
        await env.shutdown()
