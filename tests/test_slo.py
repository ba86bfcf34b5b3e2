"""SLO evaluation (DESIGN §6) on the simulated history, checked against the ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import deploystats
from deploystats.config import Settings
from deploystats.metrics.slo import slo_window
from deploystats.metrics.windows import iso_week
from deploystats.simulate import Simulation

SUCCESS = {"name": "s", "metric": "success_rate", "target": "production", "op": ">="}


def with_slos(settings: Settings, *slos: dict[str, Any], **defaults: Any) -> Settings:
    return settings.model_copy(update={"slos": list(slos), "slo_defaults": defaults})


def ledger_counts(sim: Simulation, start: datetime, end: datetime) -> tuple[int, int]:
    """(successes, counted) of deploy attempts whose deploy or run start is in [start, end)."""
    run_started = {(r["id"], r["run_attempt"]): r["run_started_at"] for r in sim.runs}
    good = counted = 0
    for row in sim.ledger:
        if row["workflow"] != "deploy":
            continue
        text = row["deploy_started_at"] or run_started[(row["run_id"], row["run_attempt"])]
        began = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if start <= began < end and row["outcome"] in ("success", "failure", "rolled_back"):
            counted += 1
            good += row["outcome"] == "success"
    return good, counted


def slos_for(db: Path, settings: Settings, week: str) -> list[dict[str, Any]]:
    return deploystats.open(db, config=settings).slos(week=week)["slos"]


def test_a_28_day_success_slo_ends_with_the_requested_week(demo: Any) -> None:
    sim, db, settings = demo
    spec = {**SUCCESS, "objective": 0.95, "window": "28d"}
    (result,) = slos_for(db, with_slos(settings, spec), "2026-W47")

    end = datetime(2026, 11, 23, tzinfo=UTC)
    good, n = ledger_counts(sim, end - timedelta(days=28), end)
    week_good, week_n = ledger_counts(sim, end - timedelta(days=7), end)
    sli = good / n
    assert (result["n"], result["good"]) == (n, good)
    assert result["sli"] == pytest.approx(sli)
    assert result["budget_consumed"] == pytest.approx((1 - sli) / 0.05)
    assert result["budget_remaining"] == pytest.approx(1 - (1 - sli) / 0.05)
    assert result["burn_rate"] == pytest.approx((1 - week_good / week_n) / 0.05)
    expected = "missed" if sli < 0.95 else ("at_risk" if (1 - sli) / 0.05 >= 0.75 else "met")
    assert result["status"] == expected


def test_met_with_most_of_the_budget_spent_is_at_risk(demo: Any) -> None:
    _, db, settings = demo
    base = {**SUCCESS, "window": "28d"}
    (probe,) = slos_for(db, with_slos(settings, {**base, "objective": 0.9}), "2026-W47")
    objective = 1 - (1 - probe["sli"]) / 0.8  # budget consumed = 0.8
    (result,) = slos_for(db, with_slos(settings, {**base, "objective": objective}), "2026-W47")
    assert result["sli"] >= objective
    assert result["budget_consumed"] == pytest.approx(0.8)
    assert result["status"] == "at_risk"


def test_baseline_weeks_miss_the_success_slo_and_go_over_budget(demo: Any) -> None:
    _, db, settings = demo
    spec = {**SUCCESS, "objective": 0.95, "window": "week"}
    (result,) = slos_for(db, with_slos(settings, spec), "2026-W39")
    assert result["status"] == "missed"
    assert result["budget_remaining"] < 0


def test_an_objective_of_one_has_no_budget(demo: Any) -> None:
    _, db, settings = demo
    spec = {**SUCCESS, "objective": 1.0, "window": "week"}
    (result,) = slos_for(db, with_slos(settings, spec), "2026-W39")
    assert result["error_budget"] == 0
    assert result["budget_consumed"] == 1.0
    assert result["burn_rate"] is None
    assert result["status"] == "missed"


def test_too_few_events_is_insufficient_data_not_a_verdict(demo: Any) -> None:
    _, db, settings = demo
    spec = {**SUCCESS, "objective": 0.95, "window": "week"}
    (result,) = slos_for(db, with_slos(settings, spec, min_events=1000), "2026-W47")
    assert result["status"] == "insufficient_data"
    assert result["sli"] is not None  # the SLI is still shown, with its interval
    assert result["burn_rate"] is None


def test_a_threshold_slo_reports_the_share_over_the_threshold(demo: Any) -> None:
    _, db, settings = demo
    spec = {
        "name": "p95",
        "metric": "duration_p95_s",
        "target": "production",
        "op": "<=",
        "objective": 600,
        "window": "week",
    }
    (improved,) = slos_for(db, with_slos(settings, spec), "2026-W47")
    (baseline,) = slos_for(db, with_slos(settings, spec), "2026-W39")
    metrics = deploystats.open(db, config=settings).metrics(week="2026-W47")
    assert improved["sli"] == metrics["targets"]["production"]["duration_p95_s"]
    assert improved["status"] == "met"
    assert baseline["status"] == "missed"
    assert baseline["share_over_threshold"] > improved["share_over_threshold"]


def test_slo_windows_end_where_the_period_ends() -> None:
    week = iso_week("2026-W47")
    assert slo_window(week, "28d").start == datetime(2026, 10, 26, tzinfo=UTC)
    assert slo_window(week, "week") == week
    month = slo_window(week, "month")  # the calendar month holding the period's end, cut there
    assert (month.start, month.end) == (datetime(2026, 11, 1, tzinfo=UTC), week.end)
