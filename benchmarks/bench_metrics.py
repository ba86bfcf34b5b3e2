"""Metrics benchmark: the full suite over 1,000,000 attempts (3,000,000 jobs) of 100 targets.

Generates a DuckDB file with the project's schema, filled by SQL alone (`INSERT ... SELECT ...
FROM range(n)`, hash-based pseudo-random columns: the same bytes for the same arguments), then
times, each in a child process that does only that (peak RSS from getrusage):

- the engine: `compute_metrics(con, targets, window)` for a 28-day window in a fresh read-only
  connection, with the split classification (`prepare` + `prepare_recovery`) vs per-window
  metrics, and the slowest statements; then the API's `metrics()` with the classification
  cache in the file: cold (the first call rebuilds it) and warm (later calls read it);
- the same definitions in vectorised pandas (benchmarks/metrics_pandas.py) on the same file,
  checked against the engine's numbers for every target (1e-9).

Targets (metrics issue): engine <= 2 s at 1,000,000 attempts on 2 cores, pandas / engine >= 10x,
peak RSS per process <= 2 GiB; the engine's time is the warm API call.

    python benchmarks/bench_metrics.py [--attempts 1000000] [--keep DIR [--explain N]]

--attempts 10000000 spans 3,650 days (27.4 attempts per target and day), generates in ~3 min
(6.6 GB); --skip-pandas there (pandas would need ~18 GB); --timeout bounds each measurement.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPOS = 100
DATA_END = datetime(2026, 12, 1, tzinfo=UTC)
WINDOW_END = datetime(2026, 11, 30, tzinfo=UTC)  # a Monday: the window is ISO weeks 45-48
WINDOW_DAYS = 28
PER_DAY = 27.4  # attempts per target and day: 1,000,000 attempts span 365 days
CHUNK = 1_000_000  # attempts generated per INSERT round (bounds the generator's memory)
GENERATOR_VERSION = 1
ENGINE_TARGET_S, RATIO_TARGET, RSS_TARGET_MIB = 2.0, 10.0, 2048.0

# Row i is attempt slot k = i // 100 of repo org/svc-{i % 100}; everything about it is a pure
# function of i (and of i - 100, i + 100: the previous / next slot of the same repo), so chunks
# are independent. u(i, s) is a uniform [0, 1) draw number s of row i.
MACROS = """
CREATE OR REPLACE TEMP MACRO u(i, s) AS (hash(i, s) >> 11)::DOUBLE / 9007199254740992.0;
CREATE OR REPLACE TEMP MACRO gv(name) AS getvariable(name)::BIGINT;
CREATE OR REPLACE TEMP MACRO t0(i) AS
    gv('b_start') + (i // 100) * gv('b_spacing') + floor(u(i, 7) * gv('b_spacing') * 0.5)::BIGINT;
CREATE OR REPLACE TEMP MACRO cand(i) AS u(i, 1) < 0.05;
-- ~5 % of runs get a second attempt in the next slot of their repo
CREATE OR REPLACE TEMP MACRO rerun(i) AS
    (i >= 100 AND i < gv('b_n') AND cand(i) AND NOT cand(i - 100));
CREATE OR REPLACE TEMP MACRO vrow(i) AS i - 100 * rerun(i)::BIGINT;
-- what the deploy workflow does in slot i (before rollback runs take some slots)
CREATE OR REPLACE TEMP MACRO draw(i) AS CASE
    WHEN rerun(i + 100) THEN CASE
        WHEN u(i, 3) < 0.60 THEN 'fail' WHEN u(i, 3) < 0.70 THEN 'rescue_red'
        WHEN u(i, 3) < 0.80 THEN 'abort' WHEN u(i, 3) < 0.85 THEN 'no_runner' ELSE 'ok' END
    WHEN t0(i) > gv('b_end') - 7200 AND u(i, 6) < 0.3 THEN 'running'
    WHEN u(i, 3) < 0.930 THEN 'ok' WHEN u(i, 3) < 0.950 THEN 'fail'
    WHEN u(i, 3) < 0.958 THEN 'rescue_red' WHEN u(i, 3) < 0.960 THEN 'rescue_green'
    WHEN u(i, 3) < 0.965 THEN 'abort' WHEN u(i, 3) < 0.975 THEN 'superseded'
    WHEN u(i, 3) < 0.985 THEN 'skip' WHEN u(i, 3) < 0.988 THEN 'no_runner'
    WHEN u(i, 3) < 0.990 THEN 'timed_out' WHEN u(i, 3) < 0.991 THEN 'startup_failure'
    WHEN u(i, 3) < 0.992 THEN 'action_required' ELSE 'ok' END;
-- a rollback-workflow run, mostly after a failed deploy
CREATE OR REPLACE TEMP MACRO rb(i) AS (i >= 100 AND NOT rerun(i) AND NOT rerun(i + 100)
    AND u(i, 2) < CASE WHEN draw(i - 100) IN ('fail', 'rescue_red', 'no_runner', 'timed_out')
                       THEN 0.25 ELSE 0.001 END);
-- a dispatch of the version deployed three slots earlier (rollback signal c)
CREATE OR REPLACE TEMP MACRO rd(i) AS (i >= 300 AND NOT rerun(i) AND NOT rerun(i + 100)
    AND NOT rb(i) AND u(i, 4) < 0.003);
CREATE OR REPLACE TEMP MACRO sha(v) AS md5(v::VARCHAR) || left(md5(v::VARCHAR || '#'), 8);
-- head commit: minutes to hours before its first run; 0.1 % with a skewed clock (after it)
CREATE OR REPLACE TEMP MACRO commit_at(v) AS CASE
    WHEN u(v, 19) < 0.001 THEN t0(v) + 600 + floor(u(v, 5) * 3600)::BIGINT
    ELSE t0(v) - 60 - floor(u(v, 5) * u(v, 5) * 21600)::BIGINT END;
CREATE OR REPLACE TEMP MACRO qb(i) AS 2 + floor(u(i, 11) * 20)::BIGINT;
CREATE OR REPLACE TEMP MACRO db(i) AS 60 + floor(u(i, 12) * 180)::BIGINT;
"""

# One row per attempt of the chunk, with the three jobs' facts as b_ / d_ / n_ columns
# (build, deploy, notify; resolve, rollback, notify for rollback-workflow runs).
PLAN = """
CREATE OR REPLACE TEMP TABLE _plan AS
WITH a AS (
    SELECT i, i % 100 AS r, t0(i) AS t, rerun(i) AS rerun, rb(i) AS rollback, rd(i) AS redeploy,
           vrow(i) AS run_row
    FROM range($lo, $hi) g(i)
),
b AS (
    SELECT *,
        CASE WHEN rollback THEN 'rollback_run' ELSE draw(i) END AS scenario,
        CASE WHEN redeploy THEN vrow(i - 300) WHEN rollback THEN i ELSE run_row END AS version,
        rerun AND u(i, 8) < 0.5 AS partial,
        t0(run_row) AS created, t + 1 AS rs,
        u(i, 13) < 0.07 AS secondary, u(i, 13) >= 0.997 AS legacy,
        round(exp(ln(240) + 0.35 * sqrt(-2 * ln(1 - u(i, 15))) * cos(2 * pi() * u(i, 16))))::BIGINT
            AS dmain,
        20 + floor(u(i, 17) * 35)::BIGINT AS smoke, 45 + floor(u(i, 18) * 95)::BIGINT AS rescue
    FROM a
),
c AS (
    SELECT *,
        -- build (resolve): a partial re-run copies attempt 1's build job
        rs + 1 AS b_created,
        CASE WHEN partial THEN t0(i - 100) + 2 + qb(i - 100) ELSE rs + 1 + qb(i) END
            AS b_started,
        CASE WHEN partial THEN t0(i - 100) + 2 + qb(i - 100) + db(i - 100)
             WHEN rollback THEN rs + 1 + qb(i) + 15 + floor(u(i, 12) * 20)::BIGINT
             ELSE rs + 1 + qb(i) + db(i) END AS b_completed,
        -- deploy step, smoke test, rescue step seconds as run
        CASE scenario WHEN 'fail' THEN floor(0.55 * dmain)::BIGINT
                      WHEN 'rescue_green' THEN floor(0.7 * dmain)::BIGINT
                      WHEN 'abort' THEN floor(0.5 * dmain)::BIGINT
                      WHEN 'timed_out' THEN 900 ELSE dmain END AS dd,
        CASE WHEN scenario IN ('ok', 'rescue_red', 'rollback_run') THEN smoke ELSE 0 END AS se,
        CASE WHEN scenario IN ('rescue_red', 'rescue_green') THEN rescue ELSE 0 END AS re,
        scenario IN ('ok', 'fail', 'rescue_red', 'rescue_green', 'abort', 'timed_out', 'running',
                     'rollback_run') AS d_ran
    FROM b
),
d AS (
    SELECT *,
        CASE WHEN partial THEN rs + 2 ELSE b_completed + 1 END AS d_created,
        CASE WHEN rollback THEN 2 + floor(u(i, 14) * 18)::BIGINT
             WHEN secondary THEN 60 + floor(u(i, 14) * 540)::BIGINT
             ELSE 2 + floor(u(i, 14) * 25)::BIGINT END AS d_queue,
        CASE scenario WHEN 'no_runner' THEN 1800 + floor(u(i, 20) * 1800)::BIGINT
                      WHEN 'superseded' THEN 30 + floor(u(i, 20) * 870)::BIGINT
                      ELSE 0 END AS d_wait
    FROM c
),
e AS (
    SELECT *,
        CASE WHEN d_ran THEN d_created + d_queue
             WHEN scenario IN ('action_required') THEN NULL
             ELSE d_created + d_wait END AS d_started,
        CASE WHEN scenario IN ('running', 'action_required') THEN NULL
             WHEN d_ran THEN d_created + d_queue + 6 + dd + se + re
             ELSE d_created + d_wait END AS d_completed
    FROM d
),
f AS (
    SELECT *,
        scenario IN ('ok', 'fail', 'rescue_red', 'rescue_green', 'no_runner', 'timed_out', 'skip',
                     'rollback_run') AS n_ran,
        coalesce(d_completed, d_created) + 1 AS n_created,
        coalesce(d_completed, d_created) + 3 + floor(u(i, 21) * 8)::BIGINT AS n_started_if_ran
    FROM e
)
SELECT i, r, printf('org/svc-%03d', r) AS repo, rollback, redeploy, scenario, partial,
    5000000000 + run_row AS run_id, 1 + rerun::INTEGER AS run_attempt,
    7000000000 + 3 * i AS job_base, version, created, rs,
    CASE WHEN rollback OR redeploy THEN 'workflow_dispatch'
         WHEN u(run_row, 10) < 0.85 THEN 'push' ELSE 'workflow_dispatch' END AS event,
    CASE WHEN NOT rollback AND u(run_row, 9) < 0.01 THEN 'hotfix/' || run_row ELSE 'main' END
        AS head_branch,
    CASE scenario WHEN 'ok' THEN 'success' WHEN 'fail' THEN 'failure'
        WHEN 'rescue_red' THEN 'failure' WHEN 'rescue_green' THEN 'success'
        WHEN 'abort' THEN 'cancelled' WHEN 'superseded' THEN 'cancelled'
        WHEN 'skip' THEN 'success' WHEN 'no_runner' THEN 'failure'
        WHEN 'timed_out' THEN 'timed_out' WHEN 'startup_failure' THEN 'startup_failure'
        WHEN 'action_required' THEN 'action_required' WHEN 'running' THEN ''
        ELSE CASE WHEN u(i, 3) < 0.9 THEN 'success' ELSE 'failure' END END AS conclusion,
    b_created, b_started, b_completed, dd, se, re, d_ran, d_created, d_started, d_completed,
    n_ran, n_created,
    CASE WHEN n_ran THEN n_started_if_ran WHEN scenario IN ('superseded', 'abort')
         THEN n_created - 1 END AS n_started,
    CASE WHEN n_ran THEN n_started_if_ran + 3 + floor(u(i, 22) * 9)::BIGINT
         WHEN scenario IN ('superseded', 'abort') THEN n_created - 1 END AS n_completed,
    CASE WHEN rollback THEN 'primary' WHEN legacy THEN 'legacy'
         WHEN secondary THEN 'secondary' ELSE 'primary' END AS d_pool
FROM f
"""

RUNS_INSERT = """
INSERT INTO workflow_runs
SELECT repo, run_id, run_attempt,
    100000 + 2 * r + rollback::INTEGER AS workflow_id,
    CASE WHEN rollback THEN 'Rollback' ELSE 'Deploy' END AS workflow_name,
    CASE WHEN rollback THEN '.github/workflows/rollback.yml'
         ELSE '.github/workflows/deploy.yml' END AS workflow_path,
    run_id - 5000000000 AS run_number, event,
    CASE WHEN scenario = 'running' THEN 'in_progress' ELSE 'completed' END AS status,
    conclusion, head_branch, sha(version) AS head_sha, to_timestamp(commit_at(version)),
    'dev-' || hash(i, 40) % 60 AS actor,
    to_timestamp(created), to_timestamp(rs),
    to_timestamp(CASE scenario WHEN 'startup_failure' THEN rs + 2
                               WHEN 'running' THEN d_started + 5
                               WHEN 'action_required' THEN b_completed + 1
                               ELSE coalesce(n_completed, d_completed) + 1 END),
    'https://github.com/' || repo || '/actions/runs/' || run_id AS html_url,
    NULL AS raw
FROM _plan
"""

# The three jobs of each attempt (none for startup failures).
JOBS_PLAN = """
CREATE OR REPLACE TEMP TABLE _jobs_plan AS
SELECT p.repo, p.job_base + j AS job_id, p.run_id, p.run_attempt, p.scenario, p.rollback, j,
    CASE j WHEN 0 THEN CASE WHEN p.rollback THEN 'resolve' ELSE 'build' END
           WHEN 1 THEN CASE WHEN p.rollback THEN 'rollback' ELSE 'deploy' END
           ELSE 'notify' END AS layout,
    CASE j WHEN 0 THEN 'completed'
           WHEN 1 THEN CASE p.scenario WHEN 'running' THEN 'in_progress'
                                       WHEN 'action_required' THEN 'waiting' ELSE 'completed' END
           ELSE CASE WHEN p.scenario IN ('running', 'action_required') THEN 'queued'
                     ELSE 'completed' END END AS status,
    CASE j WHEN 0 THEN 'success'
           WHEN 1 THEN CASE p.scenario
               WHEN 'ok' THEN 'success' WHEN 'rescue_green' THEN 'success'
               WHEN 'fail' THEN 'failure' WHEN 'rescue_red' THEN 'failure'
               WHEN 'timed_out' THEN 'failure' WHEN 'no_runner' THEN 'failure'
               WHEN 'abort' THEN 'cancelled' WHEN 'superseded' THEN 'cancelled'
               WHEN 'skip' THEN 'skipped' WHEN 'rollback_run' THEN p.conclusion
               ELSE '' END
           ELSE CASE WHEN p.n_ran THEN 'success'
                     WHEN p.scenario IN ('superseded', 'abort') THEN 'skipped' ELSE '' END
           END AS conclusion,
    CASE j WHEN 0 THEN p.b_created WHEN 1 THEN p.d_created ELSE p.n_created END AS created,
    CASE j WHEN 0 THEN p.b_started WHEN 1 THEN p.d_started ELSE p.n_started END AS started,
    CASE j WHEN 0 THEN p.b_completed WHEN 1 THEN p.d_completed ELSE p.n_completed END
        AS completed,
    CASE WHEN j = 0 AND p.partial THEN NULL
         WHEN j = 1 THEN CASE WHEN p.d_ran THEN p.d_pool END
         WHEN j = 2 AND NOT p.n_ran THEN NULL
         ELSE 'hosted' END AS pool,
    hash(p.i, 30 + j) AS runner_draw,
    (j = 0) OR (j = 1 AND p.d_ran) OR (j = 2 AND p.n_ran) AS has_steps,
    p.dd, p.se, p.re
FROM _plan p CROSS JOIN range(3) g(j)
WHERE p.scenario <> 'startup_failure'
"""

JOBS_INSERT = """
INSERT INTO jobs
SELECT repo, job_id, run_id, run_attempt, layout AS name, status, conclusion,
    to_timestamp(created), to_timestamp(started), to_timestamp(completed),
    CASE pool WHEN 'hosted' THEN 'GitHub Actions ' || (1 + runner_draw % 500)
              WHEN 'primary' THEN 'prod-primary-' || lpad((1 + runner_draw % 20)::VARCHAR, 2, '0')
              WHEN 'secondary' THEN 'prod-secondary-0' || (1 + runner_draw % 6)
              WHEN 'legacy' THEN 'legacy-deploy-01' END AS runner_name,
    CASE pool WHEN 'hosted' THEN 'GitHub Actions' WHEN 'primary' THEN 'production'
              WHEN 'secondary' THEN 'production-fallback' WHEN 'legacy' THEN 'Default' END
        AS runner_group_name,
    CASE pool WHEN 'hosted' THEN ['ubuntu-latest']
              WHEN 'primary' THEN ['self-hosted', 'linux', 'x64', 'prod-primary']
              WHEN 'secondary' THEN ['self-hosted', 'linux', 'x64', 'prod-secondary']
              WHEN 'legacy' THEN ['self-hosted', 'linux']
              ELSE []::VARCHAR[] END AS labels,
    'https://github.com/' || repo || '/actions/runs/' || run_id || '/job/' || job_id AS html_url
FROM _jobs_plan
"""

# Steps of the jobs a runner took: (layout, number, name); times laid end to end.
STEP_LAYOUTS = """
CREATE OR REPLACE TEMP TABLE _step_layouts AS SELECT * FROM (VALUES
    ('build', 1, 'Set up job'), ('build', 2, 'Run actions/checkout@v4'),
    ('build', 3, 'Build and push image'), ('build', 4, 'Complete job'),
    ('deploy', 1, 'Set up job'), ('deploy', 2, 'Run actions/checkout@v4'),
    ('deploy', 3, 'Deploy to production'), ('deploy', 4, 'Smoke test'),
    ('deploy', 5, 'Rescue: roll back release'), ('deploy', 6, 'Complete job'),
    ('notify', 1, 'Set up job'), ('notify', 2, 'Notify Slack'),
    ('resolve', 1, 'Set up job'), ('resolve', 2, 'Resolve previous release'),
    ('rollback', 1, 'Set up job'), ('rollback', 2, 'Run actions/checkout@v4'),
    ('rollback', 3, 'Roll back to previous release'), ('rollback', 4, 'Smoke test')
) v(layout, number, name)
"""

STEPS_INSERT = """
INSERT INTO job_steps
WITH s AS (
    SELECT j.repo, j.job_id, l.number, l.name, j.started, j.completed,
        CASE WHEN j.layout <> 'deploy' THEN
                 CASE WHEN j.layout = 'rollback' AND j.conclusion = 'failure' AND l.number >= 3
                      THEN CASE l.number WHEN 3 THEN 'failure' ELSE 'skipped' END
                      ELSE 'success' END
             WHEN l.number <= 2 THEN 'success'
             WHEN j.scenario = 'running' THEN ''
             WHEN l.number = 3 THEN CASE j.scenario
                 WHEN 'fail' THEN 'failure' WHEN 'rescue_green' THEN 'failure'
                 WHEN 'abort' THEN 'cancelled' WHEN 'timed_out' THEN 'cancelled'
                 ELSE 'success' END
             WHEN l.number = 4 THEN CASE j.scenario
                 WHEN 'ok' THEN 'success' WHEN 'rescue_red' THEN 'failure' ELSE 'skipped' END
             WHEN l.number = 5 THEN CASE WHEN j.scenario IN ('rescue_red', 'rescue_green')
                                         THEN 'success' ELSE 'skipped' END
             WHEN j.scenario IN ('abort', 'timed_out') THEN 'skipped'
             ELSE 'success' END AS conclusion,
        -- offset of the step's start and end from the job's start
        CASE WHEN j.layout = 'deploy' THEN
                 [0, 2, 5, 5 + j.dd, 5 + j.dd + j.se, 5 + j.dd + j.se + j.re][l.number]
             WHEN l.number = 1 THEN 0 WHEN l.number = 2 THEN 2
             WHEN l.number = 3 THEN 5 ELSE j.completed - j.started - 1 END AS off_start,
        CASE WHEN j.layout = 'deploy' THEN
                 [2, 5, 5 + j.dd, 5 + j.dd + j.se, 5 + j.dd + j.se + j.re,
                  6 + j.dd + j.se + j.re][l.number]
             WHEN l.number = 1 THEN 2 WHEN l.number = 2 AND j.layout IN ('notify', 'resolve')
             THEN j.completed - j.started
             WHEN l.number = 2 THEN 5 WHEN l.number = 3 THEN j.completed - j.started - 1
             ELSE j.completed - j.started END AS off_end
    FROM _jobs_plan j JOIN _step_layouts l USING (layout)
    WHERE j.has_steps
)
SELECT repo, job_id, number, name,
    CASE WHEN conclusion <> '' THEN 'completed' WHEN number = 3 THEN 'in_progress'
         ELSE 'queued' END AS status,
    conclusion,
    CASE WHEN conclusion <> '' OR number = 3 THEN to_timestamp(started + off_start) END,
    CASE WHEN conclusion <> '' THEN to_timestamp(started + least(off_end, coalesce(
        completed - started, off_end))) END
FROM s
"""

# Every deploy job that reached the environment gets a deployment and its statuses; the log
# URL names the run and the job (DESIGN §5: environment links).
DEPLOYMENTS_INSERT = """
INSERT INTO deployments
SELECT repo, job_base + 1, 'production', sha(version), 'main', 'deploy',
    to_timestamp(d_created), to_timestamp(coalesce(d_completed, d_started)), NULL
FROM _plan WHERE NOT rollback AND (d_ran OR scenario = 'no_runner');

INSERT INTO deployment_statuses
SELECT p.repo, 2 * (p.job_base + 1) + s AS status_id, p.job_base + 1,
    CASE WHEN s = 0 THEN CASE WHEN p.d_ran THEN 'in_progress' ELSE 'queued' END
         WHEN p.conclusion IN ('success') THEN 'success' ELSE 'failure' END AS state,
    'production',
    'https://github.com/' || p.repo || '/actions/runs/' || p.run_id || '/job/' || (p.job_base + 1),
    'https://github.com/' || p.repo || '/actions/runs/' || p.run_id || '/job/' || (p.job_base + 1),
    to_timestamp(CASE WHEN s = 0 THEN coalesce(p.d_started, p.d_created) ELSE p.d_completed END),
    to_timestamp(CASE WHEN s = 0 THEN coalesce(p.d_started, p.d_created) ELSE p.d_completed END)
FROM _plan p CROSS JOIN range(2) g(s)
WHERE NOT p.rollback AND (p.d_ran OR p.scenario = 'no_runner')
    AND (s = 0 OR p.d_completed IS NOT NULL)
"""

SYNC_STATE_INSERT = """
INSERT INTO sync_state
SELECT 'github', printf('org/svc-%03d', r) || ':' || w, $end, $end
FROM range(100) g(r) CROSS JOIN (VALUES ('deploy.yml'), ('rollback.yml')) v(w)
"""


def generate(path: Path, attempts: int, days: float, report: Any = print) -> dict[str, int]:
    """Fill a new DuckDB file at `path`; returns the row counts."""
    from deploystats.store import connect

    con = connect(path)
    try:
        con.execute("SET memory_limit = '4GB'")
        per_repo = math.ceil(attempts / REPOS)
        start = DATA_END - timedelta(days=days)
        spacing = int(days * 86400 // per_repo)
        for name, value in (
            ("b_n", attempts),
            ("b_start", int(start.timestamp())),
            ("b_end", int(DATA_END.timestamp())),
            ("b_spacing", spacing),
        ):
            con.execute(f"SET VARIABLE {name} = $value::BIGINT", {"value": value})
        con.execute(MACROS)
        con.execute(STEP_LAYOUTS)
        for lo in range(0, attempts, CHUNK):
            hi = min(lo + CHUNK, attempts)
            started = time.perf_counter()
            con.execute("BEGIN TRANSACTION")
            con.execute(PLAN, {"lo": lo, "hi": hi})
            con.execute(RUNS_INSERT)
            con.execute(JOBS_PLAN)
            con.execute(JOBS_INSERT)
            con.execute(STEPS_INSERT)
            con.execute(DEPLOYMENTS_INSERT)
            con.execute("COMMIT")
            report(f"  generated attempts {lo:,}..{hi:,} in {time.perf_counter() - started:.1f}s")
        con.execute(SYNC_STATE_INSERT, {"end": DATA_END})
        con.execute("DROP TABLE IF EXISTS _plan; DROP TABLE IF EXISTS _jobs_plan")
        con.execute("CHECKPOINT")
        counts = {
            table: int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
            for table in ("workflow_runs", "jobs", "job_steps", "deployments",
                          "deployment_statuses")
        }  # fmt: skip
    finally:
        con.close()
    return counts


def bench_targets(attempts: int, days: float) -> list[Any]:
    """One target per repo; some use the environment link, `cancelled: failure`,
    `rolled_back: success`, `duration_outcomes: counted` or exclusions, so every path runs."""
    from deploystats.config import Target

    window_start = WINDOW_END - timedelta(days=WINDOW_DAYS)
    spacing = int(days * 86400 // math.ceil(attempts / REPOS))
    drill_slot = int((window_start - (DATA_END - timedelta(days=days))).total_seconds()) // spacing
    targets = []
    for r in range(REPOS):
        spec: dict[str, Any] = {
            "name": f"svc-{r:03d}",
            "repos": [f"org/svc-{r:03d}"],
            "workflows": ["deploy.yml"],
            "branches": ["main"],
            "deploy_jobs": ["deploy*"],
            "rollback_workflows": ["rollback.yml"],
            "rollback_steps": ["rollback*", "*rescue*"],
            "runners": {
                "primary": {"labels": ["prod-primary"]},
                "secondary": {"names": ["prod-secondary-*"], "groups": ["production-fallback"]},
            },
            "team": f"team-{r % 12}",
            "service": f"svc-{r:03d}",
        }
        if r % 4 == 0:
            spec["environment"] = "production"
        if r % 7 == 5:
            spec["cancelled"] = "failure"
        if r % 11 == 6:
            spec["rolled_back"] = "success"
        if r % 13 == 8:
            spec["duration_outcomes"] = "counted"
        if r % 10 == 3:
            outage = window_start + timedelta(days=8, hours=10)
            drill = 5_000_000_000 + 100 * (drill_slot + 20 + r) + r
            spec["exclude"] = [
                {"runs": [drill], "reason": "rollback drill"},
                {"from": outage.isoformat(), "to": (outage + timedelta(hours=2)).isoformat(),
                 "reason": "GitHub outage"},
            ]  # fmt: skip
        targets.append(Target.model_validate(spec))
    return targets


def bench_window() -> Any:
    from deploystats.metrics import Window

    return Window(WINDOW_END - timedelta(days=WINDOW_DAYS), WINDOW_END, "28d", "UTC")


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    """CPU seconds of this process (all threads): less sensitive to other load than wall time."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_engine(db: Path, attempts: int, days: float, repeats: int) -> dict[str, Any]:
    """compute_metrics in fresh read-only connections: the whole, then the split."""
    from deploystats.metrics import compute_metrics, prepare, window_metrics
    from deploystats.metrics.recovery import prepare_recovery
    from deploystats.store import connect

    targets, window = bench_targets(attempts, days), bench_window()
    whole, cpu, result = [], [], None
    for _ in range(repeats):
        con = connect(db, read_only=True)
        started, cpu_started = time.perf_counter(), _cpu_s()
        result = compute_metrics(con, targets, window)
        whole.append(time.perf_counter() - started)
        cpu.append(_cpu_s() - cpu_started)
        con.close()
    con = connect(db, read_only=True)
    t0 = time.perf_counter()
    prepare(con, targets)
    t1 = time.perf_counter()
    prepare_recovery(con)
    t2 = time.perf_counter()
    window_metrics(con, targets, window)
    t3 = time.perf_counter()
    counts = con.execute(
        "SELECT count(*), count(*) FILTER (counted), count(*) FILTER (started_at >= $s "
        "AND started_at < $e) FROM deployment_attempts",
        {"s": window.start, "e": window.end},
    ).fetchall()[0]
    con.close()
    cache = _cached_runs(db, targets, window, repeats)
    return {
        **cache,
        "whole_s": whole,
        "whole_cpu_s": cpu,
        "prepare_s": t1 - t0,
        "recovery_prepare_s": t2 - t1,
        "window_metrics_s": t3 - t2,
        "deployment_attempts": counts[0],
        "counted": counts[1],
        "in_window": counts[2],
        "metrics": result["targets"] if result else {},
        "peak_rss_mib": _rss_mib(),
    }


def _cached_runs(db: Path, targets: list[Any], window: Any, repeats: int) -> dict[str, Any]:
    """The API's metrics (one connection per call) with the classification cache: the first
    call after dropping it rebuilds it (cold), the later ones read it (warm)."""
    import deploystats
    from deploystats.config import Settings
    from deploystats.store import connect

    con = connect(db)
    con.execute("DROP SCHEMA IF EXISTS metrics_cache CASCADE")
    con.execute("CHECKPOINT")
    con.close()
    ds = deploystats.open(db, config=Settings(targets=targets))
    times, cpu, results = [], [], []
    for _ in range(1 + repeats):
        started, cpu_started = time.perf_counter(), _cpu_s()
        results.append(ds.metrics(window=window)["targets"])
        times.append(time.perf_counter() - started)
        cpu.append(_cpu_s() - cpu_started)
    return {
        "cold_s": times[0],
        "cold_cpu_s": cpu[0],
        "warm_s": times[1:],
        "warm_cpu_s": cpu[1:],
        "cached_metrics": results[-1],
        "cold_metrics": results[0],
    }


class _Timed:
    """A connection that records every call the engine makes, with the time of each execute."""

    def __init__(self, con: Any) -> None:
        self._con = con
        self.calls: list[tuple[str, Any, Any, float]] = []  # (method, first arg, second, s)

    def execute(self, sql: str, params: Any = None) -> Any:
        started = time.perf_counter()
        result = self._con.execute(sql, params)
        self.calls.append(("execute", sql, params, time.perf_counter() - started))
        return result

    def register(self, name: str, value: Any) -> Any:
        self.calls.append(("register", name, value, 0.0))
        return self._con.register(name, value)

    def unregister(self, name: str) -> Any:
        self.calls.append(("unregister", name, None, 0.0))
        return self._con.unregister(name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def _label(sql: str) -> str:
    lines = [line.strip() for line in sql.strip().splitlines() if line.strip()]
    creates = [line.split(" AS")[0].split()[-1] for line in lines if line.startswith("CREATE")]
    if creates:
        return "+".join(creates)
    return " ".join(lines)[:70]


def child_profile(
    db: Path, attempts: int, days: float, explain: int, out_dir: Path
) -> dict[str, Any]:
    """compute_metrics with every statement timed; then the same calls replayed on a fresh
    connection with EXPLAIN ANALYZE in place of the `explain` slowest statements."""
    from deploystats.metrics import compute_metrics
    from deploystats.store import connect

    targets, window = bench_targets(attempts, days), bench_window()
    con = connect(db, read_only=True)
    timed = _Timed(con)
    compute_metrics(timed, targets, window)  # type: ignore[arg-type]
    con.close()
    executes = [c for c in timed.calls if c[0] == "execute"]
    slowest = sorted(executes, key=lambda call: -call[3])[:explain]
    explained = []
    if slowest:
        con = connect(db, read_only=True)
        for call in timed.calls:
            method, first, second, _ = call
            if method != "execute":
                getattr(con, method)(first, *([second] if method == "register" else []))
            elif call not in slowest:
                con.execute(first, second).fetchall()
            else:
                text = []
                for part in (p for p in first.split(";\n") if p.strip()):
                    uses = second if second and "$" in part else None
                    rows = con.execute("EXPLAIN ANALYZE " + part, uses).fetchall()
                    text.append(f"-- {part.strip()}\n" + "\n".join(r[1] for r in rows))
                rank = slowest.index(call) + 1
                name = re.sub(r"[^A-Za-z0-9_+-]+", "_", _label(first))[:40].strip("_")
                path = out_dir / f"explain-{attempts}-{rank}-{name}.txt"
                path.write_text("\n\n".join(text))
                explained.append(str(path))
        con.close()
    statements = [(_label(sql), seconds) for _, sql, _, seconds in executes]
    return {"statements": statements, "explained": explained, "peak_rss_mib": _rss_mib()}


def child_pandas(db: Path, attempts: int, days: float) -> dict[str, Any]:
    """The same definitions in pandas on the same file (benchmarks/metrics_pandas.py)."""
    import duckdb

    sys.path.insert(0, str(Path(__file__).parent))
    import metrics_pandas

    targets, window = bench_targets(attempts, days), bench_window()
    started, cpu_started = time.perf_counter(), _cpu_s()
    con = duckdb.connect(str(db), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    result, phases = metrics_pandas.run(con, targets, window.start, window.end)
    con.close()
    total = time.perf_counter() - started
    return {
        "total_s": total,
        "cpu_s": _cpu_s() - cpu_started,
        **phases,
        "metrics": result,
        "peak_rss_mib": _rss_mib(),
    }


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, list | tuple) or isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


def compare(engine: dict[str, dict[str, Any]], pandas: dict[str, dict[str, Any]]) -> list[str]:
    """Every metric pandas computes, per target, against the engine's: the differences."""
    diffs = []
    for target in sorted(set(engine) | set(pandas)):
        got, want = pandas.get(target, {}), engine.get(target, {})
        for key in sorted(got):
            if key not in want:
                diffs.append(f"{target}.{key}: not in the engine's result")
            elif not _same(want[key], got[key]):
                diffs.append(f"{target}.{key}: engine {want[key]!r}, pandas {got[key]!r}")
    return diffs


def _child(kind: str, db: Path, args: argparse.Namespace, out: Path) -> dict[str, Any] | None:
    """Run one measurement in its own process; None when it ran out of --timeout."""
    command = [
        sys.executable, __file__, "--child", kind, "--db", str(db), "--out", str(out),
        "--attempts", str(args.attempts), "--days", str(args.days),
        "--repeats", str(args.repeats), "--explain", str(args.explain),
    ]  # fmt: skip
    out.unlink(missing_ok=True)
    started = time.perf_counter()
    try:
        subprocess.run(command, check=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        print(f"{kind}: did not finish within {args.timeout:g}s (stopped)")
        return None
    data: dict[str, Any] = json.loads(out.read_text())
    data["wall_s"] = time.perf_counter() - started
    return data


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def _report(
    args: argparse.Namespace,
    counts: dict[str, int],
    generated_s: float,
    size_mb: float,
    engine: dict[str, Any] | None,
    profile: dict[str, Any] | None,
    pandas: dict[str, Any] | None,
    loads: tuple[str, str],
) -> None:
    print()
    print(f"== deploystats metrics benchmark: {args.attempts:,} attempts, {REPOS} targets ==")
    print(
        f"data: {counts['workflow_runs']:,} workflow runs (attempts of deploy and rollback "
        f"workflows), {counts['jobs']:,} jobs, {counts['job_steps']:,} steps, "
        f"{counts['deployments']:,} deployments, {counts['deployment_statuses']:,} statuses "
        f"over {args.days:g} days; {size_mb:,.0f} MB file, generated by SQL in {generated_s:.1f}s"
    )
    print(f"machine: {os.cpu_count()} cores, load average {loads[0]} before, {loads[1]} after")
    best = in_memory = None
    if engine:
        whole = engine["whole_s"]
        best = min(whole)
        print(
            f"classified: {engine['deployment_attempts']:,} deployment attempts "
            f"({engine['counted']:,} counted), {engine['in_window']:,} in the 28-day window"
        )
        print(
            f"engine compute_metrics: first {whole[0]:.2f}s, best of {len(whole)} {best:.2f}s "
            f"(all: {', '.join(f'{w:.2f}' for w in whole)}; CPU "
            f"{', '.join(f'{c:.1f}' for c in engine['whole_cpu_s'])}s); peak RSS "
            f"{engine['peak_rss_mib']:,.0f} MiB"
        )
        print(
            f"  split: prepare (classification) {engine['prepare_s']:.2f}s + prepare_recovery "
            f"{engine['recovery_prepare_s']:.2f}s; per-window metrics "
            f"{engine['window_metrics_s']:.2f}s"
        )
        warm = engine["warm_s"]
        in_memory = best
        best = min(warm)
        same = not compare(engine["metrics"], engine["cached_metrics"]) and not compare(
            engine["metrics"], engine["cold_metrics"]
        )
        print(
            f"cached (API, a connection per call): cold {engine['cold_s']:.2f}s (CPU "
            f"{engine['cold_cpu_s']:.1f}s: classification rebuilt and stored), warm best of "
            f"{len(warm)} {best:.2f}s (all: {', '.join(f'{w:.2f}' for w in warm)}; CPU "
            f"{', '.join(f'{c:.2f}' for c in engine['warm_cpu_s'])}s); numbers "
            f"{'equal to' if same else 'DIFFERENT FROM'} the in-memory classification"
        )
    else:
        print("engine: no result")
    if profile:
        slow = sorted(profile["statements"], key=lambda x: -x[1])[:8]
        print("  slowest statements: " + ", ".join(f"{n} {s:.2f}s" for n, s in slow))
        for path in sorted(profile["explained"]):
            print(f"  EXPLAIN ANALYZE: {path}")
    ratio, diffs = None, []
    if pandas:
        print(
            f"pandas: {pandas['total_s']:.2f}s = load {pandas['load_s']:.2f}s + classify "
            f"{pandas['classify_s']:.2f}s + metrics {pandas['metrics_s']:.2f}s (CPU "
            f"{pandas['cpu_s']:.1f}s); peak RSS "
            f"{pandas['peak_rss_mib']:,.0f} MiB"
        )
        if best:
            ratio = pandas["total_s"] / best
            compute_only = (pandas["classify_s"] + pandas["metrics_s"]) / best
            print(
                f"ratio pandas / engine (warm cache): {ratio:.2f}x (pandas without loading "
                f"{compute_only:.2f}x); pandas / in-memory engine "
                f"{pandas['total_s'] / in_memory:.2f}x, pandas / cold "
                f"{pandas['total_s'] / engine['cold_s']:.2f}x"
            )
        if engine:
            diffs = compare(engine["metrics"], pandas["metrics"])
            keys = len(next(iter(pandas["metrics"].values())))
            if diffs:
                print(f"agreement: {len(diffs)} DIFFERENCES ({keys} metrics x {REPOS} targets):")
                for line in diffs[:30]:
                    print(f"  {line}")
            else:
                print(f"agreement: all {keys} metrics of all {REPOS} targets equal (1e-9)")
    rss = [r["peak_rss_mib"] for r in (engine, pandas) if r]
    checks: dict[str, bool | None] = {  # None: not measured in this run
        f"engine (warm) <= {ENGINE_TARGET_S:g}s": None if best is None else best <= ENGINE_TARGET_S,
        f"pandas / engine >= {RATIO_TARGET:g}x": None if ratio is None else ratio >= RATIO_TARGET,
        "peak RSS <= 2 GiB per process": max(rss) <= RSS_TARGET_MIB if rss else None,
        "pandas agrees": None if not (pandas and engine) else not diffs,
    }
    verdict = {True: "met", False: "MISSED", None: "not measured"}
    print("targets: " + "; ".join(f"{k}: {verdict[v]}" for k, v in checks.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, help=f"history span (default: {PER_DAY}/target/day)")
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the database in this folder")
    parser.add_argument("--repeats", type=int, default=3, help="engine runs (fresh connections)")
    parser.add_argument("--explain", type=int, default=0, help="EXPLAIN ANALYZE the N slowest")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per measurement")
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument("--skip-profile", action="store_true")
    parser.add_argument("--child", choices=["engine", "pandas", "profile"], help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.days is None:
        args.days = max(60.0, round(args.attempts / (REPOS * PER_DAY)))
    if args.explain and not args.keep and not args.child:
        parser.error("--explain writes the plans next to the database: give --keep DIR")

    if args.child:
        if args.child == "engine":
            data = child_engine(args.db, args.attempts, args.days, args.repeats)
        elif args.child == "pandas":
            data = child_pandas(args.db, args.attempts, args.days)
        else:
            data = child_profile(args.db, args.attempts, args.days, args.explain,
                                 args.out.parent)  # fmt: skip
        args.out.write_text(json.dumps(data, default=str))
        return

    with tempfile.TemporaryDirectory(prefix="deploystats-bench-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        db = folder / f"metrics-{args.attempts}.duckdb"
        meta_path = db.with_suffix(".json")
        meta = {"attempts": args.attempts, "days": args.days, "generator": GENERATOR_VERSION}
        saved = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        if db.exists() and all(saved.get(k) == v for k, v in meta.items()):
            counts, generated_s = saved["counts"], saved["generated_s"]
            print(f"reusing {db} (generated in {generated_s:.1f}s)")
            from deploystats.store import connect

            connect(db).close()  # migrated to the current schema
        else:
            for stale in (db, meta_path, Path(str(db) + ".wal")):
                stale.unlink(missing_ok=True)
            print(f"generating {args.attempts:,} attempts over {args.days:g} days into {db}")
            started = time.perf_counter()
            counts = generate(db, args.attempts, args.days)
            generated_s = time.perf_counter() - started
            meta_path.write_text(json.dumps(meta | {"counts": counts, "generated_s": generated_s}))
        size_mb = db.stat().st_size / 1e6

        load_before = _load()
        engine = _child("engine", db, args, folder / "engine.json")
        profile = (
            None if args.skip_profile else _child("profile", db, args, folder / "profile.json")
        )
        pandas = None if args.skip_pandas else _child("pandas", db, args, folder / "pandas.json")
        _report(args, counts, generated_s, size_mb, engine, profile, pandas,
                (load_before, _load()))  # fmt: skip


if __name__ == "__main__":
    main()
