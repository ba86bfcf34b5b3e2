"""Seeded generator of realistic GitHub Actions deployment history and its ground-truth ledger.

`simulate()` plays out the production pipeline of an SRE team (repo `acme/platform`, workflows
`Deploy production` and `Rollback production`, self-hosted deploy runners) over a baseline
segment (success ~85 %, deploy p95 above 15 min) and an improved period (success ~97.5 %, p95
~7 min) ending at `end`. It returns GitHub-API-shaped objects: every workflow-run attempt, the
jobs of every attempt (copied jobs of partial re-runs included), the deployments in environment
`production` with their statuses, and the workflows listing. A small discrete-event simulation of
the deploy job's concurrency group decides what really happened (pending waits, superseded runs,
runner outages and failover), and every edge case of DESIGN §5 occurs at least once.

The ledger has one row per attempt of the deploy and rollback workflows, with keys:

- `repo`, `workflow` (`"deploy"` | `"rollback"`), `run_id`, `run_attempt`.
- `outcome`: the DESIGN §5 class the attempt gets under `DEMO_TARGET` (deploy jobs `deploy*`,
  rollback steps `rollback*`/`*rescue*`, `cancelled: ignore`, `rolled_back: failure`, the drill
  runs excluded): excluded, not_deployed, superseded, rolled_back, success, failure, aborted or
  not_counted; `"rollback_run"` for runs of the rollback workflow.
- `deploy_started_at`, `deploy_completed_at`: ISO times of the executed deploy job (null when
  none ran; completed null while it runs); for rollback rows the run's `run_started_at` and
  `updated_at`.
- `runner_role`: `"primary"` | `"secondary"` | null, the runner of that job.
- `rollback_kind`: null | `"step"` (the rescue step ran: signal b) | `"workflow"` (a rollback
  run: signal a) | `"redeploy"` (a dispatch of an older version: signal c).
- `answers_run_id`, `answers_run_attempt`: the change a rollback answers (itself for `"step"`).
- `episode`: id (1, 2, ...) of the failure episode the row opens, continues or ends (the
  restoring success, or a successful rollback run answering one of its attempts); else null.
- `sha`: the deployed version (rollback rows: the version rolled back to).
- `drill` (bool); `segment`: `"baseline"` | `"improved"`, by the attempt's start.
- `scenario`: what produced the row (`routine`, `burst`, `outage`, `rerun_partial`, ...).
- `conclusion`: the attempt's run conclusion; `in_environment`: a deployment in `production`
  links to the attempt (superseded, not_deployed and job-less attempts have none).

Only `random.Random(seed)` is used, and ids grow with time: same seed and `end`, same bytes.
"""

from __future__ import annotations

import base64
import functools
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
# (value at _ID_EPOCH, growth per second) of GitHub's global id counters, roughly.
_RUN_IDS, _JOB_IDS, _SUITE_IDS = (17_500_000_000, 60), (51_000_000_000, 150), (44_000_000_000, 130)
_DEPLOYMENT_IDS, _STATUS_IDS = (3_100_000_000, 8), (33_000_000_000, 20)
_ID_GAP = 1024  # ids differ by at least this much, so bulk copies can add a repo index < 1024
_ROLES = {"primary": (41, PRIMARY_RUNNER), "secondary": (42, SECONDARY_RUNNER)}
_FAILING = ("fail", "rescue_red", "rescue_green", "drill", "abort", "notify_fail")
_JOBLESS = ("startup_failure", "stale", "action_required")
_RESULT = {  # behaviour -> (run conclusion, ledger outcome)
    "ok": ("success", "success"), "fail": ("failure", "failure"),
    "no_runner": ("failure", "failure"), "notify_fail": ("failure", "failure"),
    "rescue_red": ("failure", "rolled_back"), "rescue_green": ("success", "rolled_back"),
    "drill": ("failure", "excluded"), "abort": ("cancelled", "aborted"),
    "superseded": ("cancelled", "superseded"), "skip": ("success", "not_deployed"),
    "copied": ("success", "not_deployed"), "startup_failure": ("startup_failure", "failure"),
    "stale": ("stale", "not_counted"), "action_required": ("action_required", "not_counted"),
}  # fmt: skip
_DEPLOY_RESULTS = {  # behaviour -> conclusions of the deploy, smoke test and rollback steps,
    # the deploy step's share of its planned time, and the job's conclusion
    "ok": ("success", "success", "skipped", 1.0, "success"),
    "notify_fail": ("success", "success", "skipped", 1.0, "success"),
    "fail": ("failure", "skipped", "skipped", 0.55, "failure"),
    "rescue_red": ("success", "failure", "success", 1.0, "failure"),
    "rescue_green": ("failure", "skipped", "success", 0.7, "success"),  # continue-on-error
    "drill": ("failure", "skipped", "success", 0.4, "failure"),
    "abort": ("cancelled", "skipped", "skipped", 0.5, "cancelled"),
}  # fmt: skip
_LAYOUTS = {  # job -> steps as (name, min seconds, max seconds)
    "build": [("Set up job", 1, 3), ("Run actions/checkout@v4", 2, 6),
              ("Set up Docker Buildx", 3, 7), ("Build and push image", 85, 200),
              ("Detect changed paths", 2, 4), ("Post Run actions/checkout@v4", 0, 1),
              ("Complete job", 0, 1)],
    "deploy": [("Set up job", 1, 3), ("Run actions/checkout@v4", 2, 5),
               ("Log in to registry", 1, 3), ("Deploy to production", 0, 0),
               ("Smoke test", 20, 55), ("Rollback on failure", 45, 140),
               ("Post Run actions/checkout@v4", 0, 1), ("Complete job", 0, 1)],
    "notify": [("Set up job", 1, 2), ("Notify Slack", 2, 9), ("Complete job", 0, 1)],
    "rollback": [("Set up job", 1, 3), ("Run actions/checkout@v4", 2, 5),
                 ("Resolve previous release", 2, 6), ("Roll back to previous release", 70, 190),
                 ("Smoke test", 20, 45), ("Complete job", 0, 1)],
}  # fmt: skip


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
    161336,
    "Rollback production",
    ".github/workflows/rollback-production.yml",
    "2025-02-11T09:41:07Z",
)
_CI_WORKFLOW = _Workflow(161334, "CI", ".github/workflows/ci.yml", "2024-09-30T14:02:51Z")

DEMO_TARGET: dict[str, Any] = {
    "name": "production", "repos": [REPO], "workflows": ["deploy-production.yml"],
    "branches": ["main"], "deploy_jobs": ["deploy*"],
    "rollback_workflows": ["rollback-production.yml"], "rollback_steps": ["rollback*", "*rescue*"],
    "runners": {"primary": {"names": [PRIMARY_RUNNER], "labels": ["prod-primary"]},
                "secondary": {"labels": ["prod-secondary"]}},
    "cancelled": "ignore", "rolled_back": "failure", "cfr_window": "24h",
}  # fmt: skip
"""The target the ledger outcomes assume; add `exclude` with the run ids of the drill rows."""


DEMO_PROMETHEUS: dict[str, Any] = {
    "url": "http://127.0.0.1:9090",  # the demo imports saved responses: nothing is fetched
    "queries": {
        "runner_up": {"expr": 'up{job="github-runner"}', "kind": "availability", "step": "60s"},
        "deploy_alerts": {"expr": 'ALERTS{alertstate="firing",severity="page"}',
                          "kind": "alerts", "step": "60s", "group_by": ["alertname"]},
    },
}  # fmt: skip
"""The demo's Prometheus queries; simulate_prom writes their saved responses."""


def demo_config(sim: Simulation) -> dict[str, Any]:
    """deploystats.yml for the simulated team: the demo target with its drill excluded and
    its alerts, the Prometheus queries of the demo, and the SLOs of the seed's status
    documents."""
    drills = sorted({row["run_id"] for row in sim.ledger if row["drill"]})
    target = {**DEMO_TARGET, "team": "sre", "service": "platform",
              "exclude": [{"runs": drills, "reason": "rollback drill"}],
              "alerts_query": "deploy_alerts",
              "alerts_match_labels": {"service": "platform"}}  # fmt: skip
    slo = {"target": "production"}
    return {
        "timezone": "UTC",
        "github": {"repos": [REPO]},
        "targets": [target],
        "prometheus": DEMO_PROMETHEUS,
        "slos": [
            {
                **slo,
                "name": "deploy-success",
                "metric": "success_rate",
                "op": ">=",
                "objective": 0.95,
                "window": "28d",
            },
            {
                **slo,
                "name": "deploy-p95",
                "metric": "duration_p95_s",
                "op": "<=",
                "objective": 600,
                "window": "week",
            },
            {
                **slo,
                "name": "deploy-fast",
                "metric": "fast_share",
                "threshold_s": 600,
                "op": ">=",
                "objective": 0.95,
                "window": "28d",
            },
            {
                "name": "runner-availability",
                "metric": "availability",
                "target": "runner_up",
                "aggregate": "min",
                "min_coverage": 0.99,
                "op": ">=",
                "objective": 0.995,
                "window": "week",
            },
        ],
    }


def demo_epic(sim: Simulation, *, until: datetime | None = None) -> dict[str, Any]:
    """The epic file of the seed's closure summary (INFRA-472) over the simulated history:
    the baseline segment as `baseline`, the improved period (cut at `until`) as the epic."""
    assert sim.start is not None and sim.boundary is not None and sim.end is not None
    end = min(until or sim.end, sim.end)
    return {
        "key": "INFRA-472",
        "title": "Reliable production deployments",
        "target": "production",
        "baseline": {"from": sim.start.date().isoformat(), "to": sim.boundary.date().isoformat()},
        "period": {"from": sim.boundary.date().isoformat(), "to": end.date().isoformat()},
        "success_criteria": [
            {
                "id": "SC-001",
                "name": "Deployment success rate",
                "metric": "success_rate",
                "op": ">=",
                "objective": 0.95,
                "window": "epic",
            },
            {
                "id": "SC-002",
                "name": "p95 deployment duration",
                "metric": "duration_p95_s",
                "op": "<=",
                "objective": 600,
                "window": "epic",
            },
            {
                "id": "SC-003",
                "name": "Diagnostic speed (median time to detect a failed deploy)",
                "metric": "detect_p50_s",
                "op": "<=",
                "objective": 300,
                "window": "epic",
                "min_events": 5,
                "note": "A p95 is not estimable from the handful of failures an improved period "
                "has (it needs 20), so the criterion is the median with at least 5.",
            },
            {
                "id": "SC-004",
                "name": "Secret leakage in logs and reports: zero",
                "manual": True,
                "status": "met",
                "evidence_url": "https://jira.example.com/browse/INFRA-481",
            },
        ],
        "stories": [
            {
                "id": "US-1",
                "title": "Deploys fail over to the secondary runner",
                "description": "As an on-call engineer I want a deploy to move to the "
                "pre-approved secondary runner when the primary is down.",
                "acceptance": [
                    "A deploy started while the primary is offline completes on the secondary",
                    "Failover share is visible in the weekly report",
                ],
                "criteria": ["SC-001"],
            },
            {
                "id": "US-2",
                "title": "Faster deploy pipeline",
                "description": "As a developer I want production deploys to finish within ten "
                "minutes.",
                "acceptance": ["p95 deploy duration <= 10 min over the epic period"],
                "criteria": ["SC-002"],
            },
            {
                "id": "US-3",
                "title": "Failed deploys are detected by alerts",
                "description": "As an SRE I want an alert within five minutes of a failed deploy.",
                "acceptance": ["Median time to detect <= 5 min with at least 5 failures"],
                "criteria": ["SC-003"],
            },
            {
                "id": "US-4",
                "title": "No secrets in logs",
                "description": "As a security officer I want no token in any log or report.",
                "acceptance": ["Log and report scan finds no secret (manual review)"],
                "criteria": ["SC-004"],
            },
        ],
        "sign_off": [
            {"role": "Engineering manager", "name": None, "date": None},
            {"role": "SRE lead", "name": None, "date": None},
        ],
    }


_TEAM = (
    ("noor-haddad", 48213377, "Noor Haddad"), ("pkowalczyk", 31877120, "Piotr Kowalczyk"),
    ("lena-fischer", 52290418, "Lena Fischer"), ("dmitri-volkov", 27784301, "Dmitri Volkov"),
    ("aoife-byrne", 60118243, "Aoife Byrne"), ("sam-okoro", 44570932, "Sam Okoro"),
)  # fmt: skip
_AREAS = ("api", "billing", "auth", "ingress", "helm", "db", "worker", "search", "ci", "infra")
_VERBS = ("add", "fix", "bump", "tune", "remove", "rework", "retry", "cache", "split", "guard")
_THINGS = (
    "connection pool limits", "readiness probe timeout", "rate limiter for webhooks",
    "nginx upstream keepalive", "pgbouncer settings", "feature flag for new checkout",
    "grafana dashboard links", "retry on 503 from payments", "stale cache keys",
    "memory requests for workers", "TLS cipher list", "migration for invoice index",
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


@functools.lru_cache(maxsize=1 << 16)  # bulk dumps format each template time once
def _z(t: datetime | None) -> str | None:
    return None if t is None else t.strftime("%Y-%m-%dT%H:%M:%SZ")


@functools.lru_cache(maxsize=1 << 16)
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
    packed = struct.pack(f">{len(numbers)}Q", *numbers)
    return prefix + base64.b64encode(packed).decode().rstrip("=")


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


_REPO_URLS = [  # the *_url fields of a minimal repository, as "key:path" below /repos/{full_name}
    "forks", "keys:keys{/key_id}", "collaborators:collaborators{/collaborator}", "teams",
    "hooks", "issue_events:issues/events{/number}", "events", "assignees:assignees{/user}",
    "branches:branches{/branch}", "tags", "blobs:git/blobs{/sha}", "git_tags:git/tags{/sha}",
    "git_refs:git/refs{/sha}", "trees:git/trees{/sha}", "statuses:statuses/{sha}", "languages",
    "stargazers", "contributors", "subscribers", "subscription", "commits:commits{/sha}",
    "git_commits:git/commits{/sha}", "comments:comments{/number}",
    "issue_comment:issues/comments{/number}", "contents:contents/{+path}",
    "compare:compare/{base}...{head}", "merges", "archive:{archive_format}{/ref}", "downloads",
    "issues:issues{/number}", "pulls:pulls{/number}", "milestones:milestones{/number}",
    "notifications:notifications{?since,all,participating}", "labels:labels{/name}",
    "releases:releases{/id}", "deployments",
]  # fmt: skip


def _repository(full_name: str, repo_id: int, description: str) -> dict[str, Any]:
    owner, name = full_name.split("/")
    u = f"{_API}/repos/{full_name}"
    repo = {
        "id": repo_id, "node_id": _node("R_kgDO", repo_id), "name": name, "full_name": full_name,
        "private": True, "owner": _user(owner, _ORG_ID, "Organization"),
        "html_url": f"{_WEB}/{full_name}", "description": description, "fork": False, "url": u,
    }  # fmt: skip
    for token in _REPO_URLS:
        key, _, path = token.partition(":")
        repo[f"{key}_url"] = f"{u}/{path or key}"
    return repo


_ACME_REPO = _repository(
    REPO,
    _REPO_ID,
    "Acme platform: API, billing and worker services, their Helm charts, Terraform for the "
    "production clusters and the deployment pipeline. Owned by SRE (#sre, on-call rota in "
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
                    "deployments": "write", "metadata": "read", "statuses": "write"},
    "events": ["check_run", "check_suite", "deployment", "deployment_status", "push",
               "workflow_dispatch", "workflow_run"],
}  # fmt: skip


# ----- what the simulation fills in; ids are assigned afterwards, in time order ---------------
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
    job: _Job
    statuses: list[tuple[str, datetime]]
    id: int = 0
    status_ids: list[int] = field(default_factory=list)


@dataclass
class _Plan:
    """What a push or dispatch intends; the timeline decides what happens."""

    behaviour: str = "ok"
    scenario: str = "routine"
    event: str = "push"
    reruns: list[tuple[float, str, str]] = field(default_factory=list)  # (delay_s, mode, behaviour)
    follow: str | None = None  # "rollback" | "redeploy": answer this deploy once it completed
    hold: bool = False  # hold the concurrency group from deploy start until the answer is done
    bypass: bool = False  # ignore a hold (the answer itself)
    deploy_s: float | None = None
    commit: _Commit | None = None
    skew_s: float = 0.0  # commit timestamp this far after the push (a wrong laptop clock)
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
    deploy: _Job | None = None  # the executed deploy (or rollback) job
    deployment: _Deployment | None = None
    rollback_kind: str | None = None
    answers: _Attempt | None = None
    episode: int | None = None

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
    # [start, boundary) is the baseline segment, [boundary, end) the improved period
    start: datetime | None = None
    boundary: datetime | None = None
    end: datetime | None = None  # where the history ends (exclusive)
    # the primary runner's outage: (down from, deploys on the secondary from, up again at)
    runner_outage: tuple[datetime, datetime, datetime] | None = None


def _message(rng: Random, pr_number: int) -> str:
    """A squash-merge commit message: title, the PR template's sections, the squashed commits."""
    title = f"{rng.choice(('fix', 'feat', 'chore', 'perf'))}({rng.choice(_AREAS)}): "
    title += f"{rng.choice(_VERBS)} {rng.choice(_THINGS)} (#{pr_number})"
    summary = " ".join(rng.sample(_SENTENCES, rng.randint(8, 12)))
    why = " ".join(rng.sample(_SENTENCES, rng.randint(2, 4)))
    tests = "".join(
        f"\nok   github.com/acme/platform/internal/{area}\t{rng.uniform(0.5, 40):.3f}s"
        for area in rng.sample(_AREAS, rng.randint(6, 10))
    )
    limit = rng.choice((256, 512, 768, 1024))
    checks = "".join(
        f"\n- [{'x' if rng.random() < 0.8 else ' '}] {line}"
        for line in rng.sample(_SENTENCES, rng.randint(3, 6))
    )
    commits = "".join(
        f"\n\n* {rng.choice(_VERBS)} {rng.choice(_THINGS)}" for _ in range(rng.randint(4, 16))
    )
    name, uid, full = rng.choice(_TEAM)
    coauthor = f"\n\nCo-authored-by: {full} <{uid}+{name}@users.noreply.github.com>"
    return (
        f"{title}\n\n## Summary\n\n{summary}\n\n## Why\n\n{why} Ticket: INFRA-"
        f"{rng.randint(300, 990)}\n\n## Testing\n\n```\n$ make test-integration{tests}\n"
        f"$ helm diff upgrade platform charts/platform -f values/production.yaml\ndefault, "
        f"platform-{rng.choice(_AREAS)}, Deployment (apps) has changed:\n-  memory: {limit}Mi\n"
        f"+  memory: {limit * 3 // 2}Mi\n```\n\n## Rollout checklist\n{checks}\n\n## Rollback"
        f"\n\nRun the `Rollback production` workflow or revert this PR.{commits}\n\n---------"
        f"{coauthor if rng.random() < 0.4 else ''}"
    )


def _labels(role: str | None) -> list[str]:
    return ["self-hosted", "linux", "prod-secondary" if role == "secondary" else "prod-primary"]


def _specials() -> list[tuple[float, float, list[tuple[float, _Plan]]]]:
    """Every edge case at least once: (fraction of the period, hour UTC, [(minute, plan)])."""

    def once(behaviour: str, scenario: str, **options: Any) -> list[tuple[float, _Plan]]:
        return [(0.0, _Plan(behaviour, scenario, **options))]

    def burst() -> list[tuple[float, _Plan]]:  # the middle push is superseded while pending
        return [(0.0, _Plan("ok", "burst", deploy_s=780.0))] + [
            (minute, _Plan("ok", "burst")) for minute in (1.5, 3.0)
        ]

    twice_failed = [(2400.0, "failed", "fail"), (1.6 * 86400, "failed", "ok")]
    outage = [(5.0, _Plan("ok", "outage", reruns=[(1500.0, "failed", "ok")]))]
    return [
        (0.04, 10.0, burst()),
        (0.07, 15.0, once("abort", "aborted")),
        (0.10, 11.0, once("fail", "rerun_partial", reruns=twice_failed)),
        (0.13, 14.0, once("fail", "rerun_all", reruns=[(900.0, "all", "ok")])),
        # Slack fails after a good deploy; re-running the failed job copies the deploy job.
        (0.16, 10.5, once("notify_fail", "copied_deploy", reruns=[(600.0, "failed", "ok")])),
        (0.19, 13.0, once("fail", "failed_deploy_rollback", follow="rollback", hold=True)),
        (0.22, 16.0, once("startup_failure", "startup_failure")),
        (0.25, 11.0, once("drill", "drill", event="workflow_dispatch")),
        (0.28, 15.0, once("stale", "stale")),
        (0.30, 9.5, once("action_required", "action_required", event="workflow_dispatch")),
        (0.33, 14.0, once("ok", "bad_deploy_redeploy", follow="redeploy", hold=True)),
        (0.36, 10.0, once("rescue_green", "rescue_green")),
        (0.37, 15.0, once("rescue_red", "rescue_red")),
        (0.45, 11.0, once("skip", "not_deployed")),
        (0.55, 14.0, once("ok", "clock_skew", skew_s=9000.0)),
        (0.62, 10.0, burst()),
        # The primary runner is down for 3.5 h; deploys move to the secondary after 40 min.
        (0.93, 10.0, outage + [(m, _Plan("ok", "outage")) for m in (75.0, 150.0)]),
        (0.95, 14.0, once("ok", "bad_deploy_rollback", follow="rollback", hold=True)),
        (0.965, 11.0, once("rescue_red", "rescue_red")),
    ]


class _World:
    """The discrete-event timeline: triggers, one concurrency group, runners, follow-ups."""

    def __init__(
        self,
        rng: Random,
        *,
        start: datetime,
        boundary: datetime,
        end: datetime,
        story_end: datetime | None = None,
    ):
        # the special scenarios are placed on [start, story_end); routine work runs to `end`
        self.story_end = story_end or end
        self.rng, self.start, self.boundary, self.end = rng, start, boundary, end
        self.cutoff = end - timedelta(hours=2)  # no new work just before the data is fetched
        self.events: list[tuple[datetime, int, Callable[..., None], tuple[Any, ...]]] = []
        self.seq = itertools.count()
        self.runs: list[_Run] = []
        self.deployments: list[_Deployment] = []
        self.successes: list[_Attempt] = []
        self.pending: _Attempt | None = None
        self.busy_until, self.held, self.force_ok = start, False, False
        self.deferred: list[tuple[Any, ...]] = []
        self.outage: tuple[datetime, datetime, datetime] | None = None
        self.live: _Deployment | None = None
        self.pr_number = 3100
        self.head = self.commit(start - timedelta(hours=20), lead_s=600)

    def at(self, t: datetime, fn: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self.events, (t, next(self.seq), fn, args))

    def play(self) -> None:
        while self.events:
            t, _, fn, args = heapq.heappop(self.events)
            if t < self.end:
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

    def commit(self, pushed_at: datetime, *, lead_s: float | None = None) -> _Commit:
        rng = self.rng
        squashed = rng.random() < 0.55  # merged in the UI: committed at the push
        if lead_s is None:
            lead_s = rng.randint(3, 40) if squashed else min(3 * 86400, self.lognorm(5400, 1.1))
        self.pr_number += rng.randint(1, 5)
        sha, tree = f"{rng.getrandbits(160):040x}", f"{rng.getrandbits(160):040x}"
        at = pushed_at - timedelta(seconds=round(lead_s))
        message = _message(rng, self.pr_number)
        self.head = _Commit(sha, tree, message, at, rng.choice(_TEAM), squashed)
        return self.head

    # --- runs, attempts, jobs
    def trigger(
        self, t: datetime, plan: _Plan, behaviour: str, run: _Run | None = None, mode: str = "all"
    ) -> None:
        """A push or dispatch (run None), or a re-run of `run`'s "all" or "failed" jobs."""
        if self.held and not plan.bypass:
            self.deferred.append((plan, behaviour, run, mode))
            return
        if t >= self.cutoff and plan.scenario != "in_progress":
            return
        if run is None:
            if plan.commit is None and plan.event == "push":
                self.commit(t, lead_s=-plan.skew_s if plan.skew_s else None)
            commit = plan.commit or self.head
            actor = commit.author if plan.event == "push" else self.rng.choice(_TEAM)
            run = _Run(DEPLOY_WORKFLOW, t, plan.event, commit, actor, plan)
            self.runs.append(run)
            t += self.secs(0 if behaviour == "startup_failure" else 1, 2)
        actor = run.actor if not run.attempts else self.rng.choice(_TEAM)
        attempt = _Attempt(run, len(run.attempts) + 1, t, actor, behaviour)
        run.attempts.append(attempt)
        if plan.answers is not None:
            attempt.rollback_kind, attempt.answers = "redeploy", plan.answers
        if behaviour in _JOBLESS:
            self.at(t + self.secs(2, 20), self.finish, attempt)
        elif mode == "failed":  # jobs that succeeded are copied, with their old timings
            for job in run.attempts[-2].jobs:
                if job.conclusion == "success" and job.name != "notify":
                    copy = _Job(job.name, t + self.secs(1, 3), job.started_at, job.completed_at,
                                "success", job.labels, None, job.steps, copied=True)  # fmt: skip
                    attempt.jobs.append(copy)
            if any(job.name == "deploy" for job in attempt.jobs):
                attempt.behaviour = "copied"
                self.at(t + self.secs(4, 9), self.finish, attempt)
            else:
                self.at(t + self.secs(3, 8), self.ready, attempt)
        else:
            build = self.job("build", t + self.secs(1, 3), self.secs(2, 18), "hosted")
            attempt.jobs.append(build)
            self.at(build.completed_at or t, self.ready, attempt)

    def job(
        self,
        name: str,
        created: datetime,
        queue: timedelta,
        role: str,
        overrides: dict[str, tuple[float, str]] | None = None,
        conclusion: str | None = None,
    ) -> _Job:
        """A job that ran on a runner: its steps one after another, per `_LAYOUTS`."""
        spec = []
        for step, lo, hi in _LAYOUTS[name]:
            default = (self.rng.randint(lo, hi), "success")
            spec.append((step, *(overrides or {}).get(step, default)))
        started, numbers = created + queue, itertools.chain(range(1, 7), itertools.count(10))
        steps, t = [], started
        for (step, seconds, result), number in zip(spec, numbers, strict=False):
            done = t if result == "skipped" else t + timedelta(seconds=round(seconds))
            steps.append(_Step(step, number, result, t, done))
            t = done
        failed = any(s.conclusion == "failure" for s in steps)
        conclusion = conclusion or ("failure" if failed else "success")
        labels = ["ubuntu-latest"] if role == "hosted" else _labels(role)
        job = _Job(name, created, started, t + self.secs(0, 2), conclusion, labels, role, steps)
        job.runner_no = self.rng.randint(1, 600) if role == "hosted" else 0
        return job

    def ready(self, t: datetime, attempt: _Attempt) -> None:
        """The deploy job's `needs` are met: it is skipped or enters the concurrency group."""
        t += self.secs(1, 3)
        if attempt.behaviour == "skip":
            attempt.jobs.append(_Job("deploy", t, t, t, "skipped", [], None, []))
            self.at(t + self.secs(1, 3), self.finish, attempt)
            return
        busy = self.held or self.busy_until > t or self.pending is not None
        if busy and not attempt.run.plan.bypass:
            if self.pending is not None:  # a newer run replaces the pending one
                superseded, self.pending = self.pending, None
                superseded.jobs.append(
                    _Job("deploy", t, t, t, "cancelled", _labels("primary"), None, [])
                )
                superseded.behaviour = "superseded"
                self.at(t + self.secs(1, 3), self.finish, superseded)
            self.pending = attempt
            return
        self.start_deploy(t, attempt)

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
        if self.force_ok and attempt.behaviour in _FAILING:  # first deploy after a rollback
            attempt.behaviour = "ok"
        self.force_ok, self.held = False, self.held or (plan.hold and attempt.number == 1)
        role = self.role_at(t)
        if role is None:  # the primary is down and deploys are not yet switched to the secondary
            attempt.behaviour = "no_runner"
            failed_at = t + self.secs(540, 900)
            job = _Job("deploy", t, failed_at, failed_at, "failure", _labels(role), None, [])
            attempt.jobs.append(job)
            self.record_deployment(attempt, job, [("queued", t), ("error", failed_at)])
            self.occupy(failed_at, attempt)
            return
        if role == "secondary":
            queue = self.secs(15, 75)
        elif t < self.boundary and rng.random() < 0.3:  # the primary also ran other jobs then
            queue = self.secs(30, 240)
        else:
            queue = self.secs(2, 14)
        median, sigma = (650, 0.34) if t < self.boundary else (330, 0.14)
        seconds = plan.deploy_s or self.lognorm(median, sigma) * (
            1.15 if role == "secondary" else 1
        )
        deploy, smoke, rescue, share, result = _DEPLOY_RESULTS[attempt.behaviour]
        if attempt.behaviour == "abort":
            share = rng.uniform(0.3, 0.8)
        overrides = {
            "Deploy to production": (max(30.0, seconds - 45) * share, deploy),
            "Smoke test": (rng.randint(20, 55), smoke),
            "Rollback on failure": (rng.randint(45, 140), rescue),
        }
        job = self.job("deploy", t, queue, role, overrides, result)
        attempt.jobs.append(job)
        attempt.deploy = job
        done = job.completed_at or t
        if done >= self.end:
            self.still_running(attempt, job)
            return
        final = "success" if result == "success" else "failure"
        statuses = [("queued", t), ("in_progress", job.started_at), (final, done)]
        self.record_deployment(attempt, job, statuses)
        self.occupy(done, attempt)

    def occupy(self, until: datetime, attempt: _Attempt) -> None:
        self.busy_until = until
        self.at(until + self.secs(1, 2), self.slot_free)
        self.at(until + self.secs(1, 3), self.finish, attempt)

    def record_deployment(
        self, attempt: _Attempt, job: _Job, statuses: list[tuple[str, datetime]], sha: str = ""
    ) -> None:
        deployment = _Deployment(sha or attempt.run.commit.sha, job, statuses)
        if statuses[-1][0] == "success":  # GitHub marks the previous one inactive
            if self.live is not None:
                self.live.statuses.append(("inactive", statuses[-1][1]))
            self.live = deployment
        attempt.deployment = deployment
        self.deployments.append(deployment)

    def still_running(self, attempt: _Attempt, job: _Job) -> None:
        """The data is fetched at `end` while the deploy job runs."""
        now = self.end - timedelta(seconds=1)
        for step in job.steps:
            if step.started_at is None or step.started_at > now:
                step.status, step.conclusion, step.started_at, step.completed_at = (
                    "queued", None, None, None
                )  # fmt: skip
            elif step.completed_at is not None and step.completed_at > now:
                step.status, step.conclusion, step.completed_at = "in_progress", None, None
        job.completed_at = job.conclusion = None
        statuses = [("queued", job.created_at), ("in_progress", job.started_at)]
        self.record_deployment(attempt, job, statuses)
        attempt.updated_at = job.started_at + self.secs(1, 4)

    # --- endings and follow-ups
    def finish(self, t: datetime, attempt: _Attempt) -> None:
        behaviour = attempt.behaviour
        if behaviour in ("superseded", "abort"):
            attempt.jobs.append(_Job("notify", t, t, t, "skipped", [], None, []))
        elif behaviour not in _JOBLESS:
            slack_down = {"Notify Slack": (4.0, "failure")} if behaviour == "notify_fail" else None
            attempt.jobs.append(self.job("notify", t, self.secs(2, 15), "hosted", slack_down))
        ends = [j.completed_at for j in attempt.jobs if j.completed_at and not j.copied]
        attempt.updated_at = max([t, *ends]) + self.secs(1, 3)
        attempt.status = "completed"
        attempt.conclusion, attempt.outcome = _RESULT[behaviour]
        if behaviour in ("rescue_red", "rescue_green"):
            attempt.rollback_kind, attempt.answers = "step", attempt
        if attempt.outcome == "success":
            self.successes.append(attempt)
        if attempt.run.plan.answers is not None:
            self.release(attempt.updated_at)
        self.follow_up(attempt)

    def follow_up(self, attempt: _Attempt) -> None:
        plan = attempt.run.plan
        if attempt.number <= len(plan.reruns):
            self.rerun(attempt, *plan.reruns[attempt.number - 1])
        elif plan.follow is None and attempt.behaviour == "fail" and attempt.number < 3:
            self.maybe_rerun(attempt)
        if plan.follow is not None and attempt.number == 1 and attempt.deploy is not None:
            self.answer(attempt)

    def maybe_rerun(self, attempt: _Attempt) -> None:
        """Someone re-runs a failed deploy minutes, hours or days later, or nobody does."""
        rng, r = self.rng, self.rng.randint
        if rng.random() < 0.45:
            delay = rng.choice((r(180, 2400), r(3600, 18000), r(86400, 3 * 86400)))
            mode = rng.choice(("all", "failed", "failed"))
            self.rerun(attempt, delay, mode, "ok" if rng.random() < 0.85 else "fail")

    def rerun(self, attempt: _Attempt, delay: float, mode: str, behaviour: str) -> None:
        when = self.workhours(attempt.completed_at + timedelta(seconds=delay))
        self.at(when, self.trigger, attempt.run.plan, behaviour, attempt.run, mode)

    def answer(self, bad: _Attempt) -> None:
        """Roll back `bad` with the rollback workflow, or by redeploying an older version."""
        when = bad.completed_at + self.secs(600, 2400)
        restore = self.restore_point(bad)
        if when >= self.cutoff or restore is None:
            self.release(bad.completed_at)
        elif bad.run.plan.follow == "rollback":
            self.at(when, self.rollback_run, bad, restore)
        else:
            redeploy = _Plan("ok", "redeploy", "workflow_dispatch", bypass=True)
            redeploy.commit, redeploy.answers = restore.run.commit, bad
            self.at(when, self.trigger, redeploy, "ok")

    def restore_point(self, bad: _Attempt) -> _Attempt | None:
        """The last successful attempt before `bad` of an older, different version."""
        for attempt in reversed(self.successes):
            older = attempt.run.commit.at < bad.run.commit.at
            if older and attempt.run.commit.sha != bad.run.commit.sha:
                return attempt
        return None

    def release(self, t: datetime) -> None:
        """End a hold: deferred triggers go out a few minutes apart; the pending deploy starts."""
        self.held, self.force_ok = False, True
        deferred, self.deferred = self.deferred, []
        for i, args in enumerate(deferred):
            self.at(t + timedelta(minutes=3 + 5 * i) + self.secs(0, 90), self.trigger, *args)
        self.slot_free(t)

    def rollback_run(self, t: datetime, answers: _Attempt, restore: _Attempt) -> None:
        plan = _Plan(scenario="rollback", event="workflow_dispatch")
        run = _Run(ROLLBACK_WORKFLOW, t, plan.event, self.head, self.rng.choice(_TEAM), plan)
        self.runs.append(run)
        attempt = _Attempt(run, 1, t + self.secs(0, 2), run.actor, "ok")
        run.attempts.append(attempt)
        attempt.rollback_kind, attempt.answers = "workflow", answers
        created = attempt.run_started_at + self.secs(2, 5)
        job = self.job("rollback", created, self.secs(2, 12), self.role_at(created) or "secondary")
        attempt.jobs.append(job)
        attempt.deploy, done = job, job.completed_at or created
        statuses = [("queued", created), ("in_progress", job.started_at), ("success", done)]
        self.record_deployment(attempt, job, statuses, restore.run.commit.sha)
        attempt.status, attempt.conclusion, attempt.outcome = "completed", "success", "rollback_run"
        attempt.updated_at = done + self.secs(1, 3)
        self.busy_until = max(self.busy_until, done)
        self.at(attempt.updated_at, self.release)

    # --- the schedule
    def schedule(self, per_day: float) -> None:
        specials = [(self.special_time(f, h), pushes) for f, h, pushes in _specials()]
        last = _Plan("ok", "in_progress", deploy_s=1500.0, bypass=True)
        specials.append((self.end - timedelta(minutes=12), [(0.0, last)]))
        quiet = (-timedelta(minutes=40), timedelta(minutes=75))
        routine = [
            t
            for t in self.daily_triggers(per_day)
            if not any(quiet[0] < t - s < quiet[1] for s, _ in specials)
        ]
        for segment in ([t for t in routine if t < self.boundary],
                        [t for t in routine if t >= self.boundary]):  # fmt: skip
            for t, behaviour in zip(segment, self.behaviours(segment), strict=True):
                self.at(t, self.trigger, _Plan(behaviour), behaviour)
        for t, pushes in specials:
            if pushes[0][1].scenario == "outage":
                self.outage = (t, t + timedelta(minutes=40), t + timedelta(hours=3, minutes=30))
            for minute, plan in pushes:
                self.at(t + timedelta(minutes=minute), self.trigger, plan, plan.behaviour)

    def special_time(self, fraction: float, hour: float) -> datetime:
        span = self.story_end - self.start
        day = (self.start + span * fraction).replace(hour=0, minute=0, second=0)
        while day.weekday() >= 5:
            day += timedelta(days=1)
        if day >= self.story_end - timedelta(days=1):
            day -= timedelta(days=3)
        return day + timedelta(hours=hour) + self.secs(0, 600)

    def daily_triggers(self, per_day: float) -> list[datetime]:
        """Pushes in working hours, at least 25 minutes apart; few at weekends."""
        out: list[datetime] = []
        day, last = self.start, self.start
        while day < self.end:
            weekend = day.weekday() >= 5
            n = max(0, round(self.rng.gauss(per_day * (0.15 if weekend else 1), 1.1)))
            lo, hi = (9.0, 17.0) if weekend else (8.0, 18.5)
            for t in sorted(day + timedelta(hours=self.rng.uniform(lo, hi)) for _ in range(n)):
                t = max(t, last + timedelta(minutes=25)).replace(microsecond=0)
                if t < day + timedelta(hours=19) and t < self.cutoff:
                    out.append(t)
                    last = t
            day += timedelta(days=1)
        return out

    def behaviours(self, triggers: list[datetime]) -> list[str]:
        """Exact shares per segment, so success rates do not hang on the seed's luck."""
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


# ----- ids, episodes, ledger --------------------------------------------------------------------
def _assign_ids(times: list[datetime], spec: tuple[int, int], rng: Random) -> list[int]:
    """Ids that grow with time like GitHub's global counters, at least _ID_GAP apart."""
    ids, last = [0] * len(times), 0
    for i in sorted(range(len(times)), key=lambda i: times[i]):
        grown = spec[0] + int((times[i] - _ID_EPOCH).total_seconds() * spec[1])
        last = ids[i] = max(last + _ID_GAP, 1_000_000, grown + rng.randrange(_ID_GAP))
    return ids


def _number(world: _World) -> list[_Attempt]:
    rng, runs = world.rng, world.runs
    created = [r.created_at for r in runs]
    ids = _assign_ids(created, _RUN_IDS, rng), _assign_ids(created, _SUITE_IDS, rng)
    pairs = zip(*ids, strict=True)
    for run, (run_id, suite_id) in zip(runs, pairs, strict=True):
        run.id, run.check_suite_id = run_id, suite_id
    counters: dict[int, Iterator[int]] = {}
    for run in sorted(runs, key=lambda r: r.id):
        run.number = next(counters.setdefault(run.workflow.id, itertools.count(412)))
    attempts = sorted((a for r in runs for a in r.attempts), key=lambda a: (a.run.id, a.number))
    jobs = [j for a in attempts for j in a.jobs]
    for job, job_id in zip(
        jobs, _assign_ids([j.created_at for j in jobs], _JOB_IDS, rng), strict=True
    ):
        job.id = job_id
    deps = world.deployments
    created = [d.job.created_at for d in deps]
    for d, dep_id in zip(deps, _assign_ids(created, _DEPLOYMENT_IDS, rng), strict=True):
        d.id = dep_id
    times = [at for d in deps for _, at in d.statuses]
    status_ids = iter(_assign_ids(times, _STATUS_IDS, rng))
    for d in deps:
        d.status_ids = [next(status_ids) for _ in d.statuses]
    return attempts


def _mark_episodes(attempts: list[_Attempt]) -> None:
    """DESIGN §5 failure episodes over counted attempts, ended by a success or a rollback run."""
    counted = sorted(
        (a for a in attempts if a.outcome in ("success", "failure", "rolled_back")),
        key=lambda a: (a.completed_at, a.run.id, a.number),
    )
    rollbacks = [a for a in attempts if a.outcome == "rollback_run" and a.conclusion == "success"]
    episode, members, previous_ok = 0, [], True
    for attempt in [*counted, None]:
        if attempt is not None and attempt.outcome != "success":
            if previous_ok:
                episode, members = episode + 1, [attempt]
            elif members:
                members.append(attempt)
            attempt.episode = episode if members else None
            previous_ok = False
            continue
        if members:
            answering = [r for r in rollbacks if any(r.answers is m for m in members)]
            for r in answering:
                r.episode = episode
            first_rollback = min((r.completed_at for r in answering), default=None)
            if attempt is not None and (
                first_rollback is None or attempt.completed_at <= first_rollback
            ):
                attempt.episode = episode
        members, previous_ok = [], True


def _ledger_row(a: _Attempt, boundary: datetime) -> dict[str, Any]:
    rollback, job = a.run.workflow is ROLLBACK_WORKFLOW, a.deploy
    started = a.run_started_at if rollback else job.started_at if job else None
    completed = a.updated_at if rollback else job.completed_at if job else None
    return {
        "repo": REPO, "workflow": "rollback" if rollback else "deploy", "run_id": a.run.id,
        "run_attempt": a.number, "outcome": a.outcome, "deploy_started_at": _z(started),
        "deploy_completed_at": _z(completed), "runner_role": job.role if job else None,
        "rollback_kind": a.rollback_kind, "answers_run_id": a.answers.run.id if a.answers else None,
        "answers_run_attempt": a.answers.number if a.answers else None, "episode": a.episode,
        "sha": a.deployment.sha if rollback and a.deployment else a.run.commit.sha,
        "drill": a.behaviour == "drill",
        "segment": "baseline" if a.started_at < boundary else "improved",
        "scenario": a.run.plan.scenario, "conclusion": a.conclusion,
        "in_environment": a.deployment is not None,
    }  # fmt: skip


# ----- rendering: the plan objects as GitHub API objects ---------------------------------------
def _run_object(a: _Attempt, repo: str, users: dict[str, Any], offset: int) -> dict[str, Any]:
    """A run attempt as `/actions/runs/{id}/attempts/{n}` returns it, without the repositories."""
    run, c, n = a.run, a.run.commit, a.number
    run_id, suite_id, wf = run.id + offset, run.check_suite_id + offset, run.workflow
    workflow_id = wf.id + 10 * offset  # bulk copies: every repository has its own workflows
    url = f"{_API}/repos/{repo}/actions/runs/{run_id}"
    author = {"name": c.author[2], "email": f"{c.author[1]}+{c.author[0]}@users.noreply.github.com"}
    committer = {"name": "GitHub", "email": "noreply@github.com"} if c.squashed else author
    return {
        "id": run_id, "name": wf.name, "node_id": _node("WFR_kwLOKp", _REPO_ID, run_id),
        "head_branch": "main", "head_sha": c.sha, "path": wf.path,
        "display_title": c.message.split("\n", 1)[0] if run.event == "push" else wf.name,
        "run_number": run.number, "event": run.event, "status": a.status,
        "conclusion": a.conclusion, "workflow_id": workflow_id, "check_suite_id": suite_id,
        "check_suite_node_id": _node("CS_kwDOKp", suite_id), "url": url,
        "html_url": f"{_WEB}/{repo}/actions/runs/{run_id}", "pull_requests": [],
        "created_at": _z(run.created_at), "updated_at": _z(a.updated_at),
        "actor": users[run.actor[0]], "run_attempt": n, "referenced_workflows": [],
        "run_started_at": _z(a.run_started_at), "triggering_actor": users[a.actor[0]],
        "jobs_url": f"{url}/jobs", "logs_url": f"{url}/attempts/{n}/logs",
        "check_suite_url": f"{_API}/repos/{repo}/check-suites/{suite_id}",
        "artifacts_url": f"{url}/artifacts", "cancel_url": f"{url}/cancel",
        "rerun_url": f"{url}/rerun",
        "previous_attempt_url": f"{url}/attempts/{n - 1}" if n > 1 else None,
        "workflow_url": f"{_API}/repos/{repo}/actions/workflows/{workflow_id}",
        "head_commit": {"id": c.sha, "tree_id": c.tree, "message": c.message,
                        "timestamp": _z(c.at), "author": author, "committer": committer},
    }  # fmt: skip


def _job_object(a: _Attempt, job: _Job, repo: str, offset: int) -> dict[str, Any]:
    if job.copied:
        runner: tuple[Any, ...] = (0, "", 0, "")
    elif job.role == "hosted":
        runner = (job.runner_no, f"GitHub Actions {job.runner_no}", 2, "GitHub Actions")
    elif job.role in _ROLES:
        runner = (*_ROLES[job.role], 3, "production")
    else:
        runner = (None, None, None, None)
    job_id, run_id = job.id + offset, a.run.id + offset
    steps = [{"name": s.name, "status": s.status, "conclusion": s.conclusion, "number": s.number,
              "started_at": _zms(s.started_at), "completed_at": _zms(s.completed_at)}
             for s in job.steps]  # fmt: skip
    return {
        "id": job_id, "run_id": run_id, "workflow_name": a.run.workflow.name,
        "head_branch": "main", "run_url": f"{_API}/repos/{repo}/actions/runs/{run_id}",
        "run_attempt": a.number, "node_id": _node("CR_kwDOKp", job_id),
        "head_sha": a.run.commit.sha, "url": f"{_API}/repos/{repo}/actions/jobs/{job_id}",
        "html_url": f"{_WEB}/{repo}/actions/runs/{run_id}/job/{job_id}",
        "status": "completed" if job.conclusion else "in_progress", "conclusion": job.conclusion,
        "created_at": _z(job.created_at), "started_at": _z(job.started_at),
        "completed_at": _z(job.completed_at), "name": job.name, "steps": steps,
        "check_run_url": f"{_API}/repos/{repo}/check-runs/{job_id}", "labels": job.labels,
        "runner_id": runner[0], "runner_name": runner[1], "runner_group_id": runner[2],
        "runner_group_name": runner[3],
    }  # fmt: skip


def _deployment_objects(a: _Attempt) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    d = a.deployment
    assert d is not None
    url = f"{_API}/repos/{REPO}/deployments/{d.id}"
    log_url = f"{_WEB}/{REPO}/actions/runs/{a.run.id}/job/{d.job.id}"
    deployment = {
        "url": url, "id": d.id, "node_id": _node("DE_kwDOKp", d.id), "sha": d.sha,
        "ref": "main", "task": "deploy", "payload": {}, "original_environment": ENVIRONMENT,
        "environment": ENVIRONMENT, "description": None, "creator": _ACTIONS_BOT,
        "created_at": _z(d.job.created_at), "updated_at": _z(d.statuses[-1][1]),
        "statuses_url": f"{url}/statuses", "repository_url": f"{_API}/repos/{REPO}",
        "transient_environment": False, "production_environment": True,
        "performed_via_github_app": _ACTIONS_APP,
    }  # fmt: skip
    statuses = [{
        "url": f"{url}/statuses/{sid}", "id": sid, "node_id": _node("DES_kwDOKp", sid),
        "state": state, "creator": _ACTIONS_BOT, "description": "", "environment": ENVIRONMENT,
        "target_url": log_url, "created_at": _z(at), "updated_at": _z(at),
        "deployment_url": url, "repository_url": f"{_API}/repos/{REPO}",
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


# ----- public API ------------------------------------------------------------------------------
def _play(
    seed: int,
    end: datetime | None,
    baseline_weeks: int,
    improved_weeks: int,
    per_day: float,
    story_end: datetime | None = None,
) -> tuple[list[_Attempt], _World]:
    end = _default_end(end)
    story_end = end if story_end is None else min(_default_end(story_end), end)
    if min(baseline_weeks, improved_weeks) < 0 or baseline_weeks + improved_weeks < 2:
        raise ValueError("baseline_weeks and improved_weeks must be >= 0 and add up to >= 2")
    if per_day <= 0:
        raise ValueError(f"deploys_per_day must be positive, got {per_day}")
    start = story_end - timedelta(weeks=baseline_weeks + improved_weeks)
    boundary = start + timedelta(weeks=baseline_weeks)
    world = _World(Random(seed), start=start, boundary=boundary, end=end, story_end=story_end)
    world.schedule(per_day)
    world.play()
    attempts = _number(world)
    for a in attempts:
        if a.updated_at is None:  # still waiting for the concurrency group at `end`
            a.updated_at = max((j.started_at for j in a.jobs), default=a.run_started_at)
    _mark_episodes(attempts)
    return attempts, world


def simulate(
    *,
    seed: int = 7,
    end: datetime | None = None,
    baseline_weeks: int = 4,
    improved_weeks: int = 6,
    deploys_per_day: float = 8.0,
    story_end: datetime | None = None,
) -> Simulation:
    """Simulate the deployment history of `acme/platform` up to `end` (exclusive, tz-aware UTC).

    `end` defaults to Monday 00:00 UTC of the current ISO week, so the last complete week has
    data. The first `baseline_weeks` are the baseline segment, the next `improved_weeks` the
    improved period, ending at `story_end` (default `end`), where every special scenario
    (outage, rollbacks, drills, ...) happens; from `story_end` to `end` only routine deploys
    run, as in a week that is still going on. The same seed and ends give identical output.
    """
    attempts, world = _play(
        seed, end, baseline_weeks, improved_weeks, deploys_per_day, story_end=story_end
    )
    users = {login: _user(login, uid) for login, uid, _ in _TEAM}
    repos = {"repository": _ACME_REPO, "head_repository": _ACME_REPO}
    runs = [_run_object(a, REPO, users, 0) | repos for a in attempts]
    jobs = [
        _job_object(a, j, REPO, 0) for a in attempts for j in sorted(a.jobs, key=lambda j: j.id)
    ]
    rendered = [_deployment_objects(a) for a in attempts if a.deployment is not None]
    deployments = sorted((d for d, _ in rendered), key=lambda d: d["id"])
    statuses = sorted((s for _, its in rendered for s in its), key=lambda s: s["id"])
    workflows = [_workflow_object(w) for w in (_CI_WORKFLOW, DEPLOY_WORKFLOW, ROLLBACK_WORKFLOW)]
    ledger = [_ledger_row(a, world.boundary) for a in attempts]
    return Simulation(
        runs, jobs, deployments, statuses, workflows, ledger,
        start=world.start, boundary=world.boundary, end=world.end, runner_outage=world.outage,
    )  # fmt: skip


def _write(path: Path, chunks: Iterable[bytes], *, gz: bool) -> Path:
    with path.open("wb") as raw:
        if not gz:
            raw.writelines(chunks)
            return path
        # mtime=0 and no file name in the header: the same input gives the same bytes
        with gzip_module.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as packed:
            packed.writelines(chunks)
    return path


def write_dumps(sim: Simulation, folder: Path, *, gzip: bool = False) -> dict[str, Path]:
    """Write the simulation as JSONL files (one object per line) and a workflows page.

    Returns the paths by name: runs, jobs, deployments, deployment_statuses and ledger
    (`<name>.jsonl`), workflows (`workflows.json`, a `{total_count, workflows}` page).
    `gzip=True` compresses every file and adds `.gz` to its name.
    """
    folder.mkdir(parents=True, exist_ok=True)
    gz = ".gz" if gzip else ""
    tables = {
        "runs": sim.runs,
        "jobs": sim.jobs,
        "deployments": sim.deployments,
        "deployment_statuses": sim.deployment_statuses,
        "ledger": sim.ledger,
    }
    out = {
        name: _write(folder / f"{name}.jsonl{gz}", (orjson.dumps(r) + b"\n" for r in rows), gz=gzip)
        for name, rows in tables.items()
    }
    page = orjson.dumps({"total_count": len(sim.workflows), "workflows": sim.workflows})
    out["workflows"] = _write(folder / f"workflows.json{gz}", [page], gz=gzip)
    return out


def write_bulk_dumps(
    folder: Path, *, runs: int, seed: int = 7, end: datetime | None = None
) -> dict[str, Path]:
    """Stream `runs` real-sized workflow-run attempts and their jobs to runs.jsonl and jobs.jsonl.

    For benchmarks. One simulated history (ten weeks before `end`, about 450 attempts) is the
    template; repository k (`acme/platform`, then `acme/service-001`, ...) replays it with every
    id plus k, so listings per repository and workflow stay realistic and ids stay unique. The
    lines are rendered and written one at a time; no ledger. Returns {"runs": .., "jobs": ..}.
    """
    if runs < 0:
        raise ValueError(f"runs must be >= 0, got {runs}")
    per_day, (attempts, _) = 8.0, _play(seed, end, 4, 6, 8.0)
    while runs > len(attempts) * _ID_GAP and per_day < 64:  # more runs per repository
        per_day *= 2
        attempts, _ = _play(seed, end, 4, 6, per_day)
    if runs > len(attempts) * _ID_GAP:
        raise ValueError(f"runs must be <= {len(attempts) * _ID_GAP} (one history per repo id)")
    users = {login: orjson.Fragment(orjson.dumps(_user(login, uid))) for login, uid, _ in _TEAM}
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"runs": folder / "runs.jsonl", "jobs": folder / "jobs.jsonl"}
    with paths["runs"].open("wb") as run_out, paths["jobs"].open("wb") as job_out:
        for k in range(-(-runs // len(attempts))):
            name = REPO if k == 0 else f"acme/service-{k:03d}"
            description = f"Acme service {k:03d}: code, Helm chart and deployment workflows."
            packed = orjson.dumps(
                _ACME_REPO if k == 0 else _repository(name, _REPO_ID + k, description)
            )
            tail = b',"repository":' + packed + b',"head_repository":' + packed + b"}\n"
            for a in attempts[: runs - k * len(attempts)]:
                run_out.write(orjson.dumps(_run_object(a, name, users, k))[:-1] + tail)
                job_out.writelines(
                    orjson.dumps(_job_object(a, j, name, k)) + b"\n"
                    for j in sorted(a.jobs, key=lambda j: j.id)
                )
    return paths
