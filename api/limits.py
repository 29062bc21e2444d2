"""What a caller can make the API do before anyone knows who it is.

- `BodyLimit`: a body over its route's cap is refused 413 before it is read: at once from its
  `Content-Length`, or as soon as a streamed body passes the cap. Nothing reads an unbounded
  body, with or without credentials.
- `RateLimits`: per client address, in a moving window, the link route (`/i/{token}`) and failed
  authentications (answers 401: a bad API key or token, a webhook with a bad signature) are
  counted; past a limit the client gets 429 with `Retry-After`, and none of its requests is
  handled until the window moves on. Signed webhooks are not counted: Auth0 calls from a few
  addresses for every login of the tenant, and a forged call costs one HMAC before its 401.

The client address is the connection's, or the one a trusted proxy forwarded
(`INVITES_TRUSTED_PROXIES`, passed to uvicorn as `forwarded_allow_ips`). The counts live in the
process: with N API replicas a client gets up to N times the limit.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Awaitable, Callable

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Caps by path prefix, the first that matches; DEFAULT_BODY_BYTES elsewhere. An invitation's
# body holds at most 64 KiB of data and 16 KiB of app_metadata (invites.schemas). SendGrid posts
# its events in batches: 1 MiB holds a couple of thousand events (a few hundred bytes each).
BODY_CAPS = (
    ("/v1/webhooks/sendgrid", 1024 * 1024),
    ("/v1/webhooks/", 16 * 1024),
    ("/codec/", 4 * 1024 * 1024),
    ("/v1/invitations", 128 * 1024),
)
DEFAULT_BODY_BYTES = 64 * 1024
LINKS = "/i/"


async def _answer(send: Send, status: int, code: str, message: str, headers: dict[str, str]) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        cap = next((cap for prefix, cap in BODY_CAPS if scope["path"].startswith(prefix)), DEFAULT_BODY_BYTES)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > cap):
            await _too_large(send, cap)
            return
        received, started, cut = 0, False, False

        async def bounded() -> Message:
            # Past the cap: answer 413 at once, and tell the app the client has gone (an error
            # raised here would reach the app's body parsing, which answers it as a bad body).
            nonlocal received, cut
            if cut:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    cut = True
                    if not started:
                        await _too_large(send, cap)
                    return {"type": "http.disconnect"}
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if cut:
                return  # the 413 is the answer
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self._app(scope, bounded, tracked)


async def _too_large(send: Send, cap: int) -> None:
    message = f"The request body is over {cap // 1024} KiB, the limit for this route."
    await _answer(send, 413, "too_large", message, {"connection": "close"})


class RateLimits:
    def __init__(self, app: ASGIApp, links: str, auth_failures: str) -> None:
        self._app = app
        self._links: RateLimitItem = parse(links)
        self._failures: RateLimitItem = parse(auth_failures)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        if not await self._limiter.test(self._failures, "auth", client):
            await self._refuse(send, self._failures, "auth", client, "Too many failed authentications")
            return
        if scope["path"].startswith(LINKS) and not await self._limiter.hit(self._links, "links", client):
            await self._refuse(send, self._links, "links", client, "Too many invitation links opened")
            return
        await self._app(scope, receive, self._counting_failures(send, client))

    def _counting_failures(self, send: Send, client: str) -> Callable[[Message], Awaitable[None]]:
        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                await self._limiter.hit(self._failures, "auth", client)
            await send(message)

        return counted

    async def _refuse(self, send: Send, item: RateLimitItem, kind: str, client: str, what: str) -> None:
        stats = await self._limiter.get_window_stats(item, kind, client)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        await _answer(
            send,
            429,
            "rate_limited",
            f"{what} from this address; retry after {retry_after} s.",
            {"retry-after": str(retry_after)},
        )
