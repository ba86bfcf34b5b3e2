"""The demo's Prometheus data: its ledger, and the metrics of the imported responses against it."""

from __future__ import annotations

import copy
import statistics
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

import deploystats
from deploystats.config import Settings
from deploystats.ingest import import_dumps
from deploystats.metrics.windows import Window, iso_week
from deploystats.prom import import_prometheus
from deploystats.simulate import PRIMARY_RUNNER, Simulation, demo_config, simulate, write_dumps
from deploystats.simulate_prom import PromSimulation, simulate_prometheus, write_prometheus
from deploystats.store import Store
from tests.conftest import DEMO_END

WEEKS = ("2026-W46", "2026-W47")  # the two weeks of Prometheus data before DEMO_END


@pytest.fixture(scope="module")
def loaded(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Simulation, PromSimulation, Path, Settings]:
    """The demo's history and Prometheus responses imported as `deploystats demo` does."""
    folder = tmp_path_factory.mktemp("demo-prom")
    sim = simulate(seed=7, end=DEMO_END)
    psim = simulate_prometheus(sim, seed=7)
    dumps = write_dumps(sim, folder / "dumps")
    db = folder / "db.duckdb"
    import_dumps(
        Store(db), [dumps[k] for k in ("runs", "jobs", "deployments", "deployment_statuses")]
    )
    for query, path in write_prometheus(psim, folder / "prometheus").items():
        import_prometheus(Store(db), [path], query=query)
    return sim, psim, db, Settings.model_validate(demo_config(sim))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def scrapes(ledger: dict[str, Any], instance: str, window: Window) -> list[datetime]:
    """The times the simulator scraped `instance` in the window: every minute at its offset,
    except in the scrape gaps (worked out from the ledger, not from the responses)."""
    offset = 7 if instance.startswith(PRIMARY_RUNNER.removesuffix("-runner")) else 37
    first = at(ledger["start"]) + timedelta(seconds=offset)
    gaps = [(at(g["start_at"]), at(g["end_at"])) for g in ledger["scrape_gaps"]]
    times = []
    t = first
    while t < at(ledger["end"]):
        if window.start <= t < window.end and not any(a <= t < b for a, b in gaps):
            times.append(t)
        t += timedelta(minutes=1)
    return times


def test_the_ledger_has_an_outage_a_gap_and_one_undetected_failure(loaded: Any) -> None:
    sim, psim, _, _ = loaded
    ledger = psim.ledger
    assert sim.runner_outage is not None
    (outage,) = ledger["outages"]
    assert (at(outage["start_at"]), at(outage["end_at"])) == (
        sim.runner_outage[0],
        sim.runner_outage[2],
    )
    assert {g["end_at"] for g in ledger["scrape_gaps"]} == {ledger["scrape_gaps"][0]["end_at"]}
    gap = ledger["scrape_gaps"][0]
    assert at(gap["end_at"]) - at(gap["start_at"]) == timedelta(minutes=3)  # < 5 min lookback
    undetected = [f for f in ledger["failures"] if f["detect_s"] is None]
    assert len(undetected) == 1 and not undetected[0]["alerted"]
    assert 0.0 in [f["detect_s"] for f in ledger["failures"]]  # RunnerDown already firing
    assert {i["alertname"] for i in ledger["alert_incidents"]} == {"DeployFailed", "RunnerDown"}


def test_the_same_seed_gives_the_same_responses(loaded: Any) -> None:
    sim, psim, _, _ = loaded
    again = simulate_prometheus(sim, seed=7)
    assert orjson.dumps(again.responses) == orjson.dumps(psim.responses)
    assert again.ledger == psim.ledger


@pytest.mark.parametrize("week", WEEKS)
def test_availability_and_coverage_match_the_ledger(loaded: Any, week: str) -> None:
    _, psim, db, settings = loaded
    window = iso_week(week)
    result = deploystats.open(db, config=settings).metrics(window=window)
    outages = [(at(o["start_at"]), at(o["end_at"])) for o in psim.ledger["outages"]]
    got = {s["labels"]["instance"]: s for s in result["prometheus"]["runner_up"]["series"]}
    assert len(got) == 2
    for instance, series in got.items():
        times = scrapes(psim.ledger, instance, window)
        primary = instance.startswith(PRIMARY_RUNNER.removesuffix("-runner"))
        down = [t for t in times if primary and any(a <= t < b for a, b in outages)]
        assert series["samples"] == len(times)
        assert series["availability"] == pytest.approx((len(times) - len(down)) / len(times))
        assert series["coverage"] == pytest.approx(len(times) / (7 * 24 * 60))


@pytest.mark.parametrize("week", WEEKS)
def test_alert_incidents_and_time_to_detect_match_the_ledger(loaded: Any, week: str) -> None:
    _, psim, db, settings = loaded
    window = iso_week(week)
    result = deploystats.open(db, config=settings).metrics(window=window)
    ending = [
        (at(i["end_at"]) - at(i["start_at"])).total_seconds()
        for i in psim.ledger["alert_incidents"]
        if window.start <= at(i["end_at"]) < window.end
    ]
    alerts = result["prometheus"]["deploy_alerts"]
    assert alerts["alert_incidents"] == len(ending)
    assert alerts["alert_mttr_s"] == pytest.approx(statistics.mean(ending))
    assert alerts["alert_restore_median_s"] == pytest.approx(statistics.median(ending))

    failures = [
        f for f in psim.ledger["failures"] if window.start <= at(f["started_at"]) < window.end
    ]
    detected = [f["detect_s"] for f in failures if f["detect_s"] is not None]
    production = result["targets"]["production"]
    assert production["failures"] + production["rolled_back"] == len(failures)
    assert production["detect_n"] == len(detected)
    assert production["detected_share"] == pytest.approx(len(detected) / len(failures))
    assert production["detect_p50_s"] == pytest.approx(statistics.median(detected))


def test_the_demo_week_shows_the_outage_and_the_undetected_failure(loaded: Any) -> None:
    _, psim, db, settings = loaded
    week = iso_week(WEEKS[1])
    in_week = [f for f in psim.ledger["failures"] if week.start <= at(f["started_at"]) < week.end]
    assert [f["detect_s"] for f in in_week].count(None) == 1
    (slo,) = [
        s
        for s in deploystats.open(db, config=settings).slos(window=week)["slos"]
        if s["metric"] == "availability"
    ]
    times = scrapes(psim.ledger, f"{PRIMARY_RUNNER.removesuffix('-runner')}:9101", week)
    (outage,) = psim.ledger["outages"]
    down = [t for t in times if at(outage["start_at"]) <= t < at(outage["end_at"])]
    assert len(down) == 210  # 3.5 h of minutes
    assert slo["labels"]["instance"].startswith("dell-r640-01")
    assert (slo["good"], slo["n"]) == (len(times) - len(down), len(times))
    assert slo["coverage"] == pytest.approx(len(times) / (7 * 24 * 60))
    assert slo["status"] == "missed"


def test_the_weeks_before_the_data_have_no_coverage(loaded: Any) -> None:
    _, _, db, settings = loaded
    result = deploystats.open(db, config=settings).metrics(window=iso_week("2026-W40"))
    series = result["prometheus"]["runner_up"]["series"]
    assert [(s["samples"], s["availability"], s["coverage"]) for s in series] == [
        (0, None, 0.0),
        (0, None, 0.0),
    ]


def test_data_as_of_is_the_older_of_github_and_prometheus(loaded: Any, tmp_path: Path) -> None:
    """DESIGN §5: data_as_of is the minimum over the scopes read, Prometheus queries
    included; a Prometheus import that stops three days early makes the last week stale."""
    sim, psim, _, settings = loaded
    cut = DEMO_END - timedelta(days=3)
    db = tmp_path / "db.duckdb"
    dumps = write_dumps(sim, tmp_path / "dumps")
    import_dumps(
        Store(db), [dumps[k] for k in ("runs", "jobs", "deployments", "deployment_statuses")]
    )
    responses = copy.deepcopy(psim.responses)  # the fixture's responses stay whole
    newest = []
    for query, body in responses.items():
        for series in body["data"]["result"]:
            series["values"] = [v for v in series["values"] if float(v[0]) < cut.timestamp()]
            newest.append(max(float(v[0]) for v in series["values"]))
        path = tmp_path / f"{query}.json"
        path.write_bytes(orjson.dumps(body))
        import_prometheus(Store(db), [path], query=query)
    header = deploystats.open(db, config=settings).metrics(week="2026-W47")["window"]
    oldest_query = min(  # each query's newest sample; the oldest of those counts
        max(float(v[0]) for s in body["data"]["result"] for v in s["values"])
        for body in responses.values()
    )
    assert datetime.fromisoformat(header["data_as_of"]).timestamp() == oldest_query
    assert oldest_query < cut.timestamp() <= max(newest) + 60
    assert header["stale"] is True and header["provisional"] is True
    github_only = deploystats.open(db, config=Settings(targets=settings.targets))
    github = github_only.metrics(week="2026-W47")["window"]
    assert datetime.fromisoformat(github["data_as_of"]) > cut
