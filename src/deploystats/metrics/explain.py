"""The rows behind each metric: what `deploystats explain METRIC` prints, with GitHub URLs."""

from __future__ import annotations

from typing import Any

import duckdb

from deploystats.errors import ConfigError
from deploystats.metrics.recovery import LEAD_TIMES
from deploystats.metrics.windows import Window

_IN = "started_at >= $start AND started_at < $end AND target = $target"

_ATTEMPTS = f"""
SELECT repo, run_id, run_attempt, outcome, counted, started_at, completed_at, duration_s,
       timing_source, excluded_reason, html_url
FROM deployment_attempts WHERE {_IN} ORDER BY started_at, run_id, run_attempt
"""

_DURATIONS = f"""
SELECT repo, run_id, run_attempt, outcome, started_at, completed_at, duration_s, html_url
FROM deployment_attempts
WHERE {_IN} AND (CASE WHEN duration_counted THEN counted ELSE good END)
  AND (timing_source = 'jobs' OR duration_run_timing)
ORDER BY duration_s DESC
"""

_QUEUES = f"""
SELECT repo, run_id, run_attempt, queue_s, pending_s, started_at, html_url
FROM deployment_attempts WHERE {_IN} AND counted ORDER BY queue_s DESC NULLS LAST
"""

_RUNNERS = f"""
SELECT repo, run_id, run_attempt, outcome,
       CASE WHEN deploy_jobs = 0 THEN 'no deploy job' WHEN NOT roles_known THEN 'unknown'
            WHEN on_secondary THEN 'secondary' ELSE 'primary' END AS runner_role,
       started_at, html_url
FROM deployment_attempts WHERE {_IN} AND counted ORDER BY started_at
"""

_OVERLAPS = """
SELECT a.run_id AS earlier_run_id, a.started_at AS earlier_started_at,
       a.completed_at AS earlier_completed_at, b.run_id AS later_run_id,
       b.started_at AS later_started_at, a.html_url AS earlier_url, b.html_url AS later_url
FROM deployment_attempts a JOIN deployment_attempts b ON a.target = b.target
    AND a.started_at < b.completed_at AND b.started_at < a.completed_at
    AND (a.started_at < b.started_at OR (a.started_at = b.started_at
         AND (a.repo, a.run_id, a.run_attempt) < (b.repo, b.run_id, b.run_attempt)))
WHERE a.counted AND b.counted AND b.target = $target
  AND b.started_at >= $start AND b.started_at < $end
ORDER BY b.started_at
"""

_INCIDENTS = """
SELECT repo, run_id AS change_run_id, run_attempt AS change_run_attempt, first_signal_at,
       kinds, evidence_urls
FROM rollback_incidents
WHERE target = $target AND first_signal_at >= $start AND first_signal_at < $end
ORDER BY first_signal_at
"""

_CHANGES = """
SELECT c.repo, c.run_id, c.run_attempt, c.started_at, c.outcome,
       i.run_id IS NOT NULL AS rollback_incident,
       i.run_id IS NOT NULL OR (t.cfr_include_failed AND c.outcome IN ('failure', 'rolled_back'))
           AS failed_change,
       c.html_url
FROM changes c JOIN _targets t USING (target)
LEFT JOIN rollback_incidents i ON i.target = c.target AND i.answers_change AND i.repo = c.repo
    AND i.run_id = c.run_id AND i.run_attempt = c.run_attempt
WHERE c.target = $target AND c.started_at >= $start AND c.started_at < $end
ORDER BY c.started_at
"""

_EPISODES = """
SELECT e.repo, e.run_id, e.run_attempt, e.start_at, e.end_at, e.restore_s, a.html_url
FROM failure_episodes e JOIN deployment_attempts a USING (target, repo, run_id, run_attempt)
WHERE e.target = $target AND ((e.end_at >= $start AND e.end_at < $end)
      OR (e.start_at < $end AND (e.end_at IS NULL OR e.end_at >= $end)))
ORDER BY e.start_at
"""

_LEAD_TIMES = """
SELECT l.repo, l.run_id, l.run_attempt, l.started_at, a.head_commit_at, a.completed_at,
       l.lead_time_s, a.html_url
FROM lead_times l JOIN deployment_attempts a USING (target, repo, run_id, run_attempt)
WHERE l.target = $target AND l.started_at >= $start AND l.started_at < $end
ORDER BY l.started_at
"""

_BY_PREFIX = [
    (("successes", "failures", "rolled_back", "aborted", "superseded", "not_deployed",
      "excluded", "not_counted", "counted", "success_rate", "run_success_rate", "retry_rate",
      "deploy_frequency"), _ATTEMPTS),
    (("duration_", "total_"), _DURATIONS),
    (("queue_", "pending_"), _QUEUES),
    (("failover_share", "unknown_runner_share"), _RUNNERS),
    (("overlapping_deploys",), _OVERLAPS),
    (("rollback_incidents",), _INCIDENTS),
    (("change_failure_rate", "changes"), _CHANGES),
    (("episodes", "mttr_s", "restore_", "open_episodes"), _EPISODES),
    (("lead_time",), _LEAD_TIMES),
]  # fmt: skip

KNOWN = (
    "a key of `deploystats metrics --format json`, e.g. success_rate, duration_p95_s, "
    "queue_p50_s, failover_share, overlapping_deploys, rollback_incidents, "
    "change_failure_rate, mttr_s, lead_time_p50_s"
)


def explain_rows(con: duckdb.DuckDBPyConnection, metric: str, target: str, window: Window) -> Any:
    """A DataFrame of the rows behind `metric` for one target and window (prepared con)."""
    for prefixes, sql in _BY_PREFIX:
        if metric.startswith(prefixes):
            if metric.startswith("lead_time"):
                con.execute(LEAD_TIMES, {"start": window.start, "end": window.end})
            params = {"target": target, "start": window.start, "end": window.end}
            return con.execute(sql, params).df()
    raise ConfigError(f"unknown metric {metric!r}: name {KNOWN}")
