"""Prometheus ingest: sync_prometheus (the HTTP API) and import_prometheus (saved responses).

Each chunk of each configured query is one batch, committed with the query's cursor, so an
interrupted sync keeps every committed chunk and the next one continues after it.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from deploystats.config import PromQuery, Settings
from deploystats.errors import ConfigError, DumpError
from deploystats.sources.prometheus import is_plain_selector
from deploystats.store import Store, log_ingest, read_cursor, write_cursor
from deploystats.store.prom import SeriesSamples, save_prom_samples, series_id

ACCEPTED = (
    'a Prometheus query response ({"status": "success", "data": {"resultType": "matrix", '
    '"result": [...]}}) or its bare result list of {"metric": {...}, "values": [[ts, "v"], ...]}'
)
LAG = timedelta(minutes=1)  # the last minute may still be scraped: leave it to the next sync


@dataclass
class PromResult:
    """What a Prometheus sync or import read: samples as received (files may overlap; the
    store keeps one sample per series and timestamp)."""

    queries: int = 0
    chunks: int = 0
    series: int = 0
    samples: int = 0
    requests: int = 0
    warnings: list[str] = field(default_factory=list)


def _value(text: Any) -> float:
    """Prometheus sends values as strings, NaN and +Inf included."""
    return float(text) if not isinstance(text, float) else text


def series_from_result(result: Any, *, where: str) -> list[SeriesSamples]:
    """A matrix `result` list -> (labels, samples) pairs; anything else is a DumpError."""
    if not isinstance(result, list):
        raise DumpError(f"{where}: not {ACCEPTED}")
    out: list[SeriesSamples] = []
    for item in result:
        if not isinstance(item, dict) or "values" not in item:
            what = "a vector or scalar" if isinstance(item, dict) and "value" in item else "not"
            raise DumpError(f"{where}: {what} a matrix: expected {ACCEPTED}")
        try:
            samples = [(float(ts), _value(v)) for ts, v in item["values"]]
        except (TypeError, ValueError) as exc:
            raise DumpError(f"{where}: malformed sample in {item.get('metric')}: {exc}") from exc
        out.append((dict(item.get("metric") or {}), samples))
    return out


def read_prometheus_file(path: Path) -> tuple[list[SeriesSamples], list[str]]:
    """A saved query response (full or the bare result list), .gz allowed: its series and the
    `warnings` Prometheus sent with it (partial data), one line each."""
    if not path.is_file():
        raise DumpError(f"{path}: no such file", path=str(path))
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DumpError(f"{path}: not valid JSON ({exc})", path=str(path)) from exc
    warnings: list[str] = []
    if isinstance(body, dict):
        if isinstance(body.get("warnings"), list):
            warnings = [" ".join(str(w).split()) for w in body["warnings"]]
        if body.get("status") == "error":
            raise DumpError(f"{path}: a Prometheus error response: {body.get('error')}")
        inner: dict[str, Any] = body["data"] if isinstance(body.get("data"), dict) else body
        if inner.get("resultType") not in (None, "matrix"):
            raise DumpError(
                f"{path}: resultType {inner.get('resultType')!r} is not a matrix: save a range "
                "query (query_range, or a selector with a [range]) instead"
            )
        body = inner.get("result")
    return series_from_result(body, where=str(path)), warnings


def import_prometheus(
    store: Store,
    paths: Sequence[Path],
    *,
    query: str,
    step_s: float | None = None,
    until: datetime | None = None,
) -> PromResult:
    """Import saved responses as the named query; each file is one batch. Importing twice
    changes nothing. `step_s` is the sampling interval when the files hold query_range
    output (used for coverage); by default each series' median sample interval. Warnings
    saved with a response (partial data) are logged with its file (outcome `partial`) and
    returned as `PATH: WARNING`.

    `until` says the responses cover the query up to then (the `end` they were fetched
    with): it becomes the query's cursor, as a sync's end does, so the data counts as
    complete until then (DESIGN §5) even where the newest sample is older, as an alert
    that stopped firing leaves it. Without it, the newest sample says how far the data
    goes. A cursor never moves back."""
    files = [(path, *read_prometheus_file(path)) for path in paths]
    result = PromResult(queries=1)
    seen: set[int] = set()
    with store.open() as con:
        for number, (path, series, warnings) in enumerate(files, 1):
            started = datetime.now(UTC)
            with store.batch(con):
                count = save_prom_samples(con, query, series, interval_s=step_s)
                cursor = read_cursor(con, "prometheus", query)
                if number == len(files) and until and (cursor is None or until > cursor):
                    write_cursor(con, "prometheus", query, until)
                log_ingest(
                    con,
                    started_at=started,
                    source="import-prometheus",
                    scope=f"{query}:{path}",
                    requests=0,
                    rows=count,
                    outcome="partial" if warnings else "ok",
                    error="; ".join(warnings) or None,
                )
            result.warnings += [f"{path}: {w}" for w in warnings]
            result.chunks += 1
            seen.update(series_id(query, labels) for labels, _ in series)
            result.samples += count
    result.series = len(seen)
    return result


def _chunks(
    client: Any, query: PromQuery, start: datetime, end: datetime
) -> tuple[Any, float | None]:
    """The client's chunk iterator for a query, and the sampling step to store (None: raw
    samples, whose interval is measured). Plain selectors of kind availability/alerts are
    fetched as raw samples, anything else through query_range (DESIGN §4)."""
    if query.kind in ("availability", "alerts") and is_plain_selector(query.expr):
        return client.query_raw(query.expr, start=start.timestamp(), end=end.timestamp()), None
    step = query.step.total_seconds()
    chunks = client.query_range(
        query.expr, start=start.timestamp(), end=end.timestamp(), step_s=step
    )
    return chunks, step


def sync_prometheus(
    store: Store,
    settings: Settings,
    client: Any,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_progress: Callable[[PromResult, str], None] | None = None,
) -> PromResult:
    """Fetch every configured query from its cursor (or `since`, or backfill_days ago) to
    `until` (default: a minute ago), chunk by chunk; each query gets one ingest_log row."""
    prom = settings.prometheus
    if prom is None or not prom.queries:
        raise ConfigError(
            "no Prometheus queries configured: add prometheus.url and prometheus.queries"
        )
    end = until or clock() - LAG
    result = PromResult()
    seen: set[int] = set()
    with store.open() as con:
        for name, query in prom.queries.items():
            start = (
                since
                or read_cursor(con, "prometheus", name)
                or end - timedelta(days=prom.backfill_days)
            )
            if start >= end:
                continue
            result.queries += 1
            started, samples_before = datetime.now(UTC), result.samples
            warnings: list[str] = []
            outcome, error = "ok", None
            chunks, step = _chunks(client, query, start, end)
            try:
                for chunk in chunks:
                    series = [(s.labels, s.samples) for s in chunk.series]
                    with store.batch(con):
                        result.samples += save_prom_samples(con, name, series, interval_s=step)
                        cursor = datetime.fromtimestamp(chunk.end, UTC)
                        write_cursor(con, "prometheus", name, cursor)
                    result.chunks += 1
                    seen.update(series_id(name, labels) for labels, _ in series)
                    result.series = len(seen)
                    result.requests += chunk.requests
                    # each chunk may repeat the same warning: keep one line of each
                    warnings += [
                        w
                        for w in dict.fromkeys(f"{name}: {x}" for x in chunk.warnings)
                        if w not in warnings
                    ]
                    if on_progress:
                        on_progress(result, name)
                if warnings:  # partial data, recorded and shown
                    outcome, error = "partial", "; ".join(warnings)
            except BaseException as exc:  # interrupted too: committed chunks stay, logged as failed
                outcome, error = "failed", str(exc) or type(exc).__name__
                raise
            finally:
                result.warnings += warnings
                log_ingest(
                    con,
                    started_at=started,
                    source="prometheus",
                    scope=name,
                    requests=result.requests,
                    rows=result.samples - samples_before,
                    outcome=outcome,
                    error=error,
                )
    return result
