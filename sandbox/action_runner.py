"""Run the real Auth0 post-login Action under Node.js, as a tenant does after each login.

`action_host.js` requires the Action file, calls `onExecutePostLogin(event, api)` and prints
what the Action asked of `api` as JSON; this module builds nothing of the event (see
`sandbox.login`), it only runs the host with a deadline and reads its answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST_SCRIPT = Path(__file__).with_name("action_host.js")
DEFAULT_ACTION = Path(__file__).resolve().parents[1] / "auth0" / "actions" / "post-login.js"
# Auth0 ends an Action (and fails the login) after 20 seconds.
ACTION_TIMEOUT_S = 20.0
NODE_MISSING = "Node.js 20+ is needed to run the Auth0 Action; install it and restart."

log = logging.getLogger("sandbox.actions")


class ActionUnavailable(Exception):
    """The Action cannot run here (no Node.js, no Action file, dependencies not installed)."""


class ActionFailed(Exception):
    """The Action threw, timed out or crashed: Auth0 fails the login."""


@dataclass(frozen=True)
class ActionResult:
    """What one run of the Action asked for."""

    id_token_claims: dict[str, Any] = field(default_factory=dict)
    access_token_claims: dict[str, Any] = field(default_factory=dict)
    denied: str | None = None
    app_metadata: dict[str, Any] | None = None
    user_metadata: dict[str, Any] | None = None
    logs: list[str] = field(default_factory=list)


class ActionRunner:
    """Runs one Action file with `node`; each run is a fresh process, like a cold Action."""

    def __init__(
        self,
        action: str | Path = DEFAULT_ACTION,
        *,
        node: str = "node",
        timeout: float = ACTION_TIMEOUT_S,
    ) -> None:
        self.action = Path(action)
        self.node = node
        self.timeout = timeout

    def problem(self) -> str | None:
        """Why the Action cannot run at all, in one sentence for the login page; None if it can."""
        if shutil.which(self.node) is None:
            return NODE_MISSING
        if not self.action.is_file():
            return f"The Auth0 Action file {self.action} is missing; point the sandbox at it with --action."
        return None

    async def run(self, event: dict[str, Any]) -> ActionResult:
        problem = self.problem()
        if problem:
            raise ActionUnavailable(problem)
        node = shutil.which(self.node) or self.node
        proc = await asyncio.create_subprocess_exec(
            node,
            str(HOST_SCRIPT),
            str(self.action.resolve()),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=self.action.parent,
            # An Action sees its secrets through `event.secrets`, not the sandbox's environment.
            env={"PATH": os.environ.get("PATH", ""), "NODE_ENV": "production"},
        )
        try:
            async with asyncio.timeout(self.timeout):
                out, err = await proc.communicate(json.dumps({"event": event}).encode())
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise ActionFailed(f"the Action did not finish within {self.timeout:g} s") from None
        answer = _last_json_line(out)
        if answer is None:
            detail = err.decode(errors="replace").strip().splitlines()
            raise ActionFailed(f"the Action host exited {proc.returncode}: {detail[-1] if detail else ''}")
        for line in answer.get("logs", []):
            log.info("%s", line)
        _raise_for(answer.get("error"))
        return ActionResult(
            id_token_claims=answer.get("idToken") or {},
            access_token_claims=answer.get("accessToken") or {},
            denied=answer.get("denied"),
            app_metadata=answer.get("appMetadata"),
            user_metadata=answer.get("userMetadata"),
            logs=list(answer.get("logs", [])),
        )


def _last_json_line(out: bytes) -> dict[str, Any] | None:
    for line in reversed(out.decode(errors="replace").splitlines()):
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict):
                return value
    return None


def _raise_for(error: dict[str, Any] | None) -> None:
    if not error:
        return
    message = str(error.get("message", ""))
    if error.get("name") == "NodeTooOld":
        raise ActionUnavailable(f"{NODE_MISSING} ({message})")
    if error.get("code") == "MODULE_NOT_FOUND" and "Cannot find module '" in message:
        module = message.split("'")[1]
        if not module.startswith(("/", ".")):
            raise ActionUnavailable(
                f"The Action needs the npm package {module!r}; run `npm ci` in auth0/actions and retry."
            )
    raise ActionFailed(f"{error.get('name', 'Error')}: {message}")
