"""Shared fixtures: a fresh DuckDB file per test, the real third-party data, small factories."""

from __future__ import annotations

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
