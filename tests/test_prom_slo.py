"""Availability SLOs over a Prometheus query (DESIGN §6): aggregates, coverage, budget, burn."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import deploystats
from deploystats.config import Settings
from deploystats.errors import ConfigError
from deploystats.metrics.windows import Window, iso_week
from deploystats.prom import sync_prometheus
from deploystats.sources.prometheus import PrometheusClient
from deploystats.store import Store
from deploystats.store.prom import save_prom_samples
from tests.test_prom_sync import T0 as SYNC_T0
from tests.test_prom_sync import Start, runner_series

W47 = iso_week("2026-W47")
MINUTES = 7 * 24 * 60  # one sample a minute for the week: 10,080 per series
A_DOWN = 100  # runner-a: 100 samples at 0
B_DOWN, B_NAN = 20, 10  # runner-b: 20 at 0 and 10 NaN (missing: not valued, not covered)

# hand-computed: a = 9,980 / 10,080; b = 10,050 / 10,070 (10,070 of 10,080 minutes covered)
A_GOOD, A_N = MINUTES - A_DOWN, MINUTES
B_GOOD, B_N = MINUTES - B_DOWN - B_NAN, MINUTES - B_NAN
B_COVERAGE = B_N / MINUTES


def week_samples(down: range, missing: range = range(0)) -> list[tuple[float, float]]:
    start = W47.start.timestamp() + 7  # scraped 7 s past each minute
    return [
        (start + 60 * i, math.nan if i in missing else 0.0 if i in down else 1.0)
        for i in range(MINUTES)
    ]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("slo") / "db.duckdb"
    store = Store(path)
    with store.open() as con, store.batch(con):
        save_prom_samples(
            con,
            "runner_up",
            [
                ({"instance": "runner-a"}, week_samples(range(600, 600 + A_DOWN))),
                ({"instance": "runner-b"}, week_samples(range(3000, 3020), range(5000, 5010))),
            ],
        )
    return path


def settings(*, url: str = "http://127.0.0.1:9", step: str = "60s", **slo: Any) -> Settings:
    spec = {
        "name": "runner-availability",
        "metric": "availability",
        "target": "runner_up",
        "op": ">=",
        "objective": 0.995,
        "window": "week",
        **slo,
    }
    query = {"expr": 'up{job="github-runner"}', "kind": "availability", "step": step}
    return Settings.model_validate(
        {
            "prometheus": {"url": url, "queries": {"runner_up": query}},
            "slos": [spec],
        }
    )


def evaluate(db: Path, period: Window = W47, **slo: Any) -> list[dict[str, Any]]:
    return deploystats.open(db, config=settings(**slo)).slos(window=period)["slos"]


def test_min_takes_the_least_available_series_with_its_samples_as_events(db: Path) -> None:
    (result,) = evaluate(db, aggregate="min")
    sli = A_GOOD / A_N  # 0.990079
    assert result["labels"] == {"instance": "runner-a"}
    assert (result["good"], result["n"], result["failures"]) == (A_GOOD, A_N, A_DOWN)
    assert result["sli"] == pytest.approx(sli)
    assert result["coverage"] == pytest.approx(B_COVERAGE)  # the lowest of the series
    assert result["allowed_failures"] == pytest.approx(0.005 * A_N)  # 50.4
    assert result["budget_consumed"] == pytest.approx((1 - sli) / 0.005)  # 1.984
    assert result["budget_remaining"] == pytest.approx(1 - (1 - sli) / 0.005)
    assert result["burn_rate"] == pytest.approx((1 - sli) / 0.005)  # period = SLO window
    assert result["status"] == "missed"
    assert "reason" not in result


def test_pooled_counts_every_sample_of_every_series(db: Path) -> None:
    (result,) = evaluate(db, aggregate="pooled")
    good, n = A_GOOD + B_GOOD, A_N + B_N  # 20,030 / 20,150 = 0.994045
    assert (result["good"], result["n"]) == (good, n)
    assert result["sli"] == pytest.approx(good / n)
    assert result["budget_consumed"] == pytest.approx((1 - good / n) / 0.005)  # 1.191
    assert result["status"] == "missed"
    assert "labels" not in result


def test_mean_averages_the_series_availabilities(db: Path) -> None:
    (result,) = evaluate(db, aggregate="mean", objective=0.99)
    sli = (A_GOOD / A_N + B_GOOD / B_N) / 2  # (0.990079 + 0.998014) / 2 = 0.994047
    assert result["sli"] == pytest.approx(sli)
    assert result["sli_ci"] is None  # a mean of ratios has no Wilson interval
    assert result["budget_consumed"] == pytest.approx((1 - sli) / 0.01)  # 0.595
    assert result["status"] == "met"


def test_each_evaluates_every_series_on_its_own(db: Path) -> None:
    a, b = evaluate(db, aggregate="each")
    assert (a["labels"], b["labels"]) == ({"instance": "runner-a"}, {"instance": "runner-b"})
    assert a["status"] == "missed"
    assert b["sli"] == pytest.approx(B_GOOD / B_N)  # 0.998014
    assert b["coverage"] == pytest.approx(B_COVERAGE)
    assert b["budget_consumed"] == pytest.approx((1 - B_GOOD / B_N) / 0.005)  # 0.397
    assert b["status"] == "met"


def test_coverage_below_min_coverage_is_insufficient_data_with_the_reason(db: Path) -> None:
    a, b = evaluate(db, aggregate="each", min_coverage=0.9995)
    assert a["status"] == "missed"  # runner-a has every minute
    assert b["status"] == "insufficient_data"
    assert b["sli"] == pytest.approx(B_GOOD / B_N)  # still shown
    assert (b["budget_consumed"], b["burn_rate"]) == (None, None)
    assert b["reason"].startswith("coverage 99.90% of runner_up is below min_coverage 99.95%")


def test_a_window_longer_than_the_data_is_insufficient_data(db: Path) -> None:
    # 28 days ending with W47 hold one week of samples: coverage 0.25 at best
    (result,) = evaluate(db, aggregate="min", window="28d")
    assert result["coverage"] == pytest.approx(B_COVERAGE / 4)
    assert result["status"] == "insufficient_data"
    assert "below min_coverage" in result["reason"]


def test_the_burn_rate_is_the_requested_period_alone(db: Path) -> None:
    # the first two days of W47 as the period, a week-long SLO window cut at its end:
    # runner-a's outage (minutes 600-699) falls in both
    period = Window(W47.start, W47.start + timedelta(days=2), "2 days", "UTC")
    (result,) = evaluate(db, period, aggregate="min")
    minutes = 2 * 24 * 60
    sli = (minutes - A_DOWN) / minutes  # 2,780 / 2,880
    assert result["n"] == minutes
    assert result["sli"] == pytest.approx(sli)
    assert result["burn_rate"] == pytest.approx((1 - sli) / 0.005)  # 6.94
    week = Window(W47.start, W47.end, "W47", "UTC")
    (in_a_day,) = evaluate(
        db, Window(W47.end - timedelta(days=1), W47.end, "last day", "UTC"), window="7d"
    )
    assert in_a_day["sli"] == pytest.approx(evaluate(db, week, aggregate="min")[0]["sli"])
    assert in_a_day["burn_rate"] == pytest.approx(0.0)  # nothing down on the last day


def test_no_samples_in_the_window_says_so(db: Path) -> None:
    (result,) = evaluate(db, iso_week("2026-W40"), aggregate="min")
    assert result["status"] == "insufficient_data"
    assert (result["sli"], result["n"], result["coverage"]) == (None, 0, 0.0)
    assert result["reason"].startswith("no samples of runner_up in the window")


@pytest.mark.parametrize(
    ("slo", "message"),
    [
        ({"target": "production"}, "'production' is not a prometheus query of kind availability"),
        ({"aggregate": "max"}, "aggregate: 'max' is not one of each, min, mean, pooled"),
    ],
)
def test_a_misconfigured_availability_slo_is_a_config_error(
    db: Path, slo: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        evaluate(db, **slo)


def test_an_availability_slo_over_samples_synced_from_prometheus(
    prometheus: Start, tmp_path: Path
) -> None:
    server = prometheus(runner_series())  # two days at 15 s; runner-b down for 20 minutes
    config = settings(url=server.url, step="15s", aggregate="min", window="2d", objective=0.99)
    db = tmp_path / "db.duckdb"
    start, end = SYNC_T0, SYNC_T0 + timedelta(days=2)
    with PrometheusClient(url=server.url) as client:
        sync_prometheus(Store(db), config, client, since=start, until=end)
    (result,) = deploystats.open(db, config=config).slos(
        window=Window(start, end, "2 days", "UTC")
    )["slos"]
    n, down = 2 * 86400 // 15, 1200 // 15  # 11,520 samples, 80 of them down
    assert result["labels"] == {"__name__": "up", "instance": "runner-b", "job": "github-runner"}
    assert (result["good"], result["n"], result["coverage"]) == (n - down, n, 1.0)
    assert result["sli"] == pytest.approx((n - down) / n)  # 0.993056
    assert result["budget_consumed"] == pytest.approx(down / n / 0.01)  # 0.694
    assert result["status"] == "met"
