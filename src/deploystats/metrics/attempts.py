"""Classification: which runs are deployment attempts of which target, and their outcome.

`prepare(con, targets)` loads the target definitions into temporary tables of a (read-only)
connection and builds `deployment_attempts`: one row per (target, repo, run_id, run_attempt)
with its deploy-job timing, runner roles and outcome class (DESIGN §5). Globs are matched
once against the distinct names (repos, workflows, branches, job names, runners, steps), and
the large tables are joined on equality.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pyarrow as pa

from deploystats.config import Target
from deploystats.errors import ConfigError


def _pattern_rows(target: Target) -> list[tuple[str, str, str]]:
    """(target, kind, pattern) rows; a kind names what its patterns are matched against."""
    rows = []
    lists = {
        "repo": target.repos,
        "workflow": target.workflows,
        "branch": target.branches,
        "event": target.events,
        "deploy_job": target.deploy_jobs,
        "rollback_workflow": target.rollback_workflows,
        "rollback_step": [p.lower() for p in target.rollback_steps],
        "lead_event": target.lead_time_events,
    }
    for role, runners in target.runners.items():
        lists[f"{role}_name"] = runners.names
        lists[f"{role}_label"] = runners.labels
        lists[f"{role}_group"] = runners.groups
    for kind, patterns in lists.items():
        rows += [(target.name, kind, pattern) for pattern in patterns]
    return rows


def register_targets(
    con: duckdb.DuckDBPyConnection,
    targets: Sequence[Target],
    *,
    tids: Sequence[int] | None = None,
) -> None:
    """The targets as temp tables _targets, _patterns and _exclusions; `tid` keys a target
    (default: its index; a cached classification brings its own)."""
    con.register(
        "_targets_in",
        pa.table(
            {
                "tid": list(tids) if tids is not None else list(range(len(targets))),
                "target": [t.name for t in targets],
                "team": [t.team for t in targets],
                "service": [t.service for t in targets],
                "environment": [t.environment for t in targets],
                "cancelled_counts": [t.cancelled == "failure" for t in targets],
                "rolled_back_ok": [t.rolled_back == "success" for t in targets],
                "cfr_window_s": [t.cfr_window.total_seconds() for t in targets],
                "cfr_include_failed": [t.cfr_include_failed for t in targets],
                "history_days": [t.history_days for t in targets],
                "duration_counted": [t.duration_outcomes == "counted" for t in targets],
                "duration_run_timing": [t.duration_run_timing for t in targets],
            },
            schema=pa.schema(
                [
                    ("tid", pa.int32()),
                    ("target", pa.string()),
                    ("team", pa.string()),
                    ("service", pa.string()),
                    ("environment", pa.string()),
                    ("cancelled_counts", pa.bool_()),
                    ("rolled_back_ok", pa.bool_()),
                    ("cfr_window_s", pa.float64()),
                    ("cfr_include_failed", pa.bool_()),
                    ("history_days", pa.int64()),
                    ("duration_counted", pa.bool_()),
                    ("duration_run_timing", pa.bool_()),
                ]
            ),
        ),
    )
    patterns = [row for target in targets for row in _pattern_rows(target)]
    con.register(
        "_patterns_in",
        pa.table(
            {
                "target": [r[0] for r in patterns],
                "kind": [r[1] for r in patterns],
                "pattern": [r[2] for r in patterns],
            },
            schema=pa.schema(
                [("target", pa.string()), ("kind", pa.string()), ("pattern", pa.string())]
            ),
        ),
    )
    exclusions = [
        (t.name, run_id, None, None, e.reason)
        for t in targets
        for e in t.exclude
        for run_id in e.runs
    ] + [
        (t.name, None, str(e.from_), str(e.to), e.reason)
        for t in targets
        for e in t.exclude
        if e.from_ is not None
    ]
    con.register(
        "_exclusions_in",
        pa.table(
            {
                "xid": list(range(len(exclusions))),
                "target": [r[0] for r in exclusions],
                "run_id": [r[1] for r in exclusions],
                "from_at": [r[2] for r in exclusions],
                "to_at": [r[3] for r in exclusions],
                "reason": [r[4] for r in exclusions],
            },
            schema=pa.schema(
                [
                    ("xid", pa.int64()),
                    ("target", pa.string()),
                    ("run_id", pa.int64()),
                    ("from_at", pa.string()),
                    ("to_at", pa.string()),
                    ("reason", pa.string()),
                ]
            ),
        ),
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _targets AS SELECT * FROM _targets_in;
        CREATE OR REPLACE TEMP TABLE _patterns AS SELECT * FROM _patterns_in;
        CREATE OR REPLACE TEMP TABLE _exclusions AS  -- xid: the configured order
            SELECT t.tid, x.target, x.run_id, x.from_at::TIMESTAMPTZ AS from_at,
                   x.to_at::TIMESTAMPTZ AS to_at, x.reason, x.xid
            FROM _exclusions_in x
            JOIN _targets t USING (target);
        """
    )
    for name in ("_targets_in", "_patterns_in", "_exclusions_in"):
        con.unregister(name)


# Distinct names matched against the globs once; big tables then join on equality.
_SCOPES = """
CREATE OR REPLACE TEMP TABLE _scopes AS
WITH workflows AS (
    SELECT DISTINCT repo, workflow_path, workflow_name,
           regexp_extract(coalesce(workflow_path, ''), '[^/]*$') AS workflow_file
    FROM workflow_runs
),
matched AS (
    SELECT t.target, w.*,
           bool_or(p.kind = 'workflow') AS is_deploy,
           bool_or(p.kind = 'rollback_workflow') AS is_rollback
    FROM workflows w
    JOIN _targets t ON EXISTS (
        SELECT 1 FROM _patterns r
        WHERE r.target = t.target AND r.kind = 'repo' AND w.repo GLOB r.pattern)
    JOIN _patterns p ON p.target = t.target AND p.kind IN ('workflow', 'rollback_workflow')
        AND (w.workflow_file GLOB p.pattern OR w.workflow_name GLOB p.pattern)
    GROUP BY ALL
)
SELECT m.target, t.tid, m.repo, m.workflow_path, m.workflow_name, m.is_rollback,
       EXISTS (SELECT 1 FROM _patterns p WHERE p.target = m.target AND p.kind = 'branch')
           AS branch_filtered,
       EXISTS (SELECT 1 FROM _patterns p WHERE p.target = m.target AND p.kind = 'event')
           AS event_filtered
FROM matched m JOIN _targets t USING (target)
WHERE m.is_deploy OR m.is_rollback
"""

# The branches and events seen that pass the filters of the targets having such a filter
# (distinct patterns matched once against the distinct values).
_BRANCH_EVENT_OK = """
CREATE OR REPLACE TEMP TABLE _filters_ok AS
WITH values_seen AS (
    SELECT DISTINCT 'branch' AS kind, head_branch AS value FROM workflow_runs
    UNION SELECT DISTINCT 'event', event FROM workflow_runs
),
matched AS (
    SELECT p.kind, p.pattern, v.value
    FROM (SELECT DISTINCT kind, pattern FROM _patterns WHERE kind IN ('branch', 'event')) p
    JOIN values_seen v ON v.kind = p.kind AND v.value GLOB p.pattern
)
SELECT DISTINCT p.target, m.kind, m.value
FROM _patterns p JOIN matched m USING (kind, pattern)
"""

# Every attempt of the deploy and rollback workflows of each target; branches and events
# filter deploy runs only (a rollback is often dispatched from another ref). `aid` is a
# BIGINT key of the (target, attempt) pair within this connection: the run's row id and the
# target's index.
_RUNS = """
CREATE OR REPLACE TEMP TABLE _runs AS
SELECT s.target, s.is_rollback, r.repo, r.run_id, r.run_attempt, r.workflow_name,
       r.workflow_path, r.event, r.status, r.conclusion, r.head_branch, r.head_sha,
       r.head_commit_at, r.created_at AS run_created_at, r.run_started_at, r.updated_at,
       r.html_url, r.rowid * 1048576 + s.tid AS aid, s.tid
FROM workflow_runs r
JOIN _scopes s ON s.repo = r.repo AND s.workflow_path IS NOT DISTINCT FROM r.workflow_path
    AND s.workflow_name IS NOT DISTINCT FROM r.workflow_name
WHERE s.is_rollback OR (
    (NOT s.branch_filtered
     OR EXISTS (SELECT 1 FROM _filters_ok b WHERE b.target = s.target AND b.kind = 'branch'
                AND b.value = r.head_branch))
    AND (NOT s.event_filtered
         OR EXISTS (SELECT 1 FROM _filters_ok e WHERE e.target = s.target AND e.kind = 'event'
                    AND e.value = r.event)))
"""

# The repos each target has runs in (groups are built from them).
_TARGET_REPOS = """
CREATE OR REPLACE TEMP TABLE _target_repos AS SELECT DISTINCT target, tid, repo FROM _runs
"""

_JOB_NAMES = """
CREATE OR REPLACE TEMP TABLE _deploy_names AS
WITH names AS (SELECT DISTINCT name FROM jobs)
SELECT t.target, n.name FROM _targets t CROSS JOIN names n
WHERE NOT EXISTS (SELECT 1 FROM _patterns p WHERE p.target = t.target AND p.kind = 'deploy_job')
   OR EXISTS (SELECT 1 FROM _patterns p
              WHERE p.target = t.target AND p.kind = 'deploy_job' AND n.name GLOB p.pattern)
"""

# Runner roles: by runner name, any label, or runner group.
_RUNNER_ROLES = """
CREATE OR REPLACE TEMP TABLE _runner_roles AS
WITH runners AS (
    SELECT DISTINCT runner_name, runner_group_name, labels FROM jobs WHERE runner_name IS NOT NULL
),
matched AS (
    SELECT t.target, r.runner_name, r.runner_group_name, r.labels,
           bool_or(p.kind LIKE 'primary_%') AS primary_match,
           bool_or(p.kind LIKE 'secondary_%') AS secondary_match
    FROM runners r CROSS JOIN _targets t
    JOIN _patterns p ON p.target = t.target AND (
        (p.kind IN ('primary_name', 'secondary_name') AND r.runner_name GLOB p.pattern)
        OR (p.kind IN ('primary_group', 'secondary_group')
            AND r.runner_group_name GLOB p.pattern)
        OR (p.kind IN ('primary_label', 'secondary_label')
            AND len(list_filter(r.labels, lambda l: l GLOB p.pattern)) > 0))
    GROUP BY ALL
)
SELECT * FROM matched
"""

# A job with a step that is not skipped may have executed (an empty conclusion: still
# running); a step *ran* when its conclusion is neither skipped nor empty, which is what a
# rollback step must have done. Rollback steps match by name, case-insensitively (patterns
# are stored lower-case); the distinct step names are matched once and the steps joined on
# the name as stored.
_STEP_FACTS = """
CREATE OR REPLACE TEMP TABLE _rollback_names AS
WITH names AS (SELECT DISTINCT name FROM job_steps)
SELECT DISTINCT p.target, n.name
FROM names n JOIN _patterns p ON p.kind = 'rollback_step' AND lower(n.name) GLOB p.pattern;

CREATE OR REPLACE TEMP TABLE _rollback_jobs AS  -- jobs with a rollback step that ran
SELECT DISTINCT n.target, s.repo, s.job_id
FROM job_steps s JOIN _rollback_names n ON n.name = s.name
SEMI JOIN _scopes c ON c.target = n.target AND c.repo = s.repo
WHERE s.conclusion NOT IN ('skipped', '');

CREATE OR REPLACE TEMP TABLE _unrun_steps AS  -- only matters for jobs without a runner
SELECT DISTINCT s.repo, s.job_id
FROM job_steps s SEMI JOIN (SELECT repo, job_id FROM jobs WHERE runner_name IS NULL) j
    USING (repo, job_id)
WHERE s.conclusion <> 'skipped'
"""

# A deployment status names the run (and job) it came from in log_url or target_url.
_ENVIRONMENT_LINKS = r"""
CREATE OR REPLACE TEMP TABLE _env_links AS
WITH environments AS (  -- environment globs matched once per distinct environment
    SELECT t.target, e.environment
    FROM (SELECT DISTINCT environment FROM deployments) e
    JOIN _targets t ON t.environment IS NOT NULL AND e.environment GLOB t.environment
),
repos AS (
    SELECT DISTINCT r.target, r.repo FROM _runs r JOIN _targets t USING (target)
    WHERE t.environment IS NOT NULL
),
urls AS (  -- the distinct status URLs naming a run, only in the repos of such targets
    SELECT DISTINCT repo, deployment_id, coalesce(log_url, target_url) AS url
    FROM deployment_statuses SEMI JOIN repos USING (repo)
    WHERE contains(coalesce(log_url, target_url), '/actions/runs/')
),
statuses AS (  -- each URL parsed once
    SELECT DISTINCT repo, deployment_id,
           regexp_extract(url, '/actions/runs/(\d+)', 1)::BIGINT AS run_id,
           try_cast(regexp_extract(url, '/job/(\d+)', 1) AS BIGINT) AS job_id
    FROM urls
    WHERE regexp_matches(url, '/actions/runs/\d+')
)
SELECT DISTINCT r.target, s.repo, d.sha, s.run_id, s.job_id
FROM statuses s
JOIN deployments d ON d.repo = s.repo AND d.deployment_id = s.deployment_id
JOIN repos r ON r.repo = s.repo
SEMI JOIN environments e ON e.target = r.target AND e.environment = d.environment
"""

# Executed jobs (DESIGN §5): started in this attempt, not skipped, and taken by a runner or
# with a step that ran. Deploy jobs: the executed jobs whose name matches deploy_jobs. Per
# attempt (aid): the jobs seen, and its deploy jobs reduced to their timing, runner roles and
# failures; attempts without deploy jobs are timed by the run.
_EXECUTED = """NOT r.is_rollback AND j.started_at >= r.run_started_at
        AND j.conclusion <> 'skipped' AND (j.runner_name IS NOT NULL OR u.job_id IS NOT NULL)"""
_STARTED = "coalesce(p.deploy_started_at, r.run_started_at)"
_COMPLETED = "CASE WHEN p.deploy_jobs > 0 THEN p.deploy_completed_at ELSE r.updated_at END"

# Attempts with a deploy job that ran a rollback step (few: looked up from those steps).
_ROLLBACK_ATTEMPTS = f"""
CREATE OR REPLACE TEMP TABLE _rollback_attempts AS
SELECT DISTINCT r.aid
FROM _rollback_jobs rj
JOIN jobs j ON j.repo = rj.repo AND j.job_id = rj.job_id
JOIN _runs r ON r.target = rj.target AND r.repo = j.repo AND r.run_id = j.run_id
    AND r.run_attempt = j.run_attempt
JOIN _deploy_names d ON d.target = r.target AND d.name = j.name
LEFT JOIN _unrun_steps u ON u.repo = j.repo AND u.job_id = j.job_id
WHERE {_EXECUTED}
"""

_ATTEMPTS = f"""
CREATE OR REPLACE TEMP TABLE deployment_attempts AS
WITH seen AS (
    SELECT r.aid, count(*) AS jobs_seen
    FROM _runs r
    JOIN jobs j ON j.repo = r.repo AND j.run_id = r.run_id AND j.run_attempt = r.run_attempt
    WHERE NOT r.is_rollback
    GROUP BY r.aid
),
deploy_jobs AS (  -- executed jobs named like a deploy job
    SELECT r.aid, j.conclusion, j.created_at, j.started_at, j.completed_at,
           coalesce(rr.secondary_match, false) AS on_secondary,
           coalesce(rr.primary_match OR rr.secondary_match, false) AS role_known
    FROM _runs r
    JOIN jobs j ON j.repo = r.repo AND j.run_id = r.run_id AND j.run_attempt = r.run_attempt
    JOIN _deploy_names d ON d.target = r.target AND d.name = j.name
    LEFT JOIN _unrun_steps u ON u.repo = j.repo AND u.job_id = j.job_id
    LEFT JOIN _runner_roles rr ON rr.target = r.target AND rr.runner_name = j.runner_name
        AND rr.runner_group_name IS NOT DISTINCT FROM j.runner_group_name
        AND rr.labels IS NOT DISTINCT FROM j.labels
    WHERE {_EXECUTED}
),
per_attempt AS (
    SELECT aid,
           count(*) AS deploy_jobs,
           min(started_at) AS deploy_started_at,
           -- still running while a deploy job has no completion
           CASE WHEN count(*) = count(completed_at) THEN max(completed_at) END
               AS deploy_completed_at,
           max(epoch(started_at) - epoch(created_at)) AS queue_s,
           min(created_at) AS first_deploy_created_at,
           bool_or(on_secondary) AS on_secondary,
           bool_and(role_known) AS roles_known,
           min(completed_at) FILTER (conclusion IN ('failure', 'timed_out', 'startup_failure'))
               AS first_failed_at
    FROM deploy_jobs GROUP BY aid
),
linked AS (
    SELECT DISTINCT r.aid, l.sha
    FROM _runs r
    JOIN _env_links l ON l.target = r.target AND l.repo = r.repo AND l.run_id = r.run_id
    LEFT JOIN jobs j ON j.repo = l.repo AND j.job_id = l.job_id
    WHERE l.job_id IS NULL OR j.run_attempt IS NULL OR j.run_attempt = r.run_attempt
),
excluded AS (  -- only attempts of targets with exclusions can meet one
    SELECT r.aid, string_agg(x.reason, '; ' ORDER BY x.xid) AS excluded_reason
    FROM _runs r LEFT JOIN per_attempt p USING (aid)
    JOIN _exclusions x ON x.tid = r.tid AND (x.run_id = r.run_id
        -- [started_at, completed_at) overlaps [from, to); without a completion (or with
        -- none later than the start) the attempt is the instant it started
        OR ({_COMPLETED} > {_STARTED}
            AND x.from_at < {_COMPLETED} AND {_STARTED} < x.to_at)
        OR (coalesce({_COMPLETED} <= {_STARTED}, true)
            AND x.from_at <= {_STARTED} AND {_STARTED} < x.to_at))
    WHERE NOT r.is_rollback
    GROUP BY r.aid
),
classified AS (
    SELECT r.* EXCLUDE (aid, tid), t.environment, t.cancelled_counts, t.rolled_back_ok,
           t.duration_counted, t.duration_run_timing,
           coalesce(s.jobs_seen, 0) AS jobs_seen,
           coalesce(p.deploy_jobs, 0) AS deploy_jobs,
           {_STARTED} AS started_at,
           {_COMPLETED} AS completed_at,
           CASE WHEN p.deploy_jobs > 0 THEN 'jobs' ELSE 'run' END AS timing_source,
           p.queue_s,
           epoch(p.first_deploy_created_at) - epoch(r.run_started_at) AS pending_s,
           ra.aid IS NOT NULL AS rollback_step_ran,
           coalesce(p.on_secondary, false) AS on_secondary,
           coalesce(p.roles_known, false) AS roles_known,
           coalesce(p.first_failed_at, coalesce(p.deploy_completed_at, r.updated_at))
               AS failure_at,
           coalesce(l.sha, r.head_sha) AS deployed_sha,
           l.sha IS NOT NULL AS linked,
           e.excluded_reason, r.aid, r.tid
    FROM _runs r
    JOIN _targets t USING (tid)
    LEFT JOIN per_attempt p USING (aid)
    LEFT JOIN seen s USING (aid)
    LEFT JOIN linked l USING (aid)
    LEFT JOIN excluded e USING (aid)
    LEFT JOIN _rollback_attempts ra USING (aid)
    WHERE NOT r.is_rollback AND (t.environment IS NULL OR l.sha IS NOT NULL)
)
SELECT *,
       -- counted / good / bad per the target's `cancelled` and `rolled_back` options
       outcome IN ('success', 'failure', 'rolled_back')
           OR (outcome = 'aborted' AND cancelled_counts) AS counted,
       outcome = 'success' OR (outcome = 'rolled_back' AND rolled_back_ok) AS good,
       outcome = 'failure' OR (outcome = 'rolled_back' AND NOT rolled_back_ok)
           OR (outcome = 'aborted' AND cancelled_counts) AS bad
FROM (
SELECT *,
       CASE
           WHEN excluded_reason IS NOT NULL THEN 'excluded'
           WHEN jobs_seen > 0 AND deploy_jobs = 0 AND conclusion IN ('success', 'neutral')
               THEN 'not_deployed'
           WHEN jobs_seen > 0 AND deploy_jobs = 0 AND conclusion = 'cancelled' THEN 'superseded'
           WHEN rollback_step_ran THEN 'rolled_back'
           WHEN conclusion = 'success' THEN 'success'
           WHEN conclusion IN ('failure', 'timed_out', 'startup_failure') THEN 'failure'
           WHEN conclusion = 'cancelled' THEN 'aborted'
           ELSE 'not_counted'
       END AS outcome,
       epoch(completed_at) - epoch(started_at) AS duration_s
FROM classified
)
"""

_STEPS = (
    _SCOPES, _BRANCH_EVENT_OK, _RUNS, _TARGET_REPOS, _JOB_NAMES, _RUNNER_ROLES, _STEP_FACTS,
    _ROLLBACK_ATTEMPTS, _ENVIRONMENT_LINKS, _ATTEMPTS,
)  # fmt: skip


# Runners of the targets' jobs matching both roles (a config error), looked for only when a
# runner seen anywhere does.
_BOTH_ROLES = "SELECT count(*) FROM _runner_roles WHERE primary_match AND secondary_match"
_CONFLICTS = """
SELECT DISTINCT r.target, j.runner_name
FROM _runs r
JOIN jobs j ON j.repo = r.repo AND j.run_id = r.run_id AND j.run_attempt = r.run_attempt
JOIN _runner_roles rr ON rr.target = r.target AND rr.runner_name = j.runner_name
    AND rr.runner_group_name IS NOT DISTINCT FROM j.runner_group_name
    AND rr.labels IS NOT DISTINCT FROM j.labels
WHERE NOT r.is_rollback AND rr.primary_match AND rr.secondary_match
ORDER BY ALL LIMIT 3
"""


def prepare(con: duckdb.DuckDBPyConnection, targets: Sequence[Target]) -> None:
    """Build the classification tables for `targets` on this connection."""
    register_targets(con, targets)
    for sql in _STEPS:
        con.execute(sql)
    both = con.execute(_BOTH_ROLES).fetchall()[0][0]
    conflicts = con.execute(_CONFLICTS).fetchall() if both else []
    if conflicts:
        target, runner = conflicts[0]
        raise ConfigError(
            f"targets[{target}].runners: runner {runner!r} matches both primary and secondary: "
            "make the globs exclusive"
        )
