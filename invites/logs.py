"""Logs of the API, the worker and the CLI: one line per event, never a token or a secret.

`configure_logging(settings)` installs one handler on the root logger:

- `json` (the default in production): one JSON object per line with `ts`, `level`, `logger`,
  `message`, `invitation_id` whenever the event concerns one, then the call's `extra` fields
  (`kind`, `reason`, `grant`, ...), the Temporal context (`workflow_id`, `activity_type`,
  `attempt`, ...) and `exc` for a traceback;
- `text` (the default in development): the same event, readable.

The invitation id comes from the call's `extra`, else from the workflow id `invitation-<id>` that
Temporal's `activity.logger` / `workflow.logger` attach to their records, else from the one
invitation id the message names (an access-log path, say).

Every message, field and traceback goes through `Redactor` last: link tokens (`/i/<token>`
paths, `invitation=` parameters, bare tokens), `whsec_` secrets, `Bearer` credentials, JWTs and
every key and secret the settings hold are replaced by `<redacted>`. Loggers of libraries that
print credentials or addresses at low levels are held above those levels (`QUIET_LOGGERS`).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any, TextIO

from temporalio import activity, workflow

from invites.ids import ID_PATTERN
from invites.settings import Settings, parse_api_keys, parse_keyring
from invites.tokens import MAC_BYTES, MAX_TOKEN_CHARS, VERSION

REDACTED = "<redacted>"
HANDLER_NAME = "invites"

# Library loggers and the lowest level they may log at, whatever INVITES_LOG_LEVEL says.
QUIET_LOGGERS = {
    "httpx": logging.WARNING,  # INFO: every request URL, and users-by-email URLs carry addresses
    "httpcore": logging.INFO,  # DEBUG: every request, step by step
    "python_http_client": logging.INFO,  # DEBUG: SendGrid request bodies (links) and headers (API key)
    "urllib3": logging.INFO,  # DEBUG: HubSpot request lines
    "sqlalchemy.engine": logging.WARNING,  # INFO: SQL with its parameters (addresses, funnel data)
    "aiosqlite": logging.INFO,  # DEBUG: every statement with its arguments
    "python_multipart": logging.INFO,  # DEBUG: form fields as they are parsed
    "alembic.runtime.plugins": logging.WARNING,  # INFO: a line per plugin at every start (noise)
}

# A path segment after /i/ is a link token (the link route, access logs, mails quoted in errors).
LINK_TOKEN_PATH = re.compile(r"/i/[^/?#\s\"'<>]+")
_CREDENTIAL_PARAM = re.compile(
    r"(?i)([?&;](?:invitation|token|code|access_token|id_token|refresh_token|client_secret)=)[^&#\s\"'<>]+"
)
_WEBHOOK_SECRET = re.compile(r"whsec_[A-Za-z0-9+/=_-]+")
_AUTH_SCHEME = re.compile(r"\b((?i:bearer)\s+[^\s\"',;]+|Basic\s+[A-Za-z0-9+/]{8,}={0,2})")
_NAMED_SECRET = re.compile(
    r"(?i)\b(authorization|x-api-key|api[_-]?key|client[_-]?secret|password|secret"
    r"|access[_-]?token|id[_-]?token|refresh[_-]?token)\b([\"']?\s*[:=]\s*[\"']?)"
    r"(?!(?:bearer|basic)\s)([^\s\"',;&}\]]+)"
)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_SENDGRID_KEY = re.compile(r"\bSG\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
_BASE64URL_RUN = re.compile(rf"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{{51,{MAX_TOKEN_CHARS}}}(?![A-Za-z0-9_-])")
# Field names whose value is a credential whatever it looks like.
_SECRET_FIELD = re.compile(r"(?i)token|secret|password|passwd|authorization|api_?key|cookie")
_INVITATION_ID = re.compile(r"\binv_[0-9A-HJKMNP-TV-Z]{26}\b")
WORKFLOW_ID_PREFIX = "invitation-"

# What a LogRecord carries by itself; everything else on it came from `extra`.
_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
_DROPPED = frozenset({"color_message", "activity_info", "workflow_info"})  # uvicorn, SDK objects
_RESERVED = ("ts", "level", "logger", "message", "invitation_id")


def _is_link_token(candidate: str) -> bool:
    """Shaped like an invitation link token (`invites.tokens`), whatever key signed it."""
    try:
        raw = base64.urlsafe_b64decode(candidate + "=" * (-len(candidate) % 4))
    except (binascii.Error, ValueError):
        return False
    return len(raw) >= 2 and raw[0] == VERSION and len(raw) == 2 + raw[1] + 16 + 4 + MAC_BYTES


class Redactor:
    """Removes link tokens, credentials and the given secret values from text and fields."""

    def __init__(self, secrets: Iterable[str] = ()):
        values = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)
        self._secrets = re.compile("|".join(map(re.escape, values))) if values else None

    @classmethod
    def from_settings(cls, settings: Settings) -> Redactor:
        return cls(_secret_values(settings))

    def text(self, value: str) -> str:
        if self._secrets is not None:
            value = self._secrets.sub(REDACTED, value)
        value = LINK_TOKEN_PATH.sub("/i/" + REDACTED, value)
        value = _CREDENTIAL_PARAM.sub(r"\1" + REDACTED, value)
        value = _WEBHOOK_SECRET.sub("whsec_" + REDACTED, value)
        value = _AUTH_SCHEME.sub(lambda m: f"{m.group(1).split()[0]} {REDACTED}", value)
        value = _NAMED_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", value)
        value = _JWT.sub(REDACTED, value)
        value = _SENDGRID_KEY.sub(REDACTED, value)
        return _BASE64URL_RUN.sub(lambda m: REDACTED if _is_link_token(m.group()) else m.group(), value)

    def value(self, value: Any, key: str = "") -> Any:
        """A JSON-ready copy of a field's value, redacted (nested containers included)."""
        if key and _SECRET_FIELD.search(key) and value not in (None, ""):
            return REDACTED
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, Enum):
            value = value.value
        if isinstance(value, datetime | date):
            return value.isoformat()
        if isinstance(value, Mapping):
            return {str(k): self.value(v, str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(v) for v in value]
        return self.text(value if isinstance(value, str) else str(value))


def _secret_values(settings: Settings) -> list[str]:
    """Every key and secret the settings hold, as it could appear in a log line."""
    values: list[str] = list(parse_api_keys(settings.api_keys.get_secret_value()))
    for ring in (settings.token_keys, settings.payload_keys):
        if ring is not None:
            raw = ring.get_secret_value()
            values += [raw, *(base64.b64encode(key).decode() for _, key in parse_keyring(raw, name="keys"))]
    for secret in (
        settings.webhook_secret,
        settings.events_secret,
        settings.auth0_client_secret,
        settings.sendgrid_api_key,
        settings.hubspot_access_token,
        settings.temporal_api_key,
    ):
        if secret is not None:
            raw = secret.get_secret_value()
            values += [raw, raw.removeprefix("whsec_")]
    return values


def _temporal_context(record: logging.LogRecord) -> dict[str, Any]:
    """The Temporal details the SDK's loggers put on a record, flattened to a few fields."""
    context: dict[str, Any] = {}
    if isinstance(details := getattr(record, "temporal_activity", None), Mapping):
        context["workflow_id"] = details.get("workflow_id")
        context["run_id"] = details.get("workflow_run_id")
        context["activity_type"] = details.get("activity_type")
        context["attempt"] = details.get("attempt")
    if isinstance(details := getattr(record, "temporal_workflow", None), Mapping):
        context["workflow_id"] = details.get("workflow_id")
        context["run_id"] = details.get("run_id")
        context["update_name"] = details.get("update_name")
    if (core := getattr(record, "temporal_log", None)) is not None:  # forwarded from SDK Core
        fields = getattr(core, "fields", None)
        if isinstance(fields, Mapping):
            context["workflow_id"] = fields.get("workflow_id") or fields.get("workflowId")
            context["core"] = dict(fields)
        context["target"] = getattr(core, "target", None)
    return {k: v for k, v in context.items() if v is not None}


def _invitation_id(explicit: Any, workflow_id: Any, message: str) -> str | None:
    if isinstance(explicit, str) and explicit:
        return explicit
    if isinstance(workflow_id, str) and workflow_id.startswith(WORKFLOW_ID_PREFIX):
        candidate = workflow_id.removeprefix(WORKFLOW_ID_PREFIX)
        if ID_PATTERN.match(candidate):
            return candidate
    named = set(_INVITATION_ID.findall(message))
    return named.pop() if len(named) == 1 else None


class _EventFormatter(logging.Formatter):
    """The parts of a record every format shows, already redacted."""

    def __init__(self, redactor: Redactor):
        super().__init__()
        self.redactor = redactor

    def event(self, record: logging.LogRecord) -> tuple[str, str | None, dict[str, Any]]:
        try:
            message = self.redactor.text(record.getMessage())
        except (TypeError, ValueError):  # a bad format call: never let logging print its raw args
            message = self.redactor.text(f"{record.msg} (log arguments did not match the format)")
        fields: dict[str, Any] = {}
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and key not in _DROPPED and not key.startswith(("temporal_", "__")):
                fields[key] = value
        explicit = fields.pop("invitation_id", None)
        for key, value in _temporal_context(record).items():
            fields.setdefault(key, value)
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            _, method, path, _, status = record.args
            fields.update(method=method, path=path, status=status)
        invitation_id = _invitation_id(explicit, fields.get("workflow_id"), message)
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            fields["stack"] = self.formatStack(record.stack_info)
        clean = {k: self.redactor.value(v, k) for k, v in fields.items() if k not in _RESERVED}
        return message, invitation_id and self.redactor.text(invitation_id), clean


class JsonFormatter(_EventFormatter):
    def format(self, record: logging.LogRecord) -> str:
        message, invitation_id, fields = self.event(record)
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        if invitation_id:
            line["invitation_id"] = invitation_id
        line.update(fields)
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(_EventFormatter):
    def format(self, record: logging.LogRecord) -> str:
        message, invitation_id, fields = self.event(record)
        exc = fields.pop("exc", None)
        for noisy in ("core", "run_id", "workflow_id" if invitation_id else ""):
            fields.pop(noisy, None)
        when = datetime.fromtimestamp(record.created).isoformat(sep=" ", timespec="milliseconds")
        head = f"{when} {record.levelname:<7} {record.name}"
        if invitation_id:
            head += f" [{invitation_id}]"
        line = f"{head}: {message}"
        if fields:
            line += "  " + " ".join(f"{k}={v}" for k, v in fields.items())
        return f"{line}\n{exc}" if exc else line


def log_format(settings: Settings) -> str:
    """`auto` means JSON in production (for the log pipeline), text in development (for people)."""
    if settings.log_format != "auto":
        return settings.log_format
    return "json" if settings.env == "production" else "text"


def configure_logging(settings: Settings, *, stream: TextIO | None = None) -> logging.Handler:
    """Route every logger to one redacting handler on stderr (or `stream`), replacing others."""
    redactor = Redactor.from_settings(settings)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(HANDLER_NAME)
    formatter = JsonFormatter if log_format(settings) == "json" else TextFormatter
    handler.setFormatter(formatter(redactor))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    level = logging.getLevelName(settings.log_level)
    root.setLevel(level)
    for name, floor in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(floor, level))
    # The Temporal context goes into fields (above), not appended to every message.
    activity.logger.activity_info_on_message = False
    workflow.logger.workflow_info_on_message = False
    return handler
