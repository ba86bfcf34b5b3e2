"""Prometheus series and samples in the store: idempotent, one chunk per batch (DESIGN §2)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import duckdb
import numpy as np
import orjson
import pyarrow as pa

SeriesSamples = tuple[Mapping[str, str], Sequence[tuple[float, float]]]
"""(labels, [(epoch seconds, value), ...]) of one series, as a source hands it over."""


def series_id(query_name: str, labels: Mapping[str, str]) -> int:
    """A stable id for a query's series: the same labels always map to the same row."""
    key = orjson.dumps([query_name, dict(sorted(labels.items()))])
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") >> 1


def _interval(times: np.ndarray) -> float | None:
    gaps = np.diff(np.unique(times))
    return float(np.median(gaps)) if gaps.size else None


def save_prom_samples(
    con: duckdb.DuckDBPyConnection,
    query_name: str,
    series: Sequence[SeriesSamples],
    *,
    interval_s: float | None = None,
) -> int:
    """Upsert the series and insert their samples (a sample never changes: same key, same
    value); returns the samples in the batch. NaN and +Inf are stored as such.

    `interval_s` is the sampling interval when known (a query_range step); otherwise each
    series' median sample interval in this batch."""
    ids, names, label_texts, intervals = [], [], [], []
    counts: list[int] = []
    times: list[np.ndarray] = []
    values: list[np.ndarray] = []
    for labels, samples in series:
        sid = series_id(query_name, labels)
        # columns as a sync hands them over (SampleColumns), or (ts, value) pairs -> columns
        ts = getattr(samples, "times", None)
        value = getattr(samples, "values", None)
        if not isinstance(ts, np.ndarray) or not isinstance(value, np.ndarray):
            pairs = np.array(samples, dtype=np.float64).reshape(-1, 2)
            ts, value = pairs[:, 0], pairs[:, 1]
        ids.append(sid)
        names.append(query_name)
        label_texts.append(orjson.dumps(dict(sorted(labels.items()))).decode())
        intervals.append(interval_s if interval_s is not None else _interval(ts))
        counts.append(len(ts))
        times.append(ts)
        values.append(value)
    if not ids:
        return 0
    total = sum(counts)
    con.register(
        "_series_in",
        pa.table(
            {
                "series_id": pa.array(ids, pa.int64()),
                "query_name": names,
                "labels": label_texts,
                "interval_s": pa.array(intervals, pa.float64()),
            }
        ),
    )
    con.register(
        "_samples_in",
        pa.table(
            {
                "series_id": pa.array(np.repeat(np.array(ids, dtype=np.int64), counts)),
                "ts": pa.array(np.concatenate(times)),
                "value": pa.array(np.concatenate(values)),
            }
        ),
    )
    try:
        # a chunk's median interval replaces the stored one only when it has one
        con.execute(
            """
            INSERT OR REPLACE INTO prom_series
            SELECT DISTINCT ON (i.series_id) i.series_id, i.query_name, i.labels::JSON,
                   coalesce(i.interval_s, s.interval_s)
            FROM _series_in i LEFT JOIN prom_series s USING (series_id)
            """
        )
        con.execute(
            """
            INSERT OR IGNORE INTO prom_samples
            SELECT DISTINCT ON (series_id, ts) series_id, to_timestamp(ts), value
            FROM _samples_in
            """
        )
    finally:
        con.unregister("_series_in")
        con.unregister("_samples_in")
    return total
