"""Shared fixtures: a fresh DuckDB file per test, the real third-party data, small factories."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from deploystats.config import Settings, Target
from deploystats.ingest import import_dumps
from deploystats.simulate import DEMO_TARGET, Simulation, simulate, write_dumps
from deploystats.store import Store
from tests.promserver import PrometheusServer, Series, prometheus_servers

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


@pytest.fixture(scope="session")
def app_key() -> tuple[str, bytes]:
    """A GitHub App key pair made for the test run: (private PEM text, public PEM bytes)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


DEMO_END = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday: the simulated history ends here


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Simulation, Path, Settings]:
    """The simulated history (seed 7) imported into a DuckDB file, with the demo target and
    its drill excluded: (simulation, database path, settings)."""
    folder = tmp_path_factory.mktemp("demo")
    sim = simulate(seed=7, end=DEMO_END)
    paths = write_dumps(sim, folder / "dumps")
    db = folder / "db.duckdb"
    import_dumps(
        Store(db), [paths[k] for k in ("runs", "jobs", "deployments", "deployment_statuses")]
    )
    drills = [row["run_id"] for row in sim.ledger if row["drill"]]
    target = {**DEMO_TARGET, "exclude": [{"runs": drills, "reason": "rollback drill"}]}
    return sim, db, Settings(targets=[Target.model_validate(target)])


@pytest.fixture
def prometheus(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[Iterable[Series]], PrometheusServer]]:
    """`prometheus(series)` starts a real Prometheus 2.42 serving `series` (skipped when it is
    not installed, failed in CI); every server started is stopped after the test."""
    with prometheus_servers(tmp_path_factory) as start:
        yield start


def run_deploystats(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`python -m deploystats ARGS` as a user runs it: the developer's DEPLOYSTATS_* and
    GITHUB_* variables removed, `env` added, a wide terminal for tables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DEPLOYSTATS_", "GITHUB_"))}
    return subprocess.run(
        [sys.executable, "-m", "deploystats", *args],
        cwd=cwd,
        env={**clean, "COLUMNS": "200", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
