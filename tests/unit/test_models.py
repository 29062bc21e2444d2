"""The workflow's messages are built once, at import: a model left incomplete (a field naming a
class defined below it) is rebuilt by every TypeAdapter, and every workflow run in the sandbox
decodes its input through a new one, so each run would pay for building the schema again."""

from __future__ import annotations

import inspect

from pydantic import BaseModel

import invites.models


def test_every_workflow_model_is_complete_at_import():
    models = [
        cls
        for _, cls in inspect.getmembers(invites.models, inspect.isclass)
        if issubclass(cls, BaseModel) and cls.__module__ == invites.models.__name__
    ]
    assert len(models) > 20
    assert [m.__name__ for m in models if not m.__pydantic_complete__] == []
