"""The real Prometheus test server: backfilled data served exactly, with 2.42's query semantics."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from pathlib import Path

import httpx
import pytest

from tests.promserver import (
    PrometheusFixtureError,
    PrometheusServer,
    Sample,
    Series,
    require_prometheus,
    write_openmetrics,
)

Start = Callable[[Iterable[Series]], PrometheusServer]
T0 = 1_699_999_200  # 2023-11-14 22:00 UTC, a whole hour: long before the server's own clock
MIN = 60
HOUR = 3600


def up(job: str, points: Iterable[tuple[float, float]]) -> Series:
    return Series("up", {"job": job}, [Sample(ts, value) for ts, value in points])


def query_range(server: PrometheusServer, expr: str, start: float, end: float, step: int) -> list:
    params = {"query": expr, "start": str(start), "end": str(end), "step": str(step)}
    response = httpx.get(f"{server.url}/api/v1/query_range", params=params, timeout=10)
    return response.json()["data"]["result"]


def test_write_openmetrics_groups_families_sorts_samples_and_ends_with_eof(
    tmp_path: Path,
) -> None:
    series = [
        Series("up", {"job": "x"}, [Sample(T0 + 60, 0.0), Sample(T0 + 0.5, 1.0)]),
        Series("errors", {"path": 'a"b\\c\nd'}, [Sample(T0, math.nan)]),
        Series("up", {"job": "y"}, [Sample(T0 + 0.0004, math.inf)]),
    ]
    path = tmp_path / "fixture.om"

    assert write_openmetrics(series, path) == 4
    assert path.read_text() == (
        "# TYPE up gauge\n"
        'up{job="x"} 1.0 1699999200.5\n'
        'up{job="x"} 0.0 1699999260.0\n'
        'up{job="y"} +Inf 1699999200.0\n'
        "# TYPE errors gauge\n"
        'errors{path="a\\"b\\\\c\\nd"} NaN 1699999200.0\n'
        "# EOF\n"
    )


def test_instant_query_returns_backfilled_value_at_past_time(prometheus: Start) -> None:
    server = prometheus([up("x", [(T0, 1), (T0 + MIN, 0.25), (T0 + 2 * MIN, 1)])])

    assert server.query('up{job="x"}', T0 + 90) == [
        {"metric": {"__name__": "up", "job": "x"}, "value": [T0 + 90, "0.25"]}
    ]


def test_range_vector_returns_raw_samples_with_both_edges_included(prometheus: Start) -> None:
    """2.42 selects [t-2h, t] (Prometheus 3 made the left edge open): a chunked fetch sees the
    sample on a chunk boundary twice and must dedupe it."""
    half_hours = [(T0 + k * 1800, k) for k in range(9)]
    server = prometheus([up("x", [*half_hours, (T0 + 2 * HOUR + 0.123, 99)])])
    t = T0 + 3 * HOUR

    [result] = server.query('up{job="x"}[2h]', t)

    assert result["values"] == [
        [T0 + HOUR, "2"],
        [T0 + 1.5 * HOUR, "3"],
        [T0 + 2 * HOUR, "4"],
        [T0 + 2 * HOUR + 0.123, "99"],
        [T0 + 2.5 * HOUR, "5"],
        [T0 + 3 * HOUR, "6"],
    ]


def test_query_range_evaluates_steps_with_five_minute_lookback(prometheus: Start) -> None:
    """Samples at minutes 0, 3, 4, 14, 15 (value = minute). The 3-minute gap is filled by the
    previous sample; after the 10-minute gap the steps more than 5 minutes past minute 4 have
    no point (in 2.42 the lookback includes its left edge: minute 9 still sees minute 4)."""
    server = prometheus([up("x", [(T0 + m * MIN, m) for m in (0, 3, 4, 14, 15)])])

    [result] = query_range(server, 'up{job="x"}', T0, T0 + 15 * MIN, MIN)

    by_minute = {0: 0, 1: 0, 2: 0, 3: 3, 4: 4, 5: 4, 6: 4, 7: 4, 8: 4, 9: 4, 14: 14, 15: 15}
    assert result["values"] == [[T0 + m * MIN, str(v)] for m, v in by_minute.items()]


def test_nan_and_infinities_come_back_as_strings(prometheus: Start) -> None:
    server = prometheus(
        [up("x", [(T0, math.nan), (T0 + MIN, math.inf), (T0 + 2 * MIN, -math.inf)])]
    )

    [result] = server.query('up{job="x"}[5m]', T0 + 2 * MIN)

    assert result["values"] == [[T0, "NaN"], [T0 + MIN, "+Inf"], [T0 + 2 * MIN, "-Inf"]]


@pytest.mark.parametrize(
    ("series", "lost"),
    [
        pytest.param(
            [
                Series("up", {"job": "x", "env": "prod"}, [Sample(T0, 1), Sample(T0 + 120, 1)]),
                Series(
                    "up", {"env": "prod", "job": "x"}, [Sample(T0 + 60, 0), Sample(T0 + 180, 1)]
                ),
            ],
            'up{env="prod",job="x"}: 4 written, 3 served',
            id="one-series-split-in-two-with-labels-reordered",
        ),
        pytest.param(
            [
                Series("up", {"job": "x"}, [Sample(T0, 1), Sample(T0 + 120, 1)]),
                Series("up", {"job": "x", "env": ""}, [Sample(T0 + 60, 0)]),
            ],
            'up{job="x"}: 3 written, 2 served',
            id="empty-label-value-is-no-label",
        ),
        pytest.param(
            [up("x", [(T0, 1), (T0 + 0.0004, 0)])],
            'up{job="x"}: 2 written, 1 served',
            id="timestamps-equal-at-millisecond-resolution",
        ),
    ],
)
def test_samples_promtool_drops_silently_fail_the_count_check(
    series: list[Series], lost: str, tmp_path: Path
) -> None:
    require_prometheus()
    server = PrometheusServer(series, workdir=tmp_path)

    try:
        with pytest.raises(PrometheusFixtureError, match="promtool dropped samples") as caught:
            server.start()
    finally:
        server.stop()  # only needed when start() wrongly succeeds

    assert str(caught.value).endswith(lost)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/-/ready")


def test_kill_makes_the_next_request_fail_with_connection_error(prometheus: Start) -> None:
    server = prometheus([up("x", [(T0, 1)])])
    assert server.query("up", T0) != []

    server.kill()

    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/api/v1/query", params={"query": "up", "time": str(T0)})


def test_two_servers_run_at_once_on_different_ports_with_their_own_data(
    prometheus: Start,
) -> None:
    first = prometheus([up("a", [(T0, 1)])])
    second = prometheus([up("b", [(T0, 2)])])

    assert first.url != second.url
    assert first.query("up", T0) == [{"metric": {"__name__": "up", "job": "a"}, "value": [T0, "1"]}]
    assert second.query("up", T0) == [
        {"metric": {"__name__": "up", "job": "b"}, "value": [T0, "2"]}
    ]


def test_start_failure_reports_exit_code_and_log_tail(tmp_path: Path) -> None:
    fake = tmp_path / "prometheus"
    fake.write_text("#!/bin/sh\necho 'err: opening storage failed' >&2\nexit 3\n")
    fake.chmod(0o755)
    server = PrometheusServer([], workdir=tmp_path / "work", binary=str(fake))

    try:
        with pytest.raises(PrometheusFixtureError) as caught:
            server.start()
    finally:
        server.stop()

    assert str(caught.value) == (
        "prometheus exited with 3 before it could log the port it listens on; log tail:\n"
        "err: opening storage failed"
    )


@pytest.mark.parametrize(
    ("ci", "outcome"), [("", pytest.skip.Exception), ("true", pytest.fail.Exception)]
)
def test_missing_prometheus_skips_outside_ci_and_fails_in_ci(
    ci: str, outcome: type[BaseException], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CI", ci)

    with pytest.raises(outcome, match="prometheus and promtool not found on PATH"):
        require_prometheus()


def load_up_48h(folder: Path) -> list[Series]:
    """The 8 six-hour `data.result` files merged per series, deduplicated by timestamp (the
    files do not overlap today; a repeated timestamp with another value fails the test)."""
    merged: dict[str, tuple[dict[str, str], dict[float, str]]] = {}
    for path in sorted(folder.glob("*.json")):
        for row in json.loads(path.read_text()):
            labels = {k: v for k, v in row["metric"].items() if k != "__name__"}
            _, values = merged.setdefault(json.dumps(labels, sort_keys=True), (labels, {}))
            for ts, value in row["values"]:
                assert values.setdefault(ts, value) == value, f"{labels} {ts}: two values"
    return [
        Series("up", labels, [Sample(ts, float(v)) for ts, v in sorted(values.items())])
        for labels, values in merged.values()
    ]


def test_real_up_48h_is_served_sample_for_sample(prometheus: Start, realdata: Path) -> None:
    series = load_up_48h(realdata / "prometheus" / "prometheus_api_client_up_48h")
    first = min(s.samples[0].ts for s in series)
    last = max(s.samples[-1].ts for s in series)
    server = prometheus(series)

    # 1 s more than the span: the first sample is inside whether or not the left edge is
    result = server.query(f"up[{round((last - first) * 1000) + 1000}ms]", last)

    served = {row["metric"]["instance"].split(".")[0]: row["values"] for row in result}
    expected = {
        s.labels["instance"].split(".")[0]: [[x.ts, f"{x.value:g}"] for x in s.samples]
        for s in series
    }
    assert served == expected
    assert len(served) == 9
    assert sum(len(values) for values in served.values()) == 54_712
    zeros = {instance: [v for _, v in values].count("0") for instance, values in served.items()}
    assert zeros["metrics-exporter-thoth-test-core"] == 2_504  # job "Thoth Metrics (test)"
    assert zeros["prometheus-anomaly-detector-prophet-1"] == 140
    assert zeros["prometheus-anomaly-detector-prophet-2"] == 25
    prophet_0 = served["prometheus-anomaly-detector-prophet-0"]
    assert zeros["prometheus-anomaly-detector-prophet-0"] == len(prophet_0) == 2_880
