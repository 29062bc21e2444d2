"""`invites import FILE.csv`: many invitations through the one creation path, in bounded memory.

The file is read row by row (the csv module over the open file). Each row becomes an
`InvitationCreate` (the API's own limits); a row that does not is written to the rejects file
with its line number and a reason code, and skipped. Valid rows go through a bounded queue to a
fixed number of tasks calling `Creator.ensure`, so however long the file, at most `concurrency`
creations are in flight and `2 * concurrency` rows wait in memory.

Idempotent: a row with `external_ref` names its invitation; a row without one gets an
idempotency key derived from its normalized content, so importing the same file again creates
nothing new ("already existing").
"""

from __future__ import annotations

import asyncio
import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from cli.ops import unavailable
from invites.creation import Creator, request_fingerprint
from invites.errors import refused as refusal
from invites.schemas import InvitationCreate

# Columns with a meaning; every other named column goes into `data`.
KNOWN = ("email", "roles", "external_ref", "locale", "expires_in", "email_policy", "source", "campaign")
ROLE_SEPARATORS = re.compile(r"[|\s]+")
KEY_PREFIX = "import:"
REJECTS_HEADER = ("line", "reason", "message", "email", "external_ref")
# A dependency that fails (Temporal, the database, Auth0) is retried this many times per row,
# waiting RETRY_BASE_S, then twice as long... (about 30 s in all); the create is idempotent, so a
# retry is safe.
ATTEMPTS = 7
RETRY_BASE_S = 0.5
LINE_COUNT_CHUNK = 1 << 20


class ImportFileError(Exception):
    """The file cannot be imported at all (no email column, not UTF-8...)."""


@dataclass
class Row:
    line: int
    body: InvitationCreate

    @property
    def idempotency_key(self) -> str | None:
        """A row without `external_ref` is named by its normalized content."""
        return None if self.body.external_ref else KEY_PREFIX + request_fingerprint(self.body)


@dataclass
class Reject:
    line: int
    reason: str
    message: str
    email: str = ""
    external_ref: str = ""


@dataclass
class Summary:
    created: int = 0
    existing: int = 0
    rejected: int = 0
    failed: int = 0  # a dependency stayed down through the retries: run the file again
    rejects_path: str = ""
    interrupted: bool = False
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return self.created + self.existing + self.rejected + self.failed

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "created": self.created,
            "already_existing": self.existing,
            "rejected": self.rejected,
            "failed": self.failed,
            "reasons": dict(sorted(self.reasons.items())),
            "rejects_file": self.rejects_path,
        }


def count_rows(path: Path) -> int:
    """Data rows, by counting line ends (quick; a quoted field spanning lines counts extra)."""
    lines, last = 0, b"\n"
    with path.open("rb") as f:
        while chunk := f.read(LINE_COUNT_CHUNK):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":
        lines += 1
    return max(lines - 1, 0)


class RejectsWriter:
    """The rejects CSV: one row per skipped line, written as it happens (never held in memory)."""

    def __init__(self, stream: TextIO) -> None:
        self._writer = csv.writer(stream)
        self._writer.writerow(REJECTS_HEADER)
        self._stream = stream

    def write(self, reject: Reject) -> None:
        self._writer.writerow(
            (reject.line, reject.reason, reject.message, reject.email[:320], reject.external_ref[:128])
        )
        self._stream.flush()


def read_rows(stream: TextIO) -> Iterator[Row | Reject]:
    """Each data row of the CSV as a valid `Row` or a `Reject`, with its first line number."""
    reader = csv.reader(stream)
    header = _header(reader)
    last_line = reader.line_num
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Reject(last_line + 1, "invalid_csv", str(exc))
            last_line = reader.line_num
            continue
        except UnicodeDecodeError:
            raise ImportFileError(f"line {last_line + 1} is not UTF-8; save the file as UTF-8") from None
        line, last_line = last_line + 1, reader.line_num
        if not cells or all(not c.strip() for c in cells):
            continue  # a blank line
        yield parse_row(line, header, cells)


def check_header(path: Path) -> None:
    """Raise ImportFileError unless the file starts with a usable header line."""
    with path.open(newline="", encoding="utf-8-sig") as stream:
        _header(csv.reader(stream))


def _header(reader: Any) -> list[str]:
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError("the file is empty; the first line must name the columns") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ImportFileError(f"the header line cannot be read: {exc}") from None
    names = [name.strip() for name in header]
    keys = [name.lower() if name.lower() in KNOWN else name for name in names]
    if "email" not in keys:
        raise ImportFileError("the first line must name the columns, one of them `email`")
    named = [k for k in keys if k]
    duplicates = sorted({k for k in named if named.count(k) > 1})
    if duplicates:
        raise ImportFileError(f"column {', '.join(duplicates)} appears twice in the header")
    return keys


def parse_row(line: int, header: list[str], cells: list[str]) -> Row | Reject:
    values = dict(zip(header, cells, strict=False))
    email, ref = values.get("email", "").strip(), values.get("external_ref", "").strip()
    if len(cells) > len(header):
        return Reject(line, "invalid_row", f"{len(cells)} fields, the header names {len(header)}", email, ref)
    if not email:
        return Reject(line, "missing_email", "the email column is empty", email, ref)
    body: dict[str, Any] = {"email": email}
    roles = values.get("roles", "").strip()
    if roles:
        body["roles"] = [r for r in ROLE_SEPARATORS.split(roles) if r]
    if ref:
        body["external_ref"] = ref
    for name in ("locale", "email_policy", "source", "campaign"):  # source, campaign: the funnel's keywords
        if value := values.get(name, "").strip():
            body[name] = value
    if expires_in := values.get("expires_in", "").strip():
        if not expires_in.isdigit():
            return Reject(line, "invalid_expires_in", "expires_in must be whole seconds", email, ref)
        body["expires_in"] = int(expires_in)
    # Other columns are the funnel's data; an empty cell is left out rather than stored as "".
    body["data"] = {k: v for k, v in values.items() if k and k not in KNOWN and v != ""}
    try:
        return Row(line, InvitationCreate.model_validate(body))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = str(first["loc"][0]) if first["loc"] else "row"
        message = str(first["msg"]).removeprefix("Value error, ")
        return Reject(line, f"invalid_{where}", f"{where}: {message}", email, ref)


async def import_file(
    path: Path,
    creator: Creator,
    rejects: RejectsWriter,
    *,
    concurrency: int,
    on_row: Callable[[], None] = lambda: None,
    summary: Summary | None = None,
) -> Summary:
    """Create an invitation per valid row; `on_row` is called once per row handled."""
    summary = summary or Summary()
    queue: asyncio.Queue[Row | None] = asyncio.Queue(maxsize=2 * concurrency)

    def reject(r: Reject, *, failed: bool = False) -> None:
        rejects.write(r)
        if failed:
            summary.failed += 1
        else:
            summary.rejected += 1
        summary.reasons[r.reason] = summary.reasons.get(r.reason, 0) + 1
        on_row()

    async def creating() -> None:
        while (row := await queue.get()) is not None:
            outcome = await _create(creator, row)
            if isinstance(outcome, Reject):
                reject(outcome, failed=outcome.reason in ("unavailable", "error"))
                continue
            if outcome:
                summary.created += 1
            else:
                summary.existing += 1
            on_row()

    tasks = [asyncio.create_task(creating()) for _ in range(concurrency)]
    try:
        with path.open(newline="", encoding="utf-8-sig") as stream:
            for item in read_rows(stream):
                if isinstance(item, Reject):
                    reject(item)
                    continue
                await queue.put(item)  # waits while `2 * concurrency` rows are queued
        for _ in tasks:
            await queue.put(None)
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
    return summary


async def _create(creator: Creator, row: Row) -> bool | Reject:
    """True: created; False: it existed already; a Reject: refused, or failed for good."""
    email, ref = str(row.body.email), row.body.external_ref or ""
    attempt = 1
    while True:
        try:
            return await creator.ensure(row.body, row.idempotency_key)
        except Exception as exc:  # one row's failure never stops the others
            refused = refusal(exc)
            if refused is not None:
                return Reject(row.line, refused.code, refused.message, email, ref)
            down = unavailable(exc)
            if down is None:
                return Reject(row.line, "error", f"{type(exc).__name__}: {exc}", email, ref)
            if attempt == ATTEMPTS:
                return Reject(row.line, "unavailable", f"{down}; import the file again", email, ref)
        await asyncio.sleep(RETRY_BASE_S * 2 ** (attempt - 1))
        attempt += 1
