"""`GET /api/v2/users`: Auth0's user search (search engine v3) over the sandbox tenant.

The query `q` is Lucene query syntax, as Auth0 takes it, for the subset the sandbox needs:

- `field:value`, `field:"a phrase"` and `field:(v1 OR v2 …)` on the normalized fields `email`,
  `name`, `nickname`, `given_name`, `family_name` (case-insensitive, as Auth0 documents) and
  `user_id`, `email.domain`, `identities.connection` (case-sensitive); a value matches the whole
  field; `*` and `?` in an unquoted value are wildcards; `\\` escapes a character;
- `AND`, `OR`, `NOT`, parentheses; two clauses side by side mean OR (Lucene's default);
- a field Auth0 does not index matches nothing.

Anything else is a 400 with Auth0's error body (`invalid_query_string`). Paging is Auth0's:
`page` (from 0), `per_page` (default 50, at most 100), only the first 1000 results reachable,
`include_totals=true` answering `{start, limit, length, total, users}` instead of a bare list;
`fields`/`include_fields` choose the fields. Results come in `user_id` order.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from sandbox.auth0_tenant import Auth0Error, Tenant

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 100
SEARCH_WINDOW = 1000  # Auth0 pages through the first 1000 results only
CASE_INSENSITIVE = frozenset({"email", "name", "nickname", "given_name", "family_name"})
CASE_SENSITIVE = frozenset({"user_id", "email.domain", "identities.connection"})
OPERATORS = frozenset({"AND", "OR", "NOT"})

Match = Callable[[dict[str, Any]], bool]


def query_error(detail: str) -> Auth0Error:
    return Auth0Error(400, f"Query validation error: '{detail}' on property q.", "invalid_query_string")


@dataclass
class Token:
    kind: str  # "(", ")", "op", "field", "phrase", "term"
    text: str


TOKEN = re.compile(
    r"""\s*(?:
      (?P<open>\()
    | (?P<close>\))
    | "(?P<phrase>(?:[^"\\]|\\.)*)"
    | (?P<field>[A-Za-z_][\w.]*):
    | (?P<term>(?:[^\s()"\\:]|\\.)+)
    )""",
    re.VERBOSE | re.DOTALL,
)


def tokenize(q: str) -> list[Token]:
    tokens: list[Token] = []
    at = 0
    while at < len(q):
        if q[at:].strip() == "":
            break
        found = TOKEN.match(q, at)
        if found is None or found.end() == at:
            raise query_error(f"unexpected character at {at}: {q[at : at + 20]!r}")
        at = found.end()
        if found.group("open"):
            tokens.append(Token("(", "("))
        elif found.group("close"):
            tokens.append(Token(")", ")"))
        elif found.group("phrase") is not None:
            tokens.append(Token("phrase", _unescape(found.group("phrase"))))
        elif found.group("field"):
            tokens.append(Token("field", found.group("field")))
        else:
            term = found.group("term")
            tokens.append(Token("op", term) if term in OPERATORS else Token("term", term))
    return tokens


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text, flags=re.DOTALL)


class Parser:
    """query := or ; or := and (["OR"] and)* ; and := unary ("AND" unary)* ;
    unary := "NOT" unary | primary ; primary := field ":" value | "(" or ")" ;
    value := phrase | term | "(" values ")" (values: the same grammar over bare values)."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens, self.at = tokens, 0

    def parse(self) -> Match:
        if not self.tokens:
            return lambda _user: True
        match = self.either(None)
        if self.at != len(self.tokens):
            raise query_error(f"unexpected {self.tokens[self.at].text!r}")
        return match

    def peek(self) -> Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def next(self) -> Token:
        token = self.peek()
        if token is None:
            raise query_error("the query ends too early")
        self.at += 1
        return token

    def either(self, field: str | None) -> Match:
        clauses = [self.both(field)]
        while (token := self.peek()) is not None and token.kind != ")":
            if token.kind == "op" and token.text == "OR":
                self.at += 1
            clauses.append(self.both(field))
        return clauses[0] if len(clauses) == 1 else lambda u: any(c(u) for c in clauses)

    def both(self, field: str | None) -> Match:
        clauses = [self.unary(field)]
        while (token := self.peek()) is not None and token.kind == "op" and token.text == "AND":
            self.at += 1
            clauses.append(self.unary(field))
        return clauses[0] if len(clauses) == 1 else lambda u: all(c(u) for c in clauses)

    def unary(self, field: str | None) -> Match:
        token = self.peek()
        if token is not None and token.kind == "op" and token.text == "NOT":
            self.at += 1
            inner = self.unary(field)
            return lambda u: not inner(u)
        return self.primary(field)

    def primary(self, field: str | None) -> Match:
        token = self.next()
        if token.kind == "(":
            inner = self.either(field)
            if self.next().kind != ")":
                raise query_error("a parenthesis is not closed")
            return inner
        if token.kind == "field":
            if field is not None:
                raise query_error(f"field {token.text} inside the values of {field}")
            return self.primary(token.text)
        if token.kind in ("phrase", "term"):
            if field is None:
                raise query_error(f"{token.text!r} names no field")
            return value_match(field, token.text, wildcard=token.kind == "term")
        raise query_error(f"unexpected {token.text!r}")


def value_match(field: str, value: str, *, wildcard: bool) -> Match:
    if field not in CASE_INSENSITIVE | CASE_SENSITIVE:
        return lambda _user: False  # not indexed: nothing matches
    folded = field in CASE_INSENSITIVE
    wanted = value.lower() if folded else value
    pattern = wildcard and any(c in value for c in "*?")

    def match(user: dict[str, Any]) -> bool:
        for candidate in field_values(user, field):
            have = candidate.lower() if folded else candidate
            if fnmatch.fnmatchcase(have, wanted) if pattern else have == wanted:
                return True
        return False

    return match


def field_values(user: dict[str, Any], field: str) -> list[str]:
    if field == "email.domain":
        email = user.get("email") or ""
        return [email.rsplit("@", 1)[1]] if "@" in email else []
    if field == "identities.connection":
        return [i.get("connection", "") for i in user.get("identities") or []]
    value = user.get(field)
    return [value] if isinstance(value, str) else []


def compile_query(q: str) -> Match:
    """The predicate a Lucene query `q` stands for; raises Auth0Error (400) when it is not one."""
    return Parser(tokenize(q)).parse()


class UserSearch:
    """The route's handler over a tenant; `render` shapes each user (fields, empty metadata)."""

    def __init__(self, tenant: Tenant, render: Callable[[dict[str, Any], Any], dict[str, Any]]) -> None:
        self.tenant = tenant
        self.render = render

    def route(self, api: str) -> web.RouteDef:
        return web.get(f"{api}/users", self.search)

    async def search(self, request: web.Request) -> web.Response:
        """GET /users?q=&search_engine=v3&page=&per_page=&include_totals=&fields="""
        query = request.query
        engine = query.get("search_engine", "v3")
        if engine != "v3":
            raise query_error(f"search_engine {engine} is no longer available; use v3")
        page, per_page = _paging(query)
        match = compile_query(query.get("q", ""))
        users = sorted((u for u in self.tenant.users.values() if match(u)), key=lambda u: u["user_id"])
        chunk = [self.render(u, query) for u in users[page * per_page : (page + 1) * per_page]]
        if query.get("include_totals", "false").lower() != "true":
            return web.json_response(chunk)
        return web.json_response(
            {
                "start": page * per_page,
                "limit": per_page,
                "length": len(chunk),
                "total": len(users),
                "users": chunk,
            }
        )


def _paging(query: Mapping[str, str]) -> tuple[int, int]:
    try:
        page = int(query.get("page", 0))
        per_page = int(query.get("per_page", DEFAULT_PER_PAGE))
    except ValueError:
        raise Auth0Error(
            400, "Query validation error: 'page and per_page must be integers'.", "invalid_query_string"
        ) from None
    if page < 0 or not 1 <= per_page <= MAX_PER_PAGE:
        raise Auth0Error(
            400,
            f"Query validation error: 'per_page must be 1..{MAX_PER_PAGE} and page at least 0'.",
            "invalid_query_string",
        )
    if (page + 1) * per_page > SEARCH_WINDOW:
        raise Auth0Error(
            400,
            f"You can only page through the first {SEARCH_WINDOW} records. "
            "See https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation",
            "invalid_paging",
        )
    return page, per_page
