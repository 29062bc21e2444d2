"""The worker writes the workflow modules' bytecode at start: the sandbox loads the workflow
module again for every run it has not cached, and without bytecode each load compiles it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from worker import WORKFLOWS_DIR, compile_workflow_modules


def _fresh(source: Path) -> bool:
    """Whether the bytecode next to `source` is there and was made from its current content."""
    cached = Path(importlib.util.cache_from_source(str(source)))
    if not cached.exists():
        return False
    header = cached.read_bytes()[:16]
    flags = int.from_bytes(header[4:8], "little")
    if flags:  # hash-based: compare the source hash instead (not what compileall writes here)
        return False
    stat = source.stat()
    mtime, size = int.from_bytes(header[8:12], "little"), int.from_bytes(header[12:16], "little")
    return (mtime, size) == (int(stat.st_mtime) & 0xFFFFFFFF, stat.st_size & 0xFFFFFFFF)


def test_bytecode_is_written_even_where_python_writes_none(tmp_path: Path):
    module = tmp_path / "flow.py"
    module.write_text("VALUE = 1\n")
    # A Python started with PYTHONDONTWRITEBYTECODE imports without writing bytecode...
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    subprocess.run([sys.executable, "-c", "import flow"], cwd=tmp_path, env=env, check=True)
    assert not _fresh(module)
    # ...the worker's start writes it anyway, and again once the source changed.
    compile_workflow_modules(tmp_path)
    assert _fresh(module)
    module.write_text("VALUE = 2\n")
    later = module.stat().st_mtime + 5  # the header keeps whole seconds
    os.utime(module, (later, later))
    assert not _fresh(module)
    compile_workflow_modules(tmp_path)
    assert _fresh(module)


def test_the_worker_compiles_its_own_workflow_modules():
    compile_workflow_modules(WORKFLOWS_DIR)
    assert _fresh(WORKFLOWS_DIR / "invitation.py")
