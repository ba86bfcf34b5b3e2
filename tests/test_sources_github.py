"""The GitHub HTTP layer against a fake GitHub over real HTTP, with a fake clock (no sleeping)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import orjson
import pytest

from deploystats.errors import BudgetExhausted, ConfigError, GitHubError, RateLimitError
from deploystats.sources.github import (
    AppAuth,
    Event,
    GitHubClient,
    fetch_deployment_statuses,
    fetch_deployments,
    fetch_jobs,
    fetch_org_repos,
    fetch_repo,
    fetch_run_attempt,
    fetch_runs_page,
    fetch_workflows,
)
from tests.fakegithub import FakeGitHub

REPO = "acme/api"
TOKEN = "test-token"
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)
CREDENTIALS_MESSAGE = (
    "GitHub rejected the credentials (401 Bad credentials): set a valid token in the variable "
    "github.token_env names (default GITHUB_TOKEN) or fix github.app"
)


class FakeClock:
    """A clock that only moves when `sleep` is called; `sleeps` records every wait."""

    def __init__(self, now: float = START) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class TapTransport(httpx.HTTPTransport):
    """Real HTTP that records request headers and the most requests ever in flight at once."""

    def __init__(self, *, barrier: threading.Barrier | None = None) -> None:
        super().__init__()
        self.headers: list[httpx.Headers] = []
        self.in_flight = 0
        self.peak = 0
        self._barrier = barrier
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.headers.append(request.headers.copy())
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            first = len(self.headers) <= (self._barrier.parties if self._barrier else 0)
        try:
            if first and self._barrier is not None:
                self._barrier.wait()  # the first requests must all be in flight together
            return super().handle_request(request)
        finally:
            with self._lock:
                self.in_flight -= 1


def make_run(
    run_id: int,
    created_at: datetime,
    *,
    repo: str = REPO,
    workflow_id: int = 7,
    run_attempt: int = 1,
    conclusion: str = "success",
) -> dict[str, Any]:
    stamp = created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    owner = repo.split("/")[0]
    return {
        "id": run_id,
        "name": "deploy",
        "path": ".github/workflows/deploy.yml",
        "workflow_id": workflow_id,
        "run_attempt": run_attempt,
        "status": "completed",
        "conclusion": conclusion,
        "event": "push",
        "head_branch": "main",
        "head_sha": f"{run_id:040x}",
        "created_at": stamp,
        "updated_at": stamp,
        "run_started_at": stamp,
        "repository": {"full_name": repo, "owner": {"login": owner, "type": "User"}},
    }


def make_job(job_id: int, run_id: int, *, run_attempt: int = 1, repo: str = REPO) -> dict[str, Any]:
    return {
        "id": job_id,
        "run_id": run_id,
        "run_attempt": run_attempt,
        "run_url": f"https://api.github.com/repos/{repo}/actions/runs/{run_id}",
        "name": f"job {job_id}",
        "status": "completed",
        "conclusion": "success",
    }


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeGitHub]:
    with FakeGitHub(token=TOKEN, clock=clock) as server:
        server.add_repo(REPO)
        server.add_workflow(REPO, id=7, name="deploy", path=".github/workflows/deploy.yml")
        yield server
        assert server.unexpected == []


@pytest.fixture
def connect(fake: FakeGitHub, clock: FakeClock) -> Iterator[Callable[..., GitHubClient]]:
    """Make clients for the fake (token auth, fake clock) and close them after the test."""
    clients: list[GitHubClient] = []

    def make(**options: Any) -> GitHubClient:
        settings: dict[str, Any] = {
            "base_url": fake.url,
            "token": TOKEN,
            "clock": clock,
            "sleep": clock.sleep,
        }
        settings.update(options)
        client = GitHubClient(**settings)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def log(fake: FakeGitHub) -> list[tuple[str, int, bool]]:
    return [(r.path, r.status, r.conditional) for r in fake.requests]


# -- requests, ETags and paging -----------------------------------------------------------


def test_every_request_carries_api_version_and_accept(
    fake: FakeGitHub, connect: Callable[..., GitHubClient]
) -> None:
    tap = TapTransport()
    client = connect(transport=tap)
    fetch_repo(client, REPO)
    fetch_workflows(client, REPO)
    assert [r.api_version for r in fake.requests] == ["2022-11-28", "2022-11-28"]
    assert [h["accept"] for h in tap.headers] == ["application/vnd.github+json"] * 2
    assert [h["x-github-api-version"] for h in tap.headers] == ["2022-11-28"] * 2


def test_api_version_is_configurable(
    fake: FakeGitHub, connect: Callable[..., GitHubClient]
) -> None:
    fetch_repo(connect(api_version="2026-03-10"), REPO)
    assert [r.api_version for r in fake.requests] == ["2026-03-10"]


def test_second_fetch_of_a_page_sends_if_none_match_and_gets_304(
    fake: FakeGitHub, connect: Callable[..., GitHubClient]
) -> None:
    fake.add_run(make_run(1, JAN + timedelta(days=3)))
    client = connect()
    first = fetch_runs_page(client, REPO, workflow=7, created_from=JAN, created_to=FEB)
    second = fetch_runs_page(
        client, REPO, workflow=7, created_from=JAN, created_to=FEB, etag=first.etag
    )
    path = "/repos/acme/api/actions/workflows/7/runs"
    assert log(fake) == [(path, 200, False), (path, 304, True)]
    assert (first.status, [r["id"] for r in first.data["workflow_runs"]]) == (200, [1])
    assert (second.status, second.data, second.etag, second.url) == (
        304,
        None,
        first.etag,
        first.url,
    )


def test_runs_window_is_half_open_in_utc(
    fake: FakeGitHub, connect: Callable[..., GitHubClient]
) -> None:
    window_from = datetime(2026, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))  # 00:00 UTC
    for run_id, created in [
        (1, JAN - timedelta(seconds=1)),
        (2, JAN),
        (3, FEB - timedelta(seconds=1)),
        (4, FEB),
    ]:
        fake.add_run(make_run(run_id, created))
    page = fetch_runs_page(connect(), REPO, workflow=None, created_from=window_from, created_to=FEB)
    assert fake.requests[0].path == "/repos/acme/api/actions/runs"
    assert fake.requests[0].query == {
        "per_page": "100",
        "created": "2026-01-01T00:00:00Z..2026-01-31T23:59:59Z",
        "page": "1",
    }
    assert [r["id"] for r in page.data["workflow_runs"]] == [3, 2]
    assert page.total_count == 2


def test_runs_page_by_workflow_file_name_asks_for_the_given_page(
    fake: FakeGitHub, connect: Callable[..., GitHubClient]
) -> None:
    for run_id in range(1, 151):
        fake.add_run(make_run(run_id, JAN + timedelta(minutes=run_id)))
    page = fetch_runs_page(
        connect(), REPO, workflow="deploy.yml", created_from=JAN, created_to=FEB, page=2
    )
    assert fake.requests[0].query["page"] == "2"
    assert [r["id"] for r in page.data["workflow_runs"]] == list(range(50, 0, -1))
    assert (page.total_count, page.next_url) == (150, None)


def test_naive_window_is_rejected(connect: Callable[..., GitHubClient]) -> None:
    with pytest.raises(ValueError, match="no time zone"):
        fetch_runs_page(
            connect(), REPO, workflow=7, created_from=datetime(2026, 1, 1), created_to=FEB
        )


def test_jobs_follow_link_next_and_resend_each_pages_etag(
    fake: FakeGitHub, connect: Callable[..., GitHubClient]
) -> None:
    fake.add_run(make_run(5, JAN))
    fake.add_run(make_run(5, JAN, run_attempt=2))
    fake.load(jobs=[make_job(i, 5, run_attempt=1 + i % 2) for i in range(1, 251)])
    client = connect()
    first = fetch_jobs(client, REPO, 5)
    etags = {page.url: page.etag for page in first if page.etag}
    again = fetch_jobs(client, REPO, 5, etags=etags)
    path = "/repos/acme/api/actions/runs/5/jobs"
    assert log(fake) == [(path, 200, False)] * 3 + [(path, 304, True)] * 3
    assert [r.query for r in fake.requests[:3]] == [
        {"filter": "all", "per_page": "100"},
        {"filter": "all", "per_page": "100", "page": "2"},
        {"filter": "all", "per_page": "100", "page": "3"},
    ]
    assert [job["id"] for page in first for job in page.data["jobs"]] == list(range(1, 251))
    assert [page.status for page in again] == [304, 304, 304]
    assert [page.url for page in again] == [page.url for page in first]


def test_run_attempt_is_fetched_by_number(
    fake: FakeGitHub, connect: Callable[..., GitHubClient]
) -> None:
    fake.add_run(make_run(5, JAN, conclusion="failure"))
    fake.add_run(make_run(5, JAN, run_attempt=2))
    page = fetch_run_attempt(connect(), REPO, 5, 1)
    assert log(fake) == [("/repos/acme/api/actions/runs/5/attempts/1", 200, False)]
    assert (page.data["run_attempt"], page.data["conclusion"]) == (1, "failure")


def test_org_repos_and_workflows_are_listed_across_pages(
    fake: FakeGitHub, connect: Callable[..., GitHubClient]
) -> None:
    for n in range(1, 131):
        fake.add_repo(f"bigorg/svc-{n}", org="bigorg")
    client = connect()
    repos = fetch_org_repos(client, "bigorg")
    workflows = fetch_workflows(client, REPO)
    assert sorted(r["full_name"] for r in repos) == sorted(f"bigorg/svc-{n}" for n in range(1, 131))
    assert [(w["id"], w["name"]) for w in workflows] == [(7, "deploy")]
    assert log(fake) == [
        ("/orgs/bigorg/repos", 200, False),
        ("/orgs/bigorg/repos", 200, False),
        ("/repos/acme/api/actions/workflows", 200, False),
    ]


def test_deployments_filter_by_environment_and_statuses_revalidate(
    fake: FakeGitHub, connect: Callable[..., GitHubClient]
) -> None:
    for deployment_id, environment in [(11, "production"), (12, "staging"), (13, "production")]:
        created = f"2026-01-0{deployment_id - 10}T00:00:00Z"
        fake.add_deployment(
            REPO, {"id": deployment_id, "environment": environment, "created_at": created}
        )
    fake.add_deployment_status(
        REPO, 13, {"id": 1, "state": "success", "created_at": "2026-01-03T00:05:00Z"}
    )
    client = connect()
    pages = list(fetch_deployments(client, REPO, environment="production"))
    statuses = fetch_deployment_statuses(client, REPO, 13)
    again = fetch_deployment_statuses(client, REPO, 13, etag=statuses[0].etag)
    assert [d["id"] for page in pages for d in page.data] == [13, 11]
    assert fake.requests[0].query == {"per_page": "100", "environment": "production"}
    assert [s["state"] for s in statuses[0].data] == ["success"]
    assert [p.status for p in again] == [304]
    statuses_path = "/repos/acme/api/deployments/13/statuses"
    assert log(fake)[1:] == [(statuses_path, 200, False), (statuses_path, 304, True)]


# -- retries and waits --------------------------------------------------------------------


def test_502_then_200_makes_exactly_two_requests_and_waits_1_s(
    fake: FakeGitHub, connect: Callable[..., GitHubClient], clock: FakeClock
) -> None:
    events: list[Event] = []
    fake.fail_next(r"^/repos/acme/api$", 502)
    client = connect(on_event=events.append)
    assert fetch_repo(client, REPO)["full_name"] == REPO
    assert log(fake) == [("/repos/acme/api", 502, False), ("/repos/acme/api", 200, False)]
    assert clock.sleeps == [1.0]
    assert client.requests_made == 2
    url = f"{fake.url}/repos/acme/api"
    assert [(e.kind, e.status, e.seconds) for e in events] == [
        ("request", 502, None),
        ("wait", None, 1.0),
        ("request", 200, None),
    ]
    assert events[1].reason == "GitHub answered 502; try 2 of 5"
    assert [e.url for e in events] == [url, url, url]
    assert events[2].rate_remaining == 4999


def test_5xx_gives_up_after_5_tries_with_doubling_waits(
    fake: FakeGitHub, connect: Callable[..., GitHubClient], clock: FakeClock
) -> None:
    fake.fail_next(r"^/repos/acme/api$", 503, times=5)
    with pytest.raises(GitHubError) as caught:
        fetch_repo(connect(), REPO)
    assert fake.count(status=503) == 5
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0]
    assert str(caught.value) == (
        "GitHub answered 503 for /repos/acme/api 5 times (Service Unavailable): try later"
    )
    assert caught.value.status == 503


def test_unreachable_github_is_retried_then_names_base_url(clock: FakeClock) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    with GitHubClient(base_url=base_url, token=TOKEN, clock=clock, sleep=clock.sleep) as client:
        with pytest.raises(GitHubError) as caught:
            fetch_repo(client, REPO)
        assert client.requests_made == 5
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0]
    message = str(caught.value)
    assert message.startswith(f"cannot reach GitHub at {base_url}: ConnectError")
    assert message.endswith("; check github.base_url and the network")
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


def test_timeouts_are_retried(clock: FakeClock) -> None:
    answers: list[Exception | httpx.Response] = [
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.Response(200, json={"full_name": REPO}),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    with GitHubClient(
        token=TOKEN, transport=httpx.MockTransport(handler), clock=clock, sleep=clock.sleep
    ) as client:
        assert fetch_repo(client, REPO) == {"full_name": REPO}
        assert client.requests_made == 3
    assert clock.sleeps == [1.0, 2.0]


def test_secondary_limit_waits_exactly_retry_after(
    fake: FakeGitHub, connect: Callable[..., GitHubClient], clock: FakeClock
) -> None:
    events: list[Event] = []
    fake.fail_next(r"^/repos/acme/api$", 403, headers={"retry-after": "37"})
    fetch_repo(connect(on_event=events.append), REPO)
    assert log(fake) == [("/repos/acme/api", 403, False), ("/repos/acme/api", 200, False)]
    assert clock.sleeps == [37.0]
    waits = [e for e in events if e.kind == "wait"]
    assert [(w.seconds, w.reason) for w in waits] == [
        (37.0, "secondary rate limit (retry-after 37 s)")
    ]


def test_secondary_limit_message_without_retry_after_waits_60_s(
    fake: FakeGitHub, connect: Callable[..., GitHubClient], clock: FakeClock
) -> None:
    fake.fail_next(r"^/repos/acme/api$", 403)  # GitHub's "secondary rate limit" message
    fetch_repo(connect(), REPO)
    assert log(fake) == [("/repos/acme/api", 403, False), ("/repos/acme/api", 200, False)]
    assert clock.sleeps == [60.0]


def test_429_with_retry_after_waits_it(
    fake: FakeGitHub, connect: Callable[..., GitHubClient], clock: FakeClock
) -> None:
    fake.fail_next(r"^/repos/acme/api$", 429, headers={"retry-after": "5"})
    fetch_repo(connect(), REPO)
    assert clock.sleeps == [5.0]
    assert fake.count(status=200) == 1


def test_primary_limit_waits_until_reset(
    fake: FakeGitHub, connect: Callable[..., GitHubClient], clock: FakeClock
) -> None:
    fake.exhaust_rate_limit(reset_in=60)
    client = connect()
    fetch_repo(client, REPO)
    assert log(fake) == [("/repos/acme/api", 403, False), ("/repos/acme/api", 200, False)]
    assert clock.sleeps == [61.0]  # until x-ratelimit-reset, plus 1 s
    assert client.rate_remaining == 4999


def test_remaining_zero_on_a_200_waits_for_reset_before_the_next_request(
    clock: FakeClock,
) -> None:
    with FakeGitHub(token=TOKEN, clock=clock, rate_limit=2) as fake:
        fake.add_repo(REPO)
        with GitHubClient(
            base_url=fake.url, token=TOKEN, clock=clock, sleep=clock.sleep, max_wait_s=7200
        ) as client:
            for _ in range(3):
                fetch_repo(client, REPO)
            assert (client.rate_remaining, client.rate_reset_at) == (1, START + 7201)
        assert [r.status for r in fake.requests] == [200, 200, 200]
    assert clock.sleeps == [3601.0]  # reset was START + 3600


def test_wait_beyond_max_wait_raises_rate_limit_error_without_sleeping(
    fake: FakeGitHub, connect: Callable[..., GitHubClient], clock: FakeClock
) -> None:
    fake.exhaust_rate_limit(reset_in=3600)
    with pytest.raises(RateLimitError) as caught:
        fetch_repo(connect(max_wait_s=900), REPO)
    assert clock.sleeps == []
    assert fake.count() == 1
    assert caught.value.reset_at == START + 3600
    assert str(caught.value) == (
        "GitHub primary rate limit resets at 2026-01-01 01:00:00 UTC (3601 s away), "
        "beyond --max-wait 900 s: rerun after the reset or raise --max-wait"
    )


def test_secondary_retry_after_beyond_max_wait_raises(
    fake: FakeGitHub, connect: Callable[..., GitHubClient], clock: FakeClock
) -> None:
    fake.fail_next(r"^/repos/acme/api$", 429, headers={"retry-after": "120"})
    with pytest.raises(RateLimitError, match=r"secondary rate limit resets at 2026-01-01 00:02:00"):
        fetch_repo(connect(max_wait_s=60), REPO)
    assert clock.sleeps == []


def test_rate_limit_waits_stop_after_five(
    fake: FakeGitHub, connect: Callable[..., GitHubClient], clock: FakeClock
) -> None:
    fake.fail_next(r"^/repos/acme/api$", 429, times=6, headers={"retry-after": "2"})
    with pytest.raises(RateLimitError) as caught:
        fetch_repo(connect(), REPO)
    assert clock.sleeps == [2.0] * 5
    assert fake.count(status=429) == 6
    assert str(caught.value) == (
        "GitHub secondary rate limit still applies to /repos/acme/api after 5 waits: "
        "rerun after 2026-01-01 00:00:12 UTC"
    )


def test_403_that_is_no_rate_limit_fails_at_once(
    fake: FakeGitHub, connect: Callable[..., GitHubClient], clock: FakeClock
) -> None:
    fake.fail_next(
        r"/actions/runs$", 403, body={"message": "Resource not accessible by integration"}
    )
    with pytest.raises(GitHubError) as caught:
        fetch_runs_page(connect(), REPO, workflow=None, created_from=JAN, created_to=FEB)
    assert (fake.count(), clock.sleeps) == (1, [])
    assert str(caught.value) == (
        "GitHub answered 403 for /repos/acme/api/actions/runs: Resource not accessible by "
        "integration; check that the credentials may read this repository's metadata, "
        "Actions and deployments"
    )


# -- request budget -----------------------------------------------------------------------


def test_max_requests_raises_budget_exhausted_before_the_next_request(
    fake: FakeGitHub, connect: Callable[..., GitHubClient]
) -> None:
    client = connect(max_requests=2)
    first = client.get(f"/repos/{REPO}")
    client.get(f"/repos/{REPO}", etag=first.etag)  # a 304 still counts
    assert client.requests_left == 0
    with pytest.raises(BudgetExhausted) as caught:
        client.get(f"/repos/{REPO}")
    assert str(caught.value).startswith("--max-requests 2 reached")
    assert [r.status for r in fake.requests] == [200, 304]
    assert client.requests_made == 2


def test_retries_count_towards_max_requests(
    fake: FakeGitHub, connect: Callable[..., GitHubClient]
) -> None:
    fake.fail_next(r"^/repos/acme/api$", 502)
    with pytest.raises(BudgetExhausted):
        fetch_repo(connect(max_requests=1), REPO)
    assert log(fake) == [("/repos/acme/api", 502, False)]


# -- errors -------------------------------------------------------------------------------


def test_401_names_the_fix_and_never_the_token(fake: FakeGitHub, clock: FakeClock) -> None:
    secret = "ghp_s3cretTokenValue0123456789"
    client = GitHubClient(base_url=fake.url, token=secret, clock=clock, sleep=clock.sleep)
    with client, pytest.raises(GitHubError) as caught:
        fetch_repo(client, REPO)
    assert str(caught.value) == CREDENTIALS_MESSAGE
    assert caught.value.status == 401
    chain: BaseException | None = caught.value
    while chain is not None:
        assert secret not in str(chain) and secret not in repr(chain)
        chain = chain.__cause__ or chain.__context__
    assert (fake.count(), clock.sleeps) == (1, [])


def test_404_on_a_repository_names_it(
    fake: FakeGitHub, connect: Callable[..., GitHubClient]
) -> None:
    with pytest.raises(GitHubError) as caught:
        fetch_repo(connect(), "acme/nope")
    assert str(caught.value) == (
        "unknown repository acme/nope (404 from GitHub): check github.repos, "
        "or that the token can see it"
    )
    assert caught.value.status == 404


def test_404_on_a_workflow_names_it(fake: FakeGitHub, connect: Callable[..., GitHubClient]) -> None:
    with pytest.raises(GitHubError) as caught:
        fetch_runs_page(connect(), REPO, workflow="release.yml", created_from=JAN, created_to=FEB)
    assert str(caught.value) == (
        "unknown workflow 'release.yml' in acme/api (404 from GitHub): check the workflow id "
        "or file name, and that the token can see acme/api"
    )


def test_404_on_an_organization_names_it(
    fake: FakeGitHub, connect: Callable[..., GitHubClient]
) -> None:
    with pytest.raises(GitHubError, match=r"^unknown organization ghost \(404 from GitHub\)"):
        fetch_org_repos(connect(), "ghost")


def test_other_4xx_give_status_message_and_path(
    fake: FakeGitHub, connect: Callable[..., GitHubClient]
) -> None:
    fake.fail_next(r"/deployments$", 422, body={"message": "Validation Failed"})
    with pytest.raises(GitHubError) as caught:
        list(fetch_deployments(connect(), REPO, environment=None))
    assert (
        str(caught.value)
        == "GitHub answered 422 for /repos/acme/api/deployments: Validation Failed"
    )
    assert caught.value.status == 422


def test_repo_name_must_be_owner_slash_name(connect: Callable[..., GitHubClient]) -> None:
    with pytest.raises(ConfigError, match=r"repository 'acme' is not OWNER/NAME"):
        fetch_repo(connect(), "acme")


def test_credentials_must_be_exactly_one_of_token_and_app() -> None:
    with pytest.raises(ConfigError, match="GitHub token missing"):
        GitHubClient(token=None)
    app = AppAuth(app_id=1, private_key="key", installation_id=2)
    with pytest.raises(ConfigError, match="configure only one"):
        GitHubClient(token=TOKEN, app=app)


def test_a_body_that_is_not_json_points_at_base_url(clock: FakeClock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>login</html>", headers={"content-type": "text/html"})

    client = GitHubClient(
        base_url="https://ghe.example.com",
        token=TOKEN,
        transport=httpx.MockTransport(handler),
        clock=clock,
        sleep=clock.sleep,
    )
    with client, pytest.raises(GitHubError, match=r"is not JSON \(text/html\): check github"):
        fetch_repo(client, REPO)


def test_next_link_to_another_host_is_not_followed(clock: FakeClock) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        link = '<https://evil.example/repos/acme/api/deployments?page=2>; rel="next"'
        return httpx.Response(200, json=[], headers={"Link": link})

    client = GitHubClient(
        token=TOKEN, transport=httpx.MockTransport(handler), clock=clock, sleep=clock.sleep
    )
    with client, pytest.raises(GitHubError, match=r"refusing to send credentials to evil\."):
        list(fetch_deployments(client, REPO, environment=None))
    assert seen == ["https://api.github.com/repos/acme/api/deployments?per_page=100"]


# -- concurrency --------------------------------------------------------------------------


def test_get_many_keeps_input_order_and_never_exceeds_max_in_flight(
    fake: FakeGitHub, connect: Callable[..., GitHubClient]
) -> None:
    for run_id in range(1, 21):
        fake.add_run(make_run(run_id, JAN + timedelta(hours=run_id)))
    tap = TapTransport(barrier=threading.Barrier(3, timeout=10))
    client = connect(transport=tap, max_in_flight=3)
    requests = [(f"/repos/{REPO}/actions/runs/{n}", None, None) for n in range(20, 0, -1)]
    pages = client.get_many(requests)
    assert [page.data["id"] for page in pages] == list(range(20, 0, -1))
    assert tap.peak == 3  # the barrier proves 3 were in flight together
    assert fake.count(status=200) == 20
    assert client.requests_made == 20


def test_get_many_propagates_the_first_error(
    fake: FakeGitHub, connect: Callable[..., GitHubClient]
) -> None:
    fake.add_run(make_run(1, JAN))
    client = connect(max_in_flight=2)
    with pytest.raises(GitHubError, match=r"^/repos/acme/api/actions/runs/999 not found"):
        client.get_many(
            [
                (f"/repos/{REPO}/actions/runs/1", None, None),
                (f"/repos/{REPO}/actions/runs/999", None, None),
            ]
        )


# -- authentication and GitHub Enterprise Server ------------------------------------------


def test_app_auth_exchanges_an_installation_token_once(app_key: tuple[str, bytes]) -> None:
    private, public = app_key
    # real time: githubkit dates the JWT and the token's expiry by the wall clock
    with FakeGitHub(app_id=4242, app_public_key_pem=public) as fake:
        fake.add_repo(REPO)
        fake.add_workflow(REPO, id=7, name="deploy", path=".github/workflows/deploy.yml")
        app = AppAuth(app_id=4242, private_key=private, installation_id=99)
        with GitHubClient(base_url=fake.url, app=app) as client:
            fetch_repo(client, REPO)
            fetch_workflows(client, REPO)
        assert log(fake) == [
            ("/app/installations/99/access_tokens", 201, False),
            ("/repos/acme/api", 200, False),
            ("/repos/acme/api/actions/workflows", 200, False),
        ]
        assert fake.unexpected == []
    assert private not in repr(app)


def test_app_rejected_by_github_gets_the_credentials_message(app_key: tuple[str, bytes]) -> None:
    private, public = app_key
    with FakeGitHub(app_id=4242, app_public_key_pem=public) as fake:
        fake.add_repo(REPO)
        app = AppAuth(app_id=1, private_key=private, installation_id=99)
        client = GitHubClient(base_url=fake.url, app=app)
        with client, pytest.raises(GitHubError) as caught:
            fetch_repo(client, REPO)
        assert log(fake) == [("/app/installations/99/access_tokens", 401, False)]
    assert str(caught.value) == CREDENTIALS_MESSAGE


def test_app_key_that_cannot_sign_is_a_config_error() -> None:
    app = AppAuth(app_id=4242, private_key="not a key", installation_id=99)
    transport = httpx.MockTransport(lambda request: httpx.Response(500))
    client = GitHubClient(app=app, transport=transport)
    with client, pytest.raises(ConfigError, match=r"cannot authenticate as GitHub App 4242"):
        fetch_repo(client, REPO)


def test_ghes_base_url_keeps_the_api_v3_prefix(clock: FakeClock) -> None:
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("authorization")))
        if request.url.path.endswith("/nope"):
            return httpx.Response(404, json={"message": "Not Found"})
        page = int(request.url.params.get("page", "1"))
        headers = {}
        if page == 1:
            next_url = (
                "https://ghe.example.com/api/v3/repositories/1/deployments?per_page=100&page=2"
            )
            headers["Link"] = f'<{next_url}>; rel="next"'
        return httpx.Response(200, content=orjson.dumps([{"id": page}]), headers=headers)

    with GitHubClient(
        base_url="https://ghe.example.com/api/v3/",
        token=TOKEN,
        transport=httpx.MockTransport(handler),
        clock=clock,
        sleep=clock.sleep,
    ) as client:
        pages = list(fetch_deployments(client, REPO, environment=None))
        with pytest.raises(GitHubError, match=r"^unknown repository acme/nope \(404"):
            fetch_repo(client, "acme/nope")
    assert [d["id"] for page in pages for d in page.data] == [1, 2]
    assert seen == [
        (
            "https://ghe.example.com/api/v3/repos/acme/api/deployments?per_page=100",
            f"token {TOKEN}",
        ),
        (
            "https://ghe.example.com/api/v3/repositories/1/deployments?per_page=100&page=2",
            f"token {TOKEN}",
        ),
        ("https://ghe.example.com/api/v3/repos/acme/nope", f"token {TOKEN}"),
    ]
