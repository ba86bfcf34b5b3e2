"""The DuckDB file: schema on open, UTC sessions, locks, batches that commit whole or not at all."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from deploystats.errors import LockedError, StoreError
from deploystats.store import (
    READER_MEMORY_LIMIT,
    ROW_GROUP_SIZE,
    SCHEMA_VERSION,
    WRITER_MEMORY_LIMIT,
    Store,
    connect,
    scalar,
    transaction,
    write_cursor,
)
from deploystats.store.save import Source, save_runs
from deploystats.store.schema import MIGRATIONS
from tests.conftest import lock_held


def make_run(run_id: int, *, attempt: int = 1, updated_at: str = "2026-11-20T10:05:00Z") -> dict:
    return {
        "id": run_id,
        "run_attempt": attempt,
        "workflow_id": 1,
        "name": "Deploy production",
        "path": ".github/workflows/deploy-production.yml",
        "head_sha": "abc",
        "status": "completed",
        "conclusion": "success",
        "created_at": "2026-11-20T10:00:00Z",
        "run_started_at": "2026-11-20T10:00:00Z",
        "updated_at": updated_at,
        "repository": {"id": 7, "full_name": "acme/platform"},
    }


def test_a_new_file_gets_the_current_schema_version(db_path: Path) -> None:
    con = connect(db_path)
    try:
        assert scalar(con, "SELECT max(version) FROM schema_version") == SCHEMA_VERSION
    finally:
        con.close()


def test_every_session_runs_in_utc_whatever_the_machine_timezone(db_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        from deploystats.store import connect, scalar
        con = connect({str(db_path)!r})
        print(scalar(con, "SELECT current_setting('TimeZone')"))
        print(scalar(con, "SELECT TIMESTAMPTZ '2026-11-20 10:00:00+00'::VARCHAR"))
        """
    )
    env = {**os.environ, "TZ": "America/Los_Angeles"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.stdout.split("\n")[:2] == ["UTC", "2026-11-20 10:00:00+00"], done.stderr


def test_readers_need_an_existing_file(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"no database at .*missing.duckdb: run `deploystats sync"):
        connect(tmp_path / "missing.duckdb", read_only=True)


def _limit_bytes(con: object) -> int:
    """memory_limit as DuckDB reports it ('953.6 MiB'), in bytes."""
    number, unit = str(scalar(con, "SELECT current_setting('memory_limit')")).split()
    return int(float(number) * {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[unit])


def test_readers_and_writers_cap_duckdbs_memory(db_path: Path) -> None:
    # DuckDB reads '1GB' as 10**9 bytes and reports it in MiB, rounded to 0.1
    want = {"1GB": 10**9, "512MB": 512 * 10**6}
    con = connect(db_path)
    try:
        assert _limit_bytes(con) == pytest.approx(want[WRITER_MEMORY_LIMIT], rel=1e-3)
    finally:
        con.close()
    con = connect(db_path, read_only=True)
    try:
        assert _limit_bytes(con) == pytest.approx(want[READER_MEMORY_LIMIT], rel=1e-3)
    finally:
        con.close()


def test_a_reader_spills_temp_tables_above_its_memory_cap(db_path: Path) -> None:
    connect(db_path).close()
    con = connect(db_path, read_only=True, memory_limit="64MB")
    try:
        # ~190 MB of rows: three times the cap, kept by spilling to <db>.tmp
        con.execute(
            "CREATE TEMP TABLE big AS SELECT i, md5(i::VARCHAR) || md5((i + 1)::VARCHAR) AS s "
            "FROM range(2500000) r(i)"
        )
        assert con.execute("SELECT count(*), count(DISTINCT s), sum(i) FROM big").fetchall() == [
            (2_500_000, 2_500_000, 2_500_000 * 2_499_999 // 2)
        ]
        spilled = scalar(con, "SELECT coalesce(sum(size), 0) FROM duckdb_temporary_files()")
        assert int(spilled) > 64 * 10**6
    finally:
        con.close()


def test_a_version_1_file_is_migrated_keeping_its_runs(db_path: Path) -> None:
    old = duckdb.connect(str(db_path))
    old.execute("CREATE TABLE schema_version (version INTEGER, applied_at TIMESTAMPTZ)")
    old.execute(MIGRATIONS[0])
    old.execute("INSERT INTO schema_version VALUES (1, current_timestamp)")
    old.execute(
        "INSERT INTO workflow_runs (repo, run_id, run_attempt, raw) "
        """VALUES ('acme/platform', 1, 1, '{"id": 1, "event": "push"}')"""
    )
    old.close()

    con = connect(db_path)
    try:
        assert scalar(con, "SELECT max(version) FROM schema_version") == SCHEMA_VERSION == 3
        assert scalar(con, "SELECT version FROM data_version") == 0
        raw_type = (
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_name = 'workflow_runs' AND column_name = 'raw'"
        )
        assert scalar(con, raw_type) == "VARCHAR"
        assert con.execute("SELECT raw ->> '$.event' FROM workflow_runs").fetchall() == [("push",)]
    finally:
        con.close()


@pytest.mark.parametrize(("row_group_size", "groups"), [(None, 1), (ROW_GROUP_SIZE, 3)])
def test_bulk_writers_store_tables_in_row_groups_of_row_group_size(
    db_path: Path, row_group_size: int | None, groups: int
) -> None:
    con = connect(db_path, row_group_size=row_group_size)
    try:
        con.execute(
            "INSERT INTO etags SELECT 'https://x/' || range, 'e', NULL FROM range($n)",
            {"n": 2 * ROW_GROUP_SIZE + 1},
        )
        con.execute("CHECKPOINT")
        found = "SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('etags')"
        assert scalar(con, found) == groups
        assert scalar(con, "SELECT current_setting('temp_directory')") == f"{db_path}.tmp"
    finally:
        con.close()


def test_a_failed_batch_leaves_nothing_behind(db_path: Path) -> None:
    con = connect(db_path)
    try:
        with pytest.raises(RuntimeError), transaction(con, before_commit=_crash):
            save_runs(con, Source.from_objects([make_run(1)]))
            write_cursor(con, "github", "acme/platform:deploy.yml", _when())
        assert scalar(con, "SELECT count(*) FROM workflow_runs") == 0
        assert scalar(con, "SELECT count(*) FROM sync_state") == 0
        with transaction(con):
            save_runs(con, Source.from_objects([make_run(1)]))
        assert scalar(con, "SELECT count(*) FROM workflow_runs") == 1
    finally:
        con.close()


def _crash() -> None:
    raise RuntimeError("crash before commit")


def _when():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime(2026, 11, 20, tzinfo=UTC)


def test_a_second_writer_waits_then_names_the_process_holding_the_file(db_path: Path) -> None:
    connect(db_path).close()
    with lock_held(db_path) as pid:
        started = time.monotonic()
        with pytest.raises(LockedError) as caught, Store(db_path, lock_timeout_s=0.5).open():
            pass
        assert time.monotonic() - started >= 0.5
    message = str(caught.value)
    assert f"database {db_path} is locked by PID {pid}" in message
    assert "store.lock_timeout" in message
