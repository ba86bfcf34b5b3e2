"""Shared fixtures: a fresh DuckDB file per test, the real third-party data, small factories."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from deploystats.store import Store

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"


@pytest.fixture
def realdata() -> Path:
    """../shared/realdata (third-party payloads; read them, never copy them into the package)."""
    if not REALDATA.is_dir():
        pytest.fail(f"{REALDATA} is missing: the tests need ../shared/realdata beside the project")
    return REALDATA


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "deploystats.duckdb"


@pytest.fixture
def store(db_path: Path) -> Store:
    return Store(db_path, lock_timeout_s=1.0)


@contextmanager
def lock_held(path: Path) -> Iterator[int]:
    """Another process opens `path` for writing and keeps it open; yields its PID."""
    script = (
        f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('held', flush=True); "
        "time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
