"""Keep link tokens out of access logs: `/i/<token>` is logged as `/i/<redacted>`."""

from __future__ import annotations

import logging
import re

TOKEN_PATH = re.compile(r"/i/[^/?\s\"]+")


class RedactLinkTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                TOKEN_PATH.sub("/i/<redacted>", a) if isinstance(a, str) else a for a in record.args
            )
        if isinstance(record.msg, str):
            record.msg = TOKEN_PATH.sub("/i/<redacted>", record.msg)
        return True


def install() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactLinkTokens) for f in access.filters):
        access.addFilter(RedactLinkTokens())
