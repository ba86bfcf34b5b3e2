"""Tests of the fake GitHub REST API server (tests/fakegithub.py), over real HTTP with httpx."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakegithub import FakeGitHub, LoggedRequest

REPO = "acme/shop"
DEPLOY_WORKFLOW = 111
CI_WORKFLOW = 222
RUNS = f"/repos/{REPO}/actions/runs"
DEPLOY_RUNS = f"/repos/{REPO}/actions/workflows/{DEPLOY_WORKFLOW}/runs"
API_VERSION = "2022-11-28"
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_run(
    id: int,
    *,
    run_attempt: int = 1,
    created_at: datetime = T0,
    workflow_id: int = DEPLOY_WORKFLOW,
    status: str = "completed",
    conclusion: str | None = "success",
    head_branch: str = "main",
    event: str = "push",
    head_sha: str = "a" * 40,
    repo: str = REPO,
    **extra: Any,
) -> dict[str, Any]:
    name, path = {
        DEPLOY_WORKFLOW: ("Deploy production", ".github/workflows/deploy-production.yml"),
        CI_WORKFLOW: ("CI", ".github/workflows/ci.yml"),
    }[workflow_id]
    started = created_at + timedelta(minutes=run_attempt - 1)
    return {
        "id": id,
        "run_attempt": run_attempt,
        "workflow_id": workflow_id,
        "name": name,
        "path": path,
        "created_at": iso(created_at),
        "updated_at": iso(started + timedelta(minutes=5)),
        "run_started_at": iso(started),
        "status": status,
        "conclusion": conclusion,
        "head_sha": head_sha,
        "head_branch": head_branch,
        "event": event,
        "pull_requests": [{"number": 7}],
        "repository": {"full_name": repo},
        "html_url": f"https://github.com/{repo}/actions/runs/{id}",
        **extra,
    }


def make_job(
    id: int,
    *,
    run_id: int,
    run_attempt: int = 1,
    name: str = "deploy",
    created_at: datetime = T0,
    runner_name: str = "runner-1",
    repo: str = REPO,
) -> dict[str, Any]:
    return {
        "id": id,
        "run_id": run_id,
        "run_attempt": run_attempt,
        "run_url": f"https://api.github.com/repos/{repo}/actions/runs/{run_id}",
        "created_at": iso(created_at),
        "started_at": iso(created_at + timedelta(seconds=10)),
        "completed_at": iso(created_at + timedelta(minutes=4)),
        "status": "completed",
        "conclusion": "success",
        "name": name,
        "steps": [],
        "runner_name": runner_name,
    }


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeGitHub]:
    with FakeGitHub(clock=clock) as server:
        yield server


@pytest.fixture
def client(fake: FakeGitHub) -> Iterator[httpx.Client]:
    headers = {"Authorization": "token test-token", "X-GitHub-Api-Version": API_VERSION}
    with httpx.Client(base_url=fake.url, headers=headers) as http:
        yield http


def run_ids(response: httpx.Response) -> list[int]:
    return [run["id"] for run in response.json()["workflow_runs"]]


# -- runs listing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        ("2026-11-20..2026-11-21", [4, 3, 2]),
        ("2026-11-20T00:00:00Z..2026-11-21T23:59:59Z", [4, 3, 2]),
        ("2026-11-20T00:00:00+00:00..2026-11-21T23:59:59+00:00", [4, 3, 2]),
        (">=2026-11-21", [5, 4]),
        (">2026-11-20", [5, 4]),
        (">2026-11-21T23:59:59Z", [5]),
        ("<=2026-11-20", [3, 2, 1]),
        ("<2026-11-20", [1]),
        ("<2026-11-20T12:00:00Z", [2, 1]),
        ("2026-11-21..*", [5, 4]),
        ("*..2026-11-19", [1]),
        ("2026-11-20", [3, 2]),
    ],
)
def test_created_qualifier_selects_runs_by_creation_time(
    fake: FakeGitHub, client: httpx.Client, created: str, expected: list[int]
) -> None:
    created_ats = ["2026-11-19T23:59:59", "2026-11-20T00:00:00", "2026-11-20T12:00:00"]
    created_ats += ["2026-11-21T23:59:59", "2026-11-22T00:00:00"]
    for run_id, text in enumerate(created_ats, start=1):
        fake.add_run(make_run(run_id, created_at=datetime.fromisoformat(text + "+00:00")))

    response = client.get(DEPLOY_RUNS, params={"created": created})

    assert response.status_code == 200
    assert run_ids(response) == expected
    assert response.json()["total_count"] == len(expected)


def test_malformed_created_is_422_and_listed_as_unexpected(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    fake.add_run(make_run(1))

    # an unencoded "+" in a query string arrives as a space
    response = client.get(RUNS, params={"created": ">=2026-11-20T10:00:00 00:00"})

    assert response.status_code == 422
    assert fake.unexpected == [
        f"GET {RUNS}?created=%3E%3D2026-11-20T10%3A00%3A00+00%3A00: "
        "created: '2026-11-20T10:00:00 00:00' is not a date or datetime"
    ]


def test_runs_listing_shows_latest_attempts_newest_first_with_ties_by_id_desc(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    fake.add_run(make_run(1, created_at=T0))
    fake.add_run(make_run(2, created_at=T0 + timedelta(hours=1)))
    fake.add_run(make_run(3, created_at=T0 + timedelta(hours=1)))
    fake.add_run(make_run(1, created_at=T0, run_attempt=2, conclusion="failure"))

    body = client.get(RUNS).json()

    assert [(r["id"], r["run_attempt"]) for r in body["workflow_runs"]] == [(3, 1), (2, 1), (1, 2)]
    assert body["total_count"] == 3


def test_runs_listing_filters_branch_event_head_sha_and_status_or_conclusion(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    fake.add_run(make_run(1, head_branch="main", event="push", conclusion="success"))
    fake.add_run(make_run(2, head_branch="main", event="push", conclusion="failure"))
    fake.add_run(make_run(3, head_branch="dev", event="push", conclusion="success"))
    fake.add_run(make_run(4, event="workflow_dispatch", head_sha="b" * 40))
    fake.add_run(make_run(5, status="in_progress", conclusion=None))

    assert run_ids(client.get(RUNS, params={"branch": "main", "event": "push"})) == [5, 2, 1]
    assert run_ids(client.get(RUNS, params={"status": "failure"})) == [2]
    assert run_ids(client.get(RUNS, params={"status": "in_progress"})) == [5]
    assert run_ids(client.get(RUNS, params={"status": "completed", "branch": "dev"})) == [3]
    assert run_ids(client.get(RUNS, params={"head_sha": "b" * 40})) == [4]


def test_workflow_runs_accept_the_file_name_and_list_only_that_workflow(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    fake.add_run(make_run(1, workflow_id=DEPLOY_WORKFLOW))
    fake.add_run(make_run(2, workflow_id=CI_WORKFLOW))

    by_file = client.get(f"/repos/{REPO}/actions/workflows/deploy-production.yml/runs")
    by_id = client.get(f"/repos/{REPO}/actions/workflows/{CI_WORKFLOW}/runs")

    assert run_ids(by_file) == [1]
    assert run_ids(by_id) == [2]


def test_exclude_pull_requests_empties_pull_requests(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    fake.add_run(make_run(1))

    plain = client.get(RUNS).json()["workflow_runs"][0]
    excluded = client.get(RUNS, params={"exclude_pull_requests": "true"}).json()

    assert plain["pull_requests"] == [{"number": 7}]
    assert excluded["workflow_runs"][0]["pull_requests"] == []


def test_total_count_covers_all_matches_but_only_the_first_1000_are_reachable(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    for run_id in range(1, 1051):
        fake.add_run(make_run(run_id, created_at=T0 + timedelta(minutes=run_id)))
    query = {"created": ">=2026-11-20", "per_page": "100"}

    page_10 = client.get(DEPLOY_RUNS, params={**query, "page": "10"})
    page_11 = client.get(DEPLOY_RUNS, params={**query, "page": "11"})

    assert page_10.json()["total_count"] == 1050
    assert run_ids(page_10) == list(range(150, 50, -1))
    assert 'rel="next"' not in page_10.headers["link"]
    assert page_11.json() == {"total_count": 1050, "workflow_runs": []}


def test_listing_without_search_parameters_is_not_capped_at_1000(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    for run_id in range(1, 1051):
        fake.add_run(make_run(run_id, created_at=T0 + timedelta(minutes=run_id)))

    page_11 = client.get(DEPLOY_RUNS, params={"per_page": "100", "page": "11"})

    assert run_ids(page_11) == list(range(50, 0, -1))


# -- pagination ---------------------------------------------------------------------------


def test_first_page_link_has_next_and_last_keeping_the_query(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    for run_id in range(1, 6):
        fake.add_run(make_run(run_id, created_at=T0 + timedelta(minutes=run_id)))

    response = client.get(DEPLOY_RUNS, params={"created": "2026-11-20..*", "per_page": "2"})

    url = f"{fake.url}{DEPLOY_RUNS}?created=2026-11-20..%2A&per_page=2"
    assert response.headers["link"] == (f'<{url}&page=2>; rel="next", <{url}&page=3>; rel="last"')
    assert run_ids(response) == [5, 4]


def test_middle_page_link_has_prev_next_last_and_first(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    for run_id in range(1, 6):
        fake.add_run(make_run(run_id, created_at=T0 + timedelta(minutes=run_id)))

    response = client.get(DEPLOY_RUNS, params={"page": "2", "per_page": "2"})

    url = f"{fake.url}{DEPLOY_RUNS}"
    assert response.headers["link"] == (
        f'<{url}?page=1&per_page=2>; rel="prev", <{url}?page=3&per_page=2>; rel="next", '
        f'<{url}?page=3&per_page=2>; rel="last", <{url}?page=1&per_page=2>; rel="first"'
    )
    assert run_ids(response) == [3, 2]


def test_last_page_link_has_prev_and_first_but_no_next(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    for run_id in range(1, 6):
        fake.add_run(make_run(run_id, created_at=T0 + timedelta(minutes=run_id)))

    response = client.get(DEPLOY_RUNS, params={"per_page": "2", "page": "3"})

    url = f"{fake.url}{DEPLOY_RUNS}?per_page=2"
    assert response.headers["link"] == f'<{url}&page=2>; rel="prev", <{url}&page=1>; rel="first"'
    assert run_ids(response) == [1]


def test_a_single_page_has_no_link_header(fake: FakeGitHub, client: httpx.Client) -> None:
    fake.add_run(make_run(1))

    response = client.get(DEPLOY_RUNS)

    assert "link" not in response.headers


def test_per_page_defaults_to_30_and_is_capped_at_100(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    for run_id in range(1, 151):
        fake.add_run(make_run(run_id, created_at=T0 + timedelta(minutes=run_id)))

    assert len(run_ids(client.get(RUNS))) == 30
    assert len(run_ids(client.get(RUNS, params={"per_page": "500"}))) == 100


# -- runs, attempts, jobs -----------------------------------------------------------------


def test_get_run_returns_the_latest_attempt(fake: FakeGitHub, client: httpx.Client) -> None:
    fake.add_run(make_run(1, run_attempt=1, conclusion="failure"))
    fake.add_run(make_run(1, run_attempt=2, conclusion="success"))

    run = client.get(f"{RUNS}/1").json()

    assert (run["run_attempt"], run["conclusion"]) == (2, "success")


def test_attempt_endpoint_returns_that_attempt_and_404_for_an_unknown_one(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    fake.add_run(make_run(1, run_attempt=1, conclusion="failure"))
    fake.add_run(make_run(1, run_attempt=2, conclusion="success"))

    first = client.get(f"{RUNS}/1/attempts/1")
    third = client.get(f"{RUNS}/1/attempts/3")

    assert (first.json()["run_attempt"], first.json()["conclusion"]) == (1, "failure")
    assert third.status_code == 404
    assert third.json()["message"] == "Not Found"


def test_re_adding_a_run_replaces_it(fake: FakeGitHub, client: httpx.Client) -> None:
    fake.add_run(make_run(1, status="in_progress", conclusion=None))
    fake.add_run(make_run(1, status="completed", conclusion="success"))

    runs = client.get(RUNS).json()["workflow_runs"]

    assert [(r["status"], r["conclusion"]) for r in runs] == [("completed", "success")]


def _rerun_with_copied_job(fake: FakeGitHub) -> None:
    """Attempt 2 re-ran only the failed job 12; job 11 is copied into it (job 21)."""
    fake.add_run(make_run(1, run_attempt=1, conclusion="failure"))
    fake.add_run(make_run(1, run_attempt=2, conclusion="success"))
    fake.add_job(make_job(11, run_id=1, run_attempt=1, name="build"))
    fake.add_job(make_job(12, run_id=1, run_attempt=1, name="deploy"))
    copied = make_job(21, run_id=1, run_attempt=2, name="build", runner_name="")
    fake.add_job(copied)
    fake.add_job(make_job(22, run_id=1, run_attempt=2, name="deploy"))


def test_jobs_filter_latest_lists_only_the_latest_attempts_jobs(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    _rerun_with_copied_job(fake)

    default = client.get(f"{RUNS}/1/jobs").json()
    latest = client.get(f"{RUNS}/1/jobs", params={"filter": "latest"}).json()

    assert [job["id"] for job in default["jobs"]] == [21, 22]
    assert latest == default
    assert default["total_count"] == 2


def test_jobs_filter_all_lists_every_attempts_jobs_by_id(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    _rerun_with_copied_job(fake)

    body = client.get(f"{RUNS}/1/jobs", params={"filter": "all"}).json()

    assert [(job["id"], job["run_attempt"]) for job in body["jobs"]] == [
        (11, 1),
        (12, 1),
        (21, 2),
        (22, 2),
    ]
    assert body["total_count"] == 4


def test_attempt_jobs_lists_that_attempts_jobs_including_copies(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    _rerun_with_copied_job(fake)

    first = client.get(f"{RUNS}/1/attempts/1/jobs").json()
    second = client.get(f"{RUNS}/1/attempts/2/jobs").json()

    assert [job["id"] for job in first["jobs"]] == [11, 12]
    assert [(job["id"], job["runner_name"]) for job in second["jobs"]] == [
        (21, ""),
        (22, "runner-1"),
    ]


def test_jobs_are_paginated(fake: FakeGitHub, client: httpx.Client) -> None:
    fake.add_run(make_run(1))
    for job_id in range(1, 6):
        fake.add_job(make_job(job_id, run_id=1))

    response = client.get(f"{RUNS}/1/jobs", params={"per_page": "2", "page": "3"})

    assert [job["id"] for job in response.json()["jobs"]] == [5]
    assert response.json()["total_count"] == 5


def test_re_adding_a_job_id_replaces_it(fake: FakeGitHub, client: httpx.Client) -> None:
    fake.add_run(make_run(1))
    fake.add_job(make_job(11, run_id=1, name="old"))
    fake.add_job(make_job(11, run_id=1, name="new"))

    jobs = client.get(f"{RUNS}/1/jobs").json()["jobs"]

    assert [(job["id"], job["name"]) for job in jobs] == [(11, "new")]


# -- repositories, workflows, deployments -------------------------------------------------


def test_repository_is_served_and_an_unknown_one_is_404(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    fake.add_repo(REPO)

    known = client.get(f"/repos/{REPO}")
    unknown = client.get("/repos/acme/secret")

    assert known.json()["full_name"] == REPO
    assert unknown.status_code == 404
    assert unknown.json() == {
        "message": "Not Found",
        "documentation_url": "https://docs.github.com/rest/repos/repos#get-a-repository",
        "status": "404",
    }
    assert fake.unexpected == []


def test_org_repos_are_listed_by_page(fake: FakeGitHub, client: httpx.Client) -> None:
    for name in ("api", "web", "shop"):
        fake.add_repo(f"acme/{name}", org="acme")
    fake.add_repo("someone/else")

    by_name = client.get("/orgs/acme/repos", params={"sort": "full_name", "per_page": "2"})

    assert [repo["full_name"] for repo in by_name.json()] == ["acme/api", "acme/shop"]
    assert 'rel="next"' in by_name.headers["link"]


def test_workflows_are_listed_and_found_by_id_or_file_name(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    fake.add_workflow(REPO, id=CI_WORKFLOW, name="CI", path=".github/workflows/ci.yml")
    fake.add_run(make_run(1))  # adds the deploy workflow

    listing = client.get(f"/repos/{REPO}/actions/workflows").json()
    by_file = client.get(f"/repos/{REPO}/actions/workflows/deploy-production.yml").json()
    missing = client.get(f"/repos/{REPO}/actions/workflows/nope.yml")

    assert [w["id"] for w in listing["workflows"]] == [DEPLOY_WORKFLOW, CI_WORKFLOW]
    assert listing["total_count"] == 2
    assert (by_file["id"], by_file["name"]) == (DEPLOY_WORKFLOW, "Deploy production")
    assert missing.status_code == 404


def test_deployments_are_newest_first_and_filtered_by_environment(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    repo_url = f"https://api.github.com/repos/{REPO}"
    fake.load(
        deployments=[
            (REPO, {"id": 1, "environment": "production", "created_at": iso(T0)}),
            {"id": 2, "environment": "staging", "created_at": iso(T0), "repository_url": repo_url},
            (REPO, {"id": 3, "environment": "production", "created_at": iso(T0)}),
        ]
    )

    production = client.get(f"/repos/{REPO}/deployments", params={"environment": "production"})

    assert [d["id"] for d in production.json()] == [3, 1]


def test_deployment_statuses_are_newest_first(fake: FakeGitHub, client: httpx.Client) -> None:
    deployment_url = f"https://api.github.com/repos/{REPO}/deployments/1"
    fake.add_deployment(REPO, {"id": 1, "environment": "production", "created_at": iso(T0)})
    started = {"id": 10, "state": "in_progress", "created_at": iso(T0)}
    succeeded = {"id": 11, "state": "success", "created_at": iso(T0 + timedelta(minutes=3))}
    fake.load(statuses=[{**s, "deployment_url": deployment_url} for s in (started, succeeded)])

    statuses = client.get(f"/repos/{REPO}/deployments/1/statuses").json()

    assert [(s["id"], s["state"]) for s in statuses] == [(11, "success"), (10, "in_progress")]


# -- ETags and rate limits ----------------------------------------------------------------


def test_matching_etag_gets_304_without_using_the_rate_limit(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    fake.add_run(make_run(1))
    first = client.get(RUNS)

    second = client.get(RUNS, headers={"If-None-Match": first.headers["etag"]})

    assert first.headers["etag"].startswith('W/"')
    assert second.status_code == 304
    assert second.content == b""
    assert second.headers["etag"] == first.headers["etag"]
    assert first.headers["x-ratelimit-remaining"] == "4999"
    assert second.headers["x-ratelimit-remaining"] == "4999"
    assert [(r.status, r.conditional) for r in fake.requests] == [(200, False), (304, True)]


def test_changed_content_gets_200_with_a_new_etag(fake: FakeGitHub, client: httpx.Client) -> None:
    fake.add_run(make_run(1, status="in_progress", conclusion=None))
    first = client.get(RUNS)
    fake.add_run(make_run(1, status="completed", conclusion="success"))

    second = client.get(RUNS, headers={"If-None-Match": first.headers["etag"]})

    assert second.status_code == 200
    assert second.headers["etag"] != first.headers["etag"]
    assert second.headers["x-ratelimit-remaining"] == "4998"


def test_etag_304_keeps_the_link_header(fake: FakeGitHub, client: httpx.Client) -> None:
    for run_id in range(1, 4):
        fake.add_run(make_run(run_id))
    first = client.get(RUNS, params={"per_page": "2"})

    second = client.get(
        RUNS, params={"per_page": "2"}, headers={"If-None-Match": first.headers["etag"]}
    )

    assert second.status_code == 304
    assert second.headers["link"] == first.headers["link"]


def test_every_response_carries_rate_limit_headers_and_a_request_id(
    fake: FakeGitHub, client: httpx.Client, clock: FakeClock
) -> None:
    fake.add_repo(REPO)

    ok = client.get(f"/repos/{REPO}")
    missing = client.get("/repos/acme/missing")

    reset = str(int(clock.now) + 3600)
    for response, used in ((ok, 1), (missing, 2)):
        assert response.headers["x-ratelimit-limit"] == "5000"
        assert response.headers["x-ratelimit-remaining"] == str(5000 - used)
        assert response.headers["x-ratelimit-used"] == str(used)
        assert response.headers["x-ratelimit-reset"] == reset
        assert response.headers["x-ratelimit-resource"] == "core"
    assert ok.headers["x-github-request-id"] != missing.headers["x-github-request-id"]


def test_primary_limit_answers_403_until_the_reset_then_resets(
    fake: FakeGitHub, client: httpx.Client, clock: FakeClock
) -> None:
    fake.add_repo(REPO)
    fake.exhaust_rate_limit(reset_in=60)
    reset = int(clock.now) + 60

    limited = client.get(f"/repos/{REPO}")
    clock.now = reset - 1
    still_limited = client.get(f"/repos/{REPO}")
    clock.now = reset
    after_reset = client.get(f"/repos/{REPO}")

    assert limited.status_code == 403
    assert limited.json()["message"] == "API rate limit exceeded for user ID 1."
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert limited.headers["x-ratelimit-reset"] == str(reset)
    assert still_limited.status_code == 403
    assert after_reset.status_code == 200
    assert after_reset.headers["x-ratelimit-remaining"] == "4999"
    assert after_reset.headers["x-ratelimit-reset"] == str(reset + 3600)


def test_rate_limit_counts_down_from_the_configured_limit(clock: FakeClock) -> None:
    with FakeGitHub(clock=clock, rate_limit=2) as fake:
        fake.add_repo(REPO)
        headers = {"Authorization": "Bearer test-token"}
        with httpx.Client(base_url=fake.url, headers=headers) as http:
            statuses = [http.get(f"/repos/{REPO}").status_code for _ in range(3)]

    assert statuses == [200, 200, 403]


# -- faults, auth, unexpected requests ----------------------------------------------------


def test_fail_next_answers_the_given_status_the_given_times_then_recovers(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    fake.add_run(make_run(1))
    fake.fail_next(r"/actions/runs$", 502, times=2)

    statuses = [client.get(RUNS).status_code for _ in range(3)]
    run_status = client.get(f"{RUNS}/1").status_code

    assert statuses == [502, 502, 200]
    assert run_status == 200
    assert fake.count(r"/actions/runs$", status=502) == 2


def test_fail_next_secondary_limit_carries_retry_after_and_the_documented_message(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    fake.add_run(make_run(1))
    fake.fail_next("/jobs", 403, headers={"retry-after": "30"})
    fake.add_job(make_job(11, run_id=1))

    limited = client.get(f"{RUNS}/1/jobs")

    assert limited.status_code == 403
    assert limited.headers["retry-after"] == "30"
    assert limited.json()["message"].startswith("You have exceeded a secondary rate limit.")
    assert limited.headers["x-ratelimit-remaining"] == "5000"


@pytest.mark.parametrize("authorization", [None, "token wrong", "Basic dGVzdC10b2tlbg=="])
def test_missing_or_wrong_credentials_get_401_bad_credentials(
    fake: FakeGitHub, authorization: str | None
) -> None:
    fake.add_repo(REPO)
    headers = {"Authorization": authorization} if authorization else {}

    response = httpx.get(f"{fake.url}/repos/{REPO}", headers=headers)

    assert response.status_code == 401
    assert response.json()["message"] == "Bad credentials"
    assert response.headers["x-ratelimit-limit"] == "60"


def test_bearer_token_is_accepted_like_token(fake: FakeGitHub) -> None:
    fake.add_repo(REPO)

    response = httpx.get(f"{fake.url}/repos/{REPO}", headers={"Authorization": "Bearer test-token"})

    assert response.status_code == 200


def test_unimplemented_route_is_404_and_listed_in_unexpected(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    fake.add_repo(REPO)

    response = client.get(f"/repos/{REPO}/actions/runs/1/timing")
    deletion = client.delete(f"/repos/{REPO}")

    assert (response.status_code, deletion.status_code) == (404, 404)
    assert fake.unexpected == [
        f"GET /repos/{REPO}/actions/runs/1/timing: route not implemented",
        f"DELETE /repos/{REPO}: route not implemented",
    ]


def test_unsupported_api_version_is_400(fake: FakeGitHub, client: httpx.Client) -> None:
    fake.add_repo(REPO)

    response = client.get(f"/repos/{REPO}", headers={"X-GitHub-Api-Version": "2020-01-01"})

    assert response.status_code == 400
    assert response.json()["message"] == "API version 2020-01-01 is not supported."


# -- the request log ----------------------------------------------------------------------


def test_request_log_records_method_path_query_status_condition_and_api_version(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    fake.add_run(make_run(1))

    client.get(RUNS, params={"per_page": "100", "page": "1"})
    client.get(f"{RUNS}/1", headers={"If-None-Match": '"nope"'})
    httpx.get(f"{fake.url}{RUNS}/2", headers={"Authorization": "token test-token"})

    assert fake.requests == [
        LoggedRequest("GET", RUNS, {"per_page": "100", "page": "1"}, 200, False, API_VERSION),
        LoggedRequest("GET", f"{RUNS}/1", {}, 200, True, API_VERSION),
        LoggedRequest("GET", f"{RUNS}/2", {}, 404, False, None),
    ]


def test_count_and_reset_log(fake: FakeGitHub, client: httpx.Client) -> None:
    fake.add_run(make_run(1))
    client.get(RUNS)
    client.get(f"{RUNS}/1")
    client.get(f"{RUNS}/9")

    counts = (fake.count(), fake.count(r"/runs/\d+$"), fake.count(status=404))
    fake.reset_log()

    assert counts == (3, 2, 1)
    assert fake.count() == 0


def test_concurrent_requests_are_all_served_and_logged(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    for run_id in range(1, 21):
        fake.add_run(make_run(run_id))
    statuses: list[int] = []

    def fetch(run_id: int) -> None:
        statuses.append(client.get(f"{RUNS}/{run_id}").status_code)

    threads = [threading.Thread(target=fetch, args=(n,)) for n in range(1, 21)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * 20
    assert sorted(int(r.path.rsplit("/", 1)[1]) for r in fake.requests) == list(range(1, 21))
    assert client.get(RUNS).headers["x-ratelimit-remaining"] == "4979"


def test_stop_closes_the_port() -> None:
    fake = FakeGitHub().start()
    url = fake.url

    fake.stop()

    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/repos/{REPO}")


# -- GitHub App auth ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def app_jwt(key: rsa.RSAPrivateKey, *, iss: object, now: float) -> str:
    """A GitHub App JWT; PyJWS because jwt.encode refuses the integer `iss` GitHub accepts."""
    claims = {"iss": iss, "iat": int(now) - 60, "exp": int(now) + 540}
    return jwt.PyJWS().encode(orjson.dumps(claims), key, algorithm="RS256")


@pytest.mark.parametrize("iss", [42, "42"])
def test_app_jwt_gets_an_installation_token_accepted_like_the_token(
    app_key: rsa.RSAPrivateKey, clock: FakeClock, iss: object
) -> None:
    with FakeGitHub(clock=clock, app_id=42, app_public_key_pem=public_pem(app_key)) as fake:
        fake.add_repo(REPO)
        bearer = {"Authorization": f"Bearer {app_jwt(app_key, iss=iss, now=clock.now)}"}
        created = httpx.post(f"{fake.url}/app/installations/7/access_tokens", headers=bearer)
        token = created.json()["token"]
        repo = httpx.get(f"{fake.url}/repos/{REPO}", headers={"Authorization": f"token {token}"})

    assert created.status_code == 201
    assert token.startswith("ghs_")
    expires_at = datetime.fromtimestamp(int(clock.now) + 3600, UTC)
    assert created.json()["expires_at"] == iso(expires_at)
    assert repo.status_code == 200


def test_app_jwt_signed_by_another_key_is_401(app_key: rsa.RSAPrivateKey, clock: FakeClock) -> None:
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with FakeGitHub(clock=clock, app_id=42, app_public_key_pem=public_pem(app_key)) as fake:
        bearer = {"Authorization": f"Bearer {app_jwt(other_key, iss=42, now=clock.now)}"}
        response = httpx.post(f"{fake.url}/app/installations/7/access_tokens", headers=bearer)

    assert response.status_code == 401
    assert response.json()["message"] == "A JSON web token could not be decoded"


def test_expired_app_jwt_is_401(app_key: rsa.RSAPrivateKey, clock: FakeClock) -> None:
    with FakeGitHub(clock=clock, app_id=42, app_public_key_pem=public_pem(app_key)) as fake:
        stale = app_jwt(app_key, iss=42, now=clock.now - 600)
        response = httpx.post(
            f"{fake.url}/app/installations/7/access_tokens",
            headers={"Authorization": f"Bearer {stale}"},
        )

    assert response.status_code == 401
    assert response.json()["message"].startswith("'Expiration time' claim ('exp')")


def test_installation_token_expires_after_an_hour(
    app_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    with FakeGitHub(clock=clock, app_id=42, app_public_key_pem=public_pem(app_key)) as fake:
        fake.add_repo(REPO)
        bearer = {"Authorization": f"Bearer {app_jwt(app_key, iss=42, now=clock.now)}"}
        token = httpx.post(f"{fake.url}/app/installations/7/access_tokens", headers=bearer).json()
        clock.now += 3600
        response = httpx.get(
            f"{fake.url}/repos/{REPO}", headers={"Authorization": f"token {token['token']}"}
        )

    assert response.status_code == 401


# -- githubkit, unmodified ----------------------------------------------------------------


def test_githubkit_lists_runs_and_sends_the_api_version(fake: FakeGitHub) -> None:
    from githubkit import GitHub, TokenAuthStrategy

    for run_id in range(1, 4):
        fake.add_run(make_run(run_id, created_at=T0 + timedelta(minutes=run_id)))
    github = GitHub(
        TokenAuthStrategy("test-token"),
        base_url=fake.url,
        http_cache=False,
        auto_retry=False,
        timeout=httpx.Timeout(30, connect=10),
    )

    with github:
        response = github.rest(API_VERSION).actions.list_workflow_runs(
            "acme", "shop", "deploy-production.yml", created="2026-11-20", per_page=2, page=2
        )

    assert [run["id"] for run in response.json()["workflow_runs"]] == [1]
    assert fake.requests == [
        LoggedRequest(
            "GET",
            f"/repos/{REPO}/actions/workflows/deploy-production.yml/runs",
            {"created": "2026-11-20", "per_page": "2", "page": "2"},
            200,
            False,
            API_VERSION,
        )
    ]


def test_githubkit_app_installation_auth_is_accepted(app_key: rsa.RSAPrivateKey) -> None:
    from githubkit import AppInstallationAuthStrategy, GitHub

    private_pem = app_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    with FakeGitHub(clock=time.time, app_id=42, app_public_key_pem=public_pem(app_key)) as fake:
        fake.add_repo(REPO)
        github = GitHub(
            AppInstallationAuthStrategy(42, private_pem, 7),
            base_url=fake.url,
            http_cache=False,
            auto_retry=False,
        )
        with github:
            repo = github.rest(API_VERSION).repos.get("acme", "shop")

    assert repo.json()["full_name"] == REPO
    assert [(r.method, r.path, r.status) for r in fake.requests] == [
        ("POST", "/app/installations/7/access_tokens", 201),
        ("GET", f"/repos/{REPO}", 200),
    ]
    assert fake.unexpected == []
