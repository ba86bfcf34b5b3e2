"""The DuckDB schema as forward-only migrations, applied on open (DESIGN §2)."""

from __future__ import annotations

from typing import Any

import duckdb

from deploystats.errors import StoreError

# Each entry migrates from version i to i+1. Never edit a released entry: append a new one.
# Raw API JSON is stored with zstd: DuckDB's default string compression (FSST) made the
# checkpoint of 20,000 runs take 4 s; zstd takes 0.2 s and writes an 8x smaller file.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE repositories (
        repo VARCHAR PRIMARY KEY,
        repository_id BIGINT,
        raw JSON USING COMPRESSION zstd,
        updated_at TIMESTAMPTZ
    );
    CREATE TABLE workflow_runs (
        repo VARCHAR NOT NULL,
        run_id BIGINT NOT NULL,
        run_attempt INTEGER NOT NULL,
        workflow_id BIGINT,
        workflow_name VARCHAR,
        workflow_path VARCHAR,
        run_number BIGINT,
        event VARCHAR,
        status VARCHAR,
        conclusion VARCHAR,
        head_branch VARCHAR,
        head_sha VARCHAR,
        head_commit_at TIMESTAMPTZ,
        actor VARCHAR,
        created_at TIMESTAMPTZ,
        run_started_at TIMESTAMPTZ,
        updated_at TIMESTAMPTZ,
        html_url VARCHAR,
        raw JSON USING COMPRESSION zstd,
        PRIMARY KEY (repo, run_id, run_attempt)
    );
    CREATE TABLE jobs (
        repo VARCHAR NOT NULL,
        job_id BIGINT NOT NULL,
        run_id BIGINT,
        run_attempt INTEGER,
        name VARCHAR,
        status VARCHAR,
        conclusion VARCHAR,
        created_at TIMESTAMPTZ,
        started_at TIMESTAMPTZ,
        completed_at TIMESTAMPTZ,
        runner_name VARCHAR,
        runner_group_name VARCHAR,
        labels VARCHAR[],
        html_url VARCHAR,
        PRIMARY KEY (repo, job_id)
    );
    CREATE TABLE job_steps (
        repo VARCHAR NOT NULL,
        job_id BIGINT NOT NULL,
        number INTEGER NOT NULL,
        name VARCHAR,
        status VARCHAR,
        conclusion VARCHAR,
        started_at TIMESTAMPTZ,
        completed_at TIMESTAMPTZ
    );
    CREATE TABLE deployments (
        repo VARCHAR NOT NULL,
        deployment_id BIGINT NOT NULL,
        environment VARCHAR,
        sha VARCHAR,
        ref VARCHAR,
        task VARCHAR,
        created_at TIMESTAMPTZ,
        updated_at TIMESTAMPTZ,
        raw JSON USING COMPRESSION zstd,
        PRIMARY KEY (repo, deployment_id)
    );
    CREATE TABLE deployment_statuses (
        repo VARCHAR NOT NULL,
        status_id BIGINT NOT NULL,
        deployment_id BIGINT,
        state VARCHAR,
        environment VARCHAR,
        log_url VARCHAR,
        target_url VARCHAR,
        created_at TIMESTAMPTZ,
        updated_at TIMESTAMPTZ,
        PRIMARY KEY (repo, status_id)
    );
    CREATE TABLE prom_series (
        series_id BIGINT PRIMARY KEY,
        query_name VARCHAR NOT NULL,
        labels JSON,
        interval_s DOUBLE
    );
    CREATE TABLE prom_samples (
        series_id BIGINT NOT NULL,
        ts TIMESTAMPTZ NOT NULL,
        value DOUBLE,
        PRIMARY KEY (series_id, ts)
    );
    CREATE TABLE sync_state (
        source VARCHAR NOT NULL,
        scope VARCHAR NOT NULL,
        cursor TIMESTAMPTZ,
        updated_at TIMESTAMPTZ,
        PRIMARY KEY (source, scope)
    );
    CREATE TABLE etags (
        url VARCHAR PRIMARY KEY,
        etag VARCHAR NOT NULL,
        updated_at TIMESTAMPTZ
    );
    CREATE SEQUENCE ingest_log_seq;
    CREATE TABLE ingest_log (
        ingest_id BIGINT DEFAULT nextval('ingest_log_seq'),
        started_at TIMESTAMPTZ,
        finished_at TIMESTAMPTZ,
        source VARCHAR,
        scope VARCHAR,
        requests BIGINT,
        rows BIGINT,
        outcome VARCHAR,
        error VARCHAR
    );
    """,
    # Bumped by every write to the GitHub tables: the metrics cache is valid for one version.
    """
    CREATE TABLE data_version (version BIGINT NOT NULL);
    INSERT INTO data_version VALUES (0);
    """,
    # Runs keep their raw JSON as VARCHAR: the text stored is an object cut out of the API's,
    # proven valid when its columns are read, or one written by DuckDB, so a JSON column's cast
    # only parsed every run once more (measured: 0.5 s of CPU per 100,000 runs). DuckDB's JSON
    # functions and operators read VARCHAR the same way.
    """
    ALTER TABLE workflow_runs ALTER raw TYPE VARCHAR;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)

# Rows per row group of the tables a bulk import appends to (DuckDB's default is 122,880).
# DuckDB writes the row groups a bulk INSERT fills straight to the file, compressed, so a
# batch of whole row groups (import_dumps cuts JSON Lines into such batches) skips the
# write-ahead log and the checkpoint's second pass over the data (measured on 100,000 runs and
# their jobs: commits took 0.3 s of CPU against 5.6 s at the default). Only imports use it:
# reading many small row groups costs more (measured on the metrics benchmark's 1,000,000
# attempts filled at 4,096: engine 3.8 s against 3.5 s, file +47 %, peak RSS +23 %); an
# imported file grew by 6 % (by half at 2,048).
ROW_GROUP_SIZE = 4096


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None) -> Any:
    """First column of the first row, or None; the result is read to the end (DuckDB 2.0
    refuses further work on a connection with an unread result)."""
    rows = con.execute(sql, params or {}).fetchall()
    return rows[0][0] if rows else None


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    """The schema version of an open database; 0 for an empty file."""
    if not scalar(
        con, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
    ):
        return 0
    return int(scalar(con, "SELECT coalesce(max(version), 0) FROM schema_version"))


def ensure_schema(con: duckdb.DuckDBPyConnection) -> int:
    """Apply the migrations this file has not seen yet, each in its own transaction."""
    version = current_version(con)
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"database schema version {version} is newer than this deploystats "
            f"({SCHEMA_VERSION}): upgrade deploystats"
        )
    for number in range(version, SCHEMA_VERSION):
        con.execute("BEGIN TRANSACTION")
        if number == 0:
            con.execute("CREATE TABLE schema_version (version INTEGER, applied_at TIMESTAMPTZ)")
        con.execute(MIGRATIONS[number])
        con.execute(
            "INSERT INTO schema_version VALUES ($version, current_timestamp)",
            {"version": number + 1},
        )
        con.execute("COMMIT")
    return SCHEMA_VERSION
