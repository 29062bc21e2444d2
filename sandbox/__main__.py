"""`python -m sandbox`: the local Auth0 stand-in on 127.0.0.1 (state kept in JSON files).

Management API, /oauth/token, JWKS and the universal login (`/authorize`), which runs the real
post-login Action under Node.js after each login. Users, their logins count, roles and the
signing keys survive a restart.

With `--sendgrid-events-url`, the same server also stands in for SendGrid under `/sendgrid`
(point the SDK's host at `<url>/sendgrid`): it takes mail and reports each one to that Event
Webhook URL, signed with the development key pair (`sandbox/sendgrid_events.py`).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from pathlib import Path

from sandbox.action_runner import ACTION_TIMEOUT_S, DEFAULT_ACTION
from sandbox.auth0_api import Auth0Fake
from sandbox.home import home_routes
from sandbox.login import (
    DEFAULT_API_AUDIENCE,
    DEFAULT_REDIRECT_URI,
    DEFAULT_WEBHOOK_SECRET,
    DEFAULT_WEBHOOK_URL,
)
from sandbox.sendgrid_api import SendGridFake
from sandbox.sendgrid_events import dev_private_key, public_key_b64
from sandbox.server import FakeServer

SEEDED_ROLES = ("customer", "member", "admin")
DEFAULT_STATE = ".invites/auth0-sandbox.json"
STATE_FILE = "auth0.json"  # in --state-dir, beside auth0.keys.json
SENDGRID_PREFIX = "/sendgrid"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--port", type=int, default=8100)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--state", help=f"tenant state file; keys go beside it (default {DEFAULT_STATE})")
    where.add_argument("--state-dir", help=f"directory for the tenant state ({STATE_FILE}) and its keys")
    parser.add_argument("--api-audience", default=DEFAULT_API_AUDIENCE, help="audience of user tokens")
    parser.add_argument(
        "--redirect-uri", default=DEFAULT_REDIRECT_URI, help="where /authorize returns without redirect_uri"
    )
    parser.add_argument("--home-url", help="where the root (/) sends a person (invites dev: the API's /dev)")
    action = parser.add_argument_group("post-login Action")
    action.add_argument("--action", default=str(DEFAULT_ACTION), help="the Action file to run after login")
    action.add_argument("--no-action", action="store_true", help="run no Action (tokens carry no claims)")
    action.add_argument("--node", default="node", help="the Node.js 20+ binary")
    action.add_argument("--action-timeout", type=float, default=ACTION_TIMEOUT_S, help="seconds per run")
    action.add_argument("--webhook-url", default=DEFAULT_WEBHOOK_URL, help="secret INVITES_WEBHOOK_URL")
    action.add_argument(
        "--webhook-secret",
        # The environment first, so `invites dev` keeps the API's secret off the command line.
        default=os.environ.get("INVITES_WEBHOOK_SECRET") or DEFAULT_WEBHOOK_SECRET,
        help="secret INVITES_WEBHOOK_SECRET (default: $INVITES_WEBHOOK_SECRET, else the dev secret)",
    )
    action.add_argument(
        "--claim-namespace", help="secret INVITES_CLAIM_NAMESPACE (unset: the Action's default)"
    )
    sendgrid = parser.add_argument_group("SendGrid stand-in (under /sendgrid)")
    sendgrid.add_argument("--sendgrid-events-url", help="the Event Webhook URL its events are posted to")
    sendgrid.add_argument("--sendgrid-api-key", default="SG.invites-dev", help="the API key it accepts")
    return parser.parse_args(argv)


def state_path(args: argparse.Namespace) -> Path:
    return Path(args.state_dir) / STATE_FILE if args.state_dir else Path(args.state or DEFAULT_STATE)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    fake = Auth0Fake(
        state_path=state_path(args),
        audience=f"http://127.0.0.1:{args.port}/api/v2/",
        api_audience=args.api_audience,
        redirect_uri=args.redirect_uri,
        action=None if args.no_action else args.action,
        node=args.node,
        action_timeout=args.action_timeout,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        claim_namespace=args.claim_namespace,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    app = fake.app()
    app.add_routes(home_routes(args.home_url))
    if args.sendgrid_events_url:
        sendgrid = SendGridFake(api_key=args.sendgrid_api_key, events_url=args.sendgrid_events_url)
        app.add_subapp(SENDGRID_PREFIX, sendgrid.app())
    with FakeServer(app, port=args.port) as url:
        print(f"Auth0 sandbox on {url} (roles: {', '.join(SEEDED_ROLES)})", flush=True)
        print(f"  login   {url}/authorize  (Action posts to {args.webhook_url})", flush=True)
        if args.sendgrid_events_url:
            print(f"  sendgrid {url}{SENDGRID_PREFIX}  (events to {args.sendgrid_events_url})", flush=True)
            print(f"  event webhook verification key {public_key_b64(dev_private_key())}", flush=True)
        problem = fake.login.actions.problem() if fake.login.actions else None
        if problem:
            print(f"  warning {problem}", flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
