"""Small hand-written histories -> GitHub API dicts (workflow runs, jobs, deployments, statuses).

Docs and tests write histories in a compact format (YAML or dicts) and get objects shaped like
GitHub's REST API, ready for `deploystats import`, the store or `tests.reference`. Imports nothing
from deploystats (stdlib + PyYAML): the oracle built on it must stay independent.

Compact format (every key optional unless said otherwise)::

    target: {name: production, repos: [acme/platform], workflows: [deploy.yml], ...}
    window: {start: "2026-11-16T00:00:00Z", end: "2026-11-23T00:00:00Z"}   # or [start, end]
    data_as_of: "2026-11-24T00:00:00Z"
    runs:                         # one entry per attempt
      - {id: 1, attempt: 1, workflow: deploy.yml, event: push, branch: main, sha: aaa,
         commit_at: ..., created: ..., started: ..., updated: ..., status: completed,
         conclusion: success, jobs: [{name: deploy, created: ..., started: ..., completed: ...,
         conclusion: success, runner: prim-1, labels: [..], group: production,
         steps: [deploy, {name: rescue, conclusion: skipped}]}]}
    deployments:
      - {id: 7, environment: production, sha: aaa, created: ...,
         statuses: [{id: 70, state: success, created: ..., run: 1, attempt: 1, job: 101}]}
    expect: {successes: 1}        # kept as given, for worked examples

Defaults: target name `production`, repos `[acme/platform]`, workflows `[deploy.yml]` (other
target keys are left out, so the reader's own defaults apply). Run: repo `acme/platform`, attempt
1, workflow `deploy.yml` (a basename becomes path `.github/workflows/<basename>` and name
`Deploy`: the stem with `-`/`_` as spaces, first letter upper case), event `push`, branch `main`,
status `completed`, conclusion `success` when the status is completed (else null), `created` =
`started` (either given; a later attempt takes attempt 1's `created`), `updated` = latest job
completion, else `started`; sha a 40-hex digest of the run id; `commit_at` = the `commit_at`
given for the same sha elsewhere, else the earliest `created` of runs with that sha; actor
`octocat`; run_number = id. Job: name `deploy`, id = run id * 100 + (attempt - 1) * 10 + index +
1 (index = position in `jobs`, so at most 10 jobs an attempt), `created` = the run's `started`,
`started` = `created`, `completed` = `started` when the job is completed, status `completed`,
conclusion `success` when completed (else null), `runner` absent or null = empty runner_name and
group, group `Default` for a named runner, labels `[]`, steps `[]`. Step: a bare string is a step
name; conclusion `success`; numbers 1..n; started/completed split the job's span evenly (a step
with no conclusion is queued, without times). Deployment: id 1000 + index, repo and sha those of
the first status's run, environment the target's `environment` (else `production`), ref `main`,
task `deploy`, created = the first status's job start; status: id = deployment id * 100 + index
+ 1, state `success`, `run` (required on the first status; a later one takes the run, attempt
and job of the status before), `attempt` the run's latest attempt in the spec, `job` a job id
(int), a job name (str) or absent (the attempt's last job; none: the URL names the run only),
created = that job's completion (else start), log_url = target_url = the job's web URL.

`make_run` / `make_job` take the same compact keys, plus any key of the API object they build to
override it verbatim (datetimes are formatted), so `make_run(run_started_at=...)` works; an
unknown key is a TypeError.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any

import yaml

API = "https://api.github.com"
WEB = "https://github.com"
DEFAULT_REPO = "acme/platform"
DEFAULT_WORKFLOW = "deploy.yml"
DEFAULT_TARGET: dict[str, Any] = {
    "name": "production",
    "repos": [DEFAULT_REPO],
    "workflows": [DEFAULT_WORKFLOW],
}

_RUN_KEYS = {
    "id", "attempt", "repo", "workflow", "workflow_name", "workflow_id", "event", "branch", "sha",
    "commit_at", "created", "started", "updated", "status", "conclusion", "actor", "run_number",
}  # fmt: skip
_JOB_KEYS = {
    "id", "index", "name", "created", "started", "completed", "status", "conclusion", "runner",
    "labels", "group", "steps",
}  # fmt: skip
_STEP_KEYS = {"name", "conclusion", "status", "started", "completed", "number"}
_DEPLOYMENT_KEYS = {
    "id", "repo", "environment", "sha", "ref", "task", "created", "updated", "statuses",
}  # fmt: skip
_STATUS_KEYS = {
    "id", "state", "created", "run", "attempt", "job", "environment", "log_url", "target_url",
    "description",
}  # fmt: skip
_SPEC_KEYS = {"target", "window", "data_as_of", "runs", "deployments", "expect"}


@dataclass
class History:
    """API-shaped objects of one compact history, plus the target and window it was written for."""

    runs: list[dict[str, Any]] = field(default_factory=list)  # one per attempt
    jobs: list[dict[str, Any]] = field(default_factory=list)  # steps inline
    deployments: list[dict[str, Any]] = field(default_factory=list)
    deployment_statuses: list[dict[str, Any]] = field(default_factory=list)
    target: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_TARGET))
    window: tuple[datetime, datetime] | None = None
    data_as_of: datetime | None = None
    expect: dict[str, Any] = field(default_factory=dict)


# ----- YAML and timestamps ---------------------------------------------------------------------
class _StringTimesLoader(yaml.SafeLoader):
    """safe_load without the timestamp resolver: `2026-11-16T10:00:00Z` stays a string."""


_StringTimesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_spec(text: str) -> dict[str, Any]:
    """Parse a compact history written in YAML; timestamps stay strings."""
    spec = yaml.load(text, Loader=_StringTimesLoader)  # a SafeLoader subclass
    if not isinstance(spec, dict):
        raise ValueError("a compact history is a mapping with `runs` and optional other keys")
    return spec


def parse_time(value: Any) -> datetime | None:
    """An ISO string (Z or offset) or datetime as an aware UTC datetime; None stays None."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def format_time(value: Any) -> str | None:
    """`YYYY-MM-DDTHH:MM:SSZ`, GitHub's format (fractions of a second are dropped)."""
    moment = parse_time(value)
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _stable_id(*parts: object) -> int:
    return zlib.crc32("/".join(map(str, parts)).encode()) % 900_000_000 + 100_000_000


def _fake_sha(*parts: object) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()


def _override(obj: dict[str, Any], overrides: dict[str, Any], what: str) -> dict[str, Any]:
    for key, value in overrides.items():
        if key not in obj:
            raise TypeError(f"{what}: unknown key {key!r} (neither compact nor an API field)")
        if isinstance(value, datetime):
            value = format_time(value)
        obj[key] = value
    return obj


# ----- runs ------------------------------------------------------------------------------------
def _workflow(workflow: str) -> tuple[str, str]:
    """(path, default name) of a workflow given as a basename or a path."""
    path = workflow if "/" in workflow else f".github/workflows/{workflow}"
    stem = PurePosixPath(path).name.split(".")[0].replace("-", " ").replace("_", " ")
    return path, stem[:1].upper() + stem[1:]


def _user(login: str) -> dict[str, Any]:
    return {
        "login": login,
        "id": _stable_id("user", login),
        "type": "User",
        "url": f"{API}/users/{login}",
        "html_url": f"{WEB}/{login}",
    }


def _repository(repo: str) -> dict[str, Any]:
    owner, name = repo.split("/", 1)
    return {
        "id": _stable_id("repo", repo),
        "name": name,
        "full_name": repo,
        "private": True,
        "owner": _user(owner) | {"type": "Organization"},
        "html_url": f"{WEB}/{repo}",
        "url": f"{API}/repos/{repo}",
    }


def make_run(**fields: Any) -> dict[str, Any]:
    """One workflow-run attempt as `/actions/runs/{id}/attempts/{n}` returns it."""
    compact = {k: fields.pop(k) for k in list(fields) if k in _RUN_KEYS}
    if "jobs" in fields:
        raise TypeError("make_run: build jobs with make_job(run, ...) or use history_from_spec")
    run_id = int(compact.get("id", 1))
    attempt = int(compact.get("attempt", 1))
    repo = compact.get("repo", DEFAULT_REPO)
    path, default_name = _workflow(compact.get("workflow", DEFAULT_WORKFLOW))
    name = compact.get("workflow_name", default_name)
    workflow_id = int(compact.get("workflow_id", _stable_id("workflow", repo, path)))
    created = compact.get("created", compact.get("started"))
    started = compact.get("started", created)
    if created is None:
        raise ValueError(f"run {run_id}: give `created` or `started`")
    status = compact.get("status", "completed")
    conclusion = compact.get("conclusion", "success" if status == "completed" else None)
    sha = compact.get("sha", _fake_sha("commit", repo, run_id))
    commit_at = compact.get("commit_at", created)
    actor = _user(compact.get("actor", "octocat"))
    url = f"{API}/repos/{repo}/actions/runs/{run_id}"
    run = {
        "id": run_id,
        "name": name,
        "node_id": f"WFR_{run_id}",
        "head_branch": compact.get("branch", "main"),
        "head_sha": sha,
        "path": path,
        "display_title": name,
        "run_number": int(compact.get("run_number", run_id)),
        "event": compact.get("event", "push"),
        "status": status,
        "conclusion": conclusion,
        "workflow_id": workflow_id,
        "url": url,
        "html_url": f"{WEB}/{repo}/actions/runs/{run_id}",
        "pull_requests": [],
        "created_at": format_time(created),
        "updated_at": format_time(compact.get("updated", started)),
        "actor": actor,
        "run_attempt": attempt,
        "referenced_workflows": [],
        "run_started_at": format_time(started),
        "triggering_actor": actor,
        "jobs_url": f"{url}/jobs",
        "logs_url": f"{url}/attempts/{attempt}/logs",
        "previous_attempt_url": f"{url}/attempts/{attempt - 1}" if attempt > 1 else None,
        "workflow_url": f"{API}/repos/{repo}/actions/workflows/{workflow_id}",
        "head_commit": {
            "id": sha,
            "tree_id": _fake_sha("tree", sha),
            "message": f"Change {sha[:7]}",
            "timestamp": format_time(commit_at),
            "author": {"name": "Octo Cat", "email": "octocat@example.com"},
            "committer": {"name": "Octo Cat", "email": "octocat@example.com"},
        },
        "repository": _repository(repo),
        "head_repository": _repository(repo),
    }
    return _override(run, fields, f"run {run_id}")


# ----- jobs ------------------------------------------------------------------------------------
def _steps(
    steps: list[Any], start: datetime | None, end: datetime | None, job_id: int
) -> list[dict[str, Any]]:
    out = []
    span = (end - start) if start is not None and end is not None else timedelta(0)
    for k, raw in enumerate(steps):
        step = {"name": raw} if isinstance(raw, str) else dict(raw)
        unknown = set(step) - _STEP_KEYS
        if unknown:
            raise TypeError(f"job {job_id} step {k + 1}: unknown keys {sorted(unknown)}")
        conclusion = step.get("conclusion", "success")
        ran = conclusion is not None and start is not None
        begin = start + span * k / len(steps) if ran and start is not None else None
        finish = start + span * (k + 1) / len(steps) if ran and start is not None else None
        out.append(
            {
                "name": step.get("name", f"Step {k + 1}"),
                "status": step.get("status", "completed" if conclusion is not None else "queued"),
                "conclusion": conclusion,
                "number": step.get("number", k + 1),
                "started_at": format_time(step.get("started", begin)),
                "completed_at": format_time(step.get("completed", finish)),
            }
        )
    return out


def make_job(run: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """One job of `run` (an API run dict) as `/actions/runs/{id}/attempts/{n}/jobs` lists it."""
    compact = {k: fields.pop(k) for k in list(fields) if k in _JOB_KEYS}
    run_id, attempt = run["id"], run["run_attempt"]
    repo = _repo_of(run)
    index = int(compact.get("index", 0))
    if "id" not in compact and not 0 <= index < 10:
        raise ValueError(f"run {run_id} attempt {attempt}: give job ids beyond 10 jobs")
    job_id = int(compact.get("id", run_id * 100 + (attempt - 1) * 10 + index + 1))
    created = parse_time(compact.get("created", run["run_started_at"]))
    started = parse_time(compact.get("started", created))
    status = compact.get("status", "completed")
    completed = parse_time(compact.get("completed", started if status == "completed" else None))
    conclusion = compact.get("conclusion", "success" if status == "completed" else None)
    runner = compact.get("runner")
    group = compact.get("group", ("Default" if runner else ""))
    job = {
        "id": job_id,
        "run_id": run_id,
        "workflow_name": run["name"],
        "head_branch": run["head_branch"],
        "run_url": f"{API}/repos/{repo}/actions/runs/{run_id}",
        "run_attempt": attempt,
        "node_id": f"CR_{job_id}",
        "head_sha": run["head_sha"],
        "url": f"{API}/repos/{repo}/actions/jobs/{job_id}",
        "html_url": f"{WEB}/{repo}/actions/runs/{run_id}/job/{job_id}",
        "status": status,
        "conclusion": conclusion,
        "created_at": format_time(created),
        "started_at": format_time(started),
        "completed_at": format_time(completed),
        "name": compact.get("name", "deploy"),
        "steps": _steps(compact.get("steps") or [], started, completed or started, job_id),
        "check_run_url": f"{API}/repos/{repo}/check-runs/{job_id}",
        "labels": list(compact.get("labels") or []),
        "runner_id": _stable_id("runner", runner) if runner else None,
        "runner_name": runner or "",
        "runner_group_id": _stable_id("group", group) if group else None,
        "runner_group_name": group or "",
    }
    return _override(job, fields, f"job {job_id}")


def _repo_of(run: dict[str, Any]) -> str:
    full_name = (run.get("repository") or {}).get("full_name")
    return full_name or run["url"].split("/repos/", 1)[1].split("/actions/", 1)[0]


# ----- deployments -----------------------------------------------------------------------------
def _deployment(
    spec: dict[str, Any],
    index: int,
    attempts: dict[tuple[int, int], dict[str, Any]],
    jobs: dict[tuple[int, int], list[dict[str, Any]]],
    environment: str,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    unknown = set(spec) - _DEPLOYMENT_KEYS
    if unknown:
        raise TypeError(f"deployment {index + 1}: unknown keys {sorted(unknown)}")
    deployment_id = int(spec.get("id", 1000 + index))
    statuses_in = spec.get("statuses") or []
    linked: list[tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any]]] = []
    last: dict[str, Any] = {}
    for k, status in enumerate(statuses_in):
        unknown = set(status) - _STATUS_KEYS
        if unknown:
            raise TypeError(f"deployment {deployment_id} status {k + 1}: unknown {sorted(unknown)}")
        if "run" not in status:  # the run, attempt and job of the status before
            if not linked:
                raise ValueError(f"deployment {deployment_id}: its first status needs `run`")
            status = {**last, **status}
        run_id = int(status["run"])
        attempt = int(status.get("attempt", max(n for (rid, n) in attempts if rid == run_id)))
        run = attempts[run_id, attempt]
        its_jobs = jobs.get((run_id, attempt), [])
        job_ref = status.get("job")
        if isinstance(job_ref, int):
            job = next((j for j in its_jobs if j["id"] == job_ref), {"id": job_ref})
        elif isinstance(job_ref, str):
            job = next(j for j in its_jobs if j["name"] == job_ref)
        else:
            job = its_jobs[-1] if its_jobs else None
        linked.append((status, job, run))
        last = {"run": run_id, "attempt": attempt, "job": job["id"] if job else None}
    first_run = linked[0][2] if linked else None
    first_job = linked[0][1] if linked else None
    repo = spec.get("repo", _repo_of(first_run) if first_run else DEFAULT_REPO)
    created = spec.get("created")
    if created is None and first_run is not None:
        created = (first_job or {}).get("started_at") or first_run["run_started_at"]
    url = f"{API}/repos/{repo}/deployments/{deployment_id}"
    statuses = []
    for k, (status, job, run) in enumerate(linked):
        run_web = f"{WEB}/{repo}/actions/runs/{run['id']}"
        log_url = f"{run_web}/job/{job['id']}" if job else run_web
        at = status.get("created")
        if at is None:
            at = (job or {}).get("completed_at") or (job or {}).get("started_at") or created
        status_id = int(status.get("id", deployment_id * 100 + k + 1))
        statuses.append(
            {
                "url": f"{url}/statuses/{status_id}",
                "id": status_id,
                "node_id": f"DES_{status_id}",
                "state": status.get("state", "success"),
                "description": status.get("description", ""),
                "environment": status.get("environment", spec.get("environment", environment)),
                "target_url": status.get("target_url", log_url),
                "log_url": status.get("log_url", log_url),
                "created_at": format_time(at),
                "updated_at": format_time(at),
                "deployment_url": url,
                "repository_url": f"{API}/repos/{repo}",
            }
        )
    updated = spec.get("updated", statuses[-1]["created_at"] if statuses else created)
    deployment = {
        "url": url,
        "id": deployment_id,
        "node_id": f"DE_{deployment_id}",
        "sha": spec.get("sha", first_run["head_sha"] if first_run else None),
        "ref": spec.get("ref", "main"),
        "task": spec.get("task", "deploy"),
        "payload": {},
        "original_environment": spec.get("environment", environment),
        "environment": spec.get("environment", environment),
        "description": None,
        "creator": _user("github-actions[bot]") | {"type": "Bot"},
        "created_at": format_time(created),
        "updated_at": format_time(updated),
        "statuses_url": f"{url}/statuses",
        "repository_url": f"{API}/repos/{repo}",
        "transient_environment": False,
        "production_environment": True,
    }
    return deployment, statuses


# ----- the whole history -----------------------------------------------------------------------
def _window(value: Any) -> tuple[datetime, datetime] | None:
    if value is None:
        return None
    start, end = (value["start"], value["end"]) if isinstance(value, dict) else value
    start_at, end_at = parse_time(start), parse_time(end)
    if start_at is None or end_at is None:
        raise ValueError("a window needs a start and an end")
    return start_at, end_at


def history_from_spec(spec: dict[str, Any]) -> History:
    """Build the API objects of a compact history (see the module docstring for the defaults)."""
    unknown = set(spec) - _SPEC_KEYS
    if unknown:
        raise ValueError(f"compact history: unknown keys {sorted(unknown)}")
    target = {**DEFAULT_TARGET, **(spec.get("target") or {})}
    entries = [dict(entry) for entry in spec.get("runs") or []]
    first_created: dict[tuple[str, int], Any] = {}
    for entry in entries:
        if int(entry.get("attempt", 1)) == 1:
            key = (entry.get("repo", DEFAULT_REPO), int(entry.get("id", 1)))
            first_created[key] = entry.get("created", entry.get("started"))
    for entry in entries:  # later attempts share the run's creation time
        key = (entry.get("repo", DEFAULT_REPO), int(entry.get("id", 1)))
        if "created" not in entry and int(entry.get("attempt", 1)) > 1 and first_created.get(key):
            entry["created"] = first_created[key]
    explicit: dict[str, Any] = {}
    earliest: dict[str, datetime] = {}
    for entry in entries:  # one sha, one head commit: the same timestamp everywhere
        if "sha" not in entry:
            continue
        if "commit_at" in entry:
            explicit.setdefault(entry["sha"], entry["commit_at"])
        created = parse_time(entry.get("created", entry.get("started")))
        if created is not None:
            earliest[entry["sha"]] = min(created, earliest.get(entry["sha"], created))
    for entry in entries:
        if "sha" in entry and "commit_at" not in entry:
            entry["commit_at"] = explicit.get(entry["sha"], earliest.get(entry["sha"]))

    runs, jobs = [], []
    attempts: dict[tuple[int, int], dict[str, Any]] = {}
    jobs_by_attempt: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for entry in entries:
        job_specs = entry.pop("jobs", None) or []
        run = make_run(**entry)
        its_jobs = [make_job(run, index=i, **job) for i, job in enumerate(job_specs)]
        if "updated" not in entry:
            done = [j["completed_at"] for j in its_jobs if j["completed_at"]]
            run["updated_at"] = max(done, key=parse_time) if done else run["run_started_at"]
        runs.append(run)
        jobs.extend(its_jobs)
        attempts[run["id"], run["run_attempt"]] = run
        jobs_by_attempt[run["id"], run["run_attempt"]] = its_jobs

    deployments, statuses = [], []
    environment = target.get("environment") or "production"
    for index, entry in enumerate(spec.get("deployments") or []):
        deployment, its_statuses = _deployment(entry, index, attempts, jobs_by_attempt, environment)
        deployments.append(deployment)
        statuses.extend(its_statuses)

    return History(
        runs=runs,
        jobs=jobs,
        deployments=deployments,
        deployment_statuses=statuses,
        target=target,
        window=_window(spec.get("window")),
        data_as_of=parse_time(spec.get("data_as_of")),
        expect=dict(spec.get("expect") or {}),
    )
