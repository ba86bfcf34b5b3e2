"""Seeded generator of realistic GitHub Actions deployment history and its ground-truth ledger.

`simulate()` plays out the production pipeline of an SRE team (repo `acme/platform`, workflows
`Deploy production` and `Rollback production`) over a baseline segment (success ~85 %, deploy p95
above 15 min) followed by an improved period (success ~97.5 %, p95 ~7 min) ending at `end`, and
returns GitHub-API-shaped objects: every workflow-run attempt, the jobs of every attempt (copied
jobs of partial re-runs included), the deployments in environment `production` with their
statuses, and the workflows listing. A small discrete-event simulation (one concurrency group,
the deploy job's) decides what really happened, so pending waits, superseded runs and failover
follow from the timeline. Every edge case of DESIGN §5 occurs at least once.

The ledger holds one row per attempt of the deploy and rollback workflows:

- `repo`, `workflow` (`"deploy"` | `"rollback"`), `run_id`, `run_attempt`.
- `outcome`: the DESIGN §5 class the attempt must get under `DEMO_TARGET` (deploy_jobs
  `deploy*`, rollback steps `rollback*`/`*rescue*`, `cancelled: ignore`, `rolled_back: failure`,
  the drill runs excluded): excluded, not_deployed, superseded, rolled_back, success, failure,
  aborted, not_counted; `"rollback_run"` for rollback-workflow runs.
- `deploy_started_at`, `deploy_completed_at`: ISO times of the executed deploy job (null when none;
  completed null while in progress); for rollback rows the run's `run_started_at`/`updated_at`.
- `runner_role`: `"primary"` | `"secondary"` | null (runner of that job).
- `rollback_kind`: null | `"step"` (rescue step ran: signal b) | `"workflow"` (rollback run:
  signal a) | `"redeploy"` (dispatch of an older version: signal c).
- `answers_run_id`, `answers_run_attempt`: the change a rollback answers (itself for `"step"`).
- `episode`: id (1, 2, ...) of the failure episode the row opens, continues or ends (the restoring
  success, or a successful rollback run answering one of its attempts); else null.
- `sha`: the deployed version (for rollback rows: the version rolled back to).
- `drill` (bool), `segment` (`"baseline"` | `"improved"`, by the attempt's start).
- `scenario`: the scenario that produced the row (`routine`, `burst`, `outage`, `redeploy`, ...).
- `conclusion`: the run conclusion of the attempt; `in_environment`: the attempt is linked to a
  deployment in `production` (superseded, not_deployed and job-less attempts are not).

IDs increase with time and only `random.Random(seed)` is used: same seed and `end`, same bytes.
"""

from __future__ import annotations

import base64
import gzip as gzip_module
import heapq
import itertools
import math
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any

import orjson

REPO = "acme/platform"
ENVIRONMENT = "production"
PRIMARY_RUNNER = "dell-r640-01-runner"
SECONDARY_RUNNER = "dell-r640-02-runner"
_API, _WEB = "https://api.github.com", "https://github.com"
_REPO_ID, _ORG_ID = 714_352_096, 98_214_553
_ID_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
# (base at _ID_EPOCH, growth per second): GitHub's global counters, roughly.
_RUN_IDS, _JOB_IDS, _SUITE_IDS = (17_500_000_000, 60), (51_000_000_000, 150), (44_000_000_000, 130)
_DEPLOYMENT_IDS, _STATUS_IDS = (3_100_000_000, 8), (33_000_000_000, 20)
_ROLES = {
    "primary": (41, PRIMARY_RUNNER, "prod-primary"),
    "secondary": (42, SECONDARY_RUNNER, "prod-secondary"),
}
_FAILING = ("fail", "rescue_red", "rescue_green", "drill", "abort", "notify_fail")
_RESULT = {  # behaviour -> (run conclusion, ledger outcome)
    "ok": ("success", "success"), "fail": ("failure", "failure"),
    "no_runner": ("failure", "failure"), "notify_fail": ("failure", "failure"),
    "rescue_red": ("failure", "rolled_back"), "rescue_green": ("success", "rolled_back"),
    "drill": ("failure", "excluded"), "abort": ("cancelled", "aborted"),
    "superseded": ("cancelled", "superseded"), "skip": ("success", "not_deployed"),
    "copied": ("success", "not_deployed"), "startup_failure": ("startup_failure", "failure"),
    "stale": ("stale", "not_counted"), "action_required": ("action_required", "not_counted"),
}  # fmt: skip
_JOBLESS = ("startup_failure", "stale", "action_required")


@dataclass(frozen=True)
class _Workflow:
    id: int
    name: str
    path: str
    created_at: str


DEPLOY_WORKFLOW = _Workflow(
    161335, "Deploy production", ".github/workflows/deploy-production.yml", "2025-02-11T09:41:07Z"
)
ROLLBACK_WORKFLOW = _Workflow(
    161336, "Rollback production", ".github/workflows/rollback-production.yml",
    "2025-02-11T09:41:07Z",
)  # fmt: skip
_CI_WORKFLOW = _Workflow(161334, "CI", ".github/workflows/ci.yml", "2024-09-30T14:02:51Z")

DEMO_TARGET: dict[str, Any] = {
    "name": "production", "repos": [REPO], "workflows": ["deploy-production.yml"],
    "branches": ["main"], "deploy_jobs": ["deploy*"],
    "rollback_workflows": ["rollback-production.yml"], "rollback_steps": ["rollback*", "*rescue*"],
    "runners": {"primary": {"names": [PRIMARY_RUNNER], "labels": ["prod-primary"]},
                "secondary": {"labels": ["prod-secondary"]}},
    "cancelled": "ignore", "rolled_back": "failure", "cfr_window": "24h",
}  # fmt: skip
"""Target settings the ledger outcomes assume; exclude the run ids of the ledger's drill rows."""

_TEAM = (
    ("noor-haddad", 48213377, "Noor Haddad"), ("pkowalczyk", 31877120, "Piotr Kowalczyk"),
    ("lena-fischer", 52290418, "Lena Fischer"), ("dmitri-volkov", 27784301, "Dmitri Volkov"),
    ("aoife-byrne", 60118243, "Aoife Byrne"), ("sam-okoro", 44570932, "Sam Okoro"),
)  # fmt: skip
_AREAS = ("api", "billing", "auth", "ingress", "helm", "db", "worker", "search", "ci", "infra")
_VERBS = ("add", "fix", "bump", "tune", "remove", "rework", "retry", "cache", "split", "guard")
_THINGS = ("connection pool limits", "readiness probe timeout", "rate limiter for webhooks",
           "nginx upstream keepalive", "pgbouncer settings", "feature flag for new checkout",
           "grafana dashboard links", "retry on 503 from payments", "stale cache keys",
           "memory requests for workers", "TLS cipher list", "migration for invoice index")  # fmt: skip


def _z(t: datetime | None) -> str | None:
    return None if t is None else t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _zms(t: datetime | None) -> str | None:
    return None if t is None else t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _default_end(end: datetime | None) -> datetime:
    if end is None:
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return today - timedelta(days=today.weekday())
    if end.tzinfo is None:
        raise ValueError(f"end must be timezone-aware (UTC), got naive {end.isoformat()}")
    return end.astimezone(UTC).replace(microsecond=0)


def _node(prefix: str, *numbers: int) -> str:
    return prefix + base64.b64encode(struct.pack(f">{len(numbers)}Q", *numbers)).decode()[:20]


def _user(login: str, uid: int, kind: str = "User") -> dict[str, Any]:
    u = f"{_API}/users/{login}"
    return {
        "login": login, "id": uid, "node_id": _node("MDQ6VXNlcj", uid),
        "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4", "gravatar_id": "",
        "url": u, "html_url": f"{_WEB}/{login}", "followers_url": f"{u}/followers",
        "following_url": f"{u}/following{{/other_user}}", "gists_url": f"{u}/gists{{/gist_id}}",
        "starred_url": f"{u}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{u}/subscriptions", "organizations_url": f"{u}/orgs",
        "repos_url": f"{u}/repos", "events_url": f"{u}/events{{/privacy}}",
        "received_events_url": f"{u}/received_events", "type": kind,
        "user_view_type": "public", "site_admin": False,
    }  # fmt: skip


def _repository(full_name: str, repo_id: int, description: str) -> dict[str, Any]:
    owner, name = full_name.split("/")
    u = f"{_API}/repos/{full_name}"
    templated = {
        "keys": "/keys{/key_id}", "collaborators": "/collaborators{/collaborator}",
        "issue_events": "/issues/events{/number}", "assignees": "/assignees{/user}",
        "branches": "/branches{/branch}", "blobs": "/git/blobs{/sha}", "git_tags": "/git/tags{/sha}",
        "git_refs": "/git/refs{/sha}", "trees": "/git/trees{/sha}", "statuses": "/statuses/{sha}",
        "commits": "/commits{/sha}", "git_commits": "/git/commits{/sha}",
        "comments": "/comments{/number}", "issue_comment": "/issues/comments{/number}",
        "contents": "/contents/{+path}", "compare": "/compare/{base}...{head}",
        "archive": "/{archive_format}{/ref}", "issues": "/issues{/number}",
        "pulls": "/pulls{/number}", "milestones": "/milestones{/number}",
        "notifications": "/notifications{?since,all,participating}", "labels": "/labels{/name}",
        "releases": "/releases{/id}",
    }  # fmt: skip
    plain = (
        "forks",
        "teams",
        "hooks",
        "events",
        "tags",
        "languages",
        "stargazers",
        "contributors",
        "subscribers",
        "subscription",
        "merges",
        "downloads",
        "deployments",
    )
    urls = {f"{k}_url": u + v for k, v in templated.items()} | {
        f"{k}_url": f"{u}/{k}" for k in plain
    }
    return {
        "id": repo_id, "node_id": _node("R_kgDO", repo_id), "name": name, "full_name": full_name,
        "private": True, "owner": _user(owner, _ORG_ID, "Organization"),
        "html_url": f"{_WEB}/{full_name}", "description": description, "fork": False, "url": u,
    } | dict(sorted(urls.items()))  # fmt: skip


_ACME_REPO = _repository(
    REPO,
    _REPO_ID,
    "Acme platform: API, billing and worker services, their Helm charts, Terraform "
    "for the production clusters and the deployment pipeline. Owned by SRE (#sre, on-call rota in "
    "PagerDuty); runbooks in docs/runbooks, deploy guide in docs/runbooks/deploy.md.",
)
_ACTIONS_BOT = _user("github-actions[bot]", 41898282, "Bot")
_ACTIONS_APP = {
    "id": 15368, "slug": "github-actions", "node_id": "MDM6QXBwMTUzNjg=",
    "owner": _user("github", 9919, "Organization"), "name": "GitHub Actions",
    "description": "Automate your workflow from idea to production",
    "external_url": "https://help.github.com/en/actions",
    "html_url": "https://github.com/apps/github-actions", "created_at": "2018-07-30T09:30:17Z",
    "updated_at": "2024-04-10T20:33:16Z",
    "permissions": {"actions": "write", "checks": "write", "contents": "write",
                    "deployments": "write", "issues": "write", "metadata": "read",
                    "packages": "write", "pull_requests": "write", "statuses": "write"},
    "events": ["branch_protection_rule", "check_run", "check_suite", "create", "delete",
               "deployment", "deployment_status", "issues", "pull_request", "push", "release",
               "workflow_dispatch", "workflow_run"],
}  # fmt: skip


# ----- the plan objects the simulation fills in; ids are assigned afterwards, in time order ----
@dataclass
class _Commit:
    sha: str
    tree: str
    message: str
    at: datetime
    author: tuple[str, int, str]
    squashed: bool


@dataclass
class _Step:
    name: str
    number: int
    conclusion: str | None
    started_at: datetime | None
    completed_at: datetime | None
    status: str = "completed"


@dataclass
class _Job:
    name: str
    created_at: datetime
    started_at: datetime
    completed_at: datetime | None
    conclusion: str | None
    labels: list[str]
    role: str | None  # "hosted" | "primary" | "secondary" | None (no runner)
    steps: list[_Step]
    copied: bool = False
    runner_no: int = 0
    id: int = 0


@dataclass
class _Deployment:
    sha: str
    created_at: datetime
    job: _Job
    statuses: list[tuple[str, datetime]] = field(default_factory=list)
    id: int = 0
    status_ids: list[int] = field(default_factory=list)


@dataclass
class _Plan:
    """What a push or dispatch intends; the timeline decides what happens."""

    behaviour: str = "ok"
    scenario: str = "routine"
    event: str = "push"
    reruns: list[tuple[float, str, str]] = field(default_factory=list)  # (delay_s, mode, behaviour)
    follow: str | None = None  # "rollback" | "redeploy": answer this deploy after it succeeded
    hold: bool = False  # hold the concurrency group from deploy start until the follow-up ends
    bypass: bool = False  # ignore a hold (the follow-up itself)
    deploy_s: float | None = None
    commit: _Commit | None = None
    skew_s: float = 0.0
    answers: _Attempt | None = None


@dataclass
class _Run:
    workflow: _Workflow
    created_at: datetime
    event: str
    commit: _Commit
    actor: tuple[str, int, str]
    plan: _Plan
    attempts: list[_Attempt] = field(default_factory=list)
    id: int = 0
    number: int = 0
    check_suite_id: int = 0


@dataclass
class _Attempt:
    run: _Run
    number: int
    run_started_at: datetime
    actor: tuple[str, int, str]
    behaviour: str
    jobs: list[_Job] = field(default_factory=list)
    status: str = "in_progress"
    conclusion: str | None = None
    updated_at: datetime | None = None
    outcome: str = "not_counted"
    deploy: _Job | None = None  # the executed deploy job
    deployment: _Deployment | None = None
    rollback_kind: str | None = None
    answers: _Attempt | None = None
    episode: int | None = None
    sha: str = ""

    @property
    def started_at(self) -> datetime:
        return self.deploy.started_at if self.deploy else self.run_started_at

    @property
    def completed_at(self) -> datetime:
        done = self.deploy.completed_at if self.deploy else None
        return done or self.updated_at or self.run_started_at


@dataclass
class Simulation:
    """GitHub-API-shaped dumps of the simulated history plus its ground-truth ledger."""

    runs: list[dict[str, Any]]
    jobs: list[dict[str, Any]]
    deployments: list[dict[str, Any]]
    deployment_statuses: list[dict[str, Any]]
    workflows: list[dict[str, Any]]
    ledger: list[dict[str, Any]]


_SPECIALS = (  # (fraction of the period, hour UTC, scenario): each edge case at least once
    (0.04, 10.0, "burst"), (0.07, 15.0, "aborted"), (0.10, 11.0, "rerun_partial"),
    (0.13, 14.0, "rerun_all"), (0.16, 10.5, "copied_deploy"), (0.19, 13.0, "rollback_failed"),
    (0.22, 16.0, "startup_failure"), (0.25, 11.0, "drill"), (0.28, 15.0, "stale"),
    (0.30, 9.5, "action_required"), (0.33, 14.0, "redeploy"), (0.36, 10.0, "rescue_green"),
    (0.37, 15.0, "rescue_red"), (0.45, 11.0, "not_deployed"), (0.55, 14.0, "clock_skew"),
    (0.62, 10.0, "burst"), (0.93, 10.0, "outage"), (0.95, 14.0, "rollback_bad"),
    (0.965, 11.0, "rescue_red"),
)  # fmt: skip


_SENTENCES = (
    "The change is behind a flag and defaults to the current behaviour.",
    "p99 latency on the checkout path went from 840 ms to 310 ms in staging.",
    "Alerts fired twice last week because the probe timed out during GC pauses.",
    "We page on this metric, so the threshold now matches the SLO burn-rate alert.",
    "The old value was copied from the template in 2023 and never revisited.",
    "Load test with 3x Black Friday traffic passed on the staging cluster.",
    "This removes the manual step from the deploy runbook.",
    "Connection churn against Postgres dropped by half after the pool change.",
    "No schema change; the migration only adds a partial index concurrently.",
    "Dashboards and alert rules are updated in the same PR so they cannot drift.",
    "Canary ran for 30 minutes on 5 % of traffic with no error-rate change.",
    "The runbook entry for this service links to the new panel.",
    "Terraform plan shows no changes outside the platform namespace.",
    "On-call was told in #sre-oncall before merging; no customer-facing change expected.",
)


def _message(rng: Random, pr_number: int) -> str:
    """A squash-merge commit message: title, the PR template and the squashed commits."""
    title = f"{rng.choice(('fix', 'feat', 'chore', 'perf'))}({rng.choice(_AREAS)}): "
    title += f"{rng.choice(_VERBS)} {rng.choice(_THINGS)} (#{pr_number})"
    summary = " ".join(rng.sample(_SENTENCES, rng.randint(8, 12)))
    why = " ".join(rng.sample(_SENTENCES, rng.randint(2, 4)))
    ticket = f"INFRA-{rng.randint(300, 990)}"
    checks = "".join(f"\n- [{'x' if rng.random() < 0.8 else ' '}] {line}"
                     for line in rng.sample(_SENTENCES, rng.randint(3, 6)))  # fmt: skip
    tests = "".join(f"\nok   github.com/acme/platform/internal/{area}\t{rng.uniform(0.5, 40):.3f}s"
                    for area in rng.sample(_AREAS, rng.randint(6, 10)))  # fmt: skip
    limit = rng.choice((256, 512, 768, 1024))
    testing = (f"\n\n## Testing\n\n```\n$ make test-integration{tests}\n$ helm diff upgrade "
               f"platform charts/platform -f values/production.yaml\ndefault, platform-"
               f"{rng.choice(_AREAS)}, Deployment (apps) has changed:\n-  memory: {limit}Mi"
               f"\n+  memory: {limit * 3 // 2}Mi\n```")  # fmt: skip
    commits = "".join(f"\n\n* {rng.choice(_VERBS)} {rng.choice(_THINGS)}"
                      for _ in range(rng.randint(4, 16)))  # fmt: skip
    other = rng.choice(_TEAM)
    coauthor = f"\n\nCo-authored-by: {other[2]} <{other[1]}+{other[0]}@users.noreply.github.com>"
    return (f"{title}\n\n## Summary\n\n{summary}\n\n## Why\n\n{why} Ticket: {ticket}"
            f"{testing}\n\n## Rollout checklist\n{checks}\n\n## Rollback\n\nRun the `Rollback "
            f"production` workflow or revert this PR; no data migration to undo.{commits}"
            f"\n\n---------{coauthor if rng.random() < 0.4 else ''}")  # fmt: skip


def _steps(start: datetime, spec: Iterable[tuple[str, float, str]]) -> list[_Step]:
    """Steps run one after another; skipped steps take no time; post steps are numbered 10+."""
    out, t = [], start
    numbers = itertools.chain(range(1, 7), itertools.count(10))
    for (name, seconds, conclusion), number in zip(spec, numbers, strict=False):
        end = t if conclusion == "skipped" else t + timedelta(seconds=round(seconds))
        out.append(_Step(name, number, conclusion, t, end))
        t = end
    return out


class _World:
    """The discrete-event timeline: triggers, one concurrency group, runners, follow-ups."""

    def __init__(self, rng: Random, *, start: datetime, boundary: datetime, end: datetime):
        self.rng, self.start, self.boundary, self.end = rng, start, boundary, end
        self.cutoff = end - timedelta(minutes=45)
        self.events: list[tuple[datetime, int, Callable[..., None], tuple[Any, ...]]] = []
        self.seq = itertools.count()
        self.runs: list[_Run] = []
        self.deployments: list[_Deployment] = []
        self.successes: list[_Attempt] = []
        self.busy_until, self.pending, self.held, self.force_ok = start, None, False, False
        self.pending: _Attempt | None
        self.deferred: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        self.outage: tuple[datetime, datetime, datetime] | None = None
        self.live: _Deployment | None = None
        self.pr_number = 3100
        self.head = self.commit(start - timedelta(hours=20), lead_s=600)

    # --- plumbing
    def at(self, t: datetime, fn: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self.events, (t, next(self.seq), fn, args))

    def play(self) -> None:
        while self.events:
            t, _, fn, args = heapq.heappop(self.events)
            fn(t, *args)

    def secs(self, lo: float, hi: float) -> timedelta:
        return timedelta(seconds=self.rng.randint(int(lo), int(hi)))

    def lognorm(self, median: float, sigma: float) -> float:
        return median * math.exp(self.rng.gauss(0.0, sigma))

    def workhours(self, t: datetime) -> datetime:
        if 8 <= t.hour < 19:
            return t
        day = t.replace(hour=8, minute=0, second=0) + timedelta(days=1 if t.hour >= 19 else 0)
        return day + self.secs(0, 3600)

    # --- people and commits
    def commit(self, pushed_at: datetime, *, lead_s: float | None = None) -> _Commit:
        rng = self.rng
        squashed = rng.random() < 0.55
        if lead_s is None:
            lead_s = rng.randint(3, 40) if squashed else min(3 * 86400, self.lognorm(5400, 1.1))
        self.pr_number += rng.randint(1, 5)
        author = rng.choice(_TEAM)
        self.head = _Commit(f"{rng.getrandbits(160):040x}", f"{rng.getrandbits(160):040x}",
                            _message(rng, self.pr_number), pushed_at - timedelta(seconds=round(lead_s)), author,
                            squashed)  # fmt: skip
        return self.head

    # --- runs and attempts
    def new_run(self, t: datetime, plan: _Plan, workflow: _Workflow = DEPLOY_WORKFLOW) -> _Run:
        if plan.commit is not None:
            commit = plan.commit
        elif plan.event == "push":
            commit = self.commit(t, lead_s=-plan.skew_s if plan.skew_s else None)
        else:
            commit = self.head
        actor = commit.author if plan.event == "push" else self.rng.choice(_TEAM)
        run = _Run(workflow, t, plan.event, commit, actor, plan)
        self.runs.append(run)
        return run

    def new_attempt(self, run: _Run, t: datetime, behaviour: str) -> _Attempt:
        actor = run.actor if not run.attempts else self.rng.choice(_TEAM)
        attempt = _Attempt(run, len(run.attempts) + 1, t, actor, behaviour, sha=run.commit.sha)
        run.attempts.append(attempt)
        return attempt

    def trigger(self, t: datetime, plan: _Plan, behaviour: str, run: _Run | None = None,
                mode: str = "all") -> None:  # fmt: skip
        """A push or dispatch (run None) or a re-run of `run` ("all" or "failed" jobs)."""
        if self.held and not plan.bypass:
            self.deferred.append((self.trigger, (plan, behaviour, run, mode)))
            return
        if t >= self.cutoff and plan.scenario != "in_progress":
            return
        if run is None:
            run = self.new_run(t, plan)
            started = t if behaviour == "startup_failure" else t + self.secs(0, 2)
        else:
            started = t
        attempt = self.new_attempt(run, started, behaviour)
        if plan.answers is not None:
            attempt.rollback_kind, attempt.answers = "redeploy", plan.answers
        if behaviour in _JOBLESS:
            self.finish(started + self.secs(2, 20), attempt)
            return
        previous = run.attempts[-2].jobs if attempt.number > 1 else []
        if mode == "failed" and previous:
            copies = [self.copy_job(j, started) for j in previous if j.conclusion == "success"]
            attempt.jobs.extend(j for j in copies if j.name != "notify")
            if any(j.name == "deploy" for j in copies):
                attempt.behaviour = "copied"
                self.at(started + self.secs(4, 9), self.finish, attempt)
            else:
                self.at(started + self.secs(3, 8), self.ready, attempt)
            return
        build = self.hosted_job("build", started + self.secs(1, 3), self.build_steps)
        attempt.jobs.append(build)
        assert build.completed_at is not None
        self.at(build.completed_at + self.secs(1, 3), self.ready, attempt)

    def copy_job(self, job: _Job, t: datetime) -> _Job:
        return _Job(job.name, t + self.secs(1, 3), job.started_at, job.completed_at,
                    job.conclusion, job.labels, None, job.steps, copied=True)  # fmt: skip

    def ready(self, t: datetime, attempt: _Attempt) -> None:
        """The deploy job's `needs` are met: skip it, or enter the concurrency group."""
        if attempt.behaviour == "skip":
            attempt.jobs.append(_Job("deploy", t, t, t, "skipped", [], None, []))
            self.at(t + self.secs(1, 3), self.finish, attempt)
            return
        busy = self.held or self.busy_until > t or self.pending is not None
        if busy and not attempt.run.plan.bypass:
            if self.pending is not None:
                self.supersede(t, self.pending)
            self.pending = attempt
            return
        self.start_deploy(t, attempt)

    def supersede(self, t: datetime, attempt: _Attempt) -> None:
        labels = ["self-hosted", "linux", "prod-primary"]
        attempt.jobs.append(_Job("deploy", t, t, t, "cancelled", labels, None, []))
        attempt.behaviour = "superseded"
        self.at(t + self.secs(1, 3), self.finish, attempt)

    def slot_free(self, t: datetime) -> None:
        if self.pending is not None and not self.held and self.busy_until <= t:
            attempt, self.pending = self.pending, None
            self.start_deploy(t + self.secs(1, 3), attempt)

    def role_at(self, t: datetime) -> str | None:
        if self.outage and self.outage[0] <= t < self.outage[2]:
            return "secondary" if t >= self.outage[1] else None
        return "primary"

    def start_deploy(self, t: datetime, attempt: _Attempt) -> None:
        plan, rng = attempt.run.plan, self.rng
        if self.force_ok and attempt.behaviour in _FAILING:
            attempt.behaviour = "ok"
        self.force_ok = False
        self.held = self.held or plan.hold
        role = self.role_at(t)
        labels = ["self-hosted", "linux", _ROLES[role or "primary"][2]]
        if role is None:  # the primary is down and nobody has switched to the secondary yet
            attempt.behaviour = "no_runner"
            failed_at = t + self.secs(540, 900)
            job = _Job("deploy", t, failed_at, failed_at, "failure", labels, None, [])
            self.deploy_record(attempt, job, [("queued", t), ("error", failed_at)])
            self.occupy(failed_at, attempt)
            return
        if role == "secondary" or t < self.boundary and rng.random() < 0.3:
            queue = self.secs(15, 75) if role == "secondary" else self.secs(30, 240)
        else:
            queue = self.secs(2, 14)
        seconds = plan.deploy_s or (
            self.lognorm(650, 0.34) if t < self.boundary else self.lognorm(330, 0.14)
        ) * (1.15 if role == "secondary" else 1.0)
        steps, conclusion = self.deploy_steps(t + queue, max(120.0, seconds), attempt.behaviour)
        job = _Job("deploy", t, t + queue, None, conclusion, labels, role, steps)
        job.completed_at = max(s.completed_at or t for s in steps) + self.secs(0, 2)
        attempt.jobs.append(job)
        attempt.deploy = job
        final = {"success": "success", "failure": "failure", "cancelled": "failure"}[conclusion]
        if job.completed_at >= self.end:
            self.snapshot_in_progress(attempt, job)
            return
        self.deploy_record(attempt, job, [("queued", t), ("in_progress", job.started_at),
                                          (final, job.completed_at)])  # fmt: skip
        self.occupy(job.completed_at, attempt)

    def occupy(self, until: datetime, attempt: _Attempt) -> None:
        self.busy_until = until
        self.at(until + self.secs(1, 2), self.slot_free)
        self.at(until + self.secs(1, 3), self.finish, attempt)

    def deploy_record(self, attempt: _Attempt, job: _Job,
                      statuses: list[tuple[str, datetime]]) -> None:  # fmt: skip
        if job not in attempt.jobs:
            attempt.jobs.append(job)
        deployment = _Deployment(attempt.sha, job.created_at, job, statuses)
        if statuses[-1][0] == "success":
            if self.live is not None:
                self.live.statuses.append(("inactive", statuses[-1][1]))
            self.live = deployment
        attempt.deployment = deployment
        self.deployments.append(deployment)

    def snapshot_in_progress(self, attempt: _Attempt, job: _Job) -> None:
        """Data is fetched at `end`: the deploy job is still running."""
        now = self.end - timedelta(seconds=1)
        for step in job.steps:
            if step.started_at is None or step.started_at > now:
                step.status, step.conclusion, step.started_at, step.completed_at = (
                    "queued", None, None, None)  # fmt: skip
            elif step.completed_at is not None and step.completed_at > now:
                step.status, step.conclusion, step.completed_at = "in_progress", None, None
        job.completed_at, job.conclusion = None, None
        self.deploy_record(attempt, job, [("queued", job.created_at),
                                          ("in_progress", job.started_at)])  # fmt: skip
        attempt.updated_at = job.started_at + self.secs(1, 4)

    # --- job layouts
    def build_steps(self, start: datetime) -> list[_Step]:
        r = self.rng.randint
        return _steps(start, [
            ("Set up job", r(1, 3), "success"), ("Run actions/checkout@v4", r(2, 6), "success"),
            ("Set up Docker Buildx", r(3, 7), "success"),
            ("Build and push image", r(85, 200), "success"),
            ("Detect changed paths", r(2, 4), "success"),
            ("Post Run actions/checkout@v4", r(0, 1), "success"), ("Complete job", r(0, 1), "success"),
        ])  # fmt: skip

    def hosted_job(self, name: str, created: datetime,
                   layout: Callable[[datetime], list[_Step]]) -> _Job:  # fmt: skip
        started = created + self.secs(2, 18)
        steps = layout(started)
        done = max(s.completed_at or started for s in steps) + self.secs(0, 2)
        concl = "failure" if any(s.conclusion == "failure" for s in steps) else "success"
        job = _Job(name, created, started, done, concl, ["ubuntu-latest"], "hosted", steps)
        job.runner_no = self.rng.randint(1, 600)
        return job

    def deploy_steps(self, start: datetime, total: float, behaviour: str
                     ) -> tuple[list[_Step], str]:  # fmt: skip
        r = self.rng.randint
        smoke, rescue = r(20, 55), r(45, 140)
        main = max(30.0, total - smoke - 12)
        spec = {  # behaviour -> (deploy, smoke, rescue) conclusions, deploy-step share, job result
            "ok": ("success", "success", "skipped", 1.0, "success"),
            "notify_fail": ("success", "success", "skipped", 1.0, "success"),
            "fail": ("failure", "skipped", "skipped", 0.55, "failure"),
            "rescue_red": ("success", "failure", "success", 1.0, "failure"),
            "rescue_green": ("failure", "skipped", "success", 0.7, "success"),
            "drill": ("failure", "skipped", "success", 0.4, "failure"),
            "abort": ("cancelled", "skipped", "skipped", self.rng.uniform(0.3, 0.8), "cancelled"),
        }[behaviour]  # fmt: skip
        deploy, smoke_c, rescue_c, share, job_conclusion = spec
        steps = _steps(start, [
            ("Set up job", r(1, 3), "success"), ("Run actions/checkout@v4", r(2, 5), "success"),
            ("Log in to registry", r(1, 3), "success"),
            ("Deploy to production", main * share, deploy), ("Smoke test", smoke, smoke_c),
            ("Rollback on failure", rescue, rescue_c),
            ("Post Run actions/checkout@v4", r(0, 1), "success"), ("Complete job", r(0, 1), "success"),
        ])  # fmt: skip
        return steps, job_conclusion

    def notify_steps(self, start: datetime, conclusion: str) -> list[_Step]:
        r = self.rng.randint
        return _steps(start, [("Set up job", r(1, 2), "success"),
                                  ("Notify Slack", r(2, 9), conclusion),
                                  ("Complete job", r(0, 1), "success")])  # fmt: skip

    # --- endings and follow-ups
    def finish(self, t: datetime, attempt: _Attempt) -> None:
        behaviour = attempt.behaviour
        conclusion, outcome = _RESULT[behaviour]
        if behaviour in ("superseded", "abort"):
            attempt.jobs.append(_Job("notify", t, t, t, "skipped", [], None, []))
        elif behaviour not in _JOBLESS:
            result = "failure" if behaviour == "notify_fail" else "success"
            attempt.jobs.append(
                self.hosted_job("notify", t, lambda s: self.notify_steps(s, result))
            )
        ends = [j.completed_at for j in attempt.jobs if j.completed_at and not j.copied]
        attempt.updated_at = max([t, *ends]) + self.secs(1, 3)
        attempt.status, attempt.conclusion, attempt.outcome = "completed", conclusion, outcome
        if behaviour in ("rescue_red", "rescue_green"):
            attempt.rollback_kind, attempt.answers = "step", attempt
        if outcome == "success":
            self.successes.append(attempt)
        self.follow_up(attempt)

    def follow_up(self, attempt: _Attempt) -> None:
        plan, rng, done = attempt.run.plan, self.rng, attempt.completed_at
        if plan.answers is not None:
            self.release(attempt.updated_at or done)
        if attempt.number <= len(plan.reruns):
            delay, mode, behaviour = plan.reruns[attempt.number - 1]
            when = self.workhours(done + timedelta(seconds=delay))
            self.at(when, self.trigger, plan, behaviour, attempt.run, mode)
        elif attempt.behaviour in ("fail", "no_runner") and not plan.follow and attempt.number < 3:
            if attempt.behaviour == "no_runner" or rng.random() < 0.45:
                delay = rng.choice((rng.randint(180, 2400), rng.randint(3600, 18000),
                                    rng.randint(86400, 3 * 86400)))  # fmt: skip
                mode = rng.choice(("all", "failed", "failed"))
                behaviour = "ok" if rng.random() < 0.85 else "fail"
                when = self.workhours(done + timedelta(seconds=delay))
                self.at(when, self.trigger, plan, behaviour, attempt.run, mode)
        if not plan.follow or attempt.number > 1:
            return
        when = done + self.secs(600, 2400)
        restore = self.restore_point(attempt)
        if when >= self.cutoff or restore is None:
            self.release(done)
        elif plan.follow == "rollback":
            self.at(when, self.rollback_run, attempt, restore)
        else:
            redeploy = _Plan("ok", "redeploy", "workflow_dispatch", bypass=True,
                             commit=restore.run.commit, answers=attempt)  # fmt: skip
            self.at(when, self.trigger, redeploy, "ok")

    def restore_point(self, bad: _Attempt) -> _Attempt | None:
        """The last successful attempt before `bad` of an older, different version."""
        for attempt in reversed(self.successes):
            if attempt.sha != bad.sha and attempt.run.commit.at < bad.run.commit.at:
                return attempt
        return None

    def release(self, t: datetime) -> None:
        self.held, self.force_ok = False, True
        deferred, self.deferred = self.deferred, []
        for i, (fn, args) in enumerate(deferred):
            self.at(t + timedelta(minutes=3 + 5 * i) + self.secs(0, 90), fn, *args)
        self.slot_free(t)

    def rollback_run(self, t: datetime, answers: _Attempt, restore: _Attempt) -> None:
        run = self.new_run(t, _Plan(scenario="rollback", event="workflow_dispatch"),
                           ROLLBACK_WORKFLOW)  # fmt: skip
        attempt = self.new_attempt(run, t + self.secs(0, 2), "ok")
        attempt.rollback_kind, attempt.answers, attempt.sha = "workflow", answers, restore.sha
        created = attempt.run_started_at + self.secs(2, 5)
        role = self.role_at(created) or "secondary"
        r = self.rng.randint
        steps = _steps(created + self.secs(2, 12), [
            ("Set up job", r(1, 3), "success"), ("Run actions/checkout@v4", r(2, 5), "success"),
            ("Resolve previous release", r(2, 6), "success"),
            ("Roll back to previous release", r(70, 190), "success"),
            ("Smoke test", r(20, 45), "success"), ("Complete job", r(0, 1), "success"),
        ])  # fmt: skip
        done = max(s.completed_at or created for s in steps) + self.secs(0, 2)
        labels = ["self-hosted", "linux", _ROLES[role][2]]
        job = _Job("rollback", created, steps[0].started_at or created, done, "success", labels,
                   role, steps)  # fmt: skip
        attempt.deploy = job
        self.deploy_record(attempt, job, [("queued", created), ("in_progress", job.started_at),
                                          ("success", done)])  # fmt: skip
        attempt.status, attempt.conclusion, attempt.outcome = "completed", "success", "rollback_run"
        attempt.updated_at = done + self.secs(1, 3)
        self.busy_until = max(self.busy_until, done)
        self.at(attempt.updated_at, lambda t2: self.release(t2))

    # --- the schedule
    def schedule(self, deploys_per_day: float) -> None:
        specials = [(self.special_time(f, h), name) for f, h, name in _SPECIALS]
        specials.append((self.end - timedelta(minutes=12), "in_progress"))
        routine = [t for t in self.daily_triggers(deploys_per_day)
                   if all(not -timedelta(minutes=40) < t - s < timedelta(minutes=75)
                          for s, _ in specials)]  # fmt: skip
        for segment in (
            [t for t in routine if t < self.boundary],
            [t for t in routine if t >= self.boundary],
        ):
            for t, behaviour in zip(segment, self.behaviours(segment), strict=True):
                self.at(t, self.trigger, _Plan(behaviour), behaviour)
        for t, name in specials:
            getattr(self, f"sc_{name}")(t)

    def special_time(self, fraction: float, hour: float) -> datetime:
        day = (self.start + (self.end - self.start) * fraction).replace(hour=0, minute=0, second=0)
        while day.weekday() >= 5:
            day += timedelta(days=1)
        if day >= self.end - timedelta(days=1):
            day -= timedelta(days=3)
        return day + timedelta(hours=hour) + self.secs(0, 600)

    def daily_triggers(self, per_day: float) -> list[datetime]:
        out: list[datetime] = []
        day, last = self.start, self.start
        while day < self.end:
            weekend = day.weekday() >= 5
            mean = per_day * (0.15 if weekend else 1.0)
            n = max(0, round(self.rng.gauss(mean, 0.2 if weekend else 1.1)))
            lo, hi = (9.0, 17.0) if weekend else (8.0, 18.5)
            times = sorted(day + timedelta(hours=self.rng.uniform(lo, hi)) for _ in range(n))
            for t in times:
                t = max(t, last + timedelta(minutes=25)).replace(microsecond=0)
                if t < day + timedelta(hours=19) and t < self.end - timedelta(hours=1):
                    out.append(t)
                    last = t
            day += timedelta(days=1)
        return out

    def behaviours(self, triggers: list[datetime]) -> list[str]:
        """Exact shares per segment, so success rates do not depend on the seed's luck."""
        n = len(triggers)
        baseline = bool(triggers) and triggers[0] < self.boundary
        failing = round(n * (0.105 if baseline else 0.018))
        kinds = ["fail"] * round(failing * 0.55) + ["rescue_red"] * round(failing * 0.3)
        kinds += ["rescue_green"] * (failing - len(kinds))
        kinds += ["abort"] * round(n * (0.015 if baseline else 0.004))
        kinds += ["skip"] * round(n * 0.025)
        kinds += ["ok"] * (n - len(kinds))
        self.rng.shuffle(kinds)
        return kinds[:n]

    # --- one builder per edge case
    def sc_burst(self, t: datetime) -> None:
        """Three pushes in a row: the middle one is superseded in the concurrency group."""
        self.at(t, self.trigger, _Plan("ok", "burst", deploy_s=780), "ok")
        for minutes in (1.5, 3.0):
            self.at(t + timedelta(minutes=minutes), self.trigger, _Plan("ok", "burst"), "ok")

    def sc_aborted(self, t: datetime) -> None:
        self.at(t, self.trigger, _Plan("abort", "aborted"), "abort")

    def sc_rerun_partial(self, t: datetime) -> None:
        reruns = [(2400.0, "failed", "fail"), (1.6 * 86400, "failed", "ok")]
        self.at(t, self.trigger, _Plan("fail", "rerun_partial", reruns=reruns), "fail")

    def sc_rerun_all(self, t: datetime) -> None:
        plan = _Plan("fail", "rerun_all", reruns=[(900.0, "all", "ok")])
        self.at(t, self.trigger, plan, "fail")

    def sc_copied_deploy(self, t: datetime) -> None:
        """The deploy succeeds, Slack fails; re-running the failed job copies the deploy job."""
        plan = _Plan("notify_fail", "copied_deploy", reruns=[(600.0, "failed", "ok")])
        self.at(t, self.trigger, plan, "notify_fail")

    def sc_rollback_failed(self, t: datetime) -> None:
        plan = _Plan("fail", "rollback_failed", follow="rollback", hold=True)
        self.at(t, self.trigger, plan, "fail")

    def sc_rollback_bad(self, t: datetime) -> None:
        plan = _Plan("ok", "rollback_bad", follow="rollback", hold=True)
        self.at(t, self.trigger, plan, "ok")

    def sc_redeploy(self, t: datetime) -> None:
        self.at(t, self.trigger, _Plan("ok", "redeploy", follow="redeploy", hold=True), "ok")

    def sc_startup_failure(self, t: datetime) -> None:
        self.at(t, self.trigger, _Plan("startup_failure", "startup_failure"), "startup_failure")

    def sc_stale(self, t: datetime) -> None:
        self.at(t, self.trigger, _Plan("stale", "stale"), "stale")

    def sc_action_required(self, t: datetime) -> None:
        plan = _Plan("action_required", "action_required", "workflow_dispatch")
        self.at(t, self.trigger, plan, "action_required")

    def sc_drill(self, t: datetime) -> None:
        self.at(t, self.trigger, _Plan("drill", "drill", "workflow_dispatch"), "drill")

    def sc_rescue_green(self, t: datetime) -> None:
        self.at(t, self.trigger, _Plan("rescue_green", "rescue_green"), "rescue_green")

    def sc_rescue_red(self, t: datetime) -> None:
        self.at(t, self.trigger, _Plan("rescue_red", "rescue_red"), "rescue_red")

    def sc_not_deployed(self, t: datetime) -> None:
        self.at(t, self.trigger, _Plan("skip", "not_deployed"), "skip")

    def sc_clock_skew(self, t: datetime) -> None:
        """A commit dated in the future (a laptop clock): a negative lead time."""
        self.at(t, self.trigger, _Plan("ok", "clock_skew", skew_s=9000.0), "ok")

    def sc_outage(self, t: datetime) -> None:
        """The primary runner is down for hours; the team switches deploys to the secondary."""
        self.outage = (t, t + timedelta(minutes=40), t + timedelta(hours=3, minutes=30))
        first = _Plan("ok", "outage", reruns=[(1500.0, "failed", "ok")])
        self.at(t + timedelta(minutes=5), self.trigger, first, "ok")
        for minutes in (75, 150):
            self.at(t + timedelta(minutes=minutes), self.trigger, _Plan("ok", "outage"), "ok")

    def sc_in_progress(self, t: datetime) -> None:
        plan = _Plan("ok", "in_progress", deploy_s=1500, bypass=True)
        self.at(t, self.trigger, plan, "ok")


# ----- rendering: plan objects -> GitHub API objects ---------------------------------------------
def _run_object(repo: str, workflow: _Workflow, *, run_id: int, run_number: int, attempt: int,
                event: str, status: str, conclusion: str | None, commit: dict[str, Any],
                created_at: str, run_started_at: str, updated_at: str, actor: dict[str, Any],
                triggering_actor: dict[str, Any], check_suite_id: int) -> dict[str, Any]:  # fmt: skip
    """A workflow_run attempt as `/actions/runs/{id}/attempts/{n}` returns it, minus repositories."""
    runs = f"{_API}/repos/{repo}/actions/runs/{run_id}"
    title = commit["message"].split("\n", 1)[0] if event == "push" else workflow.name
    return {
        "id": run_id, "name": workflow.name, "node_id": _node("WFR_kwLOKp", _REPO_ID, run_id),
        "head_branch": "main", "head_sha": commit["id"], "path": workflow.path,
        "display_title": title, "run_number": run_number, "event": event, "status": status,
        "conclusion": conclusion, "workflow_id": workflow.id, "check_suite_id": check_suite_id,
        "check_suite_node_id": _node("CS_kwDOKp", check_suite_id), "url": runs,
        "html_url": f"{_WEB}/{repo}/actions/runs/{run_id}", "pull_requests": [],
        "created_at": created_at, "updated_at": updated_at, "actor": actor,
        "run_attempt": attempt, "referenced_workflows": [], "run_started_at": run_started_at,
        "triggering_actor": triggering_actor, "jobs_url": f"{runs}/jobs",
        "logs_url": f"{runs}/attempts/{attempt}/logs",
        "check_suite_url": f"{_API}/repos/{repo}/check-suites/{check_suite_id}",
        "artifacts_url": f"{runs}/artifacts", "cancel_url": f"{runs}/cancel",
        "rerun_url": f"{runs}/rerun",
        "previous_attempt_url": f"{runs}/attempts/{attempt - 1}" if attempt > 1 else None,
        "workflow_url": f"{_API}/repos/{repo}/actions/workflows/{workflow.id}",
        "head_commit": commit,
    }  # fmt: skip


def _commit_object(c: _Commit) -> dict[str, Any]:
    author = {"name": c.author[2], "email": f"{c.author[1]}+{c.author[0]}@users.noreply.github.com"}
    committer = {"name": "GitHub", "email": "noreply@github.com"} if c.squashed else author
    return {"id": c.sha, "tree_id": c.tree, "message": c.message, "timestamp": _z(c.at),
            "author": author, "committer": committer}  # fmt: skip


def _step_object(s: _Step) -> dict[str, Any]:
    return {"name": s.name, "status": s.status, "conclusion": s.conclusion, "number": s.number,
            "started_at": _zms(s.started_at), "completed_at": _zms(s.completed_at)}  # fmt: skip


def _job_object(repo: str, run_id: int, workflow: str, sha: str, attempt: int, job: _Job
                ) -> dict[str, Any]:  # fmt: skip
    if job.copied:
        runner: tuple[Any, ...] = (0, "", 0, "")
    elif job.role == "hosted":
        runner = (job.runner_no, f"GitHub Actions {job.runner_no}", 2, "GitHub Actions")
    elif job.role in _ROLES:
        runner = (_ROLES[job.role][0], _ROLES[job.role][1], 3, "production")
    else:
        runner = (None, None, None, None)
    return {
        "id": job.id, "run_id": run_id, "workflow_name": workflow, "head_branch": "main",
        "run_url": f"{_API}/repos/{repo}/actions/runs/{run_id}", "run_attempt": attempt,
        "node_id": _node("CR_kwDOKp", job.id), "head_sha": sha,
        "url": f"{_API}/repos/{repo}/actions/jobs/{job.id}",
        "html_url": f"{_WEB}/{repo}/actions/runs/{run_id}/job/{job.id}",
        "status": "completed" if job.conclusion else "in_progress", "conclusion": job.conclusion,
        "created_at": _z(job.created_at), "started_at": _z(job.started_at),
        "completed_at": _z(job.completed_at), "name": job.name,
        "steps": [_step_object(s) for s in job.steps],
        "check_run_url": f"{_API}/repos/{repo}/check-runs/{job.id}", "labels": job.labels,
        "runner_id": runner[0], "runner_name": runner[1], "runner_group_id": runner[2],
        "runner_group_name": runner[3],
    }  # fmt: skip


def _deployment_objects(d: _Deployment, run: _Run, attempt: _Attempt
                        ) -> tuple[dict[str, Any], list[dict[str, Any]]]:  # fmt: skip
    base = f"{_API}/repos/{REPO}/deployments/{d.id}"
    log_url = f"{_WEB}/{REPO}/actions/runs/{run.id}/job/{d.job.id}"
    deployment = {
        "url": base, "id": d.id, "node_id": _node("DE_kwDOKp", d.id), "sha": d.sha,
        "ref": "main", "task": "deploy", "payload": {}, "original_environment": ENVIRONMENT,
        "environment": ENVIRONMENT, "description": None, "creator": _ACTIONS_BOT,
        "created_at": _z(d.created_at), "updated_at": _z(d.statuses[-1][1]),
        "statuses_url": f"{base}/statuses", "repository_url": f"{_API}/repos/{REPO}",
        "transient_environment": False, "production_environment": True,
        "performed_via_github_app": _ACTIONS_APP,
    }  # fmt: skip
    statuses = [{
        "url": f"{base}/statuses/{sid}", "id": sid, "node_id": _node("DES_kwDOKp", sid),
        "state": state, "creator": _ACTIONS_BOT, "description": "", "environment": ENVIRONMENT,
        "target_url": log_url, "created_at": _z(at), "updated_at": _z(at),
        "deployment_url": base, "repository_url": f"{_API}/repos/{REPO}",
        "environment_url": "https://platform.acme.example" if state == "success" else "",
        "log_url": log_url, "performed_via_github_app": _ACTIONS_APP,
    } for (state, at), sid in zip(d.statuses, d.status_ids, strict=True)]  # fmt: skip
    return deployment, statuses


def _workflow_object(w: _Workflow) -> dict[str, Any]:
    return {
        "id": w.id, "node_id": _node("W_kwDOKp", w.id), "name": w.name, "path": w.path,
        "state": "active", "created_at": w.created_at, "updated_at": w.created_at,
        "url": f"{_API}/repos/{REPO}/actions/workflows/{w.id}",
        "html_url": f"{_WEB}/{REPO}/blob/main/{w.path}",
        "badge_url": f"{_WEB}/{REPO}/workflows/{w.name.replace(' ', '%20')}/badge.svg",
    }  # fmt: skip


def _assign_ids(items: list[Any], times: list[datetime], spec: tuple[int, int], rng: Random
                ) -> list[int]:  # fmt: skip
    """Ids that grow with time like GitHub's global counters (strictly increasing)."""
    order = sorted(range(len(items)), key=lambda i: times[i])
    ids, last = [0] * len(items), 0
    for i in order:
        seconds = (times[i] - _ID_EPOCH).total_seconds()
        last = max(last + 1, 1_000_000, spec[0] + int(seconds * spec[1]) + rng.randrange(spec[1]))
        ids[i] = last
    return ids


def _number(world: _World) -> list[_Attempt]:
    rng, runs = world.rng, world.runs
    for run, rid, sid in zip(runs, _assign_ids(runs, [r.created_at for r in runs], _RUN_IDS, rng),
                             _assign_ids(runs, [r.created_at for r in runs], _SUITE_IDS, rng),
                             strict=True):  # fmt: skip
        run.id, run.check_suite_id = rid, sid
    counters: dict[int, Iterator[int]] = {}
    for run in sorted(runs, key=lambda r: r.id):
        run.number = next(counters.setdefault(run.workflow.id, itertools.count(412)))
    attempts = [a for r in runs for a in r.attempts]
    jobs = [j for a in attempts for j in a.jobs]
    for job, jid in zip(jobs, _assign_ids(jobs, [j.created_at for j in jobs], _JOB_IDS, rng),
                        strict=True):  # fmt: skip
        job.id = jid
    deps = world.deployments
    for d, did in zip(deps, _assign_ids(deps, [d.created_at for d in deps], _DEPLOYMENT_IDS, rng),
                      strict=True):  # fmt: skip
        d.id = did
    pairs = [(d, at) for d in deps for _, at in d.statuses]
    ids = iter(_assign_ids(pairs, [at for _, at in pairs], _STATUS_IDS, rng))
    for d in deps:
        d.status_ids = [next(ids) for _ in d.statuses]
    return sorted(attempts, key=lambda a: (a.run.id, a.number))


def _mark_episodes(attempts: list[_Attempt]) -> None:
    """DESIGN §5 failure episodes over counted attempts, ended by a success or a rollback run."""
    counted = sorted((a for a in attempts if a.outcome in ("success", "failure", "rolled_back")
                      and a.run.workflow is DEPLOY_WORKFLOW),
                     key=lambda a: (a.completed_at, a.run.id, a.number))  # fmt: skip
    rollbacks = [a for a in attempts if a.outcome == "rollback_run" and a.conclusion == "success"]
    episode, members, previous_ok = 0, [], True
    for attempt in [*counted, None]:
        if attempt is not None and attempt.outcome != "success":
            if previous_ok:
                episode, members = episode + 1, []
            if members or previous_ok:
                attempt.episode = episode
                members.append(attempt)
            previous_ok = False
            continue
        if members:
            answering = [r for r in rollbacks if any(r.answers is m for m in members)]
            for r in answering:
                r.episode = episode
            first_rollback = min((r.completed_at for r in answering), default=None)
            if attempt is not None and (first_rollback is None
                                        or attempt.completed_at <= first_rollback):  # fmt: skip
                attempt.episode = episode
        members, previous_ok = [], True


def _ledger_row(a: _Attempt, boundary: datetime) -> dict[str, Any]:
    rollback = a.run.workflow is ROLLBACK_WORKFLOW
    job = a.deploy
    started = a.run_started_at if rollback else job.started_at if job else None
    completed = a.updated_at if rollback else job.completed_at if job else None
    return {
        "repo": REPO, "workflow": "rollback" if rollback else "deploy", "run_id": a.run.id,
        "run_attempt": a.number, "outcome": a.outcome, "deploy_started_at": _z(started),
        "deploy_completed_at": _z(completed), "runner_role": job.role if job else None,
        "rollback_kind": a.rollback_kind, "answers_run_id": a.answers.run.id if a.answers else None,
        "answers_run_attempt": a.answers.number if a.answers else None, "episode": a.episode,
        "sha": a.sha, "drill": a.behaviour == "drill",
        "segment": "baseline" if a.started_at < boundary else "improved",
        "scenario": a.run.plan.scenario, "conclusion": a.conclusion,
        "in_environment": a.deployment is not None,
    }  # fmt: skip


def _users() -> dict[tuple[str, int, str], dict[str, Any]]:
    return {member: _user(member[0], member[1]) for member in _TEAM}


def simulate(*, seed: int = 7, end: datetime | None = None, baseline_weeks: int = 4,
             improved_weeks: int = 6, deploys_per_day: float = 8.0) -> Simulation:  # fmt: skip
    """Simulate the deployment history of `acme/platform` up to `end` (exclusive, UTC).

    `end` defaults to Monday 00:00 UTC of the current ISO week. The baseline segment covers the
    first `baseline_weeks`, the improved period the rest. Same seed and end: identical output.
    """
    end = _default_end(end)
    if min(baseline_weeks, improved_weeks) < 0 or baseline_weeks + improved_weeks < 2:
        raise ValueError("baseline_weeks and improved_weeks must be >= 0 and total at least 2")
    if deploys_per_day <= 0:
        raise ValueError(f"deploys_per_day must be positive, got {deploys_per_day}")
    start = end - timedelta(weeks=baseline_weeks + improved_weeks)
    boundary = start + timedelta(weeks=baseline_weeks)
    world = _World(Random(seed), start=start, boundary=boundary, end=end)
    world.schedule(deploys_per_day)
    world.play()
    attempts = _number(world)
    _mark_episodes(attempts)
    users = _users()
    runs, jobs = [], []
    for a in attempts:
        run = a.run
        if a.updated_at is None:  # still waiting when the data was fetched
            a.updated_at = max(j.started_at for j in a.jobs) if a.jobs else a.run_started_at
        runs.append(_run_object(
            REPO, run.workflow, run_id=run.id, run_number=run.number, attempt=a.number,
            event=run.event, status=a.status, conclusion=a.conclusion,
            commit=_commit_object(run.commit), created_at=_z(run.created_at) or "",
            run_started_at=_z(a.run_started_at) or "", updated_at=_z(a.updated_at) or "",
            actor=users[run.actor], triggering_actor=users[a.actor],
            check_suite_id=run.check_suite_id,
        ) | {"repository": _ACME_REPO, "head_repository": _ACME_REPO})  # fmt: skip
        jobs.extend(_job_object(REPO, run.id, run.workflow.name, run.commit.sha, a.number, j)
                    for j in sorted(a.jobs, key=lambda j: j.id))  # fmt: skip
    deployments, statuses = [], []
    owners = {id(a.deployment): a for a in attempts if a.deployment is not None}
    for d in sorted(world.deployments, key=lambda d: d.id):
        owner = owners[id(d)]
        deployment, its_statuses = _deployment_objects(d, owner.run, owner)
        deployments.append(deployment)
        statuses.extend(its_statuses)
    statuses.sort(key=lambda s: s["id"])
    workflows = [_workflow_object(w) for w in (_CI_WORKFLOW, DEPLOY_WORKFLOW, ROLLBACK_WORKFLOW)]
    ledger = [_ledger_row(a, boundary) for a in attempts]
    return Simulation(runs, jobs, deployments, statuses, workflows, ledger)


# ----- files -----------------------------------------------------------------------------------
def _write(path: Path, chunks: Iterable[bytes], *, gz: bool) -> Path:
    with path.open("wb") as raw:
        if gz:  # mtime=0 and no file name: the same input gives the same bytes
            with gzip_module.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as packed:
                for chunk in chunks:
                    packed.write(chunk)
        else:
            for chunk in chunks:
                raw.write(chunk)
    return path


def _lines(rows: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    for row in rows:
        yield orjson.dumps(row) + b"\n"


def write_dumps(sim: Simulation, folder: Path, *, gzip: bool = False) -> dict[str, Path]:
    """Write the simulation as JSONL (one API object per line) and a workflows page.

    Returns paths by name: runs, jobs, deployments, deployment_statuses (`<name>.jsonl`),
    workflows (`workflows.json`, a `{total_count, workflows}` page) and ledger (`ledger.jsonl`);
    `gzip=True` compresses every file and appends `.gz`.
    """
    folder.mkdir(parents=True, exist_ok=True)
    gz = ".gz" if gzip else ""
    out = {
        name: _write(folder / f"{name}.jsonl{gz}", _lines(rows), gz=gzip)
        for name, rows in (("runs", sim.runs), ("jobs", sim.jobs),
                           ("deployments", sim.deployments),
                           ("deployment_statuses", sim.deployment_statuses),
                           ("ledger", sim.ledger))
    }  # fmt: skip
    page = orjson.dumps({"total_count": len(sim.workflows), "workflows": sim.workflows})
    out["workflows"] = _write(folder / f"workflows.json{gz}", [page], gz=gzip)
    return out


# ----- bulk dumps for benchmarks ------------------------------------------------------------------
_BULK_WORKFLOWS = (("Deploy production", "deploy-production.yml"), ("CI", "ci.yml"),
                   ("Deploy staging", "deploy-staging.yml"))  # fmt: skip


def _bulk_repos(count: int) -> list[tuple[str, bytes, list[_Workflow]]]:
    """(full name, the serialised repository/head_repository tail of a run line, workflows)."""
    repos = []
    for i in range(count):
        name = REPO if i == 0 else f"acme/service-{i:03d}"
        repo = (
            _ACME_REPO
            if i == 0
            else _repository(
                name,
                _REPO_ID + 7919 * i,
                f"Service {i:03d} of the Acme platform: code, Helm chart "
                "and deployment workflows. Owned by the team in CODEOWNERS; runbook in docs/.",
            )
        )
        packed = orjson.dumps(repo)
        tail = b',"repository":' + packed + b',"head_repository":' + packed + b"}\n"
        workflows = [_Workflow(161335 + 10 * i + k, wname, f".github/workflows/{path}",
                               "2025-02-11T09:41:07Z")
                     for k, (wname, path) in enumerate(_BULK_WORKFLOWS[: 1 + i % 3])]  # fmt: skip
        repos.append((name, tail, workflows))
    return repos


def _bulk_jobs(rng: Random, started: datetime, conclusion: str) -> list[_Job]:
    """A build job on a hosted runner, then a deploy job on the primary runner."""
    r = rng.randint
    build_steps = _steps(started + timedelta(seconds=r(2, 15)), [
        ("Set up job", r(1, 3), "success"), ("Run actions/checkout@v4", r(2, 6), "success"),
        ("Build and push image", r(85, 200), "success"),
        ("Post Run actions/checkout@v4", r(0, 1), "success"), ("Complete job", r(0, 1), "success"),
    ])  # fmt: skip
    built = build_steps[-1].completed_at or started
    build = _Job(
        "build",
        started + timedelta(seconds=r(1, 3)),
        build_steps[0].started_at or started,
        built,
        "success",
        ["ubuntu-latest"],
        "hosted",
        build_steps,
        runner_no=r(1, 600),
    )
    created = built + timedelta(seconds=r(1, 4))
    deploy_c = "success" if conclusion == "success" else "failure"
    deploy_steps = _steps(created + timedelta(seconds=r(2, 20)), [
        ("Set up job", r(1, 3), "success"), ("Run actions/checkout@v4", r(2, 5), "success"),
        ("Deploy to production", r(150, 600), deploy_c), ("Smoke test", r(20, 55), "success"
         if deploy_c == "success" else "skipped"), ("Complete job", r(0, 1), "success"),
    ])  # fmt: skip
    deploy = _Job("deploy", created, deploy_steps[0].started_at or created,
                  deploy_steps[-1].completed_at, deploy_c,
                  ["self-hosted", "linux", "prod-primary"], "primary", deploy_steps)  # fmt: skip
    return [build, deploy]


def write_bulk_dumps(folder: Path, *, runs: int, seed: int = 7, end: datetime | None = None
                     ) -> dict[str, Path]:  # fmt: skip
    """Stream `runs` real-sized workflow-run attempts and their jobs to runs.jsonl and jobs.jsonl.

    For benchmarks: the runs spread over the ten weeks before `end` in time order, over one
    repository per ~1,000 runs with 1-3 workflows each (so per-workflow listings stay realistic);
    ~3 % of failed runs get a second attempt (a partial re-run with a copied build job). Nothing is
    held in memory and no ledger is written. Returns {"runs": path, "jobs": path}.
    """
    if runs < 0:
        raise ValueError(f"runs must be >= 0, got {runs}")
    end, rng = _default_end(end), Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    repos = _bulk_repos(max(1, min(250, runs // 1000)))
    users = [orjson.Fragment(orjson.dumps(_user(m[0], m[1]))) for m in _TEAM]
    start = end - timedelta(weeks=10)
    step = (end - start).total_seconds() / max(runs, 1)
    numbers: dict[int, int] = {}
    paths = {"runs": folder / "runs.jsonl", "jobs": folder / "jobs.jsonl"}
    run_id = job_id = written = 0
    with paths["runs"].open("wb") as run_out, paths["jobs"].open("wb") as job_out:
        while written < runs:
            t = start + timedelta(seconds=int(written * step + rng.random() * step / 2))
            name, tail, workflows = rng.choice(repos)
            workflow = rng.choice(workflows)
            run_id = max(run_id + 1, _RUN_IDS[0] + int((t - _ID_EPOCH).total_seconds() * 60))
            numbers[workflow.id] = number = numbers.get(workflow.id, 411) + 1
            commit = _Commit(f"{rng.getrandbits(160):040x}", f"{rng.getrandbits(160):040x}",
                             _message(rng, 3000 + number), t - timedelta(seconds=rng.randint(5, 9000)),
                             rng.choice(_TEAM), True)  # fmt: skip
            roll = rng.random()
            conclusion = "success" if roll < 0.9 else "failure" if roll < 0.97 else "cancelled"
            attempts = 2 if conclusion == "failure" and rng.random() < 0.3 else 1
            jobs = _bulk_jobs(rng, t, conclusion)
            for attempt in range(1, min(attempts, runs - written) + 1):
                started = t if attempt == 1 else (jobs[-1].completed_at or t) + timedelta(hours=1)
                if attempt == 2:
                    retried = _bulk_jobs(rng, started, "success")[1]
                    jobs = [_Job("build", started + timedelta(seconds=2), jobs[0].started_at,
                                 jobs[0].completed_at, "success", jobs[0].labels, None,
                                 jobs[0].steps, copied=True), retried]  # fmt: skip
                    conclusion = "success"
                for job in jobs:
                    job_id = max(
                        job_id + 1,
                        _JOB_IDS[0] + int((job.created_at - _ID_EPOCH).total_seconds() * 150),
                    )
                    job.id = job_id
                    job_out.write(orjson.dumps(_job_object(name, run_id, workflow.name, commit.sha,
                                                           attempt, job)) + b"\n")  # fmt: skip
                done = max(j.completed_at or started for j in jobs)
                run = _run_object(
                    name, workflow, run_id=run_id, run_number=number, attempt=attempt,
                    event="push", status="completed", conclusion=conclusion,
                    commit=_commit_object(commit), created_at=_z(t) or "",
                    run_started_at=_z(started) or "", updated_at=_z(done) or "",
                    actor=users[0], triggering_actor=users[attempt % len(users)],
                    check_suite_id=_SUITE_IDS[0] + run_id % 1_000_000_000,
                )  # fmt: skip
                run_out.write(orjson.dumps(run)[:-1] + tail)
                written += 1
    return paths
