"""Deployment metrics of a window, one SQL definition each (DESIGN §5), over deployment_attempts."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import duckdb

from deploystats.metrics.windows import Window

Z95 = 1.959963984540054  # the 97.5th percentile of the standard normal distribution

# Quantiles are null below these n (DESIGN §5); n is always reported beside them.
MIN_N = {0.5: 1, 0.9: 10, 0.95: 20, 0.99: 100}

OUTCOMES = {
    "success": "successes",
    "failure": "failures",
    "rolled_back": "rolled_back",
    "aborted": "aborted",
    "superseded": "superseded",
    "not_deployed": "not_deployed",
    "excluded": "excluded",
    "not_counted": "not_counted",
}

_IN_WINDOW = "started_at >= $start AND started_at < $end"

# Successful attempts timed by their deploy jobs (or, by option, every counted attempt and
# run timing too).
_DURATION_ELIGIBLE = (
    "(CASE WHEN duration_counted THEN counted ELSE good END) "
    "AND (timing_source = 'jobs' OR duration_run_timing)"
)

_PER_TARGET = f"""
SELECT g.grp,
       {", ".join(f"count(*) FILTER (outcome = '{o}') AS {k}" for o, k in OUTCOMES.items())},
       count(*) FILTER (counted) AS counted,
       count(*) FILTER (counted AND good) AS good,
       count(*) FILTER ({_DURATION_ELIGIBLE}) AS duration_n,
       quantile_cont(duration_s, [0.5, 0.95, 0.99]) FILTER ({_DURATION_ELIGIBLE}) AS duration_q,
       count(*) FILTER (good) AS total_n,
       quantile_cont(epoch(completed_at) - epoch(CASE WHEN run_attempt = 1 THEN run_created_at
                                                      ELSE run_started_at END), 0.5)
           FILTER (good) AS total_p50_s,
       count(queue_s) FILTER (counted) AS queue_n,
       quantile_cont(queue_s, [0.5, 0.95]) FILTER (counted) AS queue_q,
       count(pending_s) FILTER (counted) AS pending_n,
       quantile_cont(pending_s, 0.5) FILTER (counted) AS pending_p50_s,
       count(*) FILTER (counted AND deploy_jobs > 0 AND roles_known) AS roles_known_n,
       count(*) FILTER (counted AND deploy_jobs > 0 AND roles_known AND on_secondary)
           AS on_secondary_n,
       count(*) FILTER (counted AND deploy_jobs > 0 AND NOT roles_known) AS unknown_runner_n
FROM deployment_attempts a JOIN _groups g USING (target, repo)
WHERE {_IN_WINDOW}
GROUP BY g.grp
"""

# Runs belong to the window of their attempt 1 (DESIGN §5).
_RUNS = f"""
WITH first AS (
    SELECT target, repo, run_id, bad FROM deployment_attempts
    WHERE run_attempt = 1 AND counted AND {_IN_WINDOW}
),
latest AS (  -- every attempt of those runs, whenever it started
    SELECT a.target, a.repo, a.run_id, arg_max(a.good, a.run_attempt) AS latest_good,
           max(a.run_attempt) AS attempts
    FROM deployment_attempts a SEMI JOIN first f USING (target, repo, run_id)
    GROUP BY ALL
)
SELECT g.grp, count(*) AS runs,
       count(*) FILTER (l.latest_good) AS runs_good,
       count(*) FILTER (f.bad AND l.attempts > 1) AS retried
FROM first f JOIN latest l USING (target, repo, run_id) JOIN _groups g USING (target, repo)
GROUP BY g.grp
"""

# Pairs of counted attempts whose [started_at, completed_at) overlap, by the later start.
_OVERLAPS = f"""
SELECT g.grp, count(*) AS overlapping_deploys
FROM deployment_attempts a
JOIN deployment_attempts b ON a.target = b.target
    AND a.started_at < b.completed_at AND b.started_at < a.completed_at
    AND (a.started_at < b.started_at
         OR (a.started_at = b.started_at AND (a.repo, a.run_id, a.run_attempt)
                                              < (b.repo, b.run_id, b.run_attempt)))
JOIN _groups g ON g.target = b.target AND g.repo = b.repo
WHERE a.counted AND b.counted AND b.{_IN_WINDOW.replace(" AND ", " AND b.")}
  -- implied by the overlap: a starts no later than b, and ends after b starts
  AND a.started_at < $end AND a.completed_at > $start
GROUP BY g.grp
"""

_RUNNER_ROLES_CONFIGURED = """
SELECT DISTINCT g.grp FROM _patterns p JOIN _groups g USING (target)
WHERE p.kind LIKE 'primary_%' OR p.kind LIKE 'secondary_%'
"""


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """95 % Wilson score interval of a proportion; None for n = 0."""
    if n == 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _quantile(values: list[float] | None, index: int, q: float, n: int) -> float | None:
    if not values or n < MIN_N[q]:
        return None
    return float(values[index])


def _rows(con: duckdb.DuckDBPyConnection, sql: str, window: Window) -> dict[str, dict[str, Any]]:
    cursor = con.execute(sql, {"start": window.start, "end": window.end})
    names = [d[0] for d in cursor.description or []]
    return {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def group_metrics(
    con: duckdb.DuckDBPyConnection,
    groups: list[str],
    window: Window,
    data_as_of: datetime | None,
) -> dict[str, dict[str, Any]]:
    """The JSON-contract metrics of each group of targets (`_groups`) for a window."""
    base = _rows(con, _PER_TARGET, window)
    runs = _rows(con, _RUNS, window)
    overlaps = _rows(con, _OVERLAPS, window)
    with_roles = {row[0] for row in con.execute(_RUNNER_ROLES_CONFIGURED).fetchall()}
    # no data at all, or none reaching into the window: no frequency (not zero)
    elapsed_end = min(window.end, data_as_of) if data_as_of else window.start
    elapsed_days = max((elapsed_end - window.start) / timedelta(days=1), 0.0)
    out = {}
    for group in groups:
        row = base.get(group, {})

        def count(key: str, row: dict[str, Any] = row) -> int:
            return int(row.get(key) or 0)

        counted, good = count("counted"), count("good")
        duration_q, duration_n = row.get("duration_q"), count("duration_n")
        queue_q, queue_n = row.get("queue_q"), count("queue_n")
        run = runs.get(group, {})
        ci = wilson(good, counted)
        metrics: dict[str, Any] = {key: count(key) for key in OUTCOMES.values()}
        metrics |= {
            "counted": counted,
            "success_rate": _ratio(good, counted),
            "success_rate_ci": list(ci) if ci else None,
            "run_success_rate": _ratio(int(run.get("runs_good") or 0), int(run.get("runs") or 0)),
            "retry_rate": _ratio(int(run.get("retried") or 0), int(run.get("runs") or 0)),
            "duration_n": duration_n,
            "duration_p50_s": _quantile(duration_q, 0, 0.5, duration_n),
            "duration_p95_s": _quantile(duration_q, 1, 0.95, duration_n),
            "duration_p99_s": _quantile(duration_q, 2, 0.99, duration_n),
            "total_p50_s": row.get("total_p50_s") if count("total_n") >= 1 else None,
            "queue_n": queue_n,
            "queue_p50_s": _quantile(queue_q, 0, 0.5, queue_n),
            "queue_p95_s": _quantile(queue_q, 1, 0.95, queue_n),
            "pending_p50_s": row.get("pending_p50_s") if count("pending_n") >= 1 else None,
            "failover_share": (
                _ratio(count("on_secondary_n"), count("roles_known_n"))
                if group in with_roles
                else None
            ),
            "unknown_runner_share": (
                _ratio(count("unknown_runner_n"), counted) if group in with_roles else None
            ),
            "overlapping_deploys": int(overlaps.get(group, {}).get("overlapping_deploys") or 0),
            "deploy_frequency_per_day": good / elapsed_days if elapsed_days > 0 else None,
        }
        out[group] = metrics
    return out


# The n behind a metric: the count its value is computed from (min_events applies to it).
N_OF = {
    "success_rate": "counted", "run_success_rate": "counted", "retry_rate": "counted",
    "duration_": "duration_n", "total_": "duration_n", "queue_": "queue_n",
    "pending_": "counted", "failover_share": "counted", "unknown_runner_share": "counted",
    "lead_time_": "lead_time_n", "change_failure_rate": "changes", "mttr_s": "episodes",
    "restore_": "episodes", "detect_": "detect_n", "detected_share": "detect_n",
    "deploy_frequency_per_day": "successes",
}  # fmt: skip


def n_of(metric: str, values: dict[str, Any]) -> int | None:
    """The n behind `metric` in a target's metrics (None for counts, which are their own n)."""
    for prefix, key in N_OF.items():
        if metric.startswith(prefix):
            n = values.get(key)
            return None if n is None else int(n)
    return None
