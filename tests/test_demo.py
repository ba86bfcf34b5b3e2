"""The demo's data, whatever weekday and hour it runs: `make demo` and CI run at any time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deploystats.api import Deploystats
from deploystats.config import Settings
from deploystats.demo import load_demo
from deploystats.ingest import import_dumps
from deploystats.simulate import REPO, demo_config, simulate, write_dumps
from deploystats.store import Store

MONDAY = datetime(2026, 11, 23, tzinfo=UTC)


@pytest.mark.parametrize(
    "end",
    [
        MONDAY,  # the first hour of a week
        MONDAY + timedelta(hours=7),  # Monday morning: the team deployed last on Friday
        MONDAY + timedelta(days=2, hours=13),
        MONDAY + timedelta(days=4, hours=11),
        MONDAY + timedelta(days=5, hours=12),  # Saturday
        MONDAY + timedelta(days=6, hours=23),
    ],
    ids=lambda end: end.strftime("%a-%H"),
)
def test_the_demos_last_complete_week_is_never_stale(tmp_path: Path, end: datetime) -> None:
    store = Store(tmp_path / "demo.duckdb")
    loaded = load_demo(store, tmp_path / "sample", seed=5, end=end)
    ds = Deploystats(store.path, config=Settings.model_validate(loaded.config))
    window = ds.metrics(window=ds.window(now=end))["window"]
    assert window["end"] == MONDAY.isoformat()
    assert window["data_as_of"] == end.isoformat()
    assert window["stale"] is False


def test_import_until_says_when_the_dump_was_taken(tmp_path: Path) -> None:
    # the dump was taken at midnight, as the week ended; its newest run ended a little
    # earlier: without --until the data ends there and the week is stale, with it the data
    # is complete until the week's end
    taken = MONDAY
    sim = simulate(seed=5, end=taken)
    newest = max(datetime.fromisoformat(r["updated_at"]) for r in sim.runs)
    assert newest < MONDAY
    paths = write_dumps(sim, tmp_path / "dumps")
    store = Store(tmp_path / "db.duckdb")
    ds = Deploystats(store.path, config=Settings.model_validate(demo_config(sim)))

    def window() -> dict[str, object]:
        return ds.metrics(window=ds.window(now=taken))["window"]

    import_dumps(store, [paths["runs"], paths["jobs"]])
    assert (window()["data_as_of"], window()["stale"]) == (newest.isoformat(), True)
    import_dumps(store, [paths["runs"]], until=taken)
    assert (window()["data_as_of"], window()["stale"]) == (taken.isoformat(), False)
    import_dumps(store, [paths["runs"]], until=MONDAY - timedelta(days=3))  # never back
    assert window()["data_as_of"] == taken.isoformat()
    store.forget_repo(REPO)  # the demo replaces its history: its cursor goes with it
    import_dumps(store, [paths["runs"]])
    assert window()["data_as_of"] == newest.isoformat()
