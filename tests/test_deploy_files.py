"""The deployment files: docker-compose.yml, .env.example and the Dockerfile, read as Compose and
Docker read them (no Docker engine runs here), checked for what breaks a deployment: a missing
service, a start order that does not wait for health, a required value the example does not
offer, a setting the code does not know, an entry point that does not exist."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from typer.main import get_command

from cli.main import app
from invites.settings import (
    DEV_API_KEY,
    DEV_AUTH0_CLIENT_SECRET,
    DEV_TOKEN_KEYS,
    DEV_WEBHOOK_SECRET,
    Settings,
)
from invites.temporal import SEARCH_ATTRIBUTES
from worker import GRACEFUL_SHUTDOWN

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
SERVICES: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)["services"]
ENV_EXAMPLE = (ROOT / ".env.example").read_text()
SETTINGS = {f"INVITES_{name.upper()}" for name in Settings.model_fields}

LONG_RUNNING = {"postgresql", "temporal", "temporal-ui", "api", "worker"}
ONE_SHOT = {"temporal-schema", "temporal-register", "migrate"}


def env_example_names() -> set[str]:
    """Names set on an active line or shown as a commented-out `# NAME=value`."""
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE, re.M))


def env_example_values() -> dict[str, str]:
    return dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", ENV_EXAMPLE, re.M))


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the final stage, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    instructions = [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


def test_compose_runs_the_production_shape():
    assert set(SERVICES) == LONG_RUNNING | ONE_SHOT
    for name in ("api", "worker", "migrate"):
        assert SERVICES[name]["build"] == ".", f"{name} runs the invites image"


def test_long_running_services_restart_and_have_a_health_check():
    for name in LONG_RUNNING:
        assert SERVICES[name].get("restart") == "unless-stopped", name
        check = SERVICES[name].get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
    for name in ONE_SHOT:
        assert SERVICES[name].get("restart") == "no", f"{name} is a one-shot job"


def test_every_dependency_is_waited_for_until_healthy_or_done():
    for name, spec in SERVICES.items():
        for dependency, edge in (spec.get("depends_on") or {}).items():
            expected = "service_healthy" if dependency in LONG_RUNNING else "service_completed_successfully"
            assert edge["condition"] == expected, f"{name} -> {dependency}"
    for name in ("api", "worker"):
        assert set(SERVICES[name]["depends_on"]) == {"postgresql", "temporal", "migrate", "temporal-register"}


def test_every_required_variable_of_compose_is_in_the_env_example():
    required = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?\?", COMPOSE_TEXT))
    assert "INVITES_TOKEN_KEYS" in required  # the pattern finds them
    assert not required - env_example_names(), ".env.example lacks what `docker compose up` requires"


def test_compose_and_the_env_example_pass_only_real_settings():
    passed = {name for spec in SERVICES.values() for name in spec.get("environment") or {}}
    passed = {name for name in passed if name.startswith("INVITES_")}
    assert passed and not passed - SETTINGS, f"docker-compose.yml passes unknown {sorted(passed - SETTINGS)}"
    named = {name for name in env_example_names() if name.startswith("INVITES_")}
    assert not named - SETTINGS, f".env.example names unknown {sorted(named - SETTINGS)}"
    others = env_example_names() - named - {"COMPOSE_PROFILES"}
    assert all(f"${{{name}" in COMPOSE_TEXT for name in others), f"compose does not use {sorted(others)}"


def test_the_env_example_holds_no_secret():
    values = env_example_values()
    for name in ("INVITES_TOKEN_KEYS", "INVITES_WEBHOOK_SECRET", "INVITES_API_KEYS", "POSTGRES_PASSWORD"):
        assert values[name] == "", f"{name} is left for the operator to generate"
    for dev in (DEV_TOKEN_KEYS, DEV_WEBHOOK_SECRET, DEV_API_KEY, DEV_AUTH0_CLIENT_SECRET):
        assert dev not in ENV_EXAMPLE


def test_the_temporal_services_form_the_profile_the_example_turns_on():
    temporal = {name for name in SERVICES if name.startswith("temporal")}
    for name, spec in SERVICES.items():
        assert spec.get("profiles", []) == (["temporal"] if name in temporal else []), name
    assert env_example_values()["COMPOSE_PROFILES"] == "temporal"
    pairs = SERVICES["temporal-register"]["environment"]["SEARCH_ATTRIBUTES"].split()
    assert dict(pair.split("=", 1) for pair in pairs) == SEARCH_ATTRIBUTES


def test_the_image_entry_points_exist():
    ops = dict(dockerfile())
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert yaml.safe_load(ops["ENTRYPOINT"]) == ["invites"] and "invites" in scripts
    verbs = set(get_command(app).commands)
    commands = [yaml.safe_load(ops["CMD"]), SERVICES["api"]["command"], SERVICES["worker"]["command"]]
    for command in commands:
        assert command[0] in verbs, f"`invites {command[0]}` is not a verb"
    python, module_flag, module = SERVICES["migrate"]["entrypoint"]
    assert (python, module_flag) == ("python", "-m") and importlib.util.find_spec(f"{module}.__main__")


def test_health_checks_and_mounts_name_files_that_exist():
    ops = dockerfile()
    copies = dict(reversed(args.split()) for op, args in ops if op == "COPY" and "--from" not in args)
    image_check = yaml.safe_load(dict(ops)["HEALTHCHECK"].split(" CMD ", 1)[1])
    for test in [image_check, *(SERVICES[name]["healthcheck"]["test"] for name in ("api", "worker"))]:
        script = next(arg for arg in test if arg.endswith(".py"))
        assert (ROOT / copies[script]).is_file(), f"{script} is not copied into the image"
    for name, spec in SERVICES.items():
        for volume in spec.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_the_worker_gets_time_to_shut_down_gracefully():
    grace = SERVICES["worker"]["stop_grace_period"]
    assert timedelta(seconds=int(grace.removesuffix("s"))) > GRACEFUL_SHUTDOWN


def test_the_compose_commands_are_exec_form():
    """Exec form (a list): the process gets SIGTERM itself, not a shell in front of it."""
    for name, spec in SERVICES.items():
        for key in ("command", "entrypoint"):
            assert not isinstance(spec.get(key), str), f"{name}.{key}: {shlex.quote(spec[key])}"


def test_the_image_and_compose_run_as_production():
    """Set explicitly, so the image is production even if the code's default ever changed."""
    env = [args for op, args in dockerfile() if op == "ENV"]
    assert any(re.search(r"(^|\s)INVITES_ENV=production(\s|$)", args) for args in env), env
    for name in ("api", "worker"):
        environment = SERVICES[name]["environment"]
        assert environment["INVITES_ENV"] == "production", name
        assert environment["INVITES_MAIL_BACKEND"] == "sendgrid", f"{name}: production refuses the outbox"


# What an operator copies from a dashboard rather than generates (no command in .env.example).
FROM_DASHBOARDS = {
    "INVITES_AUTH0_CLIENT_ID": "m2m-client-id-from-auth0",
    "INVITES_AUTH0_CLIENT_SECRET": "m2m-client-secret-from-the-auth0-dashboard",
    "INVITES_SENDGRID_API_KEY": "sendgrid-api-key-from-the-sendgrid-dashboard",
}


def filled_env_example() -> dict[str, str]:
    """The active values of .env.example, each empty one filled as its comment says: by running
    the command shown above it, else with its `E.g.` value, else from FROM_DASHBOARDS."""
    values: dict[str, str] = {}
    command: str | None = None
    example: str | None = None
    for line in ENV_EXAMPLE.splitlines():
        if shown := re.match(r"^#\s+(python -c .+)$", line):
            command = shown.group(1)
        elif given := re.search(r"\bE\.g\. (\S+)\s*$", line):
            example = given.group(1)
        elif setting := re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line):
            name, value = setting.groups()
            if not value and command:
                argv = [sys.executable, *shlex.split(command)[1:]]
                value = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()
            value = value or example or FROM_DASHBOARDS.get(name, "")
            assert value, f".env.example does not say how to make a value for {name}"
            values[name] = value
            command = example = None
        elif not line.strip():
            command = example = None
    return values


def test_the_env_example_filled_in_as_it_says_starts_in_production():
    """Every generated secret is long enough and nothing the example leaves is refused."""
    fixed = {k: v for k, v in SERVICES["api"]["environment"].items() if "${" not in str(v)}
    values = {**filled_env_example(), **fixed}
    settings = Settings(
        _env_file=None,
        **{
            name.removeprefix("INVITES_").lower(): value for name, value in values.items() if name in SETTINGS
        },
    )
    assert settings.env == "production"
    assert settings.auth0_base_url.startswith("https://")


def _pinned(lock: str) -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (ROOT / "requirements" / lock).read_text(), re.M)
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in pins}


def _named(requirements: list[str]) -> set[str]:
    return {re.sub(r"[-_.]+", "-", re.split(r"[\[<>=;! ]", r, maxsplit=1)[0]).lower() for r in requirements}


def test_every_dependency_is_pinned_with_hashes_in_its_lock():
    """A dependency added to pyproject.toml without `scripts/lock` fails here, not in the image."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    production, test = _pinned("production.txt"), _pinned("test.txt")
    assert _named(project["dependencies"]) <= set(production)
    assert _named(project["dependencies"] + project["optional-dependencies"]["test"]) <= set(test)
    assert "pytest" not in production and "playwright" not in production
    for lock in ("production.txt", "test.txt"):
        pins = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / "requirements" / lock).read_text())
        unhashed = [pin.split()[0] for pin in pins if "==" in pin and "--hash=sha256:" not in pin]
        assert unhashed == [], lock


def test_the_image_installs_the_hashed_lock_without_tests_or_the_sandbox():
    runs = " ".join(re.findall(r"^RUN (.*)$", re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text()), re.M))
    assert "pip install --require-hashes -r requirements/production.txt" in runs
    assert "pip install --no-deps ." in runs
    assert {"tests/", "sandbox/"} <= set((ROOT / ".dockerignore").read_text().split())
    assert "--require-hashes -r requirements/test.txt" in (ROOT / "scripts" / "bootstrap").read_text()
