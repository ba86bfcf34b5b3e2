"""Prometheus metrics of a window (DESIGN §5): per-series availability and coverage."""

from __future__ import annotations

import math
from typing import Any

import duckdb
import orjson

from deploystats.config import PrometheusSettings
from deploystats.metrics.windows import Window

# Every stored series of the query, with its samples in the window (none: coverage 0, so an
# absent window, e.g. beyond retention, shows as such). Buckets are step-aligned from the
# window start; the step is the query's (or the series' own sampling interval).
_AVAILABILITY = """
WITH series AS (
    SELECT series_id, labels, coalesce($step, interval_s) AS step
    FROM prom_series WHERE query_name = $query
),
samples AS (
    SELECT s.series_id, s.step, x.ts, x.value, isnan(x.value) AS missing
    FROM series s JOIN prom_samples x USING (series_id)
    WHERE x.ts >= $start AND x.ts < $end
)
SELECT s.labels::VARCHAR, s.step,
       count(x.ts) AS samples,
       count(x.ts) FILTER (NOT x.missing) AS valued,
       count(x.ts) FILTER (NOT x.missing AND x.value >= 1) AS up,
       count(DISTINCT floor((epoch(x.ts) - epoch($start::TIMESTAMPTZ)) / s.step))
           FILTER (NOT x.missing) AS buckets
FROM series s LEFT JOIN samples x USING (series_id)
GROUP BY s.series_id, s.labels, s.step
ORDER BY s.labels::VARCHAR
"""


def availability(
    con: duckdb.DuckDBPyConnection, query: str, window: Window, *, step_s: float | None
) -> list[dict[str, Any]]:
    """Per series: samples, availability (value >= 1 among samples with a value) and
    coverage (buckets holding a value / buckets in the window)."""
    params = {"query": query, "step": step_s, "start": window.start, "end": window.end}
    out = []
    for labels, step, samples, valued, up, buckets in con.execute(_AVAILABILITY, params).fetchall():
        expected = math.ceil((window.end - window.start).total_seconds() / step) if step else 0
        out.append(
            {
                "labels": orjson.loads(labels),
                "availability": up / valued if valued else None,
                "coverage": min(buckets / expected, 1.0) if expected else 0.0,
                "samples": int(samples),
            }
        )
    return out


def prometheus_metrics(
    con: duckdb.DuckDBPyConnection, settings: PrometheusSettings, window: Window
) -> dict[str, Any]:
    """The `prometheus` section of the metrics contract, per configured query."""
    out: dict[str, Any] = {}
    for name, query in settings.queries.items():
        if query.kind == "availability":
            step = query.step.total_seconds()
            out[name] = {"series": availability(con, name, window, step_s=step)}
    return out
