"""The DuckDB file: opening it (locks, UTC, migrations) and one transaction per batch."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from deploystats.errors import LockedError, StoreError
from deploystats.store.save import (
    bump_data_version,
    load_attempts,
    load_etags,
    log_ingest,
    read_cursor,
    save_deployment_statuses,
    save_deployments,
    save_etags,
    save_jobs,
    save_objects,
    save_runs,
    write_cursor,
)
from deploystats.store.schema import (
    ROW_GROUP_SIZE,
    SCHEMA_VERSION,
    current_version,
    ensure_schema,
    scalar,
)

__all__ = [
    "READER_MEMORY_LIMIT",
    "ROW_GROUP_SIZE",
    "SCHEMA_VERSION",
    "WRITER_MEMORY_LIMIT",
    "Store",
    "bump_data_version",
    "connect",
    "load_attempts",
    "load_etags",
    "log_ingest",
    "read_cursor",
    "save_deployment_statuses",
    "save_deployments",
    "save_etags",
    "save_jobs",
    "save_objects",
    "save_runs",
    "scalar",
    "transaction",
    "write_cursor",
]

WRITER_MEMORY_LIMIT = "512MB"
REPO_TABLES = (
    "workflow_runs", "jobs", "job_steps", "deployments", "deployment_statuses", "repositories",
)  # fmt: skip
# Metrics build their tables in the reader's memory; above the cap DuckDB spills them to
# `<db>.tmp` beside the file (measured: 10,000,000 attempts stay under 2 GiB per process).
READER_MEMORY_LIMIT = "1GB"
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<prog>\S+) \(PID (?P<pid>\d+)\)")


def _is_lock_error(exc: duckdb.Error) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


def _lock_message(path: Path, exc: duckdb.Error, waited_s: float) -> str:
    match = _LOCK_HOLDER.search(str(exc))
    holder = f"PID {match['pid']} ({Path(match['prog']).name})" if match else "another process"
    return (
        f"database {path} is locked by {holder}; waited {waited_s:.0f}s: "
        "let it finish, or raise store.lock_timeout"
    )


def _open_file(
    path: Path, *, read_only: bool, row_group_size: int | None
) -> duckdb.DuckDBPyConnection:
    """A connection to the file; a writer given `row_group_size` attaches it with row groups
    of that many rows (see ROW_GROUP_SIZE)."""
    if row_group_size is None or read_only:
        return duckdb.connect(str(path), read_only=read_only)
    con = duckdb.connect()
    try:
        quoted = str(path).replace("'", "''")
        con.execute(f"ATTACH '{quoted}' AS deploystats (ROW_GROUP_SIZE {int(row_group_size)})")
        con.execute("USE deploystats")
        # as for a file opened directly: spill beside it, not into the working directory
        con.execute("SET temp_directory = $dir", {"dir": f"{path}.tmp"})
    except BaseException:
        con.close()
        raise
    return con


def connect(
    path: Path | str,
    *,
    read_only: bool = False,
    lock_timeout_s: float = 120.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    memory_limit: str | None = None,
    row_group_size: int | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file in UTC, migrated to the current schema.

    Writers create the file and its folder; readers open read-only and need the file.
    A file held by another process is retried for `lock_timeout_s`, then LockedError
    names the holder. DuckDB's memory is capped (READER_MEMORY_LIMIT / WRITER_MEMORY_LIMIT
    unless `memory_limit` says otherwise); above it, work spills to disk. A writer given
    `row_group_size` (bulk imports: ROW_GROUP_SIZE) appends row groups of that many rows
    instead of DuckDB's 122,880. Close the connection when the operation ends.
    """
    path = Path(path)
    if read_only and not path.exists():
        raise StoreError(
            f"no database at {path}: run `deploystats sync github`, `deploystats import github` "
            "or `deploystats demo` first (or pass --db)"
        )
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    started = clock()
    delay = 0.1
    while True:
        try:
            con = _open_file(path, read_only=read_only, row_group_size=row_group_size)
            break
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise StoreError(f"cannot open database {path}: {exc}") from exc
            waited = clock() - started
            if waited >= lock_timeout_s:
                raise LockedError(_lock_message(path, exc, waited)) from exc
            sleep(min(delay, max(lock_timeout_s - waited, 0.01)))
            delay = min(delay * 2, 2.0)
        except duckdb.Error as exc:
            raise StoreError(f"cannot open database {path}: {exc}") from exc
    try:
        con.execute("SET TimeZone = 'UTC'")
        # library code never prints; a Jupyter kernel without ipywidgets refuses the setting
        # (and shows no bar there)
        with contextlib.suppress(duckdb.InvalidInputException):
            con.execute("SET enable_progress_bar = false")
        # Without a cap DuckDB's buffer pool grows to 80 % of RAM: during a bulk import
        # (measured on 100,000 runs: 3.7 GB RSS; 1.0 GB capped at 800MB, 0.88 GB at 512MB, as
        # fast) or the metrics of a large history (19.7 GB at 10,000,000 attempts).
        default = READER_MEMORY_LIMIT if read_only else WRITER_MEMORY_LIMIT
        con.execute("SET memory_limit = $limit", {"limit": memory_limit or default})
        if read_only:
            version = current_version(con)
            if version != SCHEMA_VERSION:
                raise StoreError(
                    f"database {path} has schema version {version}, this "
                    f"deploystats reads {SCHEMA_VERSION}: open it once for writing "
                    "(any sync or import) to migrate"
                )
        else:
            ensure_schema(con)
    except BaseException:
        con.close()
        raise
    return con


@contextmanager
def transaction(
    con: duckdb.DuckDBPyConnection,
    *,
    before_commit: Callable[[], None] | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """One batch: everything inside commits together or not at all.

    `before_commit` runs just before COMMIT: the test seam for a crash at the worst moment.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
        if before_commit is not None:
            before_commit()
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


class Store:
    """A path and settings; opens a connection per operation (a notebook never holds the file)."""

    def __init__(
        self,
        path: Path | str,
        *,
        lock_timeout_s: float = 120.0,
        before_commit: Callable[[], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.lock_timeout_s = lock_timeout_s
        self.before_commit = before_commit

    @contextmanager
    def open(
        self, *, read_only: bool = False, row_group_size: int | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        con = connect(
            self.path,
            read_only=read_only,
            lock_timeout_s=self.lock_timeout_s,
            row_group_size=row_group_size,
        )
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def batch(self, con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
        with transaction(con, before_commit=self.before_commit) as tx:
            yield tx

    def forget_repo(self, repo: str) -> None:
        """Delete every GitHub row of one repository in one transaction (the demo replaces
        its simulated history this way, so runs of two simulations never mix)."""
        with self.open() as con, self.batch(con) as tx:
            for table in REPO_TABLES:
                tx.execute(f"DELETE FROM {table} WHERE repo = $repo", {"repo": repo})
            bump_data_version(tx)
            tx.execute(
                "DELETE FROM sync_state WHERE (source = 'github' "
                "AND split_part(scope, ':', 1) = $repo) "
                "OR (source = 'github-import' AND scope = $repo)",
                {"repo": repo},
            )

    def forget_prometheus(self, queries: list[str]) -> None:
        """Delete the series, samples and cursors of these Prometheus query names in one
        transaction (the demo replaces its simulated series this way)."""
        with self.open() as con, self.batch(con) as tx:
            params = {"queries": queries}
            tx.execute(
                "DELETE FROM prom_samples WHERE series_id IN "
                "(SELECT series_id FROM prom_series WHERE list_contains($queries, query_name))",
                params,
            )
            tx.execute("DELETE FROM prom_series WHERE list_contains($queries, query_name)", params)
            tx.execute(
                "DELETE FROM sync_state WHERE source = 'prometheus' "
                "AND list_contains($queries, scope)",
                params,
            )
