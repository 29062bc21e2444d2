"""The `invites` program as ops start it: `python -m cli` knows every verb of SPEC §8."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VERBS = {
    "dev",
    "worker",
    "api",
    "create",
    "list",
    "show",
    "revoke",
    "resend",
    "extend",
    "reissue",
    "rollback",
    "import",
    "bench",
}


def python_m_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def listed_verbs(help_text: str) -> set[str]:
    """The names in the `Commands` panel of rich's help (a name starts its row; wrapped
    descriptions continue on rows that start with spaces)."""
    panel = help_text.split("Commands", 1)[1]
    return set(re.findall(r"^│ ([a-z]\S*) ", panel, re.MULTILINE))


def test_python_dash_m_cli_lists_every_verb() -> None:
    run = python_m_cli("--help")
    assert run.returncode == 0, run.stderr
    assert listed_verbs(run.stdout) == VERBS


def test_python_dash_m_cli_runs_the_bench_verb() -> None:
    run = python_m_cli("bench", "--help")
    assert run.returncode == 0, run.stderr
    assert "--open-invitations" in run.stdout
