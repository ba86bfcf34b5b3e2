"""GitHub REST fetching: the githubkit client, our retry and rate-limit loop, paging and ETags.

This module only fetches; it never touches the database. Callers keep the ETags (`Page.etag`,
keyed by `Page.url`) and pass them back to get 304s, which GitHub does not count against the
rate limit. Errors are one line, name the input and the fix, and never contain a credential:

    GitHubError       GitHub answered 4xx, 5xx after retries, or could not be reached
    RateLimitError    waiting for a rate limit would exceed max_wait_s (--max-wait)
    BudgetExhausted   max_requests (--max-requests) requests were already sent
    ConfigError       neither or both of token and app, or the App key cannot sign
"""

from __future__ import annotations

import contextvars
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType, TracebackType
from typing import Any, Literal, Self
from urllib.parse import quote

import httpx
import orjson
from githubkit import AppInstallationAuthStrategy, GitHub, TokenAuthStrategy
from githubkit.cache import MemCacheStrategy
from githubkit.exception import RequestError, RequestFailed

from deploystats.errors import BudgetExhausted, ConfigError, GitHubError, RateLimitError

ACCEPT = "application/vnd.github+json"
USER_AGENT = "deploystats"
PER_PAGE = 100
MAX_TRIES = 5  # per request, for 5xx answers and connection errors
MAX_BACKOFF_S = 30.0
MAX_LIMIT_WAITS = 5  # rate-limit waits per request before giving up
SECONDARY_WAIT_S = 60.0  # GitHub: "wait for at least one minute" when it names no time
CREDENTIALS_REJECTED = (
    "GitHub rejected the credentials (401 Bad credentials): set a valid token in the variable "
    "github.token_env names (default GITHUB_TOKEN) or fix github.app"
)
_NO_ETAGS: Mapping[str, str] = MappingProxyType({})
_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_ORG = re.compile(r"[A-Za-z0-9_.-]+")
_NOT_FOUND = [
    (
        re.compile(r"repos/([^/]+/[^/]+)"),
        "unknown repository {0} (404 from GitHub): check github.repos, "
        "or that the token can see it",
    ),
    (
        re.compile(r"repos/([^/]+/[^/]+)/actions/workflows/([^/]+)(?:/runs)?"),
        "unknown workflow '{1}' in {0} (404 from GitHub): check the workflow id or file name, "
        "and that the token can see {0}",
    ),
    (
        re.compile(r"orgs/([^/]+)/repos"),
        "unknown organization {0} (404 from GitHub): check github.org, "
        "or that the token can see it",
    ),
    (
        re.compile(r"app/installations/([^/]+)/access_tokens"),
        "GitHub App installation {0} not found (404 from GitHub): check github.app's "
        "installation id, and that the app is installed",
    ),
    (
        re.compile(r"repos/([^/]+/[^/]+)/.+"),
        "{path} not found (404 from GitHub): check that {0} exists and the token can see it",
    ),
]

Params = Mapping[str, str | int]


@dataclass(frozen=True)
class Page:
    """One answered GET: status 200 with the parsed body, or 304 (ETag matched) with data None."""

    url: str  # full request URL including the query: the ETag key
    status: int
    data: Any
    etag: str | None
    next_url: str | None  # rel="next" of the Link header, when GitHub sends one
    total_count: int | None  # body["total_count"] for listings that have one


@dataclass(frozen=True)
class AppAuth:
    """GitHub App installation credentials (the key is PEM text, never shown in repr)."""

    app_id: int | str
    private_key: str = field(repr=False)
    installation_id: int


@dataclass(frozen=True)
class Event:
    """Progress: kind "request" after each answered request, "wait" before each sleep."""

    kind: Literal["request", "wait"]
    url: str | None = None
    status: int | None = None
    rate_remaining: int | None = None
    seconds: float | None = None
    reason: str | None = None


@dataclass(frozen=True)
class _Limit:
    seconds: float
    kind: str  # "primary rate limit" or "secondary rate limit"
    reason: str
    reset_at: float


class _Unreachable(Exception):
    """A connection error or timeout: worth retrying."""


class GitHubClient:
    """GETs against the GitHub REST API through githubkit, with our own retries and waits.

    Every request sent counts towards `requests_made` and `max_requests`, including retries and
    requests answered 304: they cost time even though GitHub does not count 304s against its
    rate limit. Before request max_requests + 1 is sent, BudgetExhausted is raised. Closing
    the client closes `transport`. `on_event` may be called from get_many's worker threads
    (never two calls at once).
    """

    def __init__(
        self,
        *,
        base_url: str = "https://api.github.com",
        api_version: str = "2022-11-28",
        token: str | None = None,
        app: AppAuth | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        max_wait_s: float = 900.0,
        max_requests: int | None = None,
        max_in_flight: int = 8,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ConfigError(f"max_in_flight must be at least 1, not {max_in_flight}")
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self.max_wait_s = max_wait_s
        self.max_requests = max_requests
        self.max_in_flight = max_in_flight
        self.requests_made = 0
        self.rate_remaining: int | None = None
        self.rate_reset_at: float | None = None
        self._prefix = self.base_url + "/"  # githubkit's form; absolute URLs must start with it
        self._base = httpx.URL(self._prefix)
        self._clock = clock
        self._sleep = sleep
        self._on_event = on_event
        self._app_id = None if app is None else app.app_id
        self._lock = threading.Lock()
        self._wait_lock = threading.Lock()
        self._event_lock = threading.Lock()
        self._github: GitHub[Any] = GitHub(
            _auth_strategy(token, app),
            base_url=self._prefix,
            user_agent=USER_AGENT,
            timeout=httpx.Timeout(30, connect=10),
            http_cache=False,
            auto_retry=False,
            transport=transport,
            # githubkit's default cache is process-wide; App tokens must stay with this client
            cache_strategy=MemCacheStrategy(),
        )
        # githubkit keeps its httpx client in a ContextVar. Entering it inside a private
        # context gives one connection pool that every thread reaches through a copy.
        self._context = contextvars.copy_context()
        self._context.run(self._github.__enter__)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool (and the transport passed in)."""
        self._context.run(self._github.__exit__, None, None, None)

    @property
    def requests_left(self) -> int | None:
        """Requests that may still be sent under max_requests (None: no limit)."""
        if self.max_requests is None:
            return None
        return max(self.max_requests - self.requests_made, 0)

    def url_for(self, url_or_path: str, params: Params | None = None) -> str:
        """The full URL (the ETag key) for a path below base_url, or an absolute URL under it."""
        if url_or_path.startswith(("http://", "https://")):
            if not url_or_path.startswith(self._prefix):
                raise GitHubError(
                    f"refusing to send credentials to {httpx.URL(url_or_path).host}: the URL is "
                    f"not under github.base_url {self.base_url}",
                    url=url_or_path,
                )
            url = httpx.URL(url_or_path)
        else:
            url = self._base.join(url_or_path.lstrip("/"))
        if params:
            url = url.copy_merge_params({key: str(value) for key, value in params.items()})
        return str(url)

    def get(
        self, url_or_path: str, params: Params | None = None, *, etag: str | None = None
    ) -> Page:
        """GET one page; with `etag`, sends If-None-Match and may get a 304 (data None)."""
        url = self.url_for(url_or_path, params)
        return _to_page(url, self._fetch(url, etag), etag)

    def pages(
        self, path: str, params: Params | None = None, *, etags: Mapping[str, str] = _NO_ETAGS
    ) -> Iterator[Page]:
        """Every page of a listing, following Link rel="next" (also from 304 answers).

        Each page is requested with If-None-Match: etags[page URL] when that key is present.
        """
        url: str | None = self.url_for(path, params)
        while url is not None:
            etag = etags.get(url)
            page = _to_page(url, self._fetch(self.url_for(url), etag), etag)
            yield page
            url = page.next_url

    def get_many(self, requests: Sequence[tuple[str, Params | None, str | None]]) -> list[Page]:
        """get() for each (path, params, etag), at most max_in_flight at once, in input order.

        The first error (in input order) propagates; requests not yet started are dropped.
        """
        workers = min(self.max_in_flight, len(requests))
        if workers <= 1:
            return [self.get(path, params, etag=etag) for path, params, etag in requests]
        with ThreadPoolExecutor(workers, thread_name_prefix="deploystats-github") as pool:
            futures = [
                pool.submit(self.get, path, params, etag=etag) for path, params, etag in requests
            ]
            try:
                return [future.result() for future in futures]
            finally:
                for future in futures:
                    future.cancel()

    def _fetch(self, url: str, etag: str | None) -> httpx.Response:
        failures = 0
        limit_waits = 0
        while True:
            self._wait_if_used_up(url)
            self._count_request()
            try:
                response = self._send(url, etag)
            except _Unreachable as exc:
                failures += 1
                if failures >= MAX_TRIES:
                    raise GitHubError(
                        f"cannot reach GitHub at {self.base_url}: {exc}; "
                        "check github.base_url and the network",
                        url=url,
                    ) from exc.__cause__
                self._backoff(failures, url, f"cannot reach GitHub ({exc})")
                continue
            self._note(response)
            if response.status_code < 400:
                return response
            limit = self._rate_limit(response)
            if limit is not None:
                limit_waits += 1
                if limit_waits > MAX_LIMIT_WAITS:
                    raise RateLimitError(
                        f"GitHub {limit.kind} still applies to {httpx.URL(url).path} after "
                        f"{MAX_LIMIT_WAITS} waits: rerun after {_utc_text(limit.reset_at)}",
                        reset_at=limit.reset_at,
                        url=url,
                    )
                self._wait(limit.seconds, limit.reason, url, limit=limit)
                continue
            if response.status_code >= 500:
                failures += 1
                if failures < MAX_TRIES:
                    self._backoff(failures, url, f"GitHub answered {response.status_code}")
                    continue
            raise self._error(response, url, failures)

    def _send(self, url: str, etag: str | None) -> httpx.Response:
        headers = {"Accept": ACCEPT, "X-GitHub-Api-Version": self.api_version}
        if etag:
            headers["If-None-Match"] = etag

        def call() -> httpx.Response:
            return self._github.request("GET", url, headers=headers).raw_response

        try:
            return self._context.copy().run(call)
        except RequestFailed as exc:  # githubkit raises for every 4xx/5xx; 304 is returned
            return exc.response.raw_response
        except RequestError as exc:
            return self._unwrap(exc, url)

    def _unwrap(self, exc: RequestError[Any], url: str) -> httpx.Response:
        inner = exc.exc
        if isinstance(inner, RequestFailed):  # the App installation-token exchange failed
            return inner.response.raw_response
        if isinstance(inner, httpx.TransportError):
            raise _Unreachable(_describe(inner)) from inner
        if self._app_id is not None:
            raise ConfigError(
                f"cannot authenticate as GitHub App {self._app_id} ({type(inner).__name__}): "
                "check github.app's app id and private key file"
            ) from exc
        raise GitHubError(
            f"GET {httpx.URL(url).path} failed inside the HTTP client ({type(inner).__name__})",
            url=url,
        ) from exc

    def _count_request(self) -> None:
        with self._lock:
            if self.max_requests is not None and self.requests_made >= self.max_requests:
                raise BudgetExhausted(
                    f"--max-requests {self.max_requests} reached: stopped before request "
                    f"{self.requests_made + 1}; rerun to continue, or raise --max-requests"
                )
            self.requests_made += 1

    def _note(self, response: httpx.Response) -> None:
        remaining = _int_header(response, "x-ratelimit-remaining")
        reset = _int_header(response, "x-ratelimit-reset")
        with self._lock:
            if remaining is not None:
                self.rate_remaining = remaining
            if reset is not None:
                self.rate_reset_at = float(reset)
            known = self.rate_remaining
        self._emit(
            Event(
                kind="request",
                url=str(response.request.url),
                status=response.status_code,
                rate_remaining=known,
            )
        )

    def _wait_if_used_up(self, url: str) -> None:
        """After an answer with x-ratelimit-remaining 0, wait for the reset instead of a 403."""
        with self._wait_lock:
            with self._lock:
                remaining, reset_at = self.rate_remaining, self.rate_reset_at
            if remaining != 0 or reset_at is None:
                return
            seconds = reset_at + 1 - self._clock()
            if seconds > 0:
                reason = f"primary rate limit used up; resets at {_utc_text(reset_at)}"
                limit = _Limit(seconds, "primary rate limit", reason, reset_at)
                self._wait(seconds, reason, url, limit=limit)
            with self._lock:
                self.rate_remaining = None

    def _rate_limit(self, response: httpx.Response) -> _Limit | None:
        if response.status_code not in (403, 429):
            return None
        now = self._clock()
        if "retry-after" in response.headers:
            seconds = float(_int_header(response, "retry-after") or SECONDARY_WAIT_S)
            reason = f"secondary rate limit (retry-after {seconds:.0f} s)"
            return _Limit(seconds, "secondary rate limit", reason, now + seconds)
        if "secondary rate limit" in _message(response).lower():
            reason = f"secondary rate limit (no retry-after; waiting {SECONDARY_WAIT_S:.0f} s)"
            return _Limit(SECONDARY_WAIT_S, "secondary rate limit", reason, now + SECONDARY_WAIT_S)
        if _int_header(response, "x-ratelimit-remaining") == 0:
            reset = _int_header(response, "x-ratelimit-reset")
            reset_at = now + SECONDARY_WAIT_S if reset is None else float(reset)
            reason = f"primary rate limit used up; resets at {_utc_text(reset_at)}"
            return _Limit(max(reset_at + 1 - now, 1.0), "primary rate limit", reason, reset_at)
        if response.status_code == 429:
            reason = f"429 Too Many Requests; waiting {SECONDARY_WAIT_S:.0f} s"
            return _Limit(SECONDARY_WAIT_S, "secondary rate limit", reason, now + SECONDARY_WAIT_S)
        return None

    def _wait(self, seconds: float, reason: str, url: str, *, limit: _Limit | None = None) -> None:
        if limit is not None and seconds > self.max_wait_s:
            raise RateLimitError(
                f"GitHub {limit.kind} resets at {_utc_text(limit.reset_at)} "
                f"({seconds:.0f} s away), beyond --max-wait {self.max_wait_s:.0f} s: "
                "rerun after the reset or raise --max-wait",
                reset_at=limit.reset_at,
                url=url,
            )
        self._emit(Event(kind="wait", url=url, seconds=seconds, reason=reason))
        self._sleep(seconds)

    def _backoff(self, failures: int, url: str, reason: str) -> None:
        seconds = min(2.0 ** (failures - 1), MAX_BACKOFF_S)
        self._wait(seconds, f"{reason}; try {failures + 1} of {MAX_TRIES}", url)

    def _emit(self, event: Event) -> None:
        if self._on_event is not None:
            with self._event_lock:
                self._on_event(event)

    def _error(self, response: httpx.Response, url: str, failures: int) -> GitHubError:
        status = response.status_code
        path = response.request.url.path
        if status == 401:
            return GitHubError(CREDENTIALS_REJECTED, status=status, url=url)
        if status == 404:
            return GitHubError(self._not_found(path), status=status, url=url)
        message = _message(response)
        if status >= 500:
            text = f"GitHub answered {status} for {path} {failures} times ({message}): try later"
        elif status == 403:
            text = (
                f"GitHub answered 403 for {path}: {message}; check that the credentials may "
                "read this repository's metadata, Actions and deployments"
            )
        else:
            text = f"GitHub answered {status} for {path}: {message}"
        return GitHubError(text, status=status, url=url)

    def _not_found(self, path: str) -> str:
        base_path = self._base.path
        route = path[len(base_path) :] if path.startswith(base_path) else path.lstrip("/")
        for pattern, text in _NOT_FOUND:
            if match := pattern.fullmatch(route):
                return text.format(*match.groups(), path=path)
        return f"{path} not found (404 from GitHub): check github.base_url"


def _auth_strategy(
    token: str | None, app: AppAuth | None
) -> TokenAuthStrategy | AppInstallationAuthStrategy:
    if token and app is not None:
        raise ConfigError("both a GitHub token and github.app are set: configure only one")
    if app is not None:
        return AppInstallationAuthStrategy(app.app_id, app.private_key, app.installation_id)
    if token:
        return TokenAuthStrategy(token)
    raise ConfigError(
        "GitHub token missing: set GITHUB_TOKEN (or the variable github.token_env names) "
        "or configure github.app"
    )


def _to_page(url: str, response: httpx.Response, sent_etag: str | None) -> Page:
    not_modified = response.status_code == 304
    data = None if not_modified else _json(response, url)
    total = data.get("total_count") if isinstance(data, dict) else None
    return Page(
        url=url,
        status=response.status_code,
        data=data,
        etag=response.headers.get("etag") or (sent_etag if not_modified else None),
        next_url=response.links.get("next", {}).get("url"),
        total_count=total if isinstance(total, int) and not isinstance(total, bool) else None,
    )


def _json(response: httpx.Response, url: str) -> Any:
    if not response.content:
        return None
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        kind = response.headers.get("content-type", "no content type")
        raise GitHubError(
            f"GitHub answered {httpx.URL(url).path} with a body that is not JSON ({kind}): "
            "check github.base_url (GitHub Enterprise Server: https://HOST/api/v3)",
            status=response.status_code,
            url=url,
        ) from exc


def _message(response: httpx.Response) -> str:
    """GitHub's error message from the body, else the reason phrase; one line."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    text = message if isinstance(message, str) and message else response.reason_phrase
    return " ".join(text.split())[:300]


def _int_header(response: httpx.Response, name: str) -> int | None:
    try:
        return int(response.headers[name])
    except (KeyError, ValueError):
        return None


def _describe(exc: httpx.TransportError) -> str:
    detail = str(exc)
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _utc_text(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# -- fetch helpers: one GitHub endpoint each ------------------------------------------------


def fetch_repo(client: GitHubClient, repo: str) -> dict[str, Any]:
    """The repository object of OWNER/NAME (GET /repos/{repo})."""
    return _object(client.get(_repo_path(repo)))


def fetch_org_repos(client: GitHubClient, org: str) -> list[dict[str, Any]]:
    """Every repository of an organization that the credentials can see."""
    if not _ORG.fullmatch(org):
        raise ConfigError(f"{org!r} is not a GitHub organization name: fix github.org")
    pages = client.pages(f"/orgs/{org}/repos", {"per_page": PER_PAGE})
    return [item for page in pages for item in _items(page, None)]


def fetch_workflows(client: GitHubClient, repo: str) -> list[dict[str, Any]]:
    """Every workflow of a repository (id, name, path, state)."""
    pages = client.pages(f"{_repo_path(repo)}/actions/workflows", {"per_page": PER_PAGE})
    return [item for page in pages for item in _items(page, "workflows")]


def fetch_runs_page(
    client: GitHubClient,
    repo: str,
    *,
    workflow: int | str | None,
    created_from: datetime,
    created_to: datetime,
    page: int = 1,
    etag: str | None = None,
) -> Page:
    """One page (100 runs) of the runs created in the half-open window [created_from, created_to).

    `workflow` is an id or file name; None lists the runs of every workflow. `total_count`
    counts the whole window, but GitHub serves only its first 1,000 runs: split such windows.
    """
    created = _created_range(created_from, created_to)
    params: Params = {"per_page": PER_PAGE, "created": created, "page": page}
    return client.get(_runs_path(repo, workflow), params, etag=etag)


def fetch_runs(
    client: GitHubClient,
    repo: str,
    *,
    workflow: int | str | None,
    created_from: datetime,
    created_to: datetime,
    etags: Mapping[str, str] = _NO_ETAGS,
) -> Iterator[Page]:
    """Every page of the runs created in [created_from, created_to), as fetch_runs_page.

    Each page is requested with If-None-Match: etags[page URL] when that key is present.
    """
    params: Params = {"per_page": PER_PAGE, "created": _created_range(created_from, created_to)}
    return client.pages(_runs_path(repo, workflow), params, etags=etags)


def _runs_path(repo: str, workflow: int | str | None) -> str:
    if workflow is None:
        return f"{_repo_path(repo)}/actions/runs"
    return f"{_repo_path(repo)}/actions/workflows/{quote(str(workflow), safe='')}/runs"


def fetch_run_attempt(
    client: GitHubClient, repo: str, run_id: int, attempt: int, *, etag: str | None = None
) -> Page:
    """One attempt of a run (GET /repos/{repo}/actions/runs/{run_id}/attempts/{attempt})."""
    return client.get(f"{_repo_path(repo)}/actions/runs/{run_id}/attempts/{attempt}", etag=etag)


def fetch_jobs(
    client: GitHubClient, repo: str, run_id: int, *, etags: Mapping[str, str] = _NO_ETAGS
) -> list[Page]:
    """All pages of the jobs of every attempt of a run (filter=all)."""
    params: Params = {"filter": "all", "per_page": PER_PAGE}
    return list(client.pages(f"{_repo_path(repo)}/actions/runs/{run_id}/jobs", params, etags=etags))


def fetch_deployments(
    client: GitHubClient,
    repo: str,
    *,
    environment: str | None,
    etags: Mapping[str, str] = _NO_ETAGS,
) -> Iterator[Page]:
    """Pages of a repository's deployments, newest first; None means every environment."""
    params: dict[str, str | int] = {"per_page": PER_PAGE}
    if environment is not None:
        params["environment"] = environment
    return client.pages(f"{_repo_path(repo)}/deployments", params, etags=etags)


def fetch_deployment_statuses(
    client: GitHubClient, repo: str, deployment_id: int, *, etag: str | None = None
) -> list[Page]:
    """All pages of one deployment's statuses; `etag` applies to the first page."""
    path = f"{_repo_path(repo)}/deployments/{deployment_id}/statuses"
    params: Params = {"per_page": PER_PAGE}
    etags = {client.url_for(path, params): etag} if etag else _NO_ETAGS
    return list(client.pages(path, params, etags=etags))


def _repo_path(repo: str) -> str:
    if not _REPO.fullmatch(repo):
        raise ConfigError(f"repository {repo!r} is not OWNER/NAME: fix github.repos")
    return f"/repos/{repo}"


def _created_range(created_from: datetime, created_to: datetime) -> str:
    """GitHub's inclusive `created` range A..B for [from, to): timestamps have 1 s resolution."""
    start = _ceil_second(created_from)
    end = _ceil_second(created_to) - timedelta(seconds=1)
    if end < start:
        raise ValueError(f"empty created window [{created_from}, {created_to})")
    return f"{start:%Y-%m-%dT%H:%M:%SZ}..{end:%Y-%m-%dT%H:%M:%SZ}"


def _ceil_second(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{moment} has no time zone: pass UTC datetimes")
    moment = moment.astimezone(UTC)
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + timedelta(seconds=1)


def _object(page: Page) -> dict[str, Any]:
    if not isinstance(page.data, dict):
        raise GitHubError(f"GitHub answered {page.url} without a JSON object", url=page.url)
    return page.data


def _items(page: Page, key: str | None) -> list[dict[str, Any]]:
    """The objects of one listing page (none on a 304)."""
    if page.data is None:
        return []
    items = page.data if key is None else _object(page).get(key)
    if not isinstance(items, list):
        raise GitHubError(
            f"GitHub answered {page.url} without a list of {key or 'items'}", url=page.url
        )
    return [item for item in items if isinstance(item, dict)]
