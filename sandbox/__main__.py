"""`python -m sandbox`: the local Auth0 stand-in on 127.0.0.1 (state kept in a JSON file)."""

from __future__ import annotations

import argparse
import signal
import threading

from sandbox.auth0_api import Auth0Fake

SEEDED_ROLES = ("customer", "member", "admin")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--state", default=".invites/auth0-sandbox.json")
    args = parser.parse_args()
    fake = Auth0Fake(state_path=args.state, audience=f"http://127.0.0.1:{args.port}/api/v2/")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with fake.serve(port=args.port) as url:
        print(f"Auth0 sandbox on {url} (roles: {', '.join(SEEDED_ROLES)})", flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
