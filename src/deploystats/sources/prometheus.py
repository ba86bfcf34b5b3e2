"""Prometheus HTTP API fetching: raw samples and query_range, chunked, with retries.

This module only fetches; it never touches the database. Every request carries explicit times
(`time`, or `start`/`end`/`step`) so a past window always gives the same answer. Errors are one
PrometheusError line that names the query and the fix, and never contains a credential:

    400 bad_data, 422 execution    raised at once with Prometheus's own message
    401, 403                       the credentials were rejected
    503, errorType timeout,        retried with backoff 1, 2, 4 ... s up to max_tries,
    connection errors              then raised
    a vector or scalar where a     raised: fetch such expressions with query_range
    range vector is needed

`warnings` sent with `status: success` mean partial data; they are returned in Chunk.warnings.
"""

from __future__ import annotations

import math
import re
import ssl
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from types import TracebackType
from typing import Any, Literal, NamedTuple, Self, overload
from urllib.parse import urlencode

import httpx
import numpy as np
import orjson

from deploystats.errors import ConfigError, PrometheusError

QUERY_PATH = "api/v1/query"
QUERY_RANGE_PATH = "api/v1/query_range"
USER_AGENT = "deploystats"
MAX_BACKOFF_S = 30.0
MAX_POINTS_LIMIT = 11_000  # Prometheus refuses more points per series in one query_range
POST_ABOVE_CHARS = 4_000  # longer encoded parameters go in a POST form (URL length limits)
RETRY_STATUSES = frozenset({429, 502, 503, 504})
RETRY_ERROR_TYPES = frozenset({"timeout", "unavailable"})
RAW_HINT = (
    'write a plain series selector such as up{job="x"}; fetch other expressions with query_range'
)
RANGE_HINT = (
    "check that prometheus.url points at Prometheus's HTTP API (query_range returns matrices)"
)

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
_STRING = r'"(?:[^"\\\n]|\\.)*"' r"|'(?:[^'\\\n]|\\.)*'" r"|`[^`]*`"
_MATCHER = rf"\s*{_LABEL}\s*(?:=~|!~|!=|=)\s*(?:{_STRING})\s*"
_SELECTOR = re.compile(
    rf"\s*(?P<name>{_NAME})?\s*"
    rf"(?:\{{(?P<matchers>(?:{_MATCHER}(?:,{_MATCHER})*,?)?\s*)\}})?\s*"
)
# PromQL keywords (case-insensitive) cannot stand alone as a metric name
_KEYWORDS = frozenset(
    [
        "and",
        "or",
        "unless",
        "atan2",
        "sum",
        "avg",
        "count",
        "min",
        "max",
        "group",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "count_values",
        "quantile",
        "offset",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "inf",
        "nan",
    ]
)
_DURATION = re.compile(
    r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?"
)
_UNIT_MS = (365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1_000, 1)
_UNIT_NAMES = ("y", "w", "d", "h", "m", "s", "ms")


class Sample(NamedTuple):
    """One value at `ts` (epoch seconds); NaN and +-Inf are kept as floats. A tuple, so a
    series' samples are the (ts, value) pairs the store takes, with no copy."""

    ts: float
    value: float


class SampleColumns(Sequence[Sample]):
    """A series' samples as two float64 columns: a read-only sequence of Samples that compares
    equal to a list of them. Syncs hand the columns to the store without a Python object per
    sample."""

    __slots__ = ("times", "values")

    def __init__(self, times: np.ndarray, values: np.ndarray) -> None:
        self.times, self.values = times, values

    def __len__(self) -> int:
        return len(self.times)

    @overload
    def __getitem__(self, index: int) -> Sample: ...
    @overload
    def __getitem__(self, index: slice) -> SampleColumns: ...
    def __getitem__(self, index: int | slice) -> Sample | SampleColumns:
        if isinstance(index, slice):
            return SampleColumns(self.times[index], self.values[index])
        return Sample(float(self.times[index]), float(self.values[index]))

    def __iter__(self) -> Iterator[Sample]:
        return map(Sample, self.times.tolist(), self.values.tolist())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SampleColumns | list | tuple):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(list(self))


@dataclass(frozen=True)
class SeriesData:
    """One series: its labels (with __name__ when Prometheus sends it); samples oldest first."""

    labels: dict[str, str]
    samples: Sequence[Sample]


@dataclass(frozen=True)
class Chunk:
    """Everything in [start, end): a complete unit to save and then move a cursor to `end`.

    `requests` counts the HTTP requests sent for it, retries included.
    """

    start: float
    end: float
    series: list[SeriesData]
    warnings: list[str]
    requests: int


@dataclass(frozen=True)
class PromAuth:
    """A bearer token, or basic auth; the secrets are never shown in repr or messages."""

    bearer_token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Event:
    """Progress: kind "request" after each answered request, "wait" before each sleep."""

    kind: Literal["request", "wait"]
    url: str
    query: str
    status: int | None = None
    seconds: float | None = None
    reason: str | None = None


class _Retry(Exception):
    """A failure worth another try: unreachable, or 503 / timeout."""

    def __init__(self, reason: str, *, unreachable: bool) -> None:
        super().__init__(reason)
        self.unreachable = unreachable


class PrometheusClient:
    """Queries the Prometheus HTTP API at `url` (a path prefix such as /prometheus is kept).

    Closing the client closes `transport`. `on_event` receives an Event per answered request and
    per wait. `requests_made` counts every request sent, retries included. Waits between tries
    go through `sleep`; `clock` is accepted for symmetry with GitHubClient (nothing reads it yet).
    """

    def __init__(
        self,
        *,
        url: str,
        auth: PromAuth | None = None,
        ca_file: str | None = None,
        insecure_skip_verify: bool = False,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        timeout_s: float = 60,
        max_tries: int = 5,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        if max_tries < 1:
            raise ConfigError(f"max_tries must be at least 1, not {max_tries}")
        try:
            base = httpx.URL(url.rstrip("/") + "/")
        except httpx.InvalidURL as exc:
            raise ConfigError("prometheus.url is not a valid URL: fix it") from exc
        if base.scheme not in ("http", "https") or not base.host:
            raise ConfigError(f"prometheus.url {_redact(base)!r} is not an http(s) URL: fix it")
        self.url = _redact(base).rstrip("/")
        self.max_tries = max_tries
        self.requests_made = 0
        self._clock = clock
        self._sleep = sleep
        self._on_event = on_event
        self._client = httpx.Client(
            base_url=base,
            auth=_basic_auth(auth),
            headers={"User-Agent": USER_AGENT, **_bearer(auth), **(headers or {})},
            verify=_verify(ca_file, insecure_skip_verify),
            timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"PrometheusClient(url={self.url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool (and the transport passed in)."""
        self._client.close()

    def query_raw(
        self, selector: str, *, start: float, end: float, chunk_s: float = 6 * 3600
    ) -> Iterator[Chunk]:
        """Every raw sample of a plain series selector with start <= ts < end, chunk by chunk.

        Each chunk [a, b) is one range-vector instant query `SELECTOR[b - a]` at b - 1 ms.
        Prometheus 3 selects (t - range, t], which is exactly [a, b) on the millisecond grid
        of sample times; Prometheus 2 selects [t - range, t], one millisecond more on the left,
        so samples outside [a, b) are dropped here: each sample comes back exactly once.
        Chunks come oldest first and tile [start, end); a series without samples in a chunk
        is left out of it.
        """
        if not is_plain_selector(selector):
            raise PrometheusError(
                f"query {selector!r} is not a plain series selector, so it has no raw samples: "
                f"{RAW_HINT}"
            )
        if chunk_s <= 0:
            raise ValueError(f"chunk_s must be positive, not {chunk_s}")
        start_ms, end_ms, chunk_ms = _ms(start), _ms(end), max(_ms(chunk_s), 1)
        for a in range(start_ms, end_ms, chunk_ms):
            b = min(a + chunk_ms, end_ms)
            query = f"{selector.strip()}[{_duration_text(b - a)}]"
            body, tries = self._get(QUERY_PATH, query, {"time": _seconds_text(b - 1)})
            series = _parse_matrix(body, query, hint=RAW_HINT)
            kept = _keep(series, a, b - 1)
            yield Chunk(a / 1000, b / 1000, kept, _warnings(body), tries)

    def query_range(
        self, expr: str, *, start: float, end: float, step_s: float, max_points: int = 10_000
    ) -> Iterator[Chunk]:
        """`expr` evaluated at every multiple of step_s in [start, end), chunk by chunk.

        Not raw samples: each evaluation sees the latest sample of the 5 minutes before it
        (the lookback), so gaps shorter than that do not show. The first evaluation is at the
        first multiple of step_s >= start, the last at the last multiple < end (the API's own
        `end` is inclusive); each request holds at most max_points evaluations and the next
        starts one step after the previous end. Chunks come oldest first and tile [start, end).
        """
        step_ms = _ms(step_s)
        if step_ms <= 0:
            raise ValueError(f"step_s must be positive, not {step_s}")
        if not 1 <= max_points <= MAX_POINTS_LIMIT:
            raise ValueError(f"max_points must be between 1 and {MAX_POINTS_LIMIT}: {max_points}")
        start_ms, end_ms = _ms(start), _ms(end)
        first = -(-start_ms // step_ms) * step_ms
        last = (-(-end_ms // step_ms) - 1) * step_ms
        chunk_from = start_ms
        for s in range(first, last + 1, max_points * step_ms):
            e = min(s + (max_points - 1) * step_ms, last)
            params = {
                "start": _seconds_text(s),
                "end": _seconds_text(e),
                "step": _seconds_text(step_ms),
            }
            body, tries = self._get(QUERY_RANGE_PATH, expr, params)
            series = _parse_matrix(body, expr, hint=RANGE_HINT)
            chunk_to = min(e + step_ms, end_ms)
            yield Chunk(
                chunk_from / 1000, chunk_to / 1000, _keep(series, s, e), _warnings(body), tries
            )
            chunk_from = chunk_to

    def _get(self, path: str, query: str, params: Mapping[str, str]) -> tuple[Any, int]:
        """The parsed body of a successful answer, and the number of requests it took."""
        tries = 0
        while True:
            tries += 1
            try:
                return self._send(path, query, params), tries
            except _Retry as exc:
                if tries >= self.max_tries:
                    raise self._gave_up(exc, query, tries) from exc.__cause__
                seconds = min(2.0 ** (tries - 1), MAX_BACKOFF_S)
                reason = f"{exc}; try {tries + 1} of {self.max_tries}"
                self._emit(
                    Event("wait", self._endpoint(path), query, seconds=seconds, reason=reason)
                )
                self._sleep(seconds)

    def _send(self, path: str, query: str, params: Mapping[str, str]) -> Any:
        data = {"query": query, **params}
        self.requests_made += 1
        try:
            if len(urlencode(data)) > POST_ABOVE_CHARS:
                response = self._client.post(path, data=data)
            else:
                response = self._client.get(path, params=data)
        except httpx.TransportError as exc:
            raise _Retry(_describe(exc), unreachable=True) from exc
        self._emit(Event("request", self._endpoint(path), query, status=response.status_code))
        status = response.status_code
        if status in (401, 403):
            raise PrometheusError(
                f"Prometheus rejected the credentials ({status}): set the variable "
                "prometheus.auth names"
            )
        body = _json(response)
        error_type = body.get("errorType") if isinstance(body, dict) else None
        if status in RETRY_STATUSES or error_type in RETRY_ERROR_TYPES:
            raise _Retry(f"answered {status} {_error_text(body, response)}", unreachable=False)
        if isinstance(body, dict) and body.get("status") == "error":
            raise PrometheusError(
                f"Prometheus rejected query {query!r}: {_error_text(body, response)}"
            )
        if status >= 300 or not isinstance(body, dict) or body.get("status") != "success":
            kind = "JSON" if body is not None else response.headers.get("content-type", "no JSON")
            raise PrometheusError(
                f"Prometheus at {self.url} answered {status} ({kind}) to /{path}, not a "
                "Prometheus API response: check prometheus.url"
            )
        return body

    def _gave_up(self, exc: _Retry, query: str, tries: int) -> PrometheusError:
        if exc.unreachable:
            return PrometheusError(
                f"cannot reach Prometheus at {self.url}: {exc} ({tries} tries); "
                "check prometheus.url"
            )
        return PrometheusError(
            f"Prometheus at {self.url} failed query {query!r} {tries} times ({exc}): "
            "try later, or sync a shorter window"
        )

    def _endpoint(self, path: str) -> str:
        return f"{self.url}/{path}"

    def _emit(self, event: Event) -> None:
        if self._on_event is not None:
            self._on_event(event)


def is_plain_selector(expr: str) -> bool:
    """True for a bare series selector (`up`, `up{job="x"}`, `{__name__="up"}`): no function,
    operator, range, offset or @; a selector without a metric name needs a label matcher."""
    match = _SELECTOR.fullmatch(expr)
    if match is None:
        return False
    name, matchers = match.group("name"), match.group("matchers")
    if name is not None:
        return name.lower() not in _KEYWORDS
    return bool(matchers and matchers.strip())


def parse_duration_s(text: str) -> float:
    """Seconds in a Prometheus duration (`15s`, `1m`, `1h30m`, `2d`, `500ms`; units y w d h m s
    ms, largest first, y = 365d). Raises ValueError for anything else."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or not text.strip():
        raise ValueError(f"{text!r} is not a Prometheus duration such as 15s, 1m, 1h30m or 2d")
    total = sum(int(n) * unit for n, unit in zip(match.groups(), _UNIT_MS, strict=True) if n)
    return total / 1000


def _basic_auth(auth: PromAuth | None) -> httpx.BasicAuth | None:
    if auth is None:
        return None
    if auth.bearer_token and (auth.username or auth.password):
        raise ConfigError(
            "prometheus.auth sets both a bearer token and basic auth: configure only one"
        )
    if auth.password and not auth.username:
        raise ConfigError("prometheus.auth.basic has a password but no username: set username")
    if auth.username:
        if not auth.password:
            raise ConfigError(
                f"prometheus.auth.basic password missing for user {auth.username!r}: set the "
                "variable password_env names"
            )
        return httpx.BasicAuth(auth.username, auth.password)
    return None


def _bearer(auth: PromAuth | None) -> dict[str, str]:
    if auth is None or not auth.bearer_token:
        return {}
    return {"Authorization": f"Bearer {auth.bearer_token}"}


def _verify(ca_file: str | None, insecure_skip_verify: bool) -> ssl.SSLContext | bool:
    if insecure_skip_verify:
        if ca_file is not None:
            raise ConfigError(
                "prometheus.ca_file and prometheus.insecure_skip_verify are both set: "
                "configure only one"
            )
        return False
    if ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(
            f"cannot load prometheus.ca_file {ca_file}: {reason}; point it at a PEM file"
        ) from exc


def _json(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


def _error_text(body: Any, response: httpx.Response) -> str:
    """`errorType: error` from a Prometheus error body, else the reason phrase; one line."""
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        text = f"{body.get('errorType', 'error')}: {body['error']}"
    else:
        text = response.reason_phrase or f"HTTP {response.status_code}"
    return " ".join(text.split())[:500]


def _parse_matrix(body: dict[str, Any], query: str, *, hint: str) -> list[SeriesData]:
    data = body.get("data")
    result_type = data.get("resultType") if isinstance(data, dict) else None
    if result_type != "matrix":
        raise PrometheusError(
            f"Prometheus answered query {query!r} with a {result_type or 'missing'} result "
            f"where a matrix (range vector) is needed: {hint}"
        )
    result = data.get("result") if isinstance(data, dict) else None
    if not isinstance(result, list):
        raise PrometheusError(f"Prometheus answered query {query!r} without a result list")
    series: list[SeriesData] = []
    for item in result:
        if not isinstance(item, dict) or not isinstance(item.get("metric"), dict):
            raise PrometheusError(f"Prometheus answered query {query!r} with a malformed series")
        if item.get("histograms"):
            raise PrometheusError(
                f"query {query!r} returned native histograms, which deploystats cannot store: "
                "select a float series"
            )
        try:
            samples = _samples(item.get("values", []))
        except (TypeError, ValueError, IndexError) as exc:
            raise PrometheusError(
                f"Prometheus answered query {query!r} with a malformed sample ({exc})"
            ) from exc
        series.append(SeriesData({str(k): str(v) for k, v in item["metric"].items()}, samples))
    return series


_TS, _VALUE = itemgetter(0), itemgetter(1)


def _samples(values: list[Any]) -> SampleColumns:
    """[[ts, "value"], ...] -> two float64 columns, in C loops (millions per sync)."""
    times = np.fromiter(map(_TS, values), np.float64, len(values))
    return SampleColumns(times, np.array(list(map(_VALUE, values)), dtype=np.float64))


def _keep(series: list[SeriesData], first_ms: int, last_ms: int) -> list[SeriesData]:
    """Samples with first_ms <= ts <= last_ms, one per timestamp; series merged by labels."""
    keys = [tuple(sorted(one.labels.items())) for one in series]
    if len(set(keys)) == len(keys) and all(_increasing(one.samples) for one in series):
        # what Prometheus sends: one entry per series, samples strictly ascending
        out = []
        for one in series:
            assert isinstance(one.samples, SampleColumns)
            ms = np.round(one.samples.times * 1000)
            a = int(np.searchsorted(ms, first_ms, side="left"))
            b = int(np.searchsorted(ms, last_ms, side="right"))
            if a < b:
                kept = one.samples if (a, b) == (0, len(ms)) else one.samples[a:b]
                out.append(SeriesData(one.labels, kept))
        return out
    merged: dict[tuple[tuple[str, str], ...], tuple[dict[str, str], dict[int, Sample]]] = {}
    for one in series:
        key = tuple(sorted(one.labels.items()))
        _, by_ts = merged.setdefault(key, (one.labels, {}))
        for sample in one.samples:
            ts_ms = round(sample.ts * 1000)
            if first_ms <= ts_ms <= last_ms:
                by_ts.setdefault(ts_ms, sample)
    return [
        SeriesData(labels, [by_ts[ts] for ts in sorted(by_ts)])
        for labels, by_ts in merged.values()
        if by_ts
    ]


def _increasing(samples: Sequence[Sample]) -> bool:
    """Columns with strictly ascending times (Prometheus's are whole milliseconds)."""
    return isinstance(samples, SampleColumns) and bool(np.all(np.diff(samples.times) > 0))


def _warnings(body: dict[str, Any]) -> list[str]:
    warnings = body.get("warnings")
    if not isinstance(warnings, list):
        return []
    return [" ".join(str(warning).split()) for warning in warnings]


def _ms(seconds: float) -> int:
    """Whole milliseconds, rounding up (sample times are whole milliseconds)."""
    return math.ceil(round(seconds * 1000, 6))


def _seconds_text(ms: int) -> str:
    whole, frac = divmod(ms, 1000)
    return f"{whole}.{frac:03d}" if frac else str(whole)


def _duration_text(ms: int) -> str:
    """A Prometheus duration for `ms` (> 0): 21600000 -> 6h, 21600001 -> 6h1ms."""
    parts = []
    for unit, name in zip(_UNIT_MS[2:], _UNIT_NAMES[2:], strict=True):  # d h m s ms
        count, ms = divmod(ms, unit)
        if count:
            parts.append(f"{count}{name}")
    return "".join(parts)


def _redact(url: httpx.URL) -> str:
    """The URL without user:password@."""
    return str(url.copy_with(userinfo=b"")) if url.userinfo else str(url)


def _describe(exc: httpx.TransportError) -> str:
    detail = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
