"""Independent oracle for DESIGN §5: deployment attempts and their metrics by plain Python loops.

It reads GitHub API dicts (a `tests.factories.History`, a `deploystats.simulate.Simulation` or
anything with `runs`, `jobs`, `deployments`, `deployment_statuses`) and imports nothing from
deploystats, so the SQL engine can be tested against it. It follows DESIGN §5 word by word;
where the words allow two readings, the one taken is written in a comment starting `# READING:`.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

Z_95 = 1.959963984540054
METRIC_KEYS = (
    "successes", "failures", "rolled_back", "aborted", "superseded", "not_deployed", "excluded",
    "not_counted", "success_rate", "success_rate_ci", "run_success_rate", "retry_rate",
    "duration_n", "duration_p50_s", "duration_p95_s", "duration_p99_s", "total_p50_s",
    "queue_p50_s", "queue_p95_s", "pending_p50_s", "failover_share", "unknown_runner_share",
    "overlapping_deploys", "deploy_frequency_per_day", "lead_time_p50_s", "lead_time_negative",
    "rollback_incidents", "change_failure_rate", "episodes", "mttr_s", "restore_median_s",
    "restore_p90_s", "open_episodes",
)  # fmt: skip
OUTCOME_KEYS = {
    "success": "successes", "failure": "failures", "rolled_back": "rolled_back",
    "aborted": "aborted", "superseded": "superseded", "not_deployed": "not_deployed",
    "excluded": "excluded", "not_counted": "not_counted",
}  # fmt: skip
QUANTILE_MIN_N = {0.5: 1, 0.9: 10, 0.95: 20, 0.99: 100}
TARGET_DEFAULTS: dict[str, Any] = {
    "repos": [], "workflows": [], "environment": None, "branches": [], "events": [],
    "deploy_jobs": [], "rollback_workflows": [], "rollback_steps": [], "runners": {},
    "cancelled": "ignore", "rolled_back": "failure", "cfr_window": "24h",
    "cfr_include_failed": True, "history_days": 90, "duration_outcomes": "success",
    "duration_run_timing": False, "lead_time_events": ["push", "workflow_dispatch"], "exclude": [],
}  # fmt: skip
_FAILED_CONCLUSIONS = ("failure", "timed_out", "startup_failure")
_REPO_IN_URL = re.compile(r"/([^/]+/[^/]+)/actions/")
_RUN_IN_URL = re.compile(r"/([^/]+/[^/]+)/actions/runs/(\d+)(?:/attempts/(\d+))?(?:/jobs?/(\d+))?")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


# ----- small helpers ---------------------------------------------------------------------------
def ts(value: Any) -> datetime | None:
    """An API timestamp (or datetime) as an aware UTC datetime; None and '' are None."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).strip())
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def norm(value: Any) -> str:
    """DESIGN §2: lower(trim(coalesce(value, ''))), '' = no conclusion."""
    return str(value or "").strip().lower()


def seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    return None if later is None or earlier is None else (later - earlier).total_seconds()


def duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration")
    return timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)])


def quantile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default, DuckDB quantile_cont), null
    below DESIGN's minimum n for q."""
    xs = sorted(values)
    if len(xs) < QUANTILE_MIN_N[q]:
        return None
    h = (len(xs) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])


def wilson(successes: int, n: int, z: float = Z_95) -> list[float] | None:
    """95 % Wilson score interval [low, high] of successes / n; None when n = 0."""
    if n == 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return [centre - half, centre + half]


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _any_glob(value: str | None, patterns: list[str]) -> bool:
    return value is not None and any(fnmatchcase(value, p) for p in patterns)


def options(target: dict[str, Any]) -> dict[str, Any]:
    """The target with DESIGN §9's defaults filled in and durations parsed."""
    opts = {**TARGET_DEFAULTS, **{k: v for k, v in target.items() if v is not None}}
    opts["environment"] = target.get("environment")
    opts["cfr_window"] = duration(opts["cfr_window"])
    opts["history"] = timedelta(days=float(opts["history_days"]))
    return opts


def repo_of_run(run: dict[str, Any]) -> str | None:
    full_name = (run.get("repository") or {}).get("full_name")
    if full_name:
        return str(full_name)
    for url in (run.get("url"), run.get("html_url")):
        match = _REPO_IN_URL.search(url or "")
        if match:
            return match.group(1)
    return None


def _workflow_matches(run: dict[str, Any], patterns: list[str]) -> bool:
    # READING: "file basenames or names" = a glob matches the basename of the run's `path` or the
    # workflow `name`, case-sensitive (fnmatchcase), the path taken up to any `@ref` suffix.
    basename = (run.get("path") or "").split("@", 1)[0].rsplit("/", 1)[-1] or None
    return _any_glob(basename, patterns) or _any_glob(run.get("name"), patterns)


# ----- the history, deduplicated as the store keeps it -----------------------------------------
def _runs(history: Any) -> list[dict[str, Any]]:
    newest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for run in history.runs:
        key = (repo_of_run(run), run["id"], run.get("run_attempt") or 1)
        kept = newest.get(key)
        if kept is None or (ts(run.get("updated_at")) or datetime.min.replace(tzinfo=UTC)) >= (
            ts(kept.get("updated_at")) or datetime.min.replace(tzinfo=UTC)
        ):
            newest[key] = run
    return list(newest.values())


def _jobs_by_attempt(
    history: Any, repo_by_run: dict[int, str | None]
) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    newest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for job in history.jobs:
        repo = None
        for url in (job.get("url"), job.get("run_url"), job.get("html_url")):
            match = _REPO_IN_URL.search(url or "")
            if match:
                repo = match.group(1)
                break
        repo = repo or repo_by_run.get(job.get("run_id"))
        key = (repo, job["id"])
        rank = (norm(job.get("status")) == "completed", ts(job.get("completed_at")) is not None,
                ts(job.get("completed_at")) or datetime.min.replace(tzinfo=UTC))  # fmt: skip
        kept = newest.get(key)
        if kept is None or rank >= kept["_rank"]:
            newest[key] = {**job, "_repo": repo, "_rank": rank}
    by_attempt: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for job in newest.values():
        # READING: a job object without `run_attempt` (old payloads) belongs to attempt 1.
        by_attempt[job["_repo"], job["run_id"], job.get("run_attempt") or 1].append(job)
    return by_attempt


def _environment_links(
    history: Any,
    environment: str,
    jobs: dict[tuple[Any, ...], list[dict[str, Any]]],
    attempts_of_run: dict[tuple[Any, ...], list[int]],
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """(repo, run_id, run_attempt) -> the linked deployment in `environment`."""
    job_attempt = {
        (repo, job["id"]): (repo, run_id, attempt)
        for (repo, run_id, attempt), its in jobs.items()
        for job in its
    }
    deployments = {}
    for d in history.deployments:
        match = re.search(r"/repos/([^/]+/[^/]+)/deployments/(\d+)", d.get("url") or "")
        deployments[match.group(1) if match else None, int(d["id"])] = d
    links: dict[tuple[Any, ...], dict[str, Any]] = {}
    for status in history.deployment_statuses:
        match = re.search(r"/repos/([^/]+/[^/]+)/deployments/(\d+)", status["deployment_url"])
        if not match:
            continue
        deployment = deployments.get((match.group(1), int(match.group(2))))
        # READING: the environment is the deployment's (the status's own `environment` only
        # when the deployment object is missing), matched as a case-sensitive glob; a status of
        # any state links (queued, in_progress, error, failure and success alike).
        env = (deployment or {}).get("environment") or status.get("environment")
        if not _any_glob(env, [environment]):
            continue
        for url in (status.get("log_url"), status.get("target_url")):
            found = _RUN_IN_URL.search(url or "")
            if not found:
                continue
            repo, run_id = found.group(1), int(found.group(2))
            attempt, job_id = found.group(3), found.group(4)
            # READING: the job named in the URL decides the attempt; failing that an
            # `/attempts/N` URL; a URL naming only the run links every attempt of that run.
            if job_id and (repo, int(job_id)) in job_attempt:
                keys = [job_attempt[repo, int(job_id)]]
            elif attempt:
                keys = [(repo, run_id, int(attempt))]
            else:
                keys = [(repo, run_id, n) for n in attempts_of_run.get((repo, run_id), [])]
            for key in keys:
                chosen = deployment or {"sha": None, "created_at": None, "id": 0}
                # READING: several linked deployments: the latest created (then highest id)
                # gives the deployed version.
                if key not in links or _created(chosen) >= _created(links[key]):
                    links[key] = chosen
    return links


def _created(obj: dict[str, Any]) -> tuple[datetime, int]:
    return (ts(obj.get("created_at")) or datetime.min.replace(tzinfo=UTC), int(obj["id"]))


# ----- classification --------------------------------------------------------------------------
def _in_scope(run: dict[str, Any], opts: dict[str, Any]) -> bool:
    # READING: branches and events are globs like every other name list (a plain name matches
    # only itself); an empty list matches everything.
    return (
        _any_glob(repo_of_run(run), opts["repos"])
        and (not opts["branches"] or _any_glob(run.get("head_branch"), opts["branches"]))
        and (not opts["events"] or _any_glob(run.get("event"), opts["events"]))
    )


def _roles(job: dict[str, Any], runners: dict[str, Any]) -> set[str]:
    # READING: a job without a runner name matches no role, whatever its labels (the labels
    # of a job no runner took are what it asked for, not where it ran).
    if not norm(job.get("runner_name")):
        return set()
    found = set()
    for role, spec in (runners or {}).items():
        spec = spec or {}
        if (
            _any_glob(job.get("runner_name"), spec.get("names") or [])
            or any(_any_glob(label, spec.get("labels") or []) for label in job.get("labels") or [])
            or _any_glob(job.get("runner_group_name"), spec.get("groups") or [])
        ):
            found.add(role)
    return found


def _overlaps(start: datetime, end: datetime | None, lo: datetime | None, hi: datetime | None):
    """Does [start, end) overlap [lo, hi)? A missing bound is open."""
    # READING: an attempt with no completed_at, or completed_at == started_at, is the instant
    # started_at; it matches a range holding that instant (from <= started_at < to).
    if end is None or end <= start:
        return (lo is None or lo <= start) and (hi is None or start < hi)
    return (hi is None or start < hi) and (lo is None or lo < end)


def _excluded(attempt: dict[str, Any], exclude: list[dict[str, Any]]) -> str | None:
    for entry in exclude:
        entry = dict(entry)
        reason = entry.get("reason") or "excluded"
        # READING: an entry naming run ids excludes every attempt of those runs (any repo);
        # an entry with both run ids and a range matches when either matches.
        if attempt["run_id"] in {int(r) for r in entry.get("runs") or []}:
            return str(reason)
        lo, hi = ts(entry.get("from", entry.get("from_"))), ts(entry.get("to"))
        ranged = (lo is not None or hi is not None) and attempt["started_at"] is not None
        if ranged and _overlaps(attempt["started_at"], attempt["completed_at"], lo, hi):
            return str(reason)
    return None


def classify(history: Any, target: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One dict per deployment attempt of the target (DESIGN §5), every outcome included."""
    target = target if target is not None else history.target
    opts = options(target)
    runs = _runs(history)
    repo_by_run = {run["id"]: repo_of_run(run) for run in runs}
    jobs = _jobs_by_attempt(history, repo_by_run)
    attempts_of_run: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for run in runs:
        attempts_of_run[repo_of_run(run), run["id"]].append(run.get("run_attempt") or 1)
    links = (
        _environment_links(history, opts["environment"], jobs, attempts_of_run)
        if opts["environment"]
        else None
    )
    rollback_steps = [p.lower() for p in opts["rollback_steps"]]
    out = []
    for run in runs:
        if not _in_scope(run, opts) or not _workflow_matches(run, opts["workflows"]):
            continue
        if _workflow_matches(run, opts["rollback_workflows"]):
            continue  # rollback runs are never deployment attempts
        repo, run_id, n = repo_of_run(run), run["id"], run.get("run_attempt") or 1
        deployment = None
        if links is not None:
            deployment = links.get((repo, run_id, n))
            if deployment is None:
                continue
        # READING: a run object without run_started_at (old payloads) started at created_at.
        run_started = ts(run.get("run_started_at")) or ts(run.get("created_at"))
        executed = [
            j
            for j in jobs.get((repo, run_id, n), [])
            if ts(j.get("started_at")) is not None
            and run_started is not None
            and ts(j.get("started_at")) >= run_started
            and norm(j.get("conclusion")) != "skipped"
            # READING: "a step that is not skipped" includes steps with no conclusion yet (a
            # step *ran* only with a conclusion other than skipped and '': a separate rule).
            and (norm(j.get("runner_name")) or any(
                norm(s.get("conclusion")) != "skipped" for s in j.get("steps") or []))
        ]  # fmt: skip
        deploy = [
            j
            for j in executed
            if not opts["deploy_jobs"] or _any_glob(j.get("name"), opts["deploy_jobs"])
        ]
        if deploy:
            started = min(ts(j["started_at"]) for j in deploy)
            # DECIDED: the attempt is still running (completed_at None) while any deploy job
            # has no completion; timing_source stays 'jobs'.
            ends = [ts(j.get("completed_at")) for j in deploy]
            completed = max(ends) if all(ends) else None  # type: ignore[type-var]
            timing = "jobs"
        else:
            started, completed, timing = run_started, ts(run.get("updated_at")), "run"
        conclusion = norm(run.get("conclusion"))
        step_ran = any(
            fnmatchcase(norm(s.get("name")), pattern)
            and norm(s.get("conclusion")) not in ("skipped", "")
            for j in deploy
            for s in j.get("steps") or []
            for pattern in rollback_steps
        )
        roles = [_roles(j, opts["runners"]) for j in deploy]
        created_jobs = [j for j in deploy if ts(j.get("created_at")) is not None]
        first = (
            min(created_jobs, key=lambda j: (ts(j["created_at"]), j["id"]))
            if created_jobs
            else None
        )
        queues = [
            seconds(ts(j["started_at"]), ts(j.get("created_at")))
            for j in deploy
            if ts(j.get("created_at")) is not None
        ]
        created = ts(run.get("created_at"))
        attempt = {
            "repo": repo,
            "run_id": run_id,
            "run_attempt": n,
            "workflow": run.get("name"),
            "event": run.get("event"),
            "head_branch": run.get("head_branch"),
            "status": norm(run.get("status")),
            "conclusion": conclusion,
            "head_sha": run.get("head_sha"),
            "sha": deployment.get("sha") if deployment else run.get("head_sha"),
            "head_commit_at": ts((run.get("head_commit") or {}).get("timestamp")),
            "created_at": created,
            "run_started_at": run_started,
            "updated_at": ts(run.get("updated_at")),
            "html_url": run.get("html_url"),
            "deploy_job_ids": [j["id"] for j in deploy],
            "started_at": started,
            "completed_at": completed,
            "timing_source": timing,
            "duration_s": seconds(completed, started),
            "total_s": seconds(completed, created if n == 1 else run_started),
            # READING: a deploy job without created_at has no queue time and max() skips it.
            "queue_s": max(queues) if queues else None,
            # DECIDED: the "first" deploy job is the earliest created (ties: lowest job id).
            "pending_s": seconds(ts(first.get("created_at")), run_started) if first else None,
            "runner_roles": [
                "secondary" if "secondary" in r else "primary" if "primary" in r else None
                for r in roles
            ],
            "on_secondary": any("secondary" in r for r in roles),
            "roles_known": bool(deploy) and all(r for r in roles),
            "unknown_runner": any(not r for r in roles),
            "rollback_step_ran": step_ran,
            "excluded_reason": None,
        }
        attempt["excluded_reason"] = _excluded(attempt, opts["exclude"])
        # DECIDED: with no job data at all rules 2 and 3 cannot tell; they apply only to
        # attempts whose jobs were seen (a job-less success is a success, timed by the run).
        has_jobs = bool(jobs.get((repo, run_id, n)))
        attempt["outcome"] = _outcome(attempt, conclusion, bool(deploy) or not has_jobs, step_ran)
        attempt["counted"] = attempt["outcome"] in ("success", "failure", "rolled_back") or (
            attempt["outcome"] == "aborted" and opts["cancelled"] == "failure"
        )
        attempt["successful"] = attempt["outcome"] == "success" or (
            attempt["outcome"] == "rolled_back" and opts["rolled_back"] == "success"
        )
        out.append(attempt)
    out.sort(key=lambda a: (a["repo"] or "", a["run_id"], a["run_attempt"]))
    return out


def _outcome(attempt: dict[str, Any], conclusion: str, deployed: bool, step_ran: bool) -> str:
    """DESIGN §5's eight rules, the first that applies."""
    if attempt["excluded_reason"] is not None:
        return "excluded"
    if conclusion in ("success", "neutral") and not deployed:
        return "not_deployed"
    if conclusion == "cancelled" and not deployed:
        return "superseded"
    # READING: rule 4 holds whatever the run's conclusion (cancelled, in progress, stale ...):
    # a rollback step that ran makes the attempt rolled_back.
    if step_ran:
        return "rolled_back"
    if conclusion == "success":
        return "success"
    if conclusion in _FAILED_CONCLUSIONS:
        return "failure"
    if conclusion == "cancelled":
        return "aborted"
    # READING: `neutral` with a deploy job executed matches no rule before 8: not_counted.
    return "not_counted"


# ----- rollback signals, incidents, episodes ---------------------------------------------------
def rollback_runs(history: Any, target: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Completed rollback-workflow runs of the target: signal (a) candidates, latest attempts."""
    target = target if target is not None else history.target
    opts = options(target)
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for run in _runs(history):
        # READING: rollback runs are the target's repos' runs of a rollback workflow; the
        # target's branches, events and environment do not apply to them.
        if not _any_glob(repo_of_run(run), opts["repos"]):
            continue
        if not _workflow_matches(run, opts["rollback_workflows"]):
            continue
        key = (repo_of_run(run), run["id"])
        if key not in latest or (run.get("run_attempt") or 1) > latest[key]["run_attempt"]:
            latest[key] = {**run, "run_attempt": run.get("run_attempt") or 1}
    out = []
    for (repo, run_id), run in sorted(latest.items(), key=lambda kv: (kv[0][0] or "", kv[0][1])):
        if norm(run.get("status")) != "completed":
            continue
        out.append(
            {
                "repo": repo,
                "run_id": run_id,
                "run_attempt": run["run_attempt"],
                "conclusion": norm(run.get("conclusion")),
                # READING: signal time = the latest attempt's run_started_at; a rollback run
                # completes at its latest attempt's updated_at.
                "signal_at": ts(run.get("run_started_at")) or ts(run.get("created_at")),
                "completed_at": ts(run.get("updated_at")),
                "html_url": run.get("html_url"),
            }
        )
    return out


def _order(a: dict[str, Any]) -> tuple[Any, ...]:
    return (a["started_at"], a["completed_at"] or a["started_at"], a["run_id"], a["run_attempt"])


def redeploy_signals(attempts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Signal (c): successful attempts redeploying an older version (DESIGN §5)."""
    successes = sorted((a for a in attempts if a["successful"] and a["started_at"]), key=_order)
    found = []
    for i, attempt in enumerate(successes):
        if i < 2:
            continue
        previous = successes[i - 1]
        # READING: versions compare deployed versions (deployment sha with `environment`);
        # "head commit" is each run's head_commit.timestamp, strictly older.
        # READING: "an earlier successful attempt" is searched over all the data (no
        # history_days bound); head commit times missing on either side give no signal.
        same = any(e["sha"] == attempt["sha"] for e in successes[: i - 1])
        older = (
            attempt["head_commit_at"] is not None
            and previous["head_commit_at"] is not None
            and attempt["head_commit_at"] < previous["head_commit_at"]
        )
        if same and older:
            found.append(attempt)
    return found


def find_incidents(history: Any, target: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Rollback incidents: signals (a), (b), (c) grouped by the change they answer."""
    target = target if target is not None else history.target
    opts = options(target)
    attempts = classify(history, target)
    return _incidents(attempts, rollback_runs(history, target), opts)


def _key(a: dict[str, Any]) -> tuple[Any, ...]:
    return (a["repo"], a["run_id"], a["run_attempt"])


def _incidents(
    attempts: list[dict[str, Any]], rollbacks: list[dict[str, Any]], opts: dict[str, Any]
) -> list[dict[str, Any]]:
    redeploys = {_key(a) for a in redeploy_signals(attempts)}
    changes = [a for a in attempts if a["counted"] and _key(a) not in redeploys and a["started_at"]]

    # READING: "started before the signal time and no more than cfr_window before it" =
    # signal - cfr_window <= change started_at < signal (the latest by started_at, then run id).
    def answered(at: datetime) -> dict[str, Any] | None:
        before = [c for c in changes if at - opts["cfr_window"] <= c["started_at"] < at]
        return max(before, key=_order) if before else None

    signals: list[tuple[dict[str, Any], str, datetime, Any]] = []
    # DECIDED: a signal answering no change (none started within cfr_window before it) is an
    # incident of its own, keyed by the signal's run: a rollback was seen, whatever it answers.
    for r in rollbacks:
        if r["signal_at"]:
            signals.append((answered(r["signal_at"]) or r, "workflow", r["signal_at"], r))
    for a in attempts:
        if a["outcome"] == "rolled_back" and a["started_at"]:
            signals.append((a, "step", a["started_at"], a))
        if _key(a) in redeploys:
            signals.append((answered(a["started_at"]) or a, "redeploy", a["started_at"], a))
    grouped: dict[tuple[Any, ...], dict[str, Any]] = {}
    for change, kind, at, source in signals:
        incident = grouped.setdefault(
            _key(change), {"change": _key(change), "signals": [], "first_signal_at": at}
        )
        incident["signals"].append({"kind": kind, "at": at, "url": source.get("html_url"),
                                    "run_id": source["run_id"]})  # fmt: skip
        incident["first_signal_at"] = min(incident["first_signal_at"], at)
    for incident in grouped.values():
        incident["kinds"] = sorted({s["kind"] for s in incident["signals"]})
    return sorted(grouped.values(), key=lambda i: (i["first_signal_at"], i["change"][1:]))


def find_episodes(history: Any, target: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Failure episodes (DESIGN §5): start, end (None while open), restore_s, member keys."""
    target = target if target is not None else history.target
    opts = options(target)
    attempts = classify(history, target)
    return _episodes(attempts, rollback_runs(history, target), opts)


def _episodes(
    attempts: list[dict[str, Any]], rollbacks: list[dict[str, Any]], opts: dict[str, Any]
) -> list[dict[str, Any]]:
    incidents = _incidents(attempts, rollbacks, opts)
    rollback_answers: list[tuple[tuple[Any, ...], datetime]] = []
    for incident in incidents:
        for signal in incident["signals"]:
            if signal["kind"] != "workflow":
                continue
            run = next(r for r in rollbacks if r["run_id"] == signal["run_id"])
            if run["conclusion"] == "success" and run["completed_at"] is not None:
                rollback_answers.append((incident["change"], run["completed_at"]))
    ordered = sorted(
        (a for a in attempts if a["counted"] and a["completed_at"] is not None),
        key=lambda a: (a["completed_at"], a["run_id"], a["run_attempt"]),
    )
    episodes: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for i, attempt in enumerate(ordered):
        if attempt["successful"]:
            current = None
            continue
        previous = ordered[i - 1] if i else None
        # READING: failed = every counted outcome not treated as success (failure, rolled_back,
        # aborted with `cancelled: failure`); the predecessor is the previous counted attempt,
        # "none within history_days" when it completed more than history_days earlier.
        fresh = (
            previous is None
            or previous["successful"]
            or previous["completed_at"] < attempt["completed_at"] - opts["history"]
        )
        if fresh:
            nxt = next((a for a in ordered[i + 1 :] if a["successful"]), None)
            current = {
                "start": attempt["completed_at"],
                "members": [],
                "success_end": nxt["completed_at"] if nxt else None,
            }
            episodes.append(current)
        if current is not None:
            current["members"].append(_key(attempt))
    for episode in episodes:
        members = set(episode["members"])
        # READING: literal "the earlier of" -- a successful rollback run answering any member
        # ends the episode even if later failures of the same streak follow (they start no new
        # episode: their predecessor failed).
        # READING: only a rollback run completing at or after the episode start ends it: an
        # episode cannot end before it starts. A rollback run that finished while the failing
        # deploy was still running (it answers that attempt, which started before the signal)
        # restored nothing after the failure; the episode then runs to the next success.
        ends = [
            at for change, at in rollback_answers if change in members and at >= episode["start"]
        ]
        if episode["success_end"] is not None:
            ends.append(episode["success_end"])
        episode["end"] = min(ends) if ends else None
        episode["restore_s"] = seconds(episode["end"], episode["start"])
        del episode["success_end"]
    return episodes


# ----- metrics ---------------------------------------------------------------------------------
def default_data_as_of(history: Any) -> datetime | None:
    """DESIGN §5 for imported data: the latest updated_at among the rows."""
    # READING: "the imported rows" = runs, deployments and deployment statuses (jobs carry no
    # updated_at).
    times = [
        ts(row.get("updated_at") or row.get("created_at"))
        for rows in (history.runs, history.deployments, history.deployment_statuses)
        for row in rows
    ]
    return max((t for t in times if t is not None), default=None)


def reference_metrics(
    history: Any,
    *,
    target: dict[str, Any] | None = None,
    window: tuple[datetime, datetime] | None = None,
    data_as_of: datetime | None = None,
) -> dict[str, Any]:
    """Every DESIGN §5 GitHub metric of one target and window, keys as in the JSON output."""
    target = target if target is not None else history.target
    window = window if window is not None else getattr(history, "window", None)
    if window is None:
        raise ValueError("reference_metrics needs a window: pass window=(start, end)")
    start, end = ts(window[0]), ts(window[1])
    assert start is not None and end is not None
    as_of = (
        ts(data_as_of) or ts(getattr(history, "data_as_of", None)) or default_data_as_of(history)
    )
    opts = options(target)
    attempts = classify(history, target)
    rollbacks = rollback_runs(history, target)

    def inside(moment: datetime | None) -> bool:
        return moment is not None and start <= moment < end

    # READING: an attempt without any start time (no job data, no run_started_at, no
    # created_at) belongs to no window. Numbers are not rounded (the CLI may round).
    here = [a for a in attempts if inside(a["started_at"])]
    counted = [a for a in here if a["counted"]]
    out: dict[str, Any] = {key: 0 for key in OUTCOME_KEYS.values()}
    for a in here:
        out[OUTCOME_KEYS[a["outcome"]]] += 1
    # READING: the class counts stay the outcome classes (`successes` never includes
    # rolled_back); `rolled_back: success` moves rolled_back into the success side of
    # success_rate, durations, frequency, lead time, run success, signal (c) and episodes.
    good = [a for a in counted if a["successful"]]
    out["success_rate"] = _ratio(len(good), len(counted))
    out["success_rate_ci"] = wilson(len(good), len(counted))

    out.update(_run_metrics(attempts, history, opts, inside, as_of))

    timed = [
        a
        for a in (good if opts["duration_outcomes"] == "success" else counted)
        if (a["timing_source"] == "jobs" or opts["duration_run_timing"])
        and a["duration_s"] is not None
    ]
    durations = [a["duration_s"] for a in timed]
    out["duration_n"] = len(durations)
    out["duration_p50_s"] = quantile(durations, 0.5)
    out["duration_p95_s"] = quantile(durations, 0.95)
    out["duration_p99_s"] = quantile(durations, 0.99)
    # READING: total_p50_s covers every successful attempt (either timing source);
    # duration_outcomes / duration_run_timing apply to duration_* only.
    out["total_p50_s"] = quantile([a["total_s"] for a in good if a["total_s"] is not None], 0.5)
    # READING: queue and pending times are taken over the counted attempts of the window that
    # have them (excluded, superseded ... attempts say nothing about runner capacity).
    queues = [a["queue_s"] for a in counted if a["queue_s"] is not None]
    out["queue_p50_s"] = quantile(queues, 0.5)
    out["queue_p95_s"] = quantile(queues, 0.95)
    out["pending_p50_s"] = quantile(
        [a["pending_s"] for a in counted if a["pending_s"] is not None], 0.5
    )
    # READING: the failover denominator needs >= 1 deploy job (an attempt without one is not
    # vacuously "every deploy job matches a role"), and the numerator is taken inside it.
    known = [a for a in counted if a["roles_known"]]
    out["failover_share"] = _ratio(sum(a["on_secondary"] for a in known), len(known))
    out["unknown_runner_share"] = _ratio(sum(a["unknown_runner"] for a in counted), len(counted))
    # READING (docs/metrics.md 7.4): both are null when the target configures no `runners`,
    # i.e. no role names any runner name, label or group glob.
    if not any(
        (spec or {}).get(key)
        for spec in (opts["runners"] or {}).values()
        for key in ("names", "labels", "groups")
    ):
        out["failover_share"] = out["unknown_runner_share"] = None
    out["overlapping_deploys"] = len(overlapping_pairs(attempts, inside))
    span = (min(end, as_of) if as_of else end) - start
    # READING: no successes over a positive span is 0.0 per day, not null.
    out["deploy_frequency_per_day"] = (
        len(good) / (span.total_seconds() / 86400) if span.total_seconds() > 0 else None
    )
    out.update(_lead_times(attempts, opts, inside))

    incidents = _incidents(attempts, rollbacks, opts)
    out["rollback_incidents"] = sum(inside(i["first_signal_at"]) for i in incidents)
    redeploys = {_key(a) for a in redeploy_signals(attempts)}
    changes = [a for a in counted if _key(a) not in redeploys]
    answered = {i["change"] for i in incidents}
    # READING: "own outcome failure or rolled_back" names outcomes literally: an aborted change
    # (counted with `cancelled: failure`) is a failed change only through an incident.
    failed = [
        a
        for a in changes
        if _key(a) in answered
        or (opts["cfr_include_failed"] and a["outcome"] in ("failure", "rolled_back"))
    ]
    out["change_failure_rate"] = _ratio(len(failed), len(changes))

    episodes = _episodes(attempts, rollbacks, opts)
    ended = [e["restore_s"] for e in episodes if inside(e["end"])]
    out["episodes"] = len(ended)
    out["mttr_s"] = sum(ended) / len(ended) if ended else None
    out["restore_median_s"] = quantile(ended, 0.5)
    out["restore_p90_s"] = quantile(ended, 0.9)
    # READING: open at window end = started before the end and not ended before it.
    out["open_episodes"] = sum(
        1 for e in episodes if e["start"] < end and (e["end"] is None or e["end"] >= end)
    )
    return {key: out[key] for key in METRIC_KEYS}


def _run_metrics(
    attempts: list[dict[str, Any]],
    history: Any,
    opts: dict[str, Any],
    inside: Any,
    as_of: datetime | None,
) -> dict[str, Any]:
    """run_success_rate and retry_rate over runs in the window of their attempt 1."""
    by_run: dict[tuple[Any, ...], dict[int, dict[str, Any]]] = defaultdict(dict)
    for a in attempts:
        by_run[a["repo"], a["run_id"]][a["run_attempt"]] = a
    # READING: "later attempt" / "latest attempt" look at every attempt of the run in the data
    # (started by data_as_of), target attempt or not; an attempt that is not a target attempt
    # (no linked deployment) is not a success.
    all_attempts: dict[tuple[Any, ...], list[tuple[int, datetime | None]]] = defaultdict(list)
    for run in _runs(history):
        started = ts(run.get("run_started_at")) or ts(run.get("created_at"))
        all_attempts[repo_of_run(run), run["id"]].append((run.get("run_attempt") or 1, started))
    denominator = succeeded = retried = 0
    for key, its in by_run.items():
        first = its.get(1)
        # READING: a run whose attempt 1 is missing from the data belongs to no window.
        if first is None or not inside(first["started_at"]) or not first["counted"]:
            continue
        denominator += 1
        existing = [
            n for n, started in all_attempts[key] if as_of is None or (started and started <= as_of)
        ]
        latest = max(existing, default=1)
        # READING: numerators are taken inside the denominator (runs whose attempt 1 is
        # counted), so neither rate can exceed 1.
        if its.get(latest, {}).get("successful"):
            succeeded += 1
        # READING: attempt 1 "failed" = counted and not treated as success (failure, rolled_back
        # unless `rolled_back: success`, aborted with `cancelled: failure`).
        if not first["successful"] and latest > 1:
            retried += 1
    return {
        "run_success_rate": _ratio(succeeded, denominator),
        "retry_rate": _ratio(retried, denominator),
    }


def overlapping_pairs(attempts: list[dict[str, Any]], inside: Any) -> list[tuple[Any, Any]]:
    """Pairs of counted attempts whose [started_at, completed_at) overlap, by the later start."""
    # READING: every counted attempt takes part with its [started_at, completed_at), run timing
    # included (the interval is defined for every attempt); one without completed_at cannot.
    spans = sorted(
        (a for a in attempts if a["counted"] and a["started_at"] and a["completed_at"]),
        key=_order,
    )
    pairs = []
    for i, a in enumerate(spans):
        for b in spans[i + 1 :]:
            if a["started_at"] < b["completed_at"] and b["started_at"] < a["completed_at"]:
                later = b if b["started_at"] >= a["started_at"] else a
                if inside(later["started_at"]):
                    pairs.append((_key(a), _key(b)))
    return pairs


def _lead_times(
    attempts: list[dict[str, Any]], opts: dict[str, Any], inside: Any
) -> dict[str, Any]:
    successes = sorted((a for a in attempts if a["successful"] and a["started_at"]), key=_order)
    values, negative = [], 0
    for i, attempt in enumerate(successes):
        if not inside(attempt["started_at"]) or attempt["event"] not in opts["lead_time_events"]:
            continue
        # READING: "first" = no earlier successful attempt (by started_at, any event) of the same
        # deployed version started within history_days before this one; the event filter
        # applies to that first attempt.
        earlier = [
            e
            for e in successes[:i]
            if e["sha"] == attempt["sha"]
            and e["started_at"] >= attempt["started_at"] - opts["history"]
        ]
        # READING: the commit time is the attempt's own run head_commit.timestamp, even when
        # the deployed version (a deployment's sha) is another commit.
        lead = seconds(attempt["completed_at"], attempt["head_commit_at"])
        if earlier or lead is None:
            continue
        if lead < 0:
            negative += 1
        else:
            values.append(lead)
    return {"lead_time_p50_s": quantile(values, 0.5), "lead_time_negative": negative}
