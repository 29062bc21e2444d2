"""`invites bench` end to end on a small load: it starts its own `invites dev` on free ports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

FIGURES = [
    "create_per_s",
    "raw_start_per_s",
    "create_vs_raw",
    "redeem_p50_ms",
    "redeem_p95_ms",
    "raw_update_p50_ms",
    "redeem_vs_raw",
    "history_events_accepted",
    "history_events_expired",
    "actions_estimate",
    "actions_estimate_expired",
    "worker_rss_mb_10k_open",
    "redeem_cold_p50_ms",  # 10 of the 20 are redeemed at the end (the code path; on 70 they stay cached)
    "import_rows_per_s",
    "import_vs_raw",
    "bare_first_step_per_s",
    "import_vs_bare",
    "auth0_calls_per_invitation",
]
IMPORT_ROWS = 100


@pytest.mark.slow
def test_bench_measures_every_figure_on_a_small_load(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli",
            "bench",
            "--invitations",
            "20",
            "--concurrency",
            "8",
            "--open-invitations",
            "50",
            "--import-rows",
            str(IMPORT_ROWS),
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    log = output.with_suffix(".log")
    assert run.returncode == 0, (
        run.stdout[-3000:] + run.stderr[-3000:] + (log.read_text()[-3000:] if log.exists() else "")
    )
    figures = json.loads(output.read_text())

    for key in FIGURES:
        assert isinstance(figures[key], int | float) and figures[key] > 0, (key, figures.get(key))
    assert figures["errors"] == {"raw_start": 0, "create": 0}
    assert figures["open_mailed"] == 50
    # The import phase: every row created and mailed, its look-ups in batches (the sandbox's
    # counters: searches only, at most one per 5 rows even for a small, slow import).
    assert figures["import_summary"]["created"] == figures["import_mailed"] == IMPORT_ROWS
    assert set(figures["auth0_calls_import"]) == {"GET /api/v2/users"}, figures["auth0_calls_import"]
    assert figures["auth0_calls_per_invitation"] <= 0.2
    assert figures["config"]["auth0_calls_per_s"] == 2  # the default ceiling
    assert {"temporal", "worker", "bench"} <= set(figures["cpu_ms_per_import_row"])
    # Its baseline: as many bare first steps, half before the import and half after, each run by
    # the bench's own workers (so the stack's worker has no part in them).
    assert len(figures["bare_first_step_by_half"]) == 2
    bare_cpu = figures["cpu_ms_per_bare_first_step"]
    assert bare_cpu["temporal"] > 0 and bare_cpu["bench"] > 0, bare_cpu
    assert figures["import_vs_bare"] == pytest.approx(
        figures["import_rows_per_s"] / figures["bare_first_step_per_s"], abs=0.001
    )
    # CPU per item, by part of the stack the bench started (and the bench's own process).
    for key in ("cpu_ms_per_raw_start", "cpu_ms_per_create", "cpu_ms_per_open_invitation"):
        used = figures[key]
        assert {"temporal", "api", "worker", "auth0 sandbox", "bench"} <= set(used), (key, used)
        assert used["temporal"] > 0, (key, used)
        assert used["total"] == pytest.approx(sum(v for k, v in used.items() if k != "total"), abs=0.05)
    # The bench process starts the raw workflows (and runs their worker) and the open
    # invitations; its share of 20 HTTP creates (~0.4 ms each, in 4 blocks) is below the
    # 10 ms clock tick /proc counts in, so it may read 0 there.
    assert figures["cpu_ms_per_raw_start"]["bench"] > 0
    assert figures["cpu_ms_per_open_invitation"]["bench"] > 0
    assert figures["cpu_ms_per_create"]["api"] > 0
    # The server's own action counter saw the probe invitation start.
    assert figures["actions_measured_accepted"]["grpc_StartWorkflowExecution"] >= 1
    assert figures["actions_estimate"] == figures["actions_accepted"]
    assert set(figures["targets"]) == {
        "create_vs_raw",
        "redeem_vs_raw",
        "history_events_accepted",
        "worker_rss_mb_10k_open",
        "auth0_calls_per_invitation",
        "import_vs_bare",
    }
    assert all(isinstance(t["pass"], bool) for t in figures["targets"].values())
    machine = figures["machine"]
    assert machine["cores"] > 0 and machine["memory_gb"] > 0
    assert machine["python"] and machine["temporal_server"] not in ("", "unknown")
    assert "PASS" in run.stdout or "MISS" in run.stdout  # the table with a verdict per target
