"""The Prometheus HTTP layer: edge and error logic against a fake over httpx.MockTransport, then
the same client against a real Prometheus 2.42 with backfilled data."""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from deploystats.errors import ConfigError, PrometheusError
from deploystats.sources.prometheus import (
    Chunk,
    Event,
    PromAuth,
    PrometheusClient,
    Sample,
    SeriesData,
    is_plain_selector,
    parse_duration_s,
)
from tests.promserver import PrometheusServer, require_prometheus
from tests.promserver import Sample as FixtureSample
from tests.promserver import Series as FixtureSeries

URL = "http://prom.test:9090"
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z, a multiple of every step used here
TOKEN = "s3cret-bearer-token"
PASSWORD = "s3cret-password"
UP = {"__name__": "up", "job": "x", "instance": "a"}

Handler = Callable[[httpx.Request], httpx.Response]


def matrix(*series: tuple[dict[str, str], Sequence[tuple[float, str]]], **extra: Any) -> bytes:
    result = [{"metric": labels, "values": [list(v) for v in values]} for labels, values in series]
    return orjson.dumps(
        {"status": "success", "data": {"resultType": "matrix", "result": result}, **extra}
    )


def error_body(error_type: str, error: str) -> bytes:
    return orjson.dumps({"status": "error", "errorType": error_type, "error": error})


class FakePrometheus:
    """Answers /api/v1/query for `SELECTOR[DURATION]` and /api/v1/query_range for one stored
    series, recording every request; any other request fails the test.

    Range selection follows Prometheus 2 ([t - range, t], `left_open=False`) or Prometheus 3
    ((t - range, t]). query_range answers the series' latest value within the 5-minute lookback.
    """

    def __init__(self, samples_ms: list[tuple[int, str]], *, left_open: bool = False) -> None:
        self.samples_ms = sorted(samples_ms)
        self.left_open = left_open
        self.requests: list[dict[str, str]] = []
        self.methods: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        if request.method == "POST":
            params = dict(httpx.QueryParams(request.content.decode()))
        self.requests.append(params)
        self.methods.append(request.method)
        if request.url.path == "/api/v1/query":
            return self._query(params)
        if request.url.path == "/api/v1/query_range":
            return self._query_range(params)
        raise AssertionError(f"unexpected request {request.method} {request.url}")

    def _query(self, params: dict[str, str]) -> httpx.Response:
        assert set(params) == {"query", "time"}, params
        match = re.fullmatch(r"(.+)\[(\d+h)?(\d+m)?(\d+s)?(\d+ms)?\]", params["query"])
        assert match is not None, params["query"]
        units = {"h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}
        range_ms = sum(
            int(part.rstrip("hms")) * units[part.lstrip("0123456789")]
            for part in match.groups()[1:]
            if part
        )
        t = round(float(params["time"]) * 1000)
        low = t - range_ms
        values = [
            (ts / 1000, v)
            for ts, v in self.samples_ms
            if (low < ts if self.left_open else low <= ts) and ts <= t
        ]
        return httpx.Response(200, content=matrix((UP, values)) if values else matrix())

    def _query_range(self, params: dict[str, str]) -> httpx.Response:
        assert set(params) == {"query", "start", "end", "step"}, params
        start, end, step = (round(float(params[k]) * 1000) for k in ("start", "end", "step"))
        assert (end - start) // step + 1 <= 11_000, "Prometheus refuses > 11,000 points"
        values = []
        times = [ts for ts, _ in self.samples_ms]
        for t in range(start, end + 1, step):
            latest = bisect.bisect_right(times, t) - 1
            if latest >= 0 and times[latest] >= t - 300_000:
                values.append((t / 1000, self.samples_ms[latest][1]))
        return httpx.Response(200, content=matrix((UP, values)) if values else matrix())


class Recorder:
    """A sleep that records waits instead of sleeping."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def make_client(handler: Handler, **options: Any) -> PrometheusClient:
    options.setdefault("sleep", Recorder())
    return PrometheusClient(url=URL, transport=httpx.MockTransport(handler), **options)


def scripted(*responses: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler answering each request with the next response (or raising the exception)."""
    queue = list(responses)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        assert queue, f"unexpected extra request {request.url}"
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler, seen


def raw(
    client: PrometheusClient,
    selector: str = 'up{job="x"}',
    *,
    start: float = T0,
    end: float = T0 + 60,
    chunk_s: float = 6 * 3600,
) -> list[Chunk]:
    return list(client.query_raw(selector, start=start, end=end, chunk_s=chunk_s))


def all_samples(chunks: list[Chunk]) -> list[float]:
    return [s.ts for chunk in chunks for series in chunk.series for s in series.samples]


# -- errors ----------------------------------------------------------------------------------


def test_bad_data_is_raised_at_once_with_prometheus_message() -> None:
    body = error_body("bad_data", 'invalid parameter "query": 1:8: parse error: unexpected "}"')
    handler, seen = scripted(httpx.Response(400, content=body))
    with make_client(handler) as client, pytest.raises(PrometheusError) as caught:
        list(client.query_range("up{job=}", start=T0, end=T0 + 60, step_s=15))
    assert str(caught.value) == (
        "Prometheus rejected query 'up{job=}': bad_data: invalid parameter \"query\": 1:8: "
        'parse error: unexpected "}"'
    )
    assert len(seen) == 1


def test_execution_error_is_raised_at_once_on_one_line() -> None:
    body = error_body("execution", "found duplicate series for the match group\non the right")
    sleep = Recorder()
    handler, seen = scripted(httpx.Response(422, content=body))
    with make_client(handler, sleep=sleep) as client, pytest.raises(PrometheusError) as caught:
        list(client.query_range("a / on(job) b", start=T0, end=T0 + 60, step_s=15))
    assert str(caught.value) == (
        "Prometheus rejected query 'a / on(job) b': execution: found duplicate series for the "
        "match group on the right"
    )
    assert (len(seen), sleep.sleeps) == (1, [])


def test_timeout_503_is_retried_with_backoff_then_succeeds() -> None:
    timeout = httpx.Response(503, content=error_body("timeout", "query timed out"))
    ok = httpx.Response(200, content=matrix((UP, [(T0, "1")])))
    sleep = Recorder()
    events: list[Event] = []
    handler, seen = scripted(timeout, timeout, ok)
    with make_client(handler, sleep=sleep, on_event=events.append) as client:
        [chunk] = list(client.query_range("up", start=T0, end=T0 + 15, step_s=15))
    assert sleep.sleeps == [1.0, 2.0]
    assert (chunk.requests, client.requests_made, len(seen)) == (3, 3, 3)
    assert [(e.kind, e.status, e.seconds) for e in events] == [
        ("request", 503, None),
        ("wait", None, 1.0),
        ("request", 503, None),
        ("wait", None, 2.0),
        ("request", 200, None),
    ]
    assert events[1].reason == "answered 503 timeout: query timed out; try 2 of 5"


def test_connection_errors_give_cannot_reach_after_max_tries() -> None:
    refused = httpx.ConnectError("[Errno 111] Connection refused")
    sleep = Recorder()
    handler, seen = scripted(*[refused] * 5)
    with make_client(handler, sleep=sleep) as client, pytest.raises(PrometheusError) as caught:
        raw(client)
    assert str(caught.value) == (
        "cannot reach Prometheus at http://prom.test:9090: ConnectError: [Errno 111] Connection "
        "refused (5 tries); check prometheus.url"
    )
    assert sleep.sleeps == [1.0, 2.0, 4.0, 8.0]
    assert len(seen) == 5


def test_persistent_503_names_the_query_after_max_tries() -> None:
    unavailable = httpx.Response(503, text="Service Unavailable")
    sleep = Recorder()
    handler, _ = scripted(*[unavailable] * 3)
    client = make_client(handler, sleep=sleep, max_tries=3)
    with client, pytest.raises(PrometheusError) as caught:
        list(client.query_range("up", start=T0, end=T0 + 60, step_s=15))
    assert str(caught.value) == (
        "Prometheus at http://prom.test:9090 failed query 'up' 3 times (answered 503 Service "
        "Unavailable): try later, or sync a shorter window"
    )
    assert sleep.sleeps == [1.0, 2.0]


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_credentials_name_the_setting_and_never_the_secret(status: int) -> None:
    handler, seen = scripted(httpx.Response(status, text="Unauthorized"))
    auth = PromAuth(bearer_token=TOKEN)
    with make_client(handler, auth=auth) as client, pytest.raises(PrometheusError) as caught:
        raw(client)
    assert str(caught.value) == (
        f"Prometheus rejected the credentials ({status}): set the variable prometheus.auth names"
    )
    assert seen[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in repr(auth) + repr(client) + repr(caught.value)


def test_basic_auth_and_extra_headers_are_sent_and_the_password_never_shown() -> None:
    handler, seen = scripted(httpx.Response(200, content=matrix()))
    auth = PromAuth(username="reader", password=PASSWORD)
    url = f"http://reader:{PASSWORD}@prom.test:9090/prometheus/"
    transport = httpx.MockTransport(handler)
    with PrometheusClient(
        url=url, auth=auth, headers={"X-Scope-OrgID": "t1"}, transport=transport
    ) as client:
        assert client.url == "http://prom.test:9090/prometheus"
        raw(client)
    assert seen[0].url.path == "/prometheus/api/v1/query"
    assert seen[0].headers["authorization"] == httpx.BasicAuth("reader", PASSWORD)._auth_header
    assert seen[0].headers["x-scope-orgid"] == "t1"
    assert PASSWORD not in repr(auth) + repr(client)


def test_bearer_and_basic_together_are_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        PrometheusClient(
            url=URL, auth=PromAuth(bearer_token=TOKEN, username="u", password=PASSWORD)
        )
    assert str(caught.value) == (
        "prometheus.auth sets both a bearer token and basic auth: configure only one"
    )


def test_a_missing_ca_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "ca.pem"
    with pytest.raises(ConfigError) as caught:
        PrometheusClient(url="https://prom.test", ca_file=str(missing))
    assert str(caught.value) == (
        f"cannot load prometheus.ca_file {missing}: No such file or directory; point it at a "
        "PEM file"
    )


def test_a_connection_error_does_not_show_url_credentials() -> None:
    handler, _ = scripted(*[httpx.ConnectError("refused")] * 2)
    transport = httpx.MockTransport(handler)
    client = PrometheusClient(
        url=f"http://u:{PASSWORD}@prom.test", transport=transport, sleep=Recorder(), max_tries=2
    )
    with client, pytest.raises(PrometheusError) as caught:
        raw(client)
    assert str(caught.value) == (
        "cannot reach Prometheus at http://prom.test: ConnectError: refused (2 tries); "
        "check prometheus.url"
    )


def test_a_non_prometheus_answer_points_at_the_url() -> None:
    handler, _ = scripted(httpx.Response(404, text="404 page not found"))
    with make_client(handler) as client, pytest.raises(PrometheusError) as caught:
        raw(client)
    assert str(caught.value) == (
        "Prometheus at http://prom.test:9090 answered 404 (text/plain; charset=utf-8) to "
        "/api/v1/query, not a Prometheus API response: check prometheus.url"
    )


def test_a_vector_where_a_matrix_is_needed_names_the_query_and_the_fix() -> None:
    vector = {"resultType": "vector", "result": [{"metric": UP, "value": [T0, "1"]}]}
    body = orjson.dumps({"status": "success", "data": vector})
    handler, _ = scripted(httpx.Response(200, content=body))
    with make_client(handler) as client, pytest.raises(PrometheusError) as caught:
        raw(client, end=T0 + 3600)
    assert str(caught.value) == (
        "Prometheus answered query 'up{job=\"x\"}[1h]' with a vector result where a matrix "
        '(range vector) is needed: write a plain series selector such as up{job="x"}; fetch '
        "other expressions with query_range"
    )


def test_query_raw_refuses_an_expression_before_sending_anything() -> None:
    handler, seen = scripted()
    with make_client(handler) as client, pytest.raises(PrometheusError) as caught:
        raw(client, "rate(http_requests_total[5m])")
    assert str(caught.value) == (
        "query 'rate(http_requests_total[5m])' is not a plain series selector, so it has no raw "
        'samples: write a plain series selector such as up{job="x"}; fetch other expressions '
        "with query_range"
    )
    assert seen == []


# -- values and warnings ---------------------------------------------------------------------


def test_values_are_parsed_including_nan_and_infinities() -> None:
    values = [
        (T0, "1"),
        (T0 + 15, "NaN"),
        (T0 + 30, "+Inf"),
        (T0 + 45, "-Inf"),
        (T0 + 50.5, "0.25"),
    ]
    handler, _ = scripted(httpx.Response(200, content=matrix((UP, values))))
    with make_client(handler) as client:
        [chunk] = raw(client)
    [series] = chunk.series
    assert series.labels == UP
    assert [s.ts for s in series.samples] == [T0, T0 + 15, T0 + 30, T0 + 45, T0 + 50.5]
    assert series.samples[0] == Sample(T0, 1.0)
    assert math.isnan(series.samples[1].value)
    assert [s.value for s in series.samples[2:]] == [math.inf, -math.inf, 0.25]


def test_warnings_with_success_are_kept_on_the_chunk() -> None:
    body = matrix((UP, [(T0, "1")]), warnings=["remote read failed:\n  store b unreachable"])
    handler, _ = scripted(httpx.Response(200, content=body))
    with make_client(handler) as client:
        [chunk] = raw(client)
    assert chunk.warnings == ["remote read failed: store b unreachable"]
    assert chunk.series == [SeriesData(UP, [Sample(T0, 1.0)])]


def test_a_long_query_is_sent_as_a_post_form() -> None:
    fake = FakePrometheus([(T0 * 1000, "1")])
    selector = "up{" + ",".join(f'l{i}="{"v" * 40}"' for i in range(100)) + "}"
    with make_client(fake) as client:
        raw(client, selector)
    assert fake.methods == ["POST"]
    assert fake.requests[0]["query"] == selector + "[1m]"


# -- raw sample chunks -----------------------------------------------------------------------


@pytest.mark.parametrize("left_open", [False, True], ids=["prometheus2", "prometheus3"])
def test_raw_chunks_return_every_sample_in_the_window_exactly_once(left_open: bool) -> None:
    # a sample every 30 s from 1 min before the window to 1 min after it: the ones exactly at
    # start and at each chunk boundary belong to the later chunk, the one at end to none
    start, end = T0, T0 + 3 * 3600
    every = [(ms, str(ms)) for ms in range((start - 60) * 1000, (end + 61) * 1000, 30_000)]
    fake = FakePrometheus(every, left_open=left_open)
    with make_client(fake) as client:
        chunks = raw(client, start=start, end=end, chunk_s=3600)
    assert all_samples(chunks) == [float(ts) for ts in range(start, end, 30)]
    assert [(c.start, c.end, c.requests) for c in chunks] == [
        (T0, T0 + 3600, 1),
        (T0 + 3600, T0 + 7200, 1),
        (T0 + 7200, T0 + 10800, 1),
    ]
    assert [c.series[0].samples[0].ts for c in chunks] == [T0, T0 + 3600, T0 + 7200]
    assert fake.requests == [
        {"query": 'up{job="x"}[1h]', "time": f"{T0 + 3599}.999"},
        {"query": 'up{job="x"}[1h]', "time": f"{T0 + 7199}.999"},
        {"query": 'up{job="x"}[1h]', "time": f"{T0 + 10799}.999"},
    ]


def test_a_short_last_raw_chunk_gets_its_own_range() -> None:
    fake = FakePrometheus([(T0 * 1000, "1"), ((T0 + 5400) * 1000, "2")])
    with make_client(fake) as client:
        chunks = raw(client, start=T0, end=T0 + 5400.5, chunk_s=3600)
    assert [(c.start, c.end) for c in chunks] == [(T0, T0 + 3600), (T0 + 3600, T0 + 5400.5)]
    assert fake.requests[1] == {"query": 'up{job="x"}[30m500ms]', "time": f"{T0 + 5400}.499"}
    assert all_samples(chunks) == [T0, T0 + 5400]


def test_a_series_without_samples_in_a_chunk_is_left_out() -> None:
    fake = FakePrometheus([((T0 - 1) * 1000, "1")])  # Prometheus 2 returns it at the left edge
    with make_client(fake) as client:
        [chunk] = raw(client, start=T0 - 0.999, end=T0 + 60)
    assert chunk.series == []


def test_an_empty_window_sends_nothing() -> None:
    handler, seen = scripted()
    with make_client(handler) as client:
        assert raw(client, start=T0, end=T0) == []
        assert list(client.query_range("up", start=T0 + 1, end=T0 + 10, step_s=15)) == []
    assert seen == []


# -- query_range chunks ----------------------------------------------------------------------


def test_thirty_days_at_15s_take_18_aligned_requests_of_at_most_10000_steps() -> None:
    days30 = 30 * 86_400
    fake = FakePrometheus([(ms, "1") for ms in range(T0 * 1000, (T0 + days30) * 1000, 60_000)])
    with make_client(fake) as client:
        chunks = list(client.query_range("up", start=T0, end=T0 + days30, step_s=15))
    expected = []
    for i in range(18):
        first = T0 + i * 150_000
        expected.append(
            {
                "query": "up",
                "start": str(first),
                "end": str(min(first + 149_985, T0 + days30 - 15)),
                "step": "15",
            }
        )
    assert fake.requests == expected
    points = all_samples(chunks)
    assert len(points) == 172_800
    assert points == [float(t) for t in range(T0, T0 + days30, 15)]
    assert [len(c.series[0].samples) for c in chunks] == [10_000] * 17 + [2_800]
    assert [c.start for c in chunks] == [T0 + i * 150_000 for i in range(18)]
    assert [c.end for c in chunks] == [T0 + (i + 1) * 150_000 for i in range(17)] + [T0 + days30]


def test_query_range_aligns_to_the_step_and_tiles_the_window() -> None:
    fake = FakePrometheus([(ms, "1") for ms in range(T0 * 1000, (T0 + 600) * 1000, 10_000)])
    with make_client(fake) as client:
        chunks = list(client.query_range("up", start=T0 + 7, end=T0 + 100, step_s=15, max_points=3))
    assert fake.requests == [
        {"query": "up", "start": str(T0 + 15), "end": str(T0 + 45), "step": "15"},
        {"query": "up", "start": str(T0 + 60), "end": str(T0 + 90), "step": "15"},
    ]
    assert [(c.start, c.end) for c in chunks] == [(T0 + 7, T0 + 60), (T0 + 60, T0 + 100)]


def test_query_range_drops_points_outside_the_request_and_duplicates() -> None:
    overlap = [(T0 - 15, "9"), (T0, "1"), (T0, "1"), (T0 + 15, "2"), (T0 + 30, "3")]
    handler, _ = scripted(httpx.Response(200, content=matrix((UP, overlap))))
    with make_client(handler) as client:
        [chunk] = list(client.query_range("up", start=T0, end=T0 + 30, step_s=15))
    assert chunk.series == [SeriesData(UP, [Sample(T0, 1.0), Sample(T0 + 15, 2.0)])]


@pytest.mark.parametrize("max_points", [0, 11_001])
def test_max_points_must_fit_prometheus_limit(max_points: int) -> None:
    with make_client(scripted()[0]) as client, pytest.raises(ValueError):
        list(client.query_range("up", start=T0, end=T0 + 60, step_s=15, max_points=max_points))


# -- selectors and durations -----------------------------------------------------------------


@pytest.mark.parametrize(
    "expr",
    [
        "up",
        'up{job="x"}',
        'ALERTS{alertstate="firing",severity="page"}',
        ' node:cpu:ratio{ instance =~ "a.*" , job!="}{,"} ',
        "up{job='x',}",
        "up{}",
        '{__name__="up"}',
        "up{path=`C:\\dir`}",
        'up{job="say \\"hi\\""}',
    ],
)
def test_plain_selectors(expr: str) -> None:
    assert is_plain_selector(expr)


@pytest.mark.parametrize(
    "expr",
    [
        "",
        "{}",
        "sum(up)",
        "rate(up[5m])",
        "up[5m]",
        "up offset 5m",
        "up @ 1700000000",
        "up == 1",
        "up{job=}",
        "up{job='x'} or down",
        "sum",
        "1",
        'up{job="x"',
        'up{job="x"}{a="b"}',
    ],
)
def test_not_plain_selectors(expr: str) -> None:
    assert not is_plain_selector(expr)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15s", 15),
        ("1m", 60),
        ("1h30m", 5400),
        ("2d", 172_800),
        ("1w", 604_800),
        ("1y", 31_536_000),
        ("500ms", 0.5),
        ("1m30s250ms", 90.25),
    ],
)
def test_prometheus_durations(text: str, seconds: float) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "1.5h", "30m1h", "1 h", "5x", "-1m"])
def test_invalid_durations_are_value_errors(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration_s(text)
    assert str(caught.value) == (
        f"{text!r} is not a Prometheus duration such as 15s, 1m, 1h30m or 2d"
    )


# -- against a real Prometheus 2.42 ------------------------------------------------------------

DAY_START = T0
DAY_END = T0 + 86_400
EDGES = [T0 - 0.001, T0, T0 + 6 * 3600 - 0.001, T0 + 6 * 3600, T0 + 6 * 3600 + 0.001]
EDGES += [DAY_END - 0.001, DAY_END]


def up_a_value(ts: float) -> float:
    if ts == T0 + 7 * 3600:
        return math.nan
    if ts == T0 + 8 * 3600:
        return math.inf
    return 0.0 if T0 + 3 * 3600 <= ts < T0 + 3.5 * 3600 else 1.0


def gap_times() -> list[int]:
    """A sample a minute for an hour, none at minutes 11-12 (a 3-minute gap from 10 to 13) or
    31-39 (a 10-minute gap from 30 to 40)."""
    skipped = {*range(11, 13), *range(31, 40)}
    return [T0 + 60 * m for m in range(61) if m not in skipped]


def fixture_series() -> list[FixtureSeries]:
    up_a = [FixtureSample(float(t), up_a_value(t)) for t in range(T0 - 3600, DAY_END + 3601, 15)]
    up_b = [FixtureSample(t + 0.25, 0.5) for t in range(T0 + 2 * 3600, T0 + 20 * 3600 + 1, 60)]
    up_y = [FixtureSample(float(t), 1.0) for t in range(T0 - 3600, DAY_END + 3601, 15)]
    edge = [FixtureSample(t, i) for i, t in enumerate(EDGES)]
    gaps = [FixtureSample(float(t), float(i)) for i, t in enumerate(gap_times())]
    return [
        FixtureSeries("up", {"job": "x", "instance": "a"}, up_a),
        FixtureSeries("up", {"job": "x", "instance": "b"}, up_b),
        FixtureSeries("up", {"job": "y", "instance": "c"}, up_y),
        FixtureSeries("up", {"job": "x", "instance": "edge"}, edge),
        FixtureSeries("g", {"k": "gaps"}, gaps),
    ]


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """One real server for the read-only tests of this module."""
    require_prometheus()
    workdir = tmp_path_factory.mktemp("prometheus")
    with PrometheusServer(fixture_series(), workdir=workdir) as server:
        yield server


def expected_raw(series: FixtureSeries, start: float, end: float) -> list[tuple[float, str]]:
    return [(s.ts, repr(s.value)) for s in series.samples if start <= s.ts < end]


def test_real_raw_chunks_return_exactly_the_backfilled_samples(prom: PrometheusServer) -> None:
    with PrometheusClient(url=prom.url, sleep=Recorder()) as client:
        chunks = list(client.query_raw('up{job="x"}', start=DAY_START, end=DAY_END))
    assert [(c.start, c.end, c.requests, c.warnings) for c in chunks] == [
        (T0 + i * 21_600, T0 + (i + 1) * 21_600, 1, []) for i in range(4)
    ]
    got: dict[str, list[tuple[float, str]]] = {}
    for chunk in chunks:
        for series in chunk.series:
            assert sorted(series.labels) == ["__name__", "instance", "job"]
            assert (series.labels["__name__"], series.labels["job"]) == ("up", "x")
            for s in series.samples:
                assert chunk.start <= s.ts < chunk.end
            got.setdefault(series.labels["instance"], []).extend(
                (s.ts, repr(s.value)) for s in series.samples
            )
    a, b, *_ = fixture_series()
    assert {name: len(samples) for name, samples in got.items()} == {
        "a": 5_760,
        "b": 1_081,
        "edge": 5,
    }
    assert got["a"] == expected_raw(a, DAY_START, DAY_END)
    assert got["b"] == expected_raw(b, DAY_START, DAY_END)
    assert got["edge"] == [(t, repr(float(i))) for i, t in enumerate(EDGES) if 1 <= i <= 5]
    assert [v for _, v in got["a"]].count("0.0") == 120
    assert [v for _, v in got["a"]].count("nan") == 1
    assert [v for _, v in got["a"]].count("inf") == 1


def test_real_range_selectors_of_2_42_are_closed_on_the_left(prom: PrometheusServer) -> None:
    # why query_raw filters: the chunk [T0+6h, T0+12h) is asked for at T0+12h-1ms with [6h],
    # and 2.42 also returns the sample 1 ms before the chunk (Prometheus 3 would not)
    at = T0 + 12 * 3600 - 0.001
    [row] = prom.query('up{instance="edge"}[6h]', at)
    assert [ts for ts, _ in row["values"]] == [
        T0 + 6 * 3600 - 0.001,
        T0 + 6 * 3600,
        T0 + 6 * 3600 + 0.001,
    ]


def test_real_long_selector_is_posted_and_answered(prom: PrometheusServer) -> None:
    names = "|".join(f"host-{i:04d}.example.internal" for i in range(300))
    selector = f'up{{job="x",instance=~"{names}|b"}}'
    methods: list[str] = []

    class Tap(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            methods.append(request.method)
            return super().handle_request(request)

    with PrometheusClient(url=prom.url, transport=Tap(), sleep=Recorder()) as client:
        [chunk] = list(client.query_raw(selector, start=T0 + 2 * 3600, end=T0 + 3 * 3600))
    assert methods == ["POST"]
    [series] = chunk.series
    assert series.labels["instance"] == "b"
    assert [s.ts for s in series.samples] == [T0 + 2 * 3600 + 60 * i + 0.25 for i in range(60)]


def test_real_query_range_hides_a_3_minute_gap_and_shows_a_10_minute_one(
    prom: PrometheusServer,
) -> None:
    with PrometheusClient(url=prom.url, sleep=Recorder()) as client:
        [chunk] = list(client.query_range("g", start=T0, end=T0 + 3600, step_s=60))
    [series] = chunk.series
    assert series.labels == {"__name__": "g", "k": "gaps"}
    minutes = [round((s.ts - T0) / 60) for s in series.samples]
    # evaluated at 0..59 min: the 11-12 min gap is bridged by the 5-minute lookback; after the
    # sample at 30 min it lasts through 35 min (2.42's lookback includes t - 5m) and 36-39 are gone
    assert minutes == [m for m in range(60) if m not in (36, 37, 38, 39)]
    values = dict(zip(minutes, [s.value for s in series.samples], strict=True))
    assert (values[10], values[11], values[12], values[13]) == (10.0, 10.0, 10.0, 11.0)
    assert (values[30], values[35], values[40]) == (28.0, 28.0, 29.0)


def test_real_query_range_splits_2_days_at_15s_to_stay_under_11000_points(
    prom: PrometheusServer,
) -> None:
    with PrometheusClient(url=prom.url, sleep=Recorder()) as client:
        chunks = list(
            client.query_range('up{instance="c"}', start=T0 - 3600, end=T0 + 3600 * 47, step_s=15)
        )
    assert [(c.start, c.end) for c in chunks] == [
        (T0 - 3600, T0 - 3600 + 150_000),
        (T0 - 3600 + 150_000, T0 + 3600 * 47),
    ]
    times = [s.ts for c in chunks for series in c.series for s in series.samples]
    # instance c's last sample is at DAY_END + 1h; the lookback carries it 5 more minutes
    assert times == [float(t) for t in range(T0 - 3600, DAY_END + 3600 + 301, 15)]


def test_real_bad_promql_gives_prometheus_message_on_one_line(prom: PrometheusServer) -> None:
    client = PrometheusClient(url=prom.url, sleep=Recorder())
    with client, pytest.raises(PrometheusError) as caught:
        list(client.query_range("up{job=}", start=T0, end=T0 + 60, step_s=15))
    # /api/v1/query would prefix the parse error with: invalid parameter "query":
    assert str(caught.value) == (
        "Prometheus rejected query 'up{job=}': bad_data: 1:8: parse error: unexpected \"}\" in "
        "label matching, expected string"
    )


def test_real_execution_error_is_raised_without_retrying(prom: PrometheusServer) -> None:
    expr = 'up / on(job) label_replace(up{job="x"}, "z", "$1", "instance", "(.*)")'
    sleep = Recorder()
    with PrometheusClient(url=prom.url, sleep=sleep) as client:
        with pytest.raises(PrometheusError) as caught:
            list(client.query_range(expr, start=T0, end=T0 + 60, step_s=15))
        assert client.requests_made == 1
    assert str(caught.value).startswith(
        f"Prometheus rejected query {expr!r}: execution: found duplicate series for the match "
        'group {job="x"} on the right hand-side of the operation'
    )
    assert sleep.sleeps == []


def test_real_killed_server_cannot_be_reached_after_the_retries(tmp_path: Path) -> None:
    require_prometheus()
    series = [FixtureSeries("up", {"job": "x"}, [FixtureSample(float(T0), 1.0)])]
    sleep = Recorder()
    with PrometheusServer(series, workdir=tmp_path) as server:
        client = PrometheusClient(url=server.url, sleep=sleep)
        with client:
            [chunk] = list(client.query_raw("up", start=T0, end=T0 + 60))
            assert chunk.series == [SeriesData({"__name__": "up", "job": "x"}, [Sample(T0, 1.0)])]
            server.kill()
            with pytest.raises(PrometheusError) as caught:
                list(client.query_raw("up", start=T0, end=T0 + 60))
    message = str(caught.value)
    assert message.startswith(f"cannot reach Prometheus at {server.url}: ConnectError: ")
    assert message.endswith(" (5 tries); check prometheus.url")
    assert "\n" not in message
    assert sleep.sleeps == [1.0, 2.0, 4.0, 8.0]
