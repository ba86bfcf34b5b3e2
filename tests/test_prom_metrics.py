"""Prometheus metrics on stored samples: alert incidents as the union of firing intervals."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

import deploystats
from deploystats.config import Settings
from deploystats.metrics.windows import Window
from deploystats.store import Store
from deploystats.store.prom import save_prom_samples

T0 = datetime(2026, 11, 16, tzinfo=UTC).timestamp()
DAY = Window(datetime(2026, 11, 16, tzinfo=UTC), datetime(2026, 11, 17, tzinfo=UTC), "d", "UTC")


def firing(minutes: range, *, every: int = 60) -> list[tuple[float, float]]:
    """Samples of an ALERTS series: 1 while firing, every `every` seconds."""
    return [(T0 + m * 60 + s, 1.0) for m in minutes for s in range(0, 60, every)]


def store_alerts(db: Path, series: list[tuple[dict[str, str], list[tuple[float, float]]]]) -> None:
    store = Store(db)
    with store.open() as con, store.batch(con):
        save_prom_samples(con, "deploy_alerts", series)


def alerts_config(group_by: list[str] | None = None) -> Settings:
    query = {
        "expr": 'ALERTS{alertstate="firing"}',
        "kind": "alerts",
        "step": "60s",
        "group_by": group_by or [],
    }
    return Settings.model_validate(
        {"prometheus": {"url": "http://127.0.0.1:9", "queries": {"deploy_alerts": query}}}
    )


def test_overlapping_alerts_of_several_series_are_one_incident(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    store_alerts(
        db,
        [
            (
                {"alertname": "DeployFailed", "instance": "a"},
                firing(range(600, 610)),
            ),  # 10:00-10:09
            (
                {"alertname": "HighErrorRate", "instance": "b"},
                firing(range(605, 620)),
            ),  # 10:05-10:19
            (
                {"alertname": "DeployFailed", "instance": "a"},
                firing(range(700, 705)),
            ),  # 11:40-11:44
        ],
    )
    result = deploystats.open(db, config=alerts_config()).metrics(window=DAY)
    alerts = result["prometheus"]["deploy_alerts"]
    # union 10:00 .. last firing 10:19 + 60 s interval = 20 min; 11:40 .. 11:44 + 60 s = 5 min
    assert alerts == {
        "alert_incidents": 2,
        "alert_mttr_s": pytest.approx((1200 + 300) / 2),
        "alert_restore_median_s": pytest.approx(750.0),
    }


def test_a_gap_longer_than_one_and_a_half_intervals_splits_an_incident(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    # firing at minutes 0-4, a missing sample at 5 (gap 120 s > 90 s), firing again 6-9
    store_alerts(db, [({"alertname": "X"}, firing(range(0, 5)) + firing(range(6, 10)))])
    result = deploystats.open(db, config=alerts_config()).metrics(window=DAY)
    assert result["prometheus"]["deploy_alerts"]["alert_incidents"] == 2


def test_group_by_keeps_alerts_of_different_groups_apart(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    store_alerts(
        db,
        [
            ({"alertname": "A", "service": "api"}, firing(range(600, 610))),
            ({"alertname": "B", "service": "web"}, firing(range(605, 620))),
        ],
    )
    grouped = deploystats.open(db, config=alerts_config(["service"])).metrics(window=DAY)
    pooled = deploystats.open(db, config=alerts_config()).metrics(window=DAY)
    assert grouped["prometheus"]["deploy_alerts"]["alert_incidents"] == 2
    assert pooled["prometheus"]["deploy_alerts"]["alert_incidents"] == 1


def test_time_to_detect_takes_the_first_alert_around_each_failure(
    demo: Any, tmp_path: Path
) -> None:
    _, source_db, settings = demo
    db = tmp_path / "db.duckdb"
    shutil.copy(source_db, db)
    prom = alerts_config().prometheus
    assert prom is not None
    target = settings.targets[0].model_copy(update={"alerts_query": "deploy_alerts"})
    ds = deploystats.open(db, config=Settings(targets=[target], prometheus=prom))
    frame = ds.attempts(week="2026-W39")
    failed = frame[frame["outcome"].isin(["failure", "rolled_back"])].reset_index()
    first = failed.loc[0]
    second = next(
        r
        for _, r in failed.iterrows()
        if r["started_at"] - first["failure_at"] > timedelta(hours=3)
    )

    # DeployFailed fires 2 minutes after the first failure for 10 minutes; Paging was already
    # firing 30 minutes before the second attempt started, for 40 minutes (60 s samples)
    alerts = [
        (first["failure_at"] + timedelta(minutes=2), 10),
        (second["started_at"] - timedelta(minutes=30), 40),
    ]
    store_alerts(
        db,
        [
            ({"alertname": f"A{i}"}, [(begin.timestamp() + 60 * m, 1.0) for m in range(minutes)])
            for i, (begin, minutes) in enumerate(alerts)
        ],
    )
    incidents = [(begin, begin + timedelta(minutes=minutes)) for begin, minutes in alerts]
    detections = []
    for _, attempt in failed.iterrows():
        overlapping = [
            begin
            for begin, end in incidents
            if begin < attempt["failure_at"] + timedelta(hours=1) and end > attempt["started_at"]
        ]
        if overlapping:
            detections.append(max((min(overlapping) - attempt["failure_at"]).total_seconds(), 0))

    result = ds.metrics(week="2026-W39")
    production = result["targets"]["production"]
    schema = json.loads(
        (Path(__file__).resolve().parents[1] / "docs/metrics.schema.json").read_text()
    )
    jsonschema.validate(json.loads(json.dumps(result)), schema)
    assert 120.0 in detections and 0.0 in detections
    assert production["detect_n"] == len(detections)
    assert production["detected_share"] == pytest.approx(len(detections) / len(failed))
    assert production["detect_p50_s"] == pytest.approx(float(np.quantile(detections, 0.5)))
    assert production["detect_p95_s"] is None  # fewer than 20 detections
