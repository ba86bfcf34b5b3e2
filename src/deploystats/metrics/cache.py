"""The persisted classification: attempts and recovery tables kept in the DuckDB file.

Classifying a large history takes seconds; the per-window metrics over its result take a
fraction of that. `open_classified` therefore keeps the window-independent tables (deployment
attempts, changes, rollback signals and incidents, failure episodes) in the schema
`metrics_cache`, for one data version (the `data_version` counter that every write to the
GitHub tables bumps, with the row counts of those tables) and one digest per target (its
configuration and this engine's code). A reader uses them only when both match exactly;
otherwise a writer rebuilds them (when the file can be opened for writing at once), or the
classification runs in the reader's memory as before. Numbers are the same either way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa

from deploystats.config import Target
from deploystats.errors import ConfigError, StoreError
from deploystats.metrics import attempts, recovery
from deploystats.metrics.attempts import prepare, register_targets
from deploystats.metrics.recovery import prepare_recovery
from deploystats.store import READER_MEMORY_LIMIT, connect, transaction

SCHEMA = "metrics_cache"
# What the window queries read; every table has a `target` column.
TABLES = (
    "deployment_attempts", "changes", "rollback_signals", "rollback_incidents",
    "failure_episodes", "_scopes", "_target_repos",
)  # fmt: skip

_GITHUB_TABLES = ("workflow_runs", "jobs", "job_steps", "deployments", "deployment_statuses")
# The counter catches every write through the store; the row counts (read from DuckDB's
# metadata, instant) also catch rows added or deleted around it.
_DATA_VERSION = "SELECT concat_ws(':', (SELECT max(version) FROM data_version), {})".format(
    ", ".join(f"(SELECT count(*) FROM {table})" for table in _GITHUB_TABLES)
)


def _engine_digest() -> str:
    """The classification code itself: any change to it invalidates every cache."""
    sha = hashlib.sha256()
    for module in (attempts, recovery):
        sha.update(Path(module.__file__ or "").read_bytes())
    sha.update(Path(__file__).read_bytes())
    return sha.hexdigest()


def target_digests(targets: Sequence[Target]) -> list[str]:
    """One digest per target: its whole configuration and the engine's code."""
    engine = _engine_digest()
    return [
        hashlib.sha256(f"{engine}\n{t.model_dump_json()}".encode()).hexdigest() for t in targets
    ]


def data_version(con: duckdb.DuckDBPyConnection) -> str:
    """The version of the GitHub tables this connection sees."""
    return str(con.execute(_DATA_VERSION).fetchall()[0][0])


def _cached(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, str]]:
    """target -> (tid, digest) of a cache built for the current data version; {} if none."""
    present = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = $schema "
        "AND table_name = 'entry'",
        {"schema": SCHEMA},
    ).fetchall()[0][0]
    if not present:
        return {}
    built_for = con.execute(f"SELECT data_version FROM {SCHEMA}.entry").fetchall()
    if [row[0] for row in built_for] != [data_version(con)]:
        return {}
    rows = con.execute(f"SELECT target, tid, digest FROM {SCHEMA}.targets").fetchall()
    return {name: (int(tid), digest) for name, tid, digest in rows}


def attach(con: duckdb.DuckDBPyConnection, targets: Sequence[Target]) -> bool:
    """Point this connection's classification tables at a valid cache holding every one of
    `targets` with its current configuration; False (nothing done) when there is none."""
    cached = _cached(con)
    digests = target_digests(targets)
    if not cached or any(
        cached.get(t.name, (0, ""))[1] != digest for t, digest in zip(targets, digests, strict=True)
    ):
        return False
    register_targets(con, targets, tids=[cached[t.name][0] for t in targets])
    whole = {t.name for t in targets} == set(cached)
    for table in TABLES:
        if whole:  # the cached tables as they are
            con.execute(f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT * FROM {SCHEMA}.{table}")
        else:  # the chosen targets' rows only
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM {SCHEMA}.{table} "
                "WHERE target IN (SELECT target FROM _targets)"
            )
    return True


def build(con: duckdb.DuckDBPyConnection, targets: Sequence[Target]) -> None:
    """Classify `targets` and replace the cache with the result (a writable connection; one
    transaction, so a reader sees the old cache or the new one)."""
    version = data_version(con)
    prepare(con, targets)
    prepare_recovery(con)
    names = [t.name for t in targets]
    con.register(
        "_cache_targets_in",
        pa.table(
            {"target": names, "tid": list(range(len(targets))), "digest": target_digests(targets)},
            schema=pa.schema(
                [("target", pa.string()), ("tid", pa.int32()), ("digest", pa.string())]
            ),
        ),
    )
    with transaction(con):
        con.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}")
        for table in TABLES:
            con.execute(f"CREATE TABLE {SCHEMA}.{table} AS SELECT * FROM temp.main.{table}")
        con.execute(f"CREATE TABLE {SCHEMA}.targets AS SELECT * FROM _cache_targets_in")
        con.execute(
            f"CREATE TABLE {SCHEMA}.entry AS "
            "SELECT $version AS data_version, current_timestamp AS built_at",
            {"version": version},
        )
    con.unregister("_cache_targets_in")
    for table in TABLES:
        con.execute(f"DROP TABLE temp.main.{table}")


@contextmanager
def open_classified(
    db: Path,
    configured: Sequence[Target],
    chosen: Sequence[Target],
    *,
    lock_timeout_s: float,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection on which `chosen` are classified (prepare + prepare_recovery), closed on
    exit. From the cache when it is valid; else the cache is rebuilt for every `configured`
    target when the file can be opened for writing at once (no other process has it open),
    else `chosen` are classified in this connection's memory."""
    con = connect(db, read_only=True, lock_timeout_s=lock_timeout_s)
    try:
        cached = bool(chosen) and attach(con, chosen)
        if cached:
            yield con
    finally:
        con.close()
    if cached:
        return
    writer = None
    if chosen:
        try:
            writer = connect(db, lock_timeout_s=0, memory_limit=READER_MEMORY_LIMIT)
        except StoreError:  # held by another process, or not writable: classify in memory
            writer = None
    if writer is not None:
        try:
            try:
                build(writer, configured)
                built = attach(writer, chosen)
            except ConfigError:  # another target's configuration: only the chosen ones count
                built = False
            if built:
                yield writer
                return
        finally:
            writer.close()
    con = connect(db, read_only=True, lock_timeout_s=lock_timeout_s)
    try:
        prepare(con, chosen)
        prepare_recovery(con)
        yield con
    finally:
        con.close()


def refresh(db: Path, targets: Sequence[Target], *, lock_timeout_s: float) -> bool:
    """After a write (import, sync): rebuild the cache for the configured targets unless it is
    still valid, so the next metrics call, report or notebook reads it warm. Returns whether
    it was rebuilt; a target configuration that cannot be classified is left to the metrics
    command to report."""
    if not targets:
        return False
    con = connect(db, lock_timeout_s=lock_timeout_s, memory_limit=READER_MEMORY_LIMIT)
    try:
        if attach(con, targets):
            return False
        build(con, targets)
        return True
    except ConfigError:
        return False
    finally:
        con.close()
