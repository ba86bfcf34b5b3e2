"""The classification cache in the DuckDB file: read only while data and configuration match."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import deploystats
from deploystats.config import Settings, Target
from deploystats.ingest import import_dumps
from deploystats.metrics import compute_metrics
from deploystats.metrics.windows import Window
from deploystats.store import Store, connect
from tests.factories import format_time, history_from_spec

START = datetime(2026, 11, 16, tzinfo=UTC)
WINDOW = Window(START, START + timedelta(days=7), "2026-W47", "UTC")
TARGET = {
    "name": "production",
    "repos": ["acme/platform"],
    "workflows": ["deploy.yml"],
    "deploy_jobs": ["deploy*"],
}


def run(run_id: int, hours: float, conclusion: str) -> dict[str, Any]:
    """One attempt with one deploy job of 5 minutes, `hours` after the window start."""
    started = START + timedelta(hours=hours)
    return {
        "id": run_id,
        "started": format_time(started),
        "conclusion": conclusion,
        "jobs": [
            {
                "name": "deploy",
                "runner": "prim-1",
                "started": format_time(started),
                "completed": format_time(started + timedelta(minutes=5)),
                "conclusion": conclusion,
            }
        ],
    }


def import_runs(db: Path, folder: Path, runs: list[dict[str, Any]]) -> None:
    history = history_from_spec({"target": TARGET, "runs": runs})
    files = []
    for kind in ("runs", "jobs"):
        path = folder / f"{kind}-{runs[0]['id']}.json"
        path.write_text(json.dumps(getattr(history, kind)))
        files.append(path)
    import_dumps(Store(db), files)


def settings(*targets: dict[str, Any]) -> Settings:
    return Settings(targets=[Target.model_validate(t) for t in targets or (TARGET,)])


def in_memory(db: Path, config: Settings, name: str | None = None) -> dict[str, Any]:
    """compute_metrics classifying in the connection's memory (no cache involved)."""
    chosen = [t for t in config.targets if name in (None, t.name)]
    con = connect(db, read_only=True)
    try:
        return compute_metrics(con, chosen, WINDOW)
    finally:
        con.close()


def built_at(db: Path) -> datetime | None:
    con = connect(db, read_only=True)
    try:
        tables = con.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = 'metrics_cache' AND table_name = 'entry'"
        ).fetchall()[0][0]
        if not tables:
            return None
        value = con.execute("SELECT built_at FROM metrics_cache.entry").fetchall()[0][0]
        return value if isinstance(value, datetime) else None
    finally:
        con.close()


def test_the_first_call_builds_the_cache_and_later_calls_read_it(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    import_runs(db, tmp_path, [run(1, 1, "success"), run(2, 2, "failure"), run(3, 3, "success")])
    config = settings()
    ds = deploystats.open(db, config=config)
    first = ds.metrics(window=WINDOW)
    stamp = built_at(db)
    second = ds.metrics(window=WINDOW)
    assert stamp is not None and built_at(db) == stamp
    assert first == second == in_memory(db, config)
    assert first["targets"]["production"]["successes"] == 2
    assert first["targets"]["production"]["failures"] == 1


def test_importing_more_runs_replaces_the_cache(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    import_runs(db, tmp_path, [run(1, 1, "success"), run(2, 2, "failure")])
    ds = deploystats.open(db, config=settings())
    before = ds.metrics(window=WINDOW)["targets"]["production"]
    import_runs(db, tmp_path, [run(3, 3, "success"), run(4, 4, "success")])
    after = ds.metrics(window=WINDOW)
    assert (before["successes"], before["success_rate"]) == (1, 0.5)
    assert (
        after["targets"]["production"]["successes"],
        after["targets"]["production"]["counted"],
    ) == (3, 4)
    assert after == in_memory(db, settings())


def test_a_changed_target_configuration_is_not_served_the_old_cache(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    import_runs(db, tmp_path, [run(1, 1, "success"), run(2, 2, "cancelled"), run(3, 3, "success")])
    ignored = deploystats.open(db, config=settings()).metrics(window=WINDOW)
    counting = settings({**TARGET, "cancelled": "failure"})
    counted = deploystats.open(db, config=counting).metrics(window=WINDOW)
    assert ignored["targets"]["production"]["success_rate"] == 1.0
    assert counted["targets"]["production"]["success_rate"] == 2 / 3
    assert counted == in_memory(db, counting)


def test_rows_deleted_outside_the_store_invalidate_the_cache(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    import_runs(db, tmp_path, [run(1, 1, "success"), run(2, 2, "success"), run(3, 3, "failure")])
    ds = deploystats.open(db, config=settings())
    assert ds.metrics(window=WINDOW)["targets"]["production"]["successes"] == 2
    con = connect(db)  # a hand-made edit: no data_version bump
    con.execute("DELETE FROM workflow_runs WHERE run_id = 1")
    con.close()
    assert ds.metrics(window=WINDOW)["targets"]["production"]["successes"] == 1


def test_a_file_open_in_another_process_is_classified_in_memory(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    import_runs(db, tmp_path, [run(1, 1, "success"), run(2, 2, "failure")])
    hold = (
        "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
        "print('ready', flush=True); sys.stdin.read()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        result = deploystats.open(db, config=settings()).metrics(window=WINDOW)
        assert built_at(db) is None
    finally:
        holder.communicate("", timeout=30)
    assert result == in_memory(db, settings())
    assert result["targets"]["production"]["success_rate"] == 0.5


def test_one_target_is_served_from_the_cache_of_all_configured(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    import_runs(db, tmp_path, [run(1, 1, "success"), run(2, 2, "cancelled"), run(3, 3, "failure")])
    config = settings(TARGET, {**TARGET, "name": "strict", "cancelled": "failure"})
    ds = deploystats.open(db, config=config)
    everything = ds.metrics(window=WINDOW)
    stamp = built_at(db)
    strict = ds.metrics(window=WINDOW, target="strict")
    assert built_at(db) == stamp
    assert strict == in_memory(db, config, "strict")
    assert strict["targets"]["strict"] == everything["targets"]["strict"]
    assert (
        strict["targets"]["strict"]["counted"],
        everything["targets"]["production"]["counted"],
    ) == (3, 2)


def test_import_github_leaves_the_cache_warm_for_the_next_reader(tmp_path: Path) -> None:
    """`deploystats import github` classifies the configured targets right after the import:
    the next metrics call reads the cache (built once, by the writer) with the same numbers."""
    from tests.conftest import run_deploystats

    history = history_from_spec(
        {"target": TARGET, "runs": [run(1, 1, "success"), run(2, 2, "failure")]}
    )
    for kind in ("runs", "jobs"):
        (tmp_path / f"{kind}.json").write_text(json.dumps(getattr(history, kind)))
    (tmp_path / "deploystats.yml").write_text(json.dumps({"targets": [TARGET]}))
    db = tmp_path / "db.duckdb"
    done = run_deploystats(
        "--db", str(db), "import", "github", "runs.json", "jobs.json", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith("classified 1 targets for metrics (")
    stamp = built_at(db)
    assert stamp is not None
    result = deploystats.open(db, config=settings()).metrics(window=WINDOW)
    assert built_at(db) == stamp  # read, not rebuilt
    assert result == in_memory(db, settings())
    assert result["targets"]["production"]["success_rate"] == 0.5
    # a config without targets: nothing to classify, nothing said
    (tmp_path / "deploystats.yml").write_text("{}")
    again = run_deploystats("--db", str(db), "import", "github", "runs.json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert not [line for line in again.stdout.splitlines() if line.startswith("classified")]
