"""Prometheus metrics of a window (DESIGN §5): availability and coverage, alert incidents,
time to detect."""

from __future__ import annotations

import math
from typing import Any

import duckdb
import orjson

from deploystats.config import PrometheusSettings, Target
from deploystats.errors import ConfigError
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


def series_counts(
    con: duckdb.DuckDBPyConnection, query: str, window: Window, *, step_s: float | None
) -> list[dict[str, Any]]:
    """Per stored series of the query: labels, samples, valued (samples with a value), up
    (valued samples >= 1) and coverage (buckets holding a value / buckets in the window)."""
    params = {"query": query, "step": step_s, "start": window.start, "end": window.end}
    out = []
    for labels, step, samples, valued, up, buckets in con.execute(_AVAILABILITY, params).fetchall():
        expected = math.ceil((window.end - window.start).total_seconds() / step) if step else 0
        out.append(
            {
                "labels": orjson.loads(labels),
                "samples": int(samples),
                "valued": int(valued),
                "up": int(up),
                "coverage": min(buckets / expected, 1.0) if expected else 0.0,
            }
        )
    return out


def availability(
    con: duckdb.DuckDBPyConnection, query: str, window: Window, *, step_s: float | None
) -> list[dict[str, Any]]:
    """Per series: samples, availability (value >= 1 among samples with a value) and
    coverage (buckets holding a value / buckets in the window)."""
    return [
        {
            "labels": one["labels"],
            "availability": one["up"] / one["valued"] if one["valued"] else None,
            "coverage": one["coverage"],
            "samples": one["samples"],
        }
        for one in series_counts(con, query, window, step_s=step_s)
    ]


def prometheus_metrics(
    con: duckdb.DuckDBPyConnection, settings: PrometheusSettings, window: Window
) -> dict[str, Any]:
    """The `prometheus` section of the metrics contract, per configured query."""
    out: dict[str, Any] = {}
    for name, query in settings.queries.items():
        step = query.step.total_seconds()
        if query.kind == "availability":
            out[name] = {"series": availability(con, name, window, step_s=step)}
        elif query.kind == "alerts":
            # the gap rule uses each series' own sample interval
            out[name] = alerts(con, name, window, step_s=None, group_by=query.group_by)
    return out


# Alert incidents (DESIGN §5): the union of firing intervals (value > 0) across the query's
# series, per group_by labels; a gap longer than 1.5 x the sample interval splits; an incident
# ends at its last firing sample + interval. Series may be narrowed by labels (match_labels).
_ALERT_INCIDENTS = """
CREATE OR REPLACE TEMP TABLE _alert_incidents AS
WITH firing AS (
    SELECT list_transform($group_by, lambda k: s.labels ->> k)::VARCHAR AS grp, x.ts,
           coalesce($step, s.interval_s) AS interval_s
    FROM prom_series s JOIN prom_samples x USING (series_id)
    WHERE s.query_name = $query AND NOT isnan(x.value) AND x.value > 0
      AND coalesce(list_bool_and(list_transform(map_keys($match::MAP(VARCHAR, VARCHAR)),
              lambda k: (s.labels ->> k) = ($match::MAP(VARCHAR, VARCHAR))[k])), true)
),
marked AS (
    SELECT *, coalesce(epoch(ts) - epoch(lag(ts) OVER w) > 1.5 * interval_s, true) AS starts
    FROM firing WINDOW w AS (PARTITION BY grp ORDER BY ts)
),
numbered AS (
    SELECT *, sum(starts::INTEGER) OVER (PARTITION BY grp ORDER BY ts) AS incident FROM marked
)
SELECT grp, incident, min(ts) AS start_at,
       max(ts) + to_seconds(arg_max(interval_s, ts)) AS end_at
FROM numbered GROUP BY grp, incident
"""


def _alert_incidents(
    con: duckdb.DuckDBPyConnection,
    query: str,
    *,
    step_s: float | None,
    group_by: list[str],
    match: dict[str, str],
) -> None:
    con.execute(
        _ALERT_INCIDENTS,
        {"query": query, "step": step_s, "group_by": group_by, "match": match},
    )


def alerts(
    con: duckdb.DuckDBPyConnection,
    query: str,
    window: Window,
    *,
    step_s: float | None,
    group_by: list[str],
) -> dict[str, Any]:
    """alert_incidents ending in the window, their mean and median length (incident MTTR)."""
    _alert_incidents(con, query, step_s=step_s, group_by=group_by, match={})
    n, mean, median = con.execute(
        "SELECT count(*), avg(epoch(end_at) - epoch(start_at)), "
        "median(epoch(end_at) - epoch(start_at)) FROM _alert_incidents "
        "WHERE end_at >= $start AND end_at < $end",
        {"start": window.start, "end": window.end},
    ).fetchall()[0]
    return {"alert_incidents": int(n), "alert_mttr_s": mean, "alert_restore_median_s": median}


# Time to detect (DESIGN §5): for each failed or rolled_back attempt of the target in the
# window, the start of the first alert incident overlapping [started_at, failure_at + 1 h),
# minus failure_at, floored at 0; attempts with no such incident are undetected.
_DETECT = """
WITH failed AS (
    SELECT repo, run_id, run_attempt, started_at, failure_at FROM deployment_attempts
    WHERE target = $target AND outcome IN ('failure', 'rolled_back')
      AND started_at >= $start AND started_at < $end
),
detected AS (
    SELECT f.*, min(i.start_at) AS alert_at
    FROM failed f LEFT JOIN _alert_incidents i
        ON i.start_at < f.failure_at + INTERVAL 1 HOUR AND i.end_at > f.started_at
    GROUP BY ALL
)
SELECT count(*) AS failed, count(alert_at) AS detect_n,
       quantile_cont(greatest(epoch(alert_at) - epoch(failure_at), 0), [0.5, 0.95])
           FILTER (alert_at IS NOT NULL) AS q
FROM detected
"""


def detection(
    con: duckdb.DuckDBPyConnection,
    target: Target,
    window: Window,
    settings: PrometheusSettings,
) -> dict[str, Any]:
    """detect_n, detect_p50_s, detect_p95_s, detected_share of one target (prepared con)."""
    query = settings.queries.get(target.alerts_query or "")
    if query is None:
        raise ConfigError(
            f"targets[{target.name}].alerts_query: {target.alerts_query!r} is not a query in "
            f"prometheus.queries ({', '.join(settings.queries) or 'none'})"
        )
    _alert_incidents(
        con,
        target.alerts_query or "",
        step_s=None,
        group_by=[],
        match=dict(target.alerts_match_labels),
    )
    failed, n, q = con.execute(
        _DETECT, {"target": target.name, "start": window.start, "end": window.end}
    ).fetchall()[0]
    return {
        "detect_n": int(n),
        "detect_p50_s": q[0] if q and n >= 1 else None,
        "detect_p95_s": q[1] if q and n >= 20 else None,
        "detected_share": n / failed if failed else None,
    }


def prometheus_as_of(con: duckdb.DuckDBPyConnection, queries: list[str]) -> Any:
    """When the data of these Prometheus queries was last known complete (DESIGN §5): per
    query the end of its last successful sync, or for imported data its newest sample; the
    minimum over the queries. None when a query has neither."""
    rows = con.execute(
        """
        WITH q AS (SELECT unnest($queries) AS name),
        newest AS (
            SELECT s.query_name AS name, max(p.ts) AS ts
            FROM prom_series s JOIN prom_samples p USING (series_id)
            WHERE list_contains($queries, s.query_name) GROUP BY ALL
        )
        SELECT bool_and(coalesce(c.cursor, n.ts) IS NOT NULL), min(coalesce(c.cursor, n.ts))
        FROM q
        LEFT JOIN sync_state c ON c.source = 'prometheus' AND c.scope = q.name
        LEFT JOIN newest n USING (name)
        """,
        {"queries": queries},
    ).fetchall()
    complete, value = rows[0] if rows else (False, None)
    return value if complete else None
