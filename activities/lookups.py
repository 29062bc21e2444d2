"""Auth0 look-ups in batches: the addresses that arrive together are answered by one user search.

Every new invitation asks whether its address already has an account (it chooses `screen_hint`
signup or login). One `GET /api/v2/users-by-email` per invitation would make a bulk import wait
on the tenant's per-second limit; instead each worker process keeps one `LookupBatcher`, and
`look_up_and_invite` awaits it. The batcher asks Auth0 once for up to `batch` addresses:

    GET /api/v2/users?q=email:("a@x" OR "b@y" …)&search_engine=v3

through auth0-python, paging through the answer. Calls go one at a time and at most
the ceiling a second (`CallPace` in `invites/auth0.py`, shared by every call the Auth0 queue's
activities make). When to call:

- a look-up on an idle worker (no call in the last `STREAM_GATHER_S`) waits `GATHER_S` for
  company and goes out with whatever came: a single invitation is not held back;
- while look-ups keep coming (a bulk import, a campaign), a batch gathers until it is full or
  its oldest look-up has waited `STREAM_GATHER_S`: a stream of 20 look-ups a second makes one
  call every two seconds, not one per look-up, however high the ceiling; a full batch goes at
  once.

A failed call fails every look-up it carried with the same typed error (`activities.errors`),
so each activity is retried by Temporal under the Auth0 policy; a 429's `Retry-After` sets the
next attempt of all of them and also holds the batcher's next call until then.

The search is eventually consistent (Auth0 indexes a new account within seconds): an account
created moments ago may be missed, which only makes the mail say "sign up" instead of "log in";
the universal login page offers both.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from auth0.management.core.api_error import ApiError
from temporalio.exceptions import ApplicationError

from activities.errors import http_error
from invites.auth0 import Auth0Management, Auth0TokenError, CallPace

T = TypeVar("T")
SERVICE = "Auth0"
# How long a look-up on an idle worker waits for others before its call goes out: long enough
# for the look-ups of one burst (a bulk import's first rows) to share a call, short next to the
# mail's own time.
GATHER_S = 0.005
# While look-ups keep coming, how long the oldest one waits for its batch to fill: two seconds
# mean at most one call every two seconds for a stream under `batch` look-ups a second, so even
# an import the machine starts at 10 a second costs at most 0.05 calls per invitation; a bulk
# import does not notice two seconds before its mails.
STREAM_GATHER_S = 2.0
PER_PAGE = 100  # Auth0's maximum per page
# Auth0 returns at most the first 1000 results of a search, however it is paged.
SEARCH_WINDOW = 1000
# Auth0 answers 414 Request-URI Too Large past a length it does not document. The query is kept
# under 4000 characters once URL-encoded: with the rest of the URL, well under the 8 KiB request
# line that common servers and proxies accept. One address (at most 320 characters) always fits.
MAX_QUERY_CHARS = 4000
FIELDS = "user_id,email"
_OPENING, _SEPARATOR, _CLOSING = "email:(", " OR ", ")"


def normalized(email: str) -> str:
    """The address as Auth0 stores a database user's (SPEC: trimmed and lower-cased)."""
    return email.strip().lower()


def quoted(email: str) -> str:
    """A Lucene phrase for `email`: inside double quotes only `\\` and `"` need escaping."""
    return '"' + email.replace("\\", "\\\\").replace('"', '\\"') + '"'


def search_query(emails: list[str]) -> str:
    """`email:("a@x" OR "b@y" …)`: every account whose address is one of `emails`."""
    return _OPENING + _SEPARATOR.join(quoted(e) for e in emails) + _CLOSING


def _encoded_len(text: str) -> int:
    return len(quote(text, safe=""))


class LookupBatcher:
    """One per worker process: `has_account(email)` answered by batched Auth0 user searches,
    its calls taking turns under `auth0.pace` (the Auth0 queue's ceiling, shared with the other
    calls made on that queue)."""

    def __init__(
        self,
        auth0: Auth0Management,
        *,
        batch: int,
        gather_s: float = GATHER_S,
        stream_gather_s: float = STREAM_GATHER_S,
    ) -> None:
        if batch < 1:
            raise ValueError("batch must be at least 1")
        if auth0.pace is None:
            raise ValueError("the look-ups need a paced client (Auth0Management.paced)")
        self._client = auth0.client
        self._token = auth0.token
        self._batch = batch
        self._gather_s = gather_s
        self._stream_gather_s = stream_gather_s
        self._last_call = -math.inf  # time.monotonic() of the last call's start
        self._pace: CallPace = auth0.pace
        # Address -> the look-ups waiting for it, oldest address first (dicts keep order).
        self._waiting: dict[str, list[asyncio.Future[bool]]] = {}
        self._arrived: dict[str, float] = {}  # address -> when its first look-up came
        self._full = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None

    async def has_account(self, email: str) -> bool:
        """Whether Auth0 holds an account for the address (any connection, any case)."""
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        key = normalized(email)
        self._arrived.setdefault(key, time.monotonic())
        self._waiting.setdefault(key, []).append(answer)
        if len(self._waiting) >= self._batch:
            self._full.set()
        if self._flusher is None or self._flusher.done():
            # In a context of its own: it serves every activity, not the one that woke it.
            self._flusher = asyncio.create_task(self._flush(), context=contextvars.Context())
        return await answer

    async def aclose(self) -> None:
        """Stop calling (worker shutdown); look-ups still waiting are cancelled."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        for answers in self._waiting.values():
            for answer in answers:
                answer.cancel()
        self._waiting.clear()
        self._arrived.clear()

    async def _flush(self) -> None:
        """Send batches, one call at a time, until nobody waits."""
        while self._waiting:
            oldest = self._arrived[next(iter(self._waiting))]
            streaming = oldest - self._last_call < self._stream_gather_s
            wait = oldest + (self._stream_gather_s if streaming else self._gather_s) - time.monotonic()
            if wait > 0 and len(self._waiting) < self._batch:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._full.wait()
            await self._pace.take()  # look-ups keep gathering while the pace holds the call
            batch = self._take_batch()
            if batch:
                self._last_call = time.monotonic()
                await self._answer(batch)

    def _take_batch(self) -> dict[str, list[asyncio.Future[bool]]]:
        """The oldest waiting addresses, up to `batch` of them and the query length."""
        taken: dict[str, list[asyncio.Future[bool]]] = {}
        length = _encoded_len(_OPENING + _CLOSING)
        for email in list(self._waiting):
            answers = [a for a in self._waiting[email] if not a.done()]  # done: cancelled
            if not answers:
                del self._waiting[email], self._arrived[email]
                continue
            cost = _encoded_len(quoted(email)) + (_encoded_len(_SEPARATOR) if taken else 0)
            if taken and (len(taken) == self._batch or length + cost > MAX_QUERY_CHARS):
                break
            taken[email] = answers
            length += cost
            del self._waiting[email], self._arrived[email]
        if len(self._waiting) < self._batch:
            self._full.clear()
        return taken

    async def _answer(self, batch: dict[str, list[asyncio.Future[bool]]]) -> None:
        try:
            found = await self._search(list(batch))
        except ApplicationError as err:
            for answers in batch.values():
                for answer in answers:
                    if not answer.done():
                        answer.set_exception(_copy(err))  # each activity raises its own
            return
        except Exception as exc:  # not an Auth0 answer: each look-up fails with it, visibly
            for answers in batch.values():
                for answer in answers:
                    if not answer.done():
                        answer.set_exception(exc)
            return
        for email, answers in batch.items():
            for answer in answers:
                if not answer.done():
                    answer.set_result(email in found)

    async def _search(self, emails: list[str]) -> set[str]:
        """The addresses among `emails` that have an account, page by page. A search matching
        more accounts than Auth0 pages through (1000) is asked again for the addresses not seen
        yet, so every address is answered."""
        wanted, found = set(emails), set()
        remaining = emails
        while True:
            query = search_query(remaining)
            pager = await self._call(
                lambda q=query: self._client.users.list(
                    q=q,
                    search_engine="v3",
                    page=0,
                    per_page=PER_PAGE,
                    include_totals=True,
                    fields=FIELDS,
                )
            )
            page, seen = 0, 0
            while True:
                items = pager.items or []
                seen += len(items)
                found |= {normalized(u.email) for u in items if u.email and normalized(u.email) in wanted}
                total = int(pager.response.total or 0)
                if not items or seen >= total:
                    return found
                if (page + 2) * PER_PAGE > SEARCH_WINDOW:
                    break  # Auth0 pages no further
                page += 1
                await self._pace.take()
                pager = await self._call(lambda p=pager: _next_page(p))
            unanswered = [e for e in remaining if e not in found]
            if len(unanswered) == len(remaining):
                return found  # the window held none of them: nothing more to learn this way
            remaining = unanswered
            await self._pace.take()

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        try:
            return await fn()
        except Auth0TokenError as exc:
            failure = http_error(SERVICE, exc.status, exc.headers, "token request refused")
        except ApiError as exc:
            if exc.status_code == 401:
                self._token.invalidate()  # a rotated secret or revoked token: fetch anew next time
            failure = http_error(SERVICE, exc.status_code, exc.headers, _message(exc.body))
        except httpx.HTTPError as exc:
            failure = http_error(SERVICE, None, None, type(exc).__name__)
        if failure.next_retry_delay is not None:
            # Auth0 said when to come back: no call from this worker before then.
            self._pace.hold_until(time.monotonic() + failure.next_retry_delay.total_seconds())
        raise failure


async def _next_page(pager: Any) -> Any:
    following = await pager.next_page()
    if following is None:
        raise RuntimeError("the SDK's pager had no next page")
    return following


def _copy(err: ApplicationError) -> ApplicationError:
    return ApplicationError(
        err.message,
        *err.details,
        type=err.type,
        non_retryable=err.non_retryable,
        next_retry_delay=err.next_retry_delay,
    )


def _message(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or "")
    return str(body or "")[:200]
