"""Rollback signals and incidents, changes and change failure rate, failure episodes, lead time.

Built after the classification (DESIGN §5), independent of any window:
- `rollback_signals`: (a) completed rollback-workflow runs, (b) rolled_back attempts,
  (c) successful redeploys of an older version; each with the change it answers;
- `changes`: counted attempts that are not (c) signals, with their incidents;
- `rollback_incidents`: signals grouped by the change they answer;
- `failure_episodes`: from a failure after a success to the next success or successful
  rollback run.
"""

from __future__ import annotations

from typing import Any

import duckdb

from deploystats.metrics.windows import Window

# (c): a successful attempt deploying the version of a successful attempt before the previous
# one, whose head commit is older than the previous successful attempt's.
_REDEPLOYS = """
CREATE OR REPLACE TEMP TABLE _redeploys AS
WITH good AS (
    SELECT aid, tid, started_at, deployed_sha, head_commit_at,
           lag(started_at) OVER w AS prev_started_at,
           lag(head_commit_at) OVER w AS prev_head_commit_at
    FROM deployment_attempts WHERE good
    WINDOW w AS (PARTITION BY tid ORDER BY started_at, repo, run_id, run_attempt)
),
older AS (  -- a head commit older than the previous successful attempt's
    SELECT * FROM good WHERE head_commit_at < prev_head_commit_at
),
first_by_sha AS (
    SELECT a.tid, a.deployed_sha, min(a.started_at) AS first_started_at
    FROM deployment_attempts a SEMI JOIN older o USING (tid, deployed_sha)
    WHERE a.good GROUP BY ALL
)
SELECT o.aid, o.started_at
FROM older o JOIN first_by_sha f USING (tid, deployed_sha)
WHERE f.first_started_at < o.prev_started_at
"""

_CHANGES = """
CREATE OR REPLACE TEMP TABLE changes AS
SELECT a.target, a.repo, a.run_id, a.run_attempt, a.started_at, a.completed_at, a.outcome,
       a.html_url, a.aid
FROM deployment_attempts a
ANTI JOIN _redeploys r USING (aid)
WHERE a.counted
"""

# Signals with their times; (a) and (c) answer the latest change that started before the
# signal and at most cfr_window before it, (b) its own attempt.
_SIGNALS = """
CREATE OR REPLACE TEMP TABLE rollback_signals AS
WITH raw AS (
    SELECT target, 'workflow' AS kind, arg_max(run_started_at, run_attempt) AS signal_at,
           repo, run_id, max(run_attempt) AS run_attempt,
           arg_max(conclusion, run_attempt) AS conclusion,
           arg_max(updated_at, run_attempt) AS completed_at,
           arg_max(html_url, run_attempt) AS html_url
    FROM _runs WHERE is_rollback
    GROUP BY target, repo, run_id
    HAVING arg_max(status, run_attempt) = 'completed'
    UNION ALL
    SELECT a.target, 'redeploy', a.started_at, a.repo, a.run_id, a.run_attempt, a.conclusion,
           a.completed_at, a.html_url
    FROM deployment_attempts a SEMI JOIN _redeploys r USING (aid)
),
latest AS (  -- when the latest change before the signal started
    SELECT r.*, c.started_at AS latest_change_at
    FROM raw r ASOF LEFT JOIN changes c ON r.target = c.target AND r.signal_at > c.started_at
),
answered AS (  -- that change if within cfr_window: by start, then completion, run id
    SELECT r.*, c.repo AS change_repo, c.run_id AS change_run_id,
           c.run_attempt AS change_run_attempt, c.started_at AS change_started_at
    FROM latest r JOIN _targets t USING (target)
    LEFT JOIN changes c ON r.target = c.target AND c.started_at = r.latest_change_at
        AND c.started_at >= r.signal_at - to_seconds(t.cfr_window_s)
    QUALIFY row_number() OVER (
        PARTITION BY r.target, r.kind, r.repo, r.run_id, r.run_attempt
        ORDER BY c.started_at DESC NULLS LAST, coalesce(c.completed_at, c.started_at) DESC,
                 c.run_id DESC, c.run_attempt DESC) = 1
)
SELECT target, kind, signal_at, repo, run_id, run_attempt, conclusion, completed_at,
       html_url, change_repo, change_run_id, change_run_attempt
FROM answered
UNION ALL
SELECT target, 'step', started_at, repo, run_id, run_attempt, conclusion, completed_at,
       html_url, repo, run_id, run_attempt
FROM deployment_attempts WHERE outcome = 'rolled_back'
"""

# Signals answering the same change are one incident; a signal answering no change is one.
_INCIDENTS = """
CREATE OR REPLACE TEMP TABLE rollback_incidents AS
SELECT target,
       coalesce(change_repo, repo) AS repo,
       coalesce(change_run_id, run_id) AS run_id,
       coalesce(change_run_attempt, run_attempt) AS run_attempt,
       change_run_id IS NOT NULL AS answers_change,
       min(signal_at) AS first_signal_at,
       list(DISTINCT kind ORDER BY kind) AS kinds,
       list(html_url ORDER BY signal_at) AS evidence_urls
FROM rollback_signals
GROUP BY target, coalesce(change_repo, repo), coalesce(change_run_id, run_id),
         coalesce(change_run_attempt, run_attempt), change_run_id IS NOT NULL
"""

# Episodes: counted attempts by completed_at; one starts at a failure whose predecessor
# succeeded (or is missing within history_days) and ends at the next success, or earlier at
# the completion of a successful rollback run answering one of its attempts.
_EPISODES = """
CREATE OR REPLACE TEMP TABLE failure_episodes AS
WITH ordered AS (
    SELECT a.target, a.repo, a.run_id, a.run_attempt, a.completed_at, a.good, a.bad,
           lag(a.good) OVER w AS prev_good, lag(a.completed_at) OVER w AS prev_completed_at,
           -- the next success in this order (ties on completed_at broken by run id)
           first_value(CASE WHEN a.good THEN a.completed_at END IGNORE NULLS) OVER (
               w ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS next_good_at,
           -- position in this order, and successes up to here: the attempts of an episode
           -- are found by position, not by time (a failure may complete in the same second
           -- as the success after it)
           row_number() OVER w AS seq,
           sum(CASE WHEN a.good THEN 1 ELSE 0 END) OVER (
               w ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS goods_seen,
           t.history_days
    FROM deployment_attempts a JOIN _targets t USING (tid)
    WHERE a.counted AND a.completed_at IS NOT NULL
    WINDOW w AS (PARTITION BY a.tid ORDER BY a.completed_at, a.run_id, a.run_attempt)
),
starts AS (
    SELECT target, repo, run_id, run_attempt, completed_at AS start_at, next_good_at AS good_at,
           seq, goods_seen,
           -- a failure more than history_days after the previous one starts a new episode
           -- within the same streak: the attempts from there on are not this episode's
           lead(seq) OVER (PARTITION BY target ORDER BY seq) AS next_start_seq
    FROM ordered
    WHERE bad AND (prev_good IS NULL OR prev_good
                   OR prev_completed_at < completed_at - to_days(history_days))
),
answered AS (  -- failed attempts answered by a successful rollback run: position, completion
    SELECT o.target, o.seq, o.goods_seen, r.completed_at AS rescued_at
    FROM rollback_signals r
    JOIN ordered o ON o.target = r.target AND o.repo = r.change_repo
        AND o.run_id = r.change_run_id AND o.run_attempt = r.change_run_attempt
    WHERE r.kind = 'workflow' AND r.conclusion = 'success' AND o.bad
),
rescued AS (  -- the first such completion for a failure of the episode
    SELECT s.target, s.repo, s.run_id, s.run_attempt, min(a.rescued_at) AS rescued_at
    FROM starts s
    -- the episode's attempts: its start and the failures after it, before the next success
    -- (same goods_seen) and before the next episode start
    JOIN answered a ON a.target = s.target AND a.goods_seen = s.goods_seen AND a.seq >= s.seq
        AND (s.next_start_seq IS NULL OR a.seq < s.next_start_seq)
        -- a rollback run completed before the failure (while it was still deploying) ends
        -- nothing: an episode never ends before it starts
        AND a.rescued_at >= s.start_at
    GROUP BY s.target, s.repo, s.run_id, s.run_attempt
)
SELECT s.target, s.repo, s.run_id, s.run_attempt, s.start_at,
       least(s.good_at, r.rescued_at) AS end_at,
       epoch(least(s.good_at, r.rescued_at)) - epoch(s.start_at) AS restore_s
FROM starts s LEFT JOIN rescued r USING (target, repo, run_id, run_attempt)
"""

# Lead time: for attempts of lead_time_events, completed_at of the first successful attempt
# deploying a sha (no successful attempt of it, whatever its event, within history_days
# before) minus the head commit's timestamp. Head commit only.
LEAD_TIMES = """
CREATE OR REPLACE TEMP TABLE lead_times AS
WITH shas AS (  -- the versions deployed in the window, whose earlier deploys are looked up
    SELECT DISTINCT tid, deployed_sha FROM deployment_attempts
    WHERE good AND completed_at IS NOT NULL AND started_at >= $start AND started_at < $end
),
good AS (  -- a successful attempt's predecessor with its version starts before it
    SELECT a.target, a.repo, a.run_id, a.run_attempt, a.started_at, a.completed_at,
           a.head_commit_at, a.event, t.history_days,
           lag(a.started_at) OVER (PARTITION BY a.tid, a.deployed_sha
                                   ORDER BY a.started_at, a.run_id, a.run_attempt)
               AS previous_started_at
    FROM deployment_attempts a JOIN _targets t USING (tid)
    SEMI JOIN shas s ON s.tid = a.tid AND s.deployed_sha IS NOT DISTINCT FROM a.deployed_sha
    WHERE a.good AND a.completed_at IS NOT NULL AND a.started_at < $end
)
SELECT g.target, g.repo, g.run_id, g.run_attempt, g.started_at,
       epoch(g.completed_at) - epoch(g.head_commit_at) AS lead_time_s
FROM good g
WHERE g.started_at >= $start AND g.started_at < $end AND g.head_commit_at IS NOT NULL
  AND (g.previous_started_at IS NULL
       OR g.previous_started_at < g.started_at - to_days(g.history_days))
  AND g.event IN (SELECT pattern FROM _patterns p WHERE p.target = g.target
                  AND p.kind = 'lead_event')
"""

_STEPS = (_REDEPLOYS, _CHANGES, _SIGNALS, _INCIDENTS, _EPISODES)

_PER_GROUP = """
WITH incidents AS (
    SELECT g.grp, count(*) AS rollback_incidents
    FROM rollback_incidents i JOIN _groups g USING (target, repo)
    WHERE first_signal_at >= $start AND first_signal_at < $end GROUP BY g.grp
),
cfr AS (
    SELECT g.grp, count(*) AS changes,
           count(*) FILTER (i.run_id IS NOT NULL
                            OR (tg.cfr_include_failed AND c.outcome IN ('failure', 'rolled_back')))
               AS failed_changes
    FROM changes c JOIN _targets tg USING (target) JOIN _groups g USING (target, repo)
    LEFT JOIN rollback_incidents i ON i.target = c.target AND i.answers_change
        AND i.repo = c.repo AND i.run_id = c.run_id AND i.run_attempt = c.run_attempt
    WHERE c.started_at >= $start AND c.started_at < $end
    GROUP BY g.grp
),
ended AS (
    SELECT g.grp, count(*) AS episodes, avg(restore_s) AS mttr_s,
           quantile_cont(restore_s, 0.5) AS restore_median_s,
           quantile_cont(restore_s, 0.9) AS restore_p90_s
    FROM failure_episodes e JOIN _groups g USING (target, repo)
    WHERE end_at >= $start AND end_at < $end GROUP BY g.grp
),
open_at_end AS (
    SELECT g.grp, count(*) AS open_episodes
    FROM failure_episodes e JOIN _groups g USING (target, repo)
    WHERE start_at < $end AND (end_at IS NULL OR end_at >= $end) GROUP BY g.grp
),
lead AS (
    SELECT g.grp,
           count(*) FILTER (lead_time_s >= 0) AS lead_n,
           quantile_cont(lead_time_s, 0.5) FILTER (lead_time_s >= 0) AS lead_time_p50_s,
           count(*) FILTER (lead_time_s < 0) AS lead_time_negative
    FROM lead_times l JOIN _groups g USING (target, repo)
    WHERE started_at >= $start AND started_at < $end GROUP BY g.grp
)
SELECT g.grp, coalesce(i.rollback_incidents, 0), coalesce(c.changes, 0),
       coalesce(c.failed_changes, 0), coalesce(e.episodes, 0), e.mttr_s, e.restore_median_s,
       e.restore_p90_s, coalesce(o.open_episodes, 0), coalesce(l.lead_n, 0),
       l.lead_time_p50_s, coalesce(l.lead_time_negative, 0)
FROM (SELECT DISTINCT grp FROM _groups) g
LEFT JOIN incidents i USING (grp) LEFT JOIN cfr c USING (grp)
LEFT JOIN ended e USING (grp) LEFT JOIN open_at_end o USING (grp)
LEFT JOIN lead l USING (grp)
"""


def prepare_recovery(con: duckdb.DuckDBPyConnection) -> None:
    """Build signals, changes, incidents and episodes over the classified attempts."""
    for sql in _STEPS:
        con.execute(sql)


def recovery_metrics(
    con: duckdb.DuckDBPyConnection, groups: list[str], window: Window
) -> dict[str, dict[str, Any]]:
    """Rollback, change-failure, recovery and lead-time metrics of each group for a window
    (a group without data gets zero counts and null values)."""
    params = {"start": window.start, "end": window.end}
    con.execute(LEAD_TIMES, params)
    rows = {row[0]: row[1:] for row in con.execute(_PER_GROUP, params).fetchall()}
    out = {}
    for group in groups:
        (incidents, changes, failed, episodes, mttr, median, p90, open_n, lead_n, lead_p50,
         negative) = rows.get(group, (0, 0, 0, 0, None, None, None, 0, 0, None, 0))  # fmt: skip
        out[group] = {
            "lead_time_n": lead_n,
            "lead_time_p50_s": lead_p50 if lead_n >= 1 else None,
            "lead_time_negative": negative,
            "rollback_incidents": incidents,
            "changes": changes,
            "change_failure_rate": failed / changes if changes else None,
            "episodes": episodes,
            "mttr_s": mttr,
            "restore_median_s": median if episodes >= 1 else None,
            "restore_p90_s": p90 if episodes >= 10 else None,
            "open_episodes": open_n,
        }
    return out
