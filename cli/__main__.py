"""`python -m cli`: the `invites` program, as the console script runs it."""

from cli.main import app

app()
