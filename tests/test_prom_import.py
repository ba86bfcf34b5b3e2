"""import prometheus and availability: the real 48 h `up` data, checked against its raw samples."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import deploystats
from deploystats.config import Settings
from deploystats.errors import DumpError
from deploystats.metrics.prometheus import prometheus_as_of
from deploystats.metrics.windows import Window
from deploystats.prom import import_prometheus
from deploystats.store import Store
from tests.conftest import run_deploystats

UP = "prometheus/prometheus_api_client_up_48h"
START = datetime(2019, 7, 28, 10, tzinfo=UTC)  # the samples span 10:00:04 to 09:59:51 UTC
END = datetime(2019, 7, 30, 10, tzinfo=UTC)


def raw_series(realdata: Path) -> dict[str, dict[float, float]]:
    """instance -> {ts: value} from the 6-hour files (they overlap: one value per timestamp)."""
    out: dict[str, dict[float, float]] = defaultdict(dict)
    for path in sorted((realdata / UP).glob("*.json")):
        for item in json.loads(path.read_text()):
            for ts, value in item["values"]:
                out[item["metric"]["instance"]][float(ts)] = float(value)
    return out


def settings(step: str = "60s") -> Settings:
    return Settings.model_validate(
        {
            "prometheus": {
                "url": "http://127.0.0.1:9",
                "queries": {"up": {"expr": "up", "kind": "availability", "step": step}},
            }
        }
    )


@pytest.fixture
def imported(realdata: Path, tmp_path: Path) -> Path:
    db = tmp_path / "db.duckdb"
    import_prometheus(Store(db), sorted((realdata / UP).glob("*.json")), query="up")
    return db


def by_instance(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["labels"]["instance"]: s for s in result["prometheus"]["up"]["series"]}


def test_the_known_outages_of_the_real_up_data_show_in_availability(
    realdata: Path, imported: Path
) -> None:
    raw = raw_series(realdata)
    result = deploystats.open(imported, config=settings()).metrics(
        window=Window(START, END, "48h", "UTC")
    )
    series = by_instance(result)
    assert set(series) == set(raw)
    for instance, samples in raw.items():
        inside = [v for ts, v in samples.items() if START.timestamp() <= ts < END.timestamp()]
        valued = [v for v in inside if not math.isnan(v)]
        assert series[instance]["samples"] == len(inside), instance
        expected = sum(v >= 1 for v in valued) / len(valued) if valued else None
        assert series[instance]["availability"] == pytest.approx(expected), instance
    # the MANIFEST's known outages, as zero samples per series
    zeros = {i.split(".")[0]: sum(v == 0 for v in s.values()) for i, s in raw.items()}
    assert zeros["metrics-exporter-thoth-test-core"] == 2504  # job "Thoth Metrics (test)"
    assert zeros["prometheus-anomaly-detector-prophet-1"] == 140
    assert zeros["prometheus-anomaly-detector-prophet-2"] == 25
    prophet0 = next(i for i in series if "prophet-0" in i)
    assert series[prophet0]["availability"] == 0.0  # always down


def test_coverage_counts_step_buckets_holding_a_sample(realdata: Path, imported: Path) -> None:
    raw = raw_series(realdata)
    window = Window(START, END, "48h", "UTC")
    series = by_instance(deploystats.open(imported, config=settings("60s")).metrics(window=window))
    for instance, samples in raw.items():
        buckets = {
            int((ts - START.timestamp()) // 60)
            for ts, v in samples.items()
            if START.timestamp() <= ts < END.timestamp() and not math.isnan(v)
        }
        assert series[instance]["coverage"] == pytest.approx(len(buckets) / (48 * 60)), instance


def test_a_window_without_samples_has_zero_coverage(imported: Path) -> None:
    later = Window(datetime(2019, 8, 5, tzinfo=UTC), datetime(2019, 8, 6, tzinfo=UTC), "d", "UTC")
    series = deploystats.open(imported, config=settings()).metrics(window=later)
    assert {
        (s["samples"], s["coverage"], s["availability"])
        for s in series["prometheus"]["up"]["series"]
    } == {(0, 0.0, None)}


def test_importing_twice_stores_each_sample_once(realdata: Path, imported: Path) -> None:
    again = import_prometheus(Store(imported), sorted((realdata / UP).glob("*.json")), query="up")
    result = deploystats.open(imported, config=settings()).metrics(
        window=Window(START, END, "48h", "UTC")
    )
    total = sum(s["samples"] for s in result["prometheus"]["up"]["series"])
    assert total == sum(len(s) for s in raw_series(realdata).values())
    assert again.samples >= total  # the files overlap: more lines read than samples stored


def test_a_vector_response_is_refused_with_what_to_save_instead(tmp_path: Path) -> None:
    path = tmp_path / "vector.json"
    path.write_text(
        json.dumps(
            {
                "status": "success",
                "data": {
                    "resultType": "vector",
                    "result": [{"metric": {"__name__": "up"}, "value": [1564308009.8, "1"]}],
                },
            }
        )
    )
    with pytest.raises(DumpError, match=r"resultType 'vector' is not a matrix: save a range query"):
        import_prometheus(Store(tmp_path / "db.duckdb"), [path], query="up")


def test_the_import_command_names_what_it_stored(realdata: Path, tmp_path: Path) -> None:
    files = sorted(str(p) for p in (realdata / UP).glob("*.json"))
    done = run_deploystats(
        "--db", "db.duckdb", "import", "prometheus", *files, "--query", "runner_up", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    read = sum(len(item["values"]) for f in files for item in json.loads(Path(f).read_text()))
    assert done.stdout.strip() == (
        f"imported {len(files)} files into db.duckdb as runner_up: "
        f"{len(raw_series(realdata))} series, {read:,} samples read"
    )


def test_until_says_how_far_imported_responses_are_complete(realdata: Path, tmp_path: Path) -> None:
    # an alert that stopped firing leaves no samples: only the end the responses were fetched
    # with says the query's data is complete until then; without it, the newest sample does
    files = sorted(str(p) for p in (realdata / UP).glob("*.json"))
    newest = max(ts for s in raw_series(realdata).values() for ts in s)

    def as_of() -> datetime:
        with Store(tmp_path / "db.duckdb").open(read_only=True) as con:
            return prometheus_as_of(con, ["runner_up"])

    def import_(*until: str) -> None:
        done = run_deploystats(
            "--db", "db.duckdb", "import", "prometheus", *files, "--query", "runner_up",
            *until, cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    import_()
    assert as_of() == datetime.fromtimestamp(newest, UTC)
    import_("--until", "2019-07-30T12:00:00Z")
    assert as_of() == datetime(2019, 7, 30, 12, tzinfo=UTC)
    import_("--until", "2019-07-30T11:00:00Z")  # an older end never moves it back
    assert as_of() == datetime(2019, 7, 30, 12, tzinfo=UTC)
