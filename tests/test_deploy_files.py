"""The deployment files: Dockerfile, docker-compose.yml, .env.example and deploy/.

No Docker engine runs here, so these tests read each file the way Docker and Compose would
(YAML, Compose's `${...}` interpolation, env files, Dockerfile instructions) and check what a
deployment relies on: the services and their start order, health checks, that every setting
production needs reaches the API and the worker with a production value, and that the example
settings, once filled in as their comments say, pass the production validator. The scripts and
health checks that run inside containers are also run for real against the Temporal dev server.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from uuid import uuid4

import pytest
import yaml
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from temporalio import activity, workflow
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from invites.settings import (
    DEV_API_KEY,
    DEV_AUTH0_CLIENT_SECRET,
    DEV_TOKEN_KEYS,
    DEV_WEBHOOK_SECRET,
    Settings,
)
from invites.temporal import SEARCH_ATTRIBUTES, auth0_task_queue
from tests.conftest import binary

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"

# The settings the deployment brief names as required in production. The tests also derive the
# set from `Settings` (below) and check that this floor is inside it.
NAMED_REQUIRED = {
    "INVITES_TOKEN_KEYS",
    "INVITES_WEBHOOK_SECRET",
    "INVITES_API_KEYS",
    "INVITES_AUTH0_CLIENT_SECRET",
    "INVITES_DATABASE_URL",
    "INVITES_TEMPORAL_ADDRESS",
    "INVITES_AUTH0_BASE_URL",
    "INVITES_AUTH0_DOMAIN",
    "INVITES_AUTH0_CLIENT_ID",
    "INVITES_SIGNIN_URL",
    "INVITES_PUBLIC_BASE_URL",
    "INVITES_AUTH0_ISSUER",
    "INVITES_API_AUDIENCE",
}
# A default holding one of these points at the developer's machine (SQLite, the sandbox, the
# dev server): useless in production, so the deployment must set that setting.
MACHINE_LOCAL = ("127.0.0.1", "localhost", "sqlite")
# Values an operator copies from the Auth0 dashboard: nothing to generate, no example to give.
FROM_AUTH0 = {"INVITES_AUTH0_CLIENT_ID", "INVITES_AUTH0_CLIENT_SECRET"}

LONG_RUNNING = {"postgresql", "temporal", "temporal-ui", "api", "worker"}
ONE_SHOT = {"temporal-schema", "temporal-register", "migrate"}


# --- reading the files as Docker and Compose do ----------------------------------------------


class MissingVariable(Exception):
    """A `${VAR:?message}` whose variable is unset or empty: Compose refuses to start."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
    `${VAR:?err}`, `${VAR?err}`, `${VAR:+alt}`, `${VAR+alt}`, nesting, and `$$` for `$`."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            depth, j = 1, i + 2
            while depth:
                if j >= len(text):
                    raise ValueError(f"unclosed ${{ in {text!r}")
                if text.startswith("${", j):
                    depth, j = depth + 1, j + 2
                    continue
                depth -= text[j] == "}"
                j += 1
            out.append(_expand(text[i + 2 : j - 1], env))
            i = j
        elif match := re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)", text[i:]):
            out.append(env.get(match.group(1), ""))
            i += match.end()
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _expand(expr: str, env: Mapping[str, str]) -> str:
    match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?", expr, re.DOTALL)
    if not match:
        raise ValueError(f"not a Compose variable expression: ${{{expr}}}")
    name, op, arg = match.groups()
    value = env.get(name)
    if op is None:
        return value or ""
    present = bool(value) if op.startswith(":") else value is not None
    if op.endswith("-"):
        return value if present and value is not None else interpolate(arg, env)
    if op.endswith("?"):
        if present and value is not None:
            return value
        raise MissingVariable(f"{name}: {interpolate(arg, env)}")
    return interpolate(arg, env) if present else ""


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def services() -> dict[str, Any]:
    return load_compose()["services"]


def env_file_lines() -> list[str]:
    return ENV_EXAMPLE.read_text().splitlines()


def env_file_values(lines: list[str]) -> dict[str, str]:
    """Active `NAME=value` lines, as Compose and pydantic-settings read an env file."""
    values = {}
    for line in lines:
        if match := re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", line.strip()):
            value = match.group(2).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            values[match.group(1)] = value
    return values


def env_file_mentions(lines: list[str]) -> set[str]:
    """Names assigned on an active line or shown as a commented-out `# NAME=value`."""
    return {match.group(1) for line in lines if (match := re.match(r"#?\s*([A-Z][A-Z0-9_]*)=", line.strip()))}


def comment_above(lines: list[str], name: str) -> str:
    """The comment block right above the active `NAME=` line (up to a blank line)."""
    index = next(i for i, line in enumerate(lines) if line.startswith(f"{name}="))
    block: list[str] = []
    for line in reversed(lines[:index]):
        if not line.startswith("#"):
            break
        block.insert(0, line.lstrip("#").strip())
    return "\n".join(block)


def fill_in(lines: list[str]) -> dict[str, str]:
    """The example's values with each empty one filled in as its comment says: by running the
    `python -c` command it shows, or with its `E.g.` example."""
    values = env_file_values(lines)
    for name, value in values.items():
        if value:
            continue
        comment = comment_above(lines, name)
        command = re.search(r"^python -c (.+)$", comment, re.MULTILINE)
        example = re.search(r"E\.g\. (\S+)", comment)
        if command:
            code = shlex.split(command.group(1))[0]
            run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            values[name] = run.stdout.strip()
        elif example:
            values[name] = example.group(1)
        elif name in FROM_AUTH0:
            values[name] = f"copied-from-auth0-{uuid4().hex}"
        else:
            raise AssertionError(f".env.example: {name} is empty and its comment says neither how to make it")
    return values


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            logical.append(current.strip())
            current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def image_env() -> dict[str, str]:
    """The ENV of the Dockerfile's final stage."""
    instructions = dockerfile_instructions()
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    env: dict[str, str] = {}
    for op, args in instructions[last_from:]:
        if op == "ENV":
            env.update(token.split("=", 1) for token in shlex.split(args))
    return env


def container_env(service: str, dotenv: Mapping[str, str]) -> dict[str, str]:
    """The environment a container of `service` starts with, given the project's .env.

    Precedence as in Compose: `environment` over `env_file` over the image's ENV.
    """
    spec = services()[service]
    env: dict[str, str] = dict(image_env()) if "build" in spec else {}
    env_files = spec.get("env_file") or []
    for path in [env_files] if isinstance(env_files, str) else env_files:
        assert path == ".env", f"{service} reads {path}; these tests model .env only"
        env.update(dotenv)
    for key, value in (spec.get("environment") or {}).items():
        env[key] = interpolate(str(value), dotenv)
    return env


def published(service: str) -> set[tuple[int, int]]:
    """(host port, container port) pairs of `ports`, short syntax with an optional host IP."""
    pairs = set()
    for entry in services()[service].get("ports", []):
        *host, container = str(entry).split(":")
        pairs.add((int(host[-1]), int(container)))
    return pairs


# --- what production requires -----------------------------------------------------------------


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No INVITES_* variable of the machine running the tests leaks into a Settings."""
    for name in list(os.environ):
        if name.upper().startswith("INVITES_"):
            monkeypatch.delenv(name)
    return monkeypatch


def production_settings(env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in env.items():
        if name.startswith("INVITES_"):
            monkeypatch.setenv(name, value)
    return Settings(_env_file=None)


@pytest.fixture
def required(clean_environ: pytest.MonkeyPatch) -> set[str]:
    """Every setting production needs: fields without a default, the secrets the production
    validator refuses at their development value, and the settings whose default points at the
    developer's machine."""
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, env="production")
    refused_names = set(re.findall(r"INVITES_[A-Z0-9_]+", str(refused.value)))
    fields = Settings.model_fields
    no_default = {f"INVITES_{name.upper()}" for name, field in fields.items() if field.is_required()}
    local = {
        f"INVITES_{name.upper()}"
        for name, field in fields.items()
        if isinstance(field.default, str) and any(marker in field.default for marker in MACHINE_LOCAL)
    }
    assert {
        "INVITES_TOKEN_KEYS",
        "INVITES_WEBHOOK_SECRET",
        "INVITES_API_KEYS",
        "INVITES_AUTH0_CLIENT_SECRET",
    } <= refused_names
    return no_default | refused_names | local | NAMED_REQUIRED


# --- docker-compose.yml -----------------------------------------------------------------------


def test_compose_runs_the_production_shape() -> None:
    assert set(services()) >= LONG_RUNNING | ONE_SHOT
    assert services()["postgresql"]["image"].startswith("postgres:16")
    assert services()["temporal"]["image"].startswith("temporalio/server:")
    assert services()["temporal-ui"]["image"].startswith("temporalio/ui:")
    for job in ("temporal-schema", "temporal-register"):
        assert services()[job]["image"].startswith("temporalio/admin-tools:")
    for name in ("api", "worker", "migrate"):
        assert services()[name]["build"] == "."
    assert services()["api"]["command"] == ["api"]
    assert services()["worker"]["command"] == ["worker"]
    assert services()["migrate"]["entrypoint"] == ["python", "-m", "invites.db"]


def test_published_ports() -> None:
    assert (8000, 8000) in published("api")
    assert (8233, 8080) in published("temporal-ui")
    assert (7233, 7233) in published("temporal")
    assert not published("postgresql"), "the database is reached inside the Compose network only"


def test_long_running_services_restart_and_have_a_health_check() -> None:
    for name in LONG_RUNNING:
        spec = services()[name]
        assert spec.get("restart") == "unless-stopped", name
        check = spec.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
    for name in ONE_SHOT:
        assert services()[name].get("restart") == "no", f"{name} is a one-shot job"


def test_every_service_waited_for_as_healthy_has_a_health_check() -> None:
    for name, spec in services().items():
        for dependency, edge in (spec.get("depends_on") or {}).items():
            assert dependency in services(), f"{name} depends on unknown {dependency}"
            if edge["condition"] == "service_healthy":
                assert services()[dependency].get("healthcheck", {}).get("test"), dependency
            if edge["condition"] == "service_completed_successfully":
                assert dependency in ONE_SHOT, f"{name} waits for {dependency} to exit"


@pytest.mark.parametrize("service", ["api", "worker"])
def test_api_and_worker_start_after_database_temporal_and_jobs(service: str) -> None:
    depends_on = services()[service]["depends_on"]
    conditions = {name: edge["condition"] for name, edge in depends_on.items()}
    assert conditions == {
        "postgresql": "service_healthy",
        "temporal": "service_healthy",
        "migrate": "service_completed_successfully",
        "temporal-register": "service_completed_successfully",
    }
    # Temporal may be left out (Temporal Cloud); the database and our migration may not.
    assert depends_on["postgresql"].get("required", True)
    assert depends_on["migrate"].get("required", True)


def test_temporal_start_order() -> None:
    assert services()["temporal-schema"]["depends_on"]["postgresql"]["condition"] == "service_healthy"
    temporal = services()["temporal"]["depends_on"]
    assert temporal["temporal-schema"]["condition"] == "service_completed_successfully"
    assert services()["temporal-register"]["depends_on"]["temporal"]["condition"] == "service_healthy"
    assert services()["temporal-ui"]["depends_on"]["temporal"]["condition"] == "service_healthy"
    assert services()["migrate"]["depends_on"]["postgresql"]["condition"] == "service_healthy"


def test_temporal_services_form_the_profile_the_example_turns_on() -> None:
    temporal = {name for name in services() if name.startswith("temporal")}
    assert temporal == {"temporal", "temporal-schema", "temporal-register", "temporal-ui"}
    for name, spec in services().items():
        assert spec.get("profiles", []) == (["temporal"] if name in temporal else []), name
    assert env_file_values(env_file_lines())["COMPOSE_PROFILES"] == "temporal"


def test_search_attribute_job_registers_exactly_ours() -> None:
    job = services()["temporal-register"]
    pairs = job["environment"]["SEARCH_ATTRIBUTES"].split()
    assert dict(pair.split("=", 1) for pair in pairs) == SEARCH_ATTRIBUTES
    assert len(pairs) == len(SEARCH_ATTRIBUTES)
    assert job["entrypoint"] == ["/bin/sh", "/deploy/register.sh"]
    assert "./deploy/temporal/register.sh:/deploy/register.sh:ro" in job["volumes"]


def test_bind_mounted_files_exist() -> None:
    for name, spec in services().items():
        for volume in spec.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_compose_refuses_to_start_while_a_required_value_is_empty(required: set[str]) -> None:
    """Each required setting without a sensible container default is a `${VAR:?...}`: an empty
    or missing value stops `docker compose up` with its name, before any container starts."""
    unfilled = env_file_values(env_file_lines())
    with pytest.raises(MissingVariable):
        container_env("api", unfilled)
    defaulted = set(image_env()) | {"INVITES_DATABASE_URL", "INVITES_TEMPORAL_ADDRESS"}
    filled = fill_in(env_file_lines())
    for name in [*sorted(required - defaulted), "POSTGRES_PASSWORD"]:
        env = filled | {name: ""}
        with pytest.raises(MissingVariable, match=name):
            for service in ("postgresql", "api", "worker", "migrate"):
                container_env(service, env)


@pytest.mark.parametrize("service", ["api", "worker"])
def test_every_required_setting_reaches_the_container_with_a_production_value(
    service: str, required: set[str], clean_environ: pytest.MonkeyPatch
) -> None:
    env = container_env(service, fill_in(env_file_lines()))
    missing = required - env.keys()
    assert not missing, f"{service} does not get {sorted(missing)}"
    for name in required:
        field = Settings.model_fields[name.removeprefix("INVITES_").lower()]
        assert env[name], f"{service}: {name} is empty"
        assert env[name] != str(field.default), f"{service}: {name} keeps its development default"
    assert env["INVITES_ENV"] == "production"
    settings = production_settings(env, clean_environ)
    assert settings.env == "production"
    assert settings.api_host == "0.0.0.0"  # noqa: S104 - a container must listen beyond itself
    assert settings.temporal_address == "temporal:7233"


def test_api_and_worker_run_with_the_same_settings() -> None:
    api, worker = services()["api"], services()["worker"]
    assert api["environment"] == worker["environment"]
    assert api["env_file"] == worker["env_file"] == ".env"


def test_database_url_points_at_the_bundled_postgresql(clean_environ: pytest.MonkeyPatch) -> None:
    env = fill_in(env_file_lines())
    database = container_env("postgresql", env)
    urls = {container_env(name, env)["INVITES_DATABASE_URL"] for name in ("api", "worker", "migrate")}
    assert len(urls) == 1, "the API, the worker and the migrate job use one database"
    url = make_url(urls.pop())
    assert url.drivername == "postgresql+psycopg"
    assert (url.host, url.port) == ("postgresql", 5432)
    assert url.username == database["POSTGRES_USER"]
    assert url.password == database["POSTGRES_PASSWORD"] == env["POSTGRES_PASSWORD"]
    assert url.database == database["POSTGRES_DB"]
    schema_job = container_env("temporal-schema", env)
    assert (schema_job["SQL_USER"], schema_job["SQL_PASSWORD"]) == (url.username, url.password)
    temporal = container_env("temporal", env)
    assert (temporal["POSTGRES_USER"], temporal["POSTGRES_PWD"]) == (url.username, url.password)


def test_a_database_url_in_env_replaces_the_bundled_one(clean_environ: pytest.MonkeyPatch) -> None:
    env = fill_in(env_file_lines())
    env["INVITES_DATABASE_URL"] = "postgresql+psycopg://app:secret@db.example.com:5432/invites"
    for name in ("api", "worker", "migrate"):
        assert container_env(name, env)["INVITES_DATABASE_URL"] == env["INVITES_DATABASE_URL"]


def test_temporal_clients_agree_on_address_and_namespace(clean_environ: pytest.MonkeyPatch) -> None:
    env = fill_in(env_file_lines())
    api = container_env("api", env)
    assert api["INVITES_TEMPORAL_ADDRESS"] == "temporal:7233"
    assert container_env("temporal-register", env)["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert container_env("temporal-ui", env)["TEMPORAL_ADDRESS"] == "temporal:7233"
    namespace = api["INVITES_TEMPORAL_NAMESPACE"]
    assert container_env("temporal-register", env)["NAMESPACE"] == namespace
    env["INVITES_TEMPORAL_NAMESPACE"] = "invites-prod"
    assert container_env("worker", env)["INVITES_TEMPORAL_NAMESPACE"] == "invites-prod"
    assert container_env("temporal-register", env)["NAMESPACE"] == "invites-prod"
    assert container_env("temporal-ui", env)["TEMPORAL_DEFAULT_NAMESPACE"] == "invites-prod"


def test_temporal_cloud_settings_from_env_reach_the_worker(clean_environ: pytest.MonkeyPatch) -> None:
    env = fill_in(env_file_lines())
    env |= {
        "INVITES_TEMPORAL_ADDRESS": "invites-prod.a1b2c.tmprl.cloud:7233",
        "INVITES_TEMPORAL_NAMESPACE": "invites-prod.a1b2c",
        "INVITES_TEMPORAL_API_KEY": f"key-{uuid4().hex}",
        "INVITES_TEMPORAL_TLS": "true",
    }
    settings = production_settings(container_env("worker", env), clean_environ)
    assert settings.temporal_address == "invites-prod.a1b2c.tmprl.cloud:7233"
    assert settings.temporal_namespace == "invites-prod.a1b2c"
    assert settings.temporal_api_key is not None and settings.temporal_tls


def test_worker_gets_time_to_shut_down_gracefully() -> None:
    import worker as worker_module

    grace = services()["worker"]["stop_grace_period"]
    assert timedelta(seconds=int(grace.removesuffix("s"))) > worker_module.GRACEFUL_SHUTDOWN


# --- .env.example -----------------------------------------------------------------------------


def test_env_example_lists_every_required_setting(required: set[str]) -> None:
    set_by_image = set(image_env())  # the container shape, e.g. INVITES_API_HOST=0.0.0.0
    missing = required - set_by_image - env_file_mentions(env_file_lines())
    assert not missing, f".env.example does not mention {sorted(missing)}"


def test_env_example_names_only_real_settings() -> None:
    fields = {f"INVITES_{name.upper()}" for name in Settings.model_fields}
    compose_text = COMPOSE_FILE.read_text()
    for name in env_file_mentions(env_file_lines()):
        if name.startswith("INVITES_"):
            assert name in fields, f".env.example: invites has no setting {name}"
        else:
            assert name == "COMPOSE_PROFILES" or f"${{{name}" in compose_text, (
                f".env.example: docker-compose.yml does not use {name}"
            )


def test_env_example_mentions_the_optional_integrations() -> None:
    mentioned = env_file_mentions(env_file_lines())
    assert {
        "INVITES_MAIL_BACKEND",
        "INVITES_SENDGRID_API_KEY",
        "INVITES_CRM_BACKEND",
        "INVITES_HUBSPOT_ACCESS_TOKEN",
        "INVITES_EVENTS_URL",
        "INVITES_EVENTS_SECRET",
        "INVITES_TEMPORAL_NAMESPACE",
        "INVITES_TEMPORAL_API_KEY",
        "INVITES_TEMPORAL_TLS",
    } <= mentioned
    assert "tmprl.cloud:7233" in ENV_EXAMPLE.read_text()


def test_env_example_holds_no_secret() -> None:
    text = ENV_EXAMPLE.read_text()
    values = env_file_values(env_file_lines())
    for name in ("INVITES_TOKEN_KEYS", "INVITES_WEBHOOK_SECRET", "INVITES_API_KEYS", "POSTGRES_PASSWORD"):
        assert values[name] == "", f"{name} must be left for the operator to generate"
    assert values["INVITES_AUTH0_CLIENT_SECRET"] == ""
    assert not re.search(r"whsec_[A-Za-z0-9+/=]{30,}", text)
    assert not re.search(r"\bSG\.[A-Za-z0-9_-]{10,}", text)
    for dev in (DEV_TOKEN_KEYS, DEV_WEBHOOK_SECRET, DEV_API_KEY, DEV_AUTH0_CLIENT_SECRET):
        assert dev not in text


def test_env_example_filled_in_as_its_comments_say_validates_in_production(
    clean_environ: pytest.MonkeyPatch,
) -> None:
    values = fill_in(env_file_lines())
    settings = production_settings(values | {"INVITES_ENV": "production"}, clean_environ)
    assert settings.env == "production"
    assert len(settings.token_keyring[0][1]) == 32
    assert set(settings.api_key_permissions.values()) == {
        frozenset({"create:invitations"}),
        frozenset({"read:invitations", "manage:invitations"}),
    }
    assert settings.webhook_secret.get_secret_value().startswith("whsec_")
    assert settings.auth0_issuer.endswith("/")
    database_url = make_url(container_env("api", values)["INVITES_DATABASE_URL"])
    assert database_url.password == values["POSTGRES_PASSWORD"]


# --- Dockerfile and .dockerignore ---------------------------------------------------------------


def test_dockerfile_builds_a_non_root_image_running_invites() -> None:
    instructions = dockerfile_instructions()
    froms = [args for op, args in instructions if op == "FROM"]
    assert all(args.split()[0] == "python:3.11-slim" for args in froms)
    users = [args for op, args in instructions if op == "USER"]
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}
    final = instructions[max(i for i, (op, _) in enumerate(instructions) if op == "FROM") :]
    ops = dict(final)
    assert yaml.safe_load(ops["ENTRYPOINT"]) == ["invites"]
    assert yaml.safe_load(ops["CMD"]) == ["api"]
    assert ops["EXPOSE"] == "8000"
    installs = [args for op, args in instructions if op == "RUN" and "pip install" in args]
    assert any(re.search(r"pip install \.(\s|$)", args) for args in installs), "installs the package"
    assert not any("[test]" in args for args in installs), "no test extras in the image"


def test_dockerfile_health_check_asks_the_api_for_healthz() -> None:
    ops = dict(dockerfile_instructions())
    assert "/app/healthcheck.py" in ops["HEALTHCHECK"] and '"api"' in ops["HEALTHCHECK"]
    assert "--ready" not in ops["HEALTHCHECK"], "liveness: /healthz, not /readyz"
    copies = [args.split() for op, args in dockerfile_instructions() if op == "COPY"]
    assert ["deploy/healthcheck.py", "/app/healthcheck.py"] in copies
    assert image_env()["INVITES_API_PORT"] == "8000"
    for name in ("api", "worker"):
        test = services()[name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "/app/healthcheck.py"], name


def test_dockerignore_keeps_local_state_and_secrets_out() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    for pattern in (".venv/", ".invites/", "**/node_modules/", ".env", "test-artifacts/", ".pytest_cache/"):
        assert pattern in ignored, pattern
    build_needs = ("pyproject.toml", "README.md", "worker.py", "deploy")
    for needed in (*build_needs, "invites", "workflows", "activities", "api", "sandbox"):
        assert not {needed, f"{needed}/", f"/{needed}"} & ignored, f"{needed} is needed by the build"


# --- the scripts and checks that run inside the containers --------------------------------------


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
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    assert "did not answer" in check.check_api(closed_port, ready=False)


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
    workers = [
        Worker(
            dev_env.client,
            task_queue=settings.task_queue,
            workflows=[_Idle],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ),
        Worker(dev_env.client, task_queue=auth0_task_queue(settings.task_queue), activities=[_noop]),
    ]
    async with workers[0], workers[1]:
        problem: str | None = "not asked yet"
        for _ in range(50):
            problem = await check.check_worker(settings)
            if problem is None:
                break
            await asyncio.sleep(0.1)
        assert problem is None
        other_host = await check.check_worker(settings, "@another-container")
        assert "no poller of this container (@another-container)" in other_host


async def _run_register(address: str, namespace: str, attributes: str) -> subprocess.CompletedProcess[str]:
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
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=binary("temporal"), ui=False)
    try:
        address = env.client.service_client.config.target_host
        attributes = services()["temporal-register"]["environment"]["SEARCH_ATTRIBUTES"]
        for _ in range(2):  # `docker compose up` runs the job at every start
            run = await _run_register(address, "invites-deploy", attributes)
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
        clash = await _run_register(address, "invites-deploy", "InvitationStatus=Int")
        assert clash.returncode != 0
        assert "exists with another type" in clash.stdout
    finally:
        await env.shutdown()
