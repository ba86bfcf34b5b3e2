"""sync prometheus against a real Prometheus 2.42: raw samples, query_range, cursors, failures."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deploystats.config import Settings
from deploystats.errors import PrometheusError
from deploystats.prom import sync_prometheus
from deploystats.sources.prometheus import PrometheusClient
from deploystats.store import Store, connect
from tests.conftest import run_deploystats
from tests.promserver import PrometheusServer, Sample, Series

T0 = datetime(2026, 11, 16, tzinfo=UTC)
DAYS = 2
Start = Callable[[Iterable[Series]], PrometheusServer]


def runner_series() -> list[Series]:
    """Two runners scraped every 15 s for two days; runner-b down for 20 minutes."""
    out = []
    for instance in ("runner-a", "runner-b"):
        samples = []
        for i in range(DAYS * 86400 // 15):
            ts = T0.timestamp() + i * 15
            down = instance == "runner-b" and 3600 <= i * 15 < 3600 + 1200
            samples.append(Sample(ts, 0.0 if down else 1.0))
        out.append(Series("up", {"job": "github-runner", "instance": instance}, samples))
    return out


def config(url: str) -> Settings:
    return Settings.model_validate(
        {
            "prometheus": {
                "url": url,
                "queries": {
                    "runner_up": {
                        "expr": 'up{job="github-runner"}',
                        "kind": "availability",
                        "step": "15s",
                    },
                    "runners_up": {"expr": 'sum(up{job="github-runner"})', "step": "60s"},
                },
            }
        }
    )


def stored(db: Path, query: str) -> list[tuple[Any, ...]]:
    con = connect(db, read_only=True)
    try:
        return con.execute(
            "SELECT s.labels->>'instance', epoch(x.ts), x.value FROM prom_samples x "
            "JOIN prom_series s USING (series_id) WHERE s.query_name = $q ORDER BY 1, 2",
            {"q": query},
        ).fetchall()
    finally:
        con.close()


def sync(db: Path, url: str, **options: Any) -> Any:
    end = T0 + timedelta(days=DAYS)
    with PrometheusClient(url=url, sleep=lambda s: None) as client:
        return sync_prometheus(
            Store(db),
            config(url),
            client,
            since=options.pop("since", T0),
            until=options.pop("until", end),
            **options,
        )


def test_raw_samples_of_a_selector_are_stored_exactly(prometheus: Start, tmp_path: Path) -> None:
    series = runner_series()
    server = prometheus(series)
    sync(tmp_path / "db.duckdb", server.url)
    expected = sorted((s.labels["instance"], s_.ts, s_.value) for s in series for s_ in s.samples)
    assert stored(tmp_path / "db.duckdb", "runner_up") == expected


def test_an_expression_is_evaluated_at_every_step(prometheus: Start, tmp_path: Path) -> None:
    server = prometheus(runner_series())
    sync(tmp_path / "db.duckdb", server.url)
    points = stored(tmp_path / "db.duckdb", "runners_up")
    assert len(points) == DAYS * 1440  # one per minute of [T0, T0 + 2 d)
    by_minute = {int(ts - T0.timestamp()) // 60: value for _, ts, value in points}
    assert by_minute[59] == 2.0 and by_minute[60] == 1.0 and by_minute[79] == 1.0
    assert by_minute[80] == 2.0  # runner-b back at minute 80
    assert sum(1 for v in by_minute.values() if v == 1.0) == 20


def test_a_second_sync_continues_from_the_cursor(prometheus: Start, tmp_path: Path) -> None:
    server = prometheus(runner_series())
    db = tmp_path / "db.duckdb"
    first = sync(db, server.url, until=T0 + timedelta(days=1))
    second = sync(db, server.url, since=None)
    assert first.samples + second.samples == 2 * DAYS * 86400 // 15 + DAYS * 1440
    assert len(stored(db, "runner_up")) == 2 * DAYS * 86400 // 15


def test_prometheus_killed_mid_sync_keeps_committed_chunks(
    prometheus: Start, tmp_path: Path
) -> None:
    server = prometheus(runner_series())
    db = tmp_path / "db.duckdb"
    calls = {"n": 0}

    def kill_after_two(result: Any, name: str) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            server.kill()

    with pytest.raises(PrometheusError, match=r"cannot reach Prometheus at http://127\.0\.0\.1"):
        sync(db, server.url, on_progress=kill_after_two)
    kept = stored(db, "runner_up")
    assert 0 < len(kept) < 2 * DAYS * 86400 // 15
    con = connect(db, read_only=True)
    try:
        cursor = con.execute(
            "SELECT epoch(cursor) FROM sync_state WHERE scope = 'runner_up'"
        ).fetchall()[0][0]
        outcome = con.execute("SELECT outcome FROM ingest_log").fetchall()
    finally:
        con.close()
    assert max(ts for _, ts, _ in kept) < cursor  # every sample before the cursor is saved
    assert outcome == [("failed",)]

    again = prometheus(runner_series())
    sync(db, again.url, since=None)
    assert len(stored(db, "runner_up")) == 2 * DAYS * 86400 // 15


def test_the_sync_command_reports_what_it_stored(prometheus: Start, tmp_path: Path) -> None:
    server = prometheus(runner_series())
    (tmp_path / "deploystats.yml").write_text(
        json.dumps(config(server.url).model_dump(mode="json", by_alias=True, exclude_none=True))
    )
    done = run_deploystats(
        "sync", "prometheus", "--since", "2026-11-16", "--until", "2026-11-18", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    samples = 2 * DAYS * 86400 // 15 + DAYS * 1440
    assert done.stdout.startswith(f"synced 2 Prometheus queries: 3 series, {samples:,} samples")
