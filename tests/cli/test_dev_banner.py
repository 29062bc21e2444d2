"""`invites dev` as a person meets it: the banner says where the story starts, the API's and the
sandbox's roots send a browser there, and Ctrl-C ends with a "stopped" line, not with the
Temporal dev server's shutdown warnings."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.support.invites_dev import running_invites_dev


def test_invites_dev_shows_where_the_story_starts_and_stops_quietly(tmp_path: Path):
    with running_invites_dev(tmp_path) as dev:
        started = dev.log.read_text()
        banner = started[started.index("invites dev is up") :]
        for url in (f"{dev.api}/dev ", f"{dev.api}/dev/outbox ", f"{dev.api}/app ", f"{dev.ui} "):
            assert url in banner, url
        assert banner.index(f"{dev.api}/dev ") < banner.index(f"{dev.api}/dev/outbox ")

        api_root = httpx.get(f"{dev.api}/", timeout=10)
        assert (api_root.status_code, api_root.headers["location"]) == (307, "/dev")
        sandbox_root = httpx.get(f"{dev.auth0}/", timeout=10)
        assert (sandbox_root.status_code, sandbox_root.headers["location"]) == (307, f"{dev.api}/dev")
        assert httpx.get(f"{dev.auth0}/", follow_redirects=True, timeout=10).url == f"{dev.api}/dev"

        before_stop = len(dev.log.read_bytes())
        assert dev.stop() == 0

    stopping = dev.log.read_bytes()[before_stop:].decode(errors="replace").splitlines()
    assert stopping[-1] == "invites dev: stopped"
    assert not [line for line in stopping if "level=WARN" in line or "Traceback" in line]
    # Temporal is stopped last: the other parts had finished before it was asked to.
    api_done = max(i for i, line in enumerate(stopping) if line.startswith("api "))
    temporal = [i for i, line in enumerate(stopping) if line.startswith("temporal ")]
    assert all(i > api_done for i in temporal)


def test_invites_dev_refuses_an_unknown_mail_mode_before_starting_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)  # where `invites dev` would make its state folder
    result = CliRunner().invoke(app, ["dev", "--mail", "smtp"])
    assert result.exit_code == 2
    said = " ".join(result.output.replace("│", " ").split())
    assert "'smtp' is not one of 'sendgrid', 'outbox'" in said
    assert not (tmp_path / ".invites").exists()
