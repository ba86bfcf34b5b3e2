"""A fake GitHub REST API for tests: real HTTP on 127.0.0.1, query parameters, a request log.

It serves raw API dicts as stored and implements what deploystats relies on: the `created`
search syntax, filters, `per_page`/`page` with GitHub's `Link` header, the 1,000-result cap of
filtered run listings, latest attempts vs `/attempts/{n}`, `filter=latest|all` for jobs, weak
ETags with free 304s, primary and secondary rate limits, 401/404, injected faults, and GitHub
App installation tokens. Requests to routes it does not implement are answered 404 and listed in
`unexpected`, which tests assert is empty.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
import orjson

from tests.localhttp import LoopbackServer

Json = dict[str, Any]

DOCS = "https://docs.github.com/rest"
API_VERSIONS = frozenset({"2022-11-28", "2026-03-10"})
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
SEARCH_CAP = 1000  # runs listings with a search parameter reach only the first 1,000 results
DEPLOYMENT_FILTERS = ("environment", "sha", "ref", "task")
SEARCH_PARAMS = ("actor", "branch", "check_suite_id", "created", "event", "head_sha", "status")
# the values `status` accepts: a run status or a conclusion
RUN_STATUSES = frozenset(
    {"completed", "action_required", "cancelled", "failure", "neutral", "skipped", "stale"}
    | {"success", "timed_out", "in_progress", "queued", "requested", "waiting", "pending"}
)
SECONDARY_LIMIT_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID {request_id}."
)
SECONDARY_LIMIT_DOCS = (
    "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api"
    "#about-secondary-rate-limits"
)
PRIMARY_LIMIT_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?(Z|[+-]\d{2}:\d{2})?")
_REPO_URL = re.compile(r"/repos/(?P<repo>[^/]+/[^/]+)")
_RUN_URL = re.compile(r"/repos/(?P<repo>[^/]+/[^/]+)/actions/runs/(?P<run_id>\d+)")
_DEPLOYMENT_URL = re.compile(r"/repos/(?P<repo>[^/]+/[^/]+)/deployments/(?P<id>\d+)")


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: dict[str, str]
    status: int
    conditional: bool  # If-None-Match was sent
    api_version: str | None = None  # the X-GitHub-Api-Version header


@dataclass
class _Request:
    method: str
    path: str
    pairs: list[tuple[str, str]]
    headers: Message

    @property
    def query(self) -> dict[str, str]:
        return dict(self.pairs)


@dataclass
class _Reply:
    status: int
    body: Any = None  # JSON-serialisable, or None for no body
    headers: dict[str, str] = field(default_factory=dict)


class _Error(Exception):
    """A GitHub error response raised from a route handler."""

    def __init__(self, status: int, message: str, *, invalid: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.invalid = invalid  # a malformed request from the client: also listed in `unexpected`


@dataclass
class _RateBucket:
    limit: int
    reset: int
    used: int = 0

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def roll(self, now: float) -> None:
        if now >= self.reset:
            self.used = 0
            self.reset = math.ceil(now) + 3600

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(self.reset),
            "x-ratelimit-used": str(self.used),
            "x-ratelimit-resource": "core",
        }


@dataclass
class _Fault:
    pattern: re.Pattern[str]
    status: int
    times: int
    headers: dict[str, str]
    body: Json | None


_R = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
_RUN = _R + r"/actions/runs/(?P<run_id>\d+)"
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (method, re.compile(pattern), handler)
    for method, pattern, handler in [
        ("GET", _R, "_get_repo"),
        ("GET", r"/orgs/(?P<org>[^/]+)/repos", "_list_org_repos"),
        ("GET", _R + r"/actions/workflows", "_list_workflows"),
        ("GET", _R + r"/actions/workflows/(?P<workflow>[^/]+)", "_get_workflow"),
        ("GET", _R + r"/actions/workflows/(?P<workflow>[^/]+)/runs", "_list_workflow_runs"),
        ("GET", _R + r"/actions/runs", "_list_repo_runs"),
        ("GET", _RUN, "_get_run"),
        ("GET", _RUN + r"/attempts/(?P<attempt>\d+)", "_get_attempt"),
        ("GET", _RUN + r"/jobs", "_list_run_jobs"),
        ("GET", _RUN + r"/attempts/(?P<attempt>\d+)/jobs", "_list_attempt_jobs"),
        ("GET", _R + r"/deployments", "_list_deployments"),
        ("GET", _R + r"/deployments/(?P<deployment_id>\d+)/statuses", "_list_statuses"),
        ("POST", r"/app/installations/(?P<id>\d+)/access_tokens", "_create_installation_token"),
    ]
]
# documentation_url of each route's errors, under DOCS
_ROUTE_DOCS = {
    "_get_repo": "repos/repos#get-a-repository",
    "_list_org_repos": "repos/repos#list-organization-repositories",
    "_list_workflows": "actions/workflows#list-repository-workflows",
    "_get_workflow": "actions/workflows#get-a-workflow",
    "_list_workflow_runs": "actions/workflow-runs#list-workflow-runs-for-a-workflow",
    "_list_repo_runs": "actions/workflow-runs#list-workflow-runs-for-a-repository",
    "_get_run": "actions/workflow-runs#get-a-workflow-run",
    "_get_attempt": "actions/workflow-runs#get-a-workflow-run-attempt",
    "_list_run_jobs": "actions/workflow-jobs#list-jobs-for-a-workflow-run",
    "_list_attempt_jobs": "actions/workflow-jobs#list-jobs-for-a-workflow-run-attempt",
    "_list_deployments": "deployments/deployments#list-deployments",
    "_list_statuses": "deployments/statuses#list-deployment-statuses",
    "_create_installation_token": "apps/apps#create-an-installation-access-token-for-an-app",
}


class FakeGitHub:
    """A GitHub REST API server holding repositories, workflows, runs, jobs and deployments.

    `url` is the base URL for githubkit (`base_url=fake.url`). Every request is appended to
    `requests`; requests to routes not implemented are answered 404 and listed in `unexpected`,
    as are malformed parameters (answered 422).
    """

    def __init__(
        self,
        *,
        token: str = "test-token",
        rate_limit: int = 5000,
        clock: Callable[[], float] = time.time,
        app_id: int | None = None,
        app_public_key_pem: bytes | None = None,
    ) -> None:
        self.token = token
        self.clock = clock
        self.app_id = app_id
        self.app_public_key_pem = app_public_key_pem
        self.requests: list[LoggedRequest] = []
        self.unexpected: list[str] = []
        self._lock = threading.Lock()
        reset = math.ceil(clock()) + 3600
        self._core = _RateBucket(rate_limit, reset)
        self._unauthenticated = _RateBucket(60, reset)
        self._app = _RateBucket(5000, reset)
        self._request_ids = itertools.count(1)
        self._ids = itertools.count(1)
        self._faults: list[_Fault] = []
        # installation token -> (installation id, expiry per clock)
        self._installation_tokens: dict[str, tuple[int, float]] = {}
        # keys are lower-case "owner/name": GitHub's names are case-insensitive
        self._repos: dict[str, Json] = {}
        self._repo_orgs: dict[str, str | None] = {}
        self._workflows: dict[str, dict[int, Json]] = {}
        # (repo, run id) -> run_attempt -> run
        self._runs: dict[tuple[str, int], dict[int, Json]] = {}
        # (repo, run id, run_attempt) -> job id -> job
        self._jobs: dict[tuple[str, int, int], dict[int, Json]] = {}
        self._job_keys: dict[int, tuple[str, int, int]] = {}
        self._deployments: dict[str, dict[int, Json]] = {}
        self._statuses: dict[tuple[str, int], dict[int, Json]] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeGitHub is not running: call start() or use it in a with block")
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> FakeGitHub:
        if self._server is not None:
            raise RuntimeError("FakeGitHub is already running")
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name="fakegithub"
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()
        self._server.server_close()  # joins the request threads
        self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- data ------------------------------------------------------------------------------

    def add_repo(self, full_name: str, *, org: str | None = None) -> Json:
        """Store a minimal repository object; `org` lists it under `/orgs/{org}/repos`."""
        owner, _, name = full_name.partition("/")
        if not owner or not name or "/" in name:
            raise ValueError(f"repository {full_name!r} is not 'owner/name'")
        if org is not None and org.lower() != owner.lower():
            raise ValueError(
                f"repository {full_name!r} cannot belong to org {org!r}: owner differs"
            )
        key = full_name.lower()
        with self._lock:
            repo_id = self._repos[key]["id"] if key in self._repos else next(self._ids)
            repo = {
                "id": repo_id,
                "node_id": f"R_{repo_id}",
                "name": name,
                "full_name": full_name,
                "private": False,
                "visibility": "public",
                "owner": {"login": owner, "id": repo_id, "type": "Organization" if org else "User"},
                "html_url": f"https://github.com/{full_name}",
                "url": f"https://api.github.com/repos/{full_name}",
                "fork": False,
                "archived": False,
                "disabled": False,
                "default_branch": "main",
                "created_at": "2020-01-01T00:00:00Z",
                "updated_at": "2020-01-01T00:00:00Z",
                "pushed_at": "2020-01-01T00:00:00Z",
            }
            self._repos[key] = repo
            self._repo_orgs[key] = org.lower() if org else None
        return repo

    def add_workflow(self, repo: str, *, id: int, name: str, path: str) -> Json:
        """Store a workflow object; `path` like `.github/workflows/deploy-production.yml`."""
        self._ensure_repo(repo)
        workflow = {
            "id": id,
            "node_id": f"W_{id}",
            "name": name,
            "path": path,
            "state": "active",
            "created_at": "2020-01-01T00:00:00.000Z",
            "updated_at": "2020-01-01T00:00:00.000Z",
            "url": f"https://api.github.com/repos/{repo}/actions/workflows/{id}",
            "html_url": f"https://github.com/{repo}/blob/main/{path}",
            "badge_url": f"https://github.com/{repo}/workflows/{name}/badge.svg",
        }
        with self._lock:
            self._workflows.setdefault(repo.lower(), {})[id] = workflow
        return workflow

    def add_run(self, run: Json) -> None:
        """Store one attempt of a run; the same (repo, id, run_attempt) replaces the earlier one."""
        repo = run["repository"]["full_name"]
        _timestamp(run["created_at"])  # listings sort and filter on it: fail here, not when served
        owner = run["repository"].get("owner") or {}
        self._ensure_repo(
            repo, org=owner.get("login") if owner.get("type") == "Organization" else None
        )
        with self._lock:
            workflows = self._workflows.get(repo.lower(), {})
        if run["workflow_id"] not in workflows:
            self.add_workflow(repo, id=run["workflow_id"], name=run["name"], path=run["path"])
        with self._lock:
            self._runs.setdefault((repo.lower(), run["id"]), {})[run["run_attempt"]] = _copy(run)

    def add_job(self, job: Json) -> None:
        """Store a job of (repo in `run_url`, `run_id`, `run_attempt`); the same job id replaces."""
        match = _RUN_URL.search(job["run_url"])
        if match is None:
            raise ValueError(f"job {job['id']}: run_url {job['run_url']!r} names no run")
        key = (match["repo"].lower(), job["run_id"], job["run_attempt"])
        with self._lock:
            if (old_key := self._job_keys.get(job["id"])) is not None:
                del self._jobs[old_key][job["id"]]
            self._jobs.setdefault(key, {})[job["id"]] = _copy(job)
            self._job_keys[job["id"]] = key

    def add_deployment(self, repo: str, deployment: Json) -> None:
        self._ensure_repo(repo)
        with self._lock:
            self._deployments.setdefault(repo.lower(), {})[deployment["id"]] = _copy(deployment)

    def add_deployment_status(self, repo: str, deployment_id: int, status: Json) -> None:
        with self._lock:
            statuses = self._statuses.setdefault((repo.lower(), deployment_id), {})
            statuses[status["id"]] = _copy(status)

    def load(
        self,
        *,
        runs: Iterable[Json] = (),
        jobs: Iterable[Json] = (),
        deployments: Iterable[Json | tuple[str, Json]] = (),
        statuses: Iterable[Json] = (),
    ) -> None:
        """Bulk add: deployments as (repo, dict) or dicts with `repository_url`; statuses as
        dicts with `deployment_url`."""
        for run in runs:
            self.add_run(run)
        for job in jobs:
            self.add_job(job)
        for item in deployments:
            repo, deployment = item if isinstance(item, tuple) else (_repo_of(item), item)
            self.add_deployment(repo, deployment)
        for status in statuses:
            match = _DEPLOYMENT_URL.search(status["deployment_url"])
            if match is None:
                raise ValueError(f"status {status['id']}: bad deployment_url")
            self.add_deployment_status(match["repo"], int(match["id"]), status)

    def _ensure_repo(self, full_name: str, *, org: str | None = None) -> None:
        with self._lock:
            known = full_name.lower() in self._repos
        if not known:
            self.add_repo(full_name, org=org)

    # -- faults and inspection -------------------------------------------------------------

    def fail_next(
        self,
        path_regex: str,
        status: int,
        *,
        times: int = 1,
        headers: Mapping[str, str] | None = None,
        body: Json | None = None,
    ) -> None:
        """Answer the next `times` requests whose path matches (re.search) with `status`.

        Without `body`: 403/429 get GitHub's secondary-rate-limit message, others the status
        phrase. Faults do not count against the rate limit.
        """
        fault = _Fault(re.compile(path_regex), status, times, dict(headers or {}), body)
        with self._lock:
            self._faults.append(fault)

    def exhaust_rate_limit(self, *, reset_in: float = 60) -> None:
        """Use up the core limit: requests get the primary-limit 403 until clock() >= reset."""
        with self._lock:
            self._core.used = self._core.limit
            self._core.reset = math.ceil(self.clock() + reset_in)

    def reset_log(self) -> None:
        """Forget logged requests (`unexpected` is kept: it lists test failures)."""
        with self._lock:
            self.requests.clear()

    def count(self, path_regex: str = ".*", *, status: int | None = None) -> int:
        pattern = re.compile(path_regex)
        with self._lock:
            return sum(
                1
                for r in self.requests
                if pattern.search(r.path) and (status is None or r.status == status)
            )

    # -- request handling ------------------------------------------------------------------

    def _serve(
        self, method: str, target: str, headers: Message
    ) -> tuple[int, dict[str, str], bytes]:
        split = urlsplit(target)
        request = _Request(
            method, split.path, parse_qsl(split.query, keep_blank_values=True), headers
        )
        with self._lock:
            try:
                reply = self._dispatch(request)
            except Exception as exc:  # a bug in the fake must fail the test, not hang it
                self.unexpected.append(f"{method} {target}: fake crashed: {exc!r}")
                reply = self._error(500, "fake GitHub crashed", self._core)
            self.requests.append(
                LoggedRequest(
                    method=method,
                    path=request.path,
                    query=request.query,
                    status=reply.status,
                    conditional="If-None-Match" in headers,
                    api_version=headers.get("X-GitHub-Api-Version"),
                )
            )
        body = b"" if reply.body is None else orjson.dumps(reply.body)
        return reply.status, reply.headers, body

    def _dispatch(self, request: _Request) -> _Reply:
        now = self.clock()
        for bucket in (self._core, self._unauthenticated, self._app):
            bucket.roll(now)
        if (fault := self._take_fault(request.path)) is not None:
            return self._fault_reply(fault)
        route = self._route(request)
        if route is None:
            self.unexpected.append(f"{request.method} {_target(request)}: route not implemented")
            return self._error(404, "Not Found", self._core)
        handler, groups, doc = route
        if (refusal := self._refusal(request, handler, doc)) is not None:
            return refusal
        bucket = self._app if handler == "_create_installation_token" else self._core
        try:
            reply: _Reply = getattr(self, handler)(request, **groups)
        except _Error as exc:
            if exc.invalid:
                self.unexpected.append(f"{request.method} {_target(request)}: {exc.message}")
            bucket.used += 1
            return self._error(exc.status, exc.message, bucket, doc)
        if request.method == "GET" and reply.status == 200:
            reply.headers["ETag"] = (
                'W/"' + hashlib.sha256(orjson.dumps(reply.body)).hexdigest() + '"'
            )
            if _etag_matches(request.headers.get("If-None-Match"), reply.headers["ETag"]):
                reply = _Reply(304, None, reply.headers)
        if reply.status != 304:
            bucket.used += 1
        reply.headers.update(self._common_headers(bucket))
        return reply

    def _refusal(self, request: _Request, handler: str, doc: str) -> _Reply | None:
        """The error for an unsupported API version, bad credentials or the primary limit."""
        version = request.headers.get("X-GitHub-Api-Version")
        if version is not None and version not in API_VERSIONS:
            self.unexpected.append(f"{request.method} {_target(request)}: API version {version}")
            return self._error(400, f"API version {version} is not supported.", self._core, doc)
        authorization = request.headers.get("Authorization", "")
        identity: str | None
        if handler == "_create_installation_token":
            identity, problem = "the app", self._check_app_jwt(authorization)
        else:
            identity = self._identity(authorization)
            problem = None if identity else "Bad credentials"
        if problem is not None:
            self._unauthenticated.used += 1
            return self._error(401, problem, self._unauthenticated, doc)
        if handler != "_create_installation_token" and self._core.remaining == 0:
            message = f"API rate limit exceeded for {identity}."
            return self._error(403, message, self._core, PRIMARY_LIMIT_DOCS)
        return None

    def _route(self, request: _Request) -> tuple[str, dict[str, str], str] | None:
        for method, pattern, handler in _ROUTES:
            if method == request.method and (match := pattern.fullmatch(request.path)):
                if handler == "_create_installation_token" and self.app_public_key_pem is None:
                    return None  # the test did not configure GitHub App auth
                return handler, match.groupdict(), f"{DOCS}/{_ROUTE_DOCS[handler]}"
        return None

    def _identity(self, authorization: str) -> str | None:
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() not in ("token", "bearer") or not credential:
            return None
        if credential == self.token:
            return "user ID 1"
        installation, expiry = self._installation_tokens.get(credential, (0, 0.0))
        return f"installation ID {installation}" if self.clock() < expiry else None

    def _check_app_jwt(self, authorization: str) -> str | None:
        """Return GitHub's complaint about the app JWT, or None when it is valid."""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return "A JSON web token could not be decoded"
        try:
            # PyJWS, not jwt.decode: GitHub accepts an integer `iss`, which PyJWT's claims
            # validation rejects.
            key = self.app_public_key_pem or b""
            payload = jwt.PyJWS().decode(token, key, algorithms=["RS256"])
            claims = orjson.loads(payload)
            issuer, issued_at, expires = claims["iss"], float(claims["iat"]), float(claims["exp"])
        except (jwt.PyJWTError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return "A JSON web token could not be decoded"
        if str(issuer) != str(self.app_id):
            return "'Issuer' claim ('iss') must be the app's ID"
        if expires <= self.clock():
            return (
                "'Expiration time' claim ('exp') must be a numeric value representing the future "
                "time at which the assertion expires"
            )
        if expires - issued_at > 600:
            return "'Expiration time' claim ('exp') is too far in the future"
        return None

    def _take_fault(self, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.pattern.search(path):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _fault_reply(self, fault: _Fault) -> _Reply:
        bucket = self._unauthenticated if fault.status == 401 else self._core
        reply = self._error(fault.status, HTTPStatus(fault.status).phrase, bucket)
        if fault.status in (403, 429):
            reply.body = {
                "message": SECONDARY_LIMIT_MESSAGE.format(
                    request_id=reply.headers["x-github-request-id"]
                ),
                "documentation_url": SECONDARY_LIMIT_DOCS,
            }
        if fault.status == 401:
            reply.body["message"] = "Bad credentials"
        if fault.body is not None:
            reply.body = fault.body
        reply.headers.update(fault.headers)
        return reply

    def _error(self, status: int, message: str, bucket: _RateBucket, doc: str = DOCS) -> _Reply:
        body = {"message": message, "documentation_url": doc, "status": str(status)}
        return _Reply(status, body, self._common_headers(bucket))

    def _common_headers(self, bucket: _RateBucket) -> dict[str, str]:
        return {
            **bucket.headers(),
            "x-github-request-id": f"FAKE:{next(self._request_ids):08X}",
            "x-github-media-type": "github.v3; format=json",
            "cache-control": "private, max-age=60, s-maxage=60",
            "vary": "Accept, Authorization, Cookie, X-GitHub-OTP",
        }

    def _paginate(
        self, request: _Request, items: list[Any], *, cap: int | None = None
    ) -> tuple[list[Any], dict[str, str]]:
        """One page of `items` and its Link header; items past `cap` are unreachable."""
        query = request.query
        per_page = _positive_int(query.get("per_page"), DEFAULT_PER_PAGE, maximum=MAX_PER_PAGE)
        page = _positive_int(query.get("page"), 1)
        reachable = items if cap is None else items[:cap]
        last = max(1, math.ceil(len(reachable) / per_page))
        rels = []
        if page > 1:
            rels.append(("prev", min(page - 1, last)))
        if page < last:
            rels += [("next", page + 1), ("last", last)]
        if page > 1:
            rels.append(("first", 1))
        links = ", ".join(f'<{self._page_url(request, n)}>; rel="{rel}"' for rel, n in rels)
        start = (page - 1) * per_page
        return reachable[start : start + per_page], ({"Link": links} if links else {})

    def _page_url(self, request: _Request, page: int) -> str:
        pairs = list(request.pairs)
        for i, (key, _) in enumerate(pairs):
            if key == "page":
                pairs[i] = ("page", str(page))
                break
        else:
            pairs.append(("page", str(page)))
        return f"{self.url}{request.path}?{urlencode(pairs)}"

    # -- route handlers (called under the lock) --------------------------------------------

    def _repo_key(self, owner: str, repo: str) -> str:
        key = f"{owner}/{repo}".lower()
        if key not in self._repos:
            raise _Error(404, "Not Found")
        return key

    def _get_repo(self, request: _Request, owner: str, repo: str) -> _Reply:
        return _Reply(200, self._repos[self._repo_key(owner, repo)])

    def _list_org_repos(self, request: _Request, org: str) -> _Reply:
        keys = [key for key, owner in self._repo_orgs.items() if owner == org.lower()]
        if not keys:
            raise _Error(404, "Not Found")
        query = request.query
        repos = [self._repos[key] for key in keys] if query.get("type") != "forks" else []
        sort = query.get("sort", "created")
        direction = query.get("direction", "asc" if sort == "full_name" else "desc")
        if sort == "full_name":
            repos.sort(key=lambda r: r["full_name"].lower(), reverse=direction == "desc")
        else:  # created, updated, pushed: the fake's repos were created in id order
            repos.sort(key=lambda r: r["id"], reverse=direction == "desc")
        page, headers = self._paginate(request, repos)
        return _Reply(200, page, headers)

    def _list_workflows(self, request: _Request, owner: str, repo: str) -> _Reply:
        workflows = sorted(self._workflows.get(self._repo_key(owner, repo), {}).values(), key=_id)
        page, headers = self._paginate(request, workflows)
        return _Reply(200, {"total_count": len(workflows), "workflows": page}, headers)

    def _find_workflow(self, owner: str, repo: str, workflow: str) -> Json:
        for candidate in self._workflows.get(self._repo_key(owner, repo), {}).values():
            if workflow in (str(candidate["id"]), candidate["path"].rsplit("/", 1)[-1]):
                return candidate
        raise _Error(404, "Not Found")

    def _get_workflow(self, request: _Request, owner: str, repo: str, workflow: str) -> _Reply:
        return _Reply(200, self._find_workflow(owner, repo, workflow))

    def _list_workflow_runs(
        self, request: _Request, owner: str, repo: str, workflow: str
    ) -> _Reply:
        workflow_id = self._find_workflow(owner, repo, workflow)["id"]
        return self._list_runs(request, self._repo_key(owner, repo), workflow_id)

    def _list_repo_runs(self, request: _Request, owner: str, repo: str) -> _Reply:
        return self._list_runs(request, self._repo_key(owner, repo), None)

    def _list_runs(self, request: _Request, repo: str, workflow_id: int | None) -> _Reply:
        query = request.query
        keep = _run_filter(query)
        latest = [_latest(attempts) for (key, _), attempts in self._runs.items() if key == repo]
        runs = [
            run
            for run in latest
            if (workflow_id is None or run["workflow_id"] == workflow_id) and keep(run)
        ]
        runs.sort(key=lambda r: (_timestamp(r["created_at"]), r["id"]), reverse=True)
        capped = any(name in query for name in SEARCH_PARAMS)
        page, headers = self._paginate(request, runs, cap=SEARCH_CAP if capped else None)
        page = [_without_pull_requests(r, query) for r in page]
        return _Reply(200, {"total_count": len(runs), "workflow_runs": page}, headers)

    def _attempts(self, owner: str, repo: str, run_id: str) -> tuple[str, dict[int, Json]]:
        key = self._repo_key(owner, repo)
        if (attempts := self._runs.get((key, int(run_id)))) is None:
            raise _Error(404, "Not Found")
        return key, attempts

    def _get_run(self, request: _Request, owner: str, repo: str, run_id: str) -> _Reply:
        _, attempts = self._attempts(owner, repo, run_id)
        return _Reply(200, _without_pull_requests(_latest(attempts), request.query))

    def _get_attempt(
        self, request: _Request, owner: str, repo: str, run_id: str, attempt: str
    ) -> _Reply:
        _, attempts = self._attempts(owner, repo, run_id)
        if (run := attempts.get(int(attempt))) is None:
            raise _Error(404, "Not Found")
        return _Reply(200, _without_pull_requests(run, request.query))

    def _list_run_jobs(self, request: _Request, owner: str, repo: str, run_id: str) -> _Reply:
        key, attempts = self._attempts(owner, repo, run_id)
        which = request.query.get("filter", "latest")
        if which not in ("latest", "all"):
            raise _Error(422, f"filter {which!r} is not one of latest, all", invalid=True)
        wanted = range(1, max(attempts) + 1) if which == "all" else [max(attempts)]
        return self._jobs_page(request, key, int(run_id), wanted)

    def _list_attempt_jobs(
        self, request: _Request, owner: str, repo: str, run_id: str, attempt: str
    ) -> _Reply:
        key, attempts = self._attempts(owner, repo, run_id)
        if not 1 <= int(attempt) <= max(attempts):
            raise _Error(404, "Not Found")
        return self._jobs_page(request, key, int(run_id), [int(attempt)])

    def _jobs_page(
        self, request: _Request, repo: str, run_id: int, attempts: Iterable[int]
    ) -> _Reply:
        jobs = sorted(
            (job for n in attempts for job in self._jobs.get((repo, run_id, n), {}).values()),
            key=_id,
        )
        page, headers = self._paginate(request, jobs)
        return _Reply(200, {"total_count": len(jobs), "jobs": page}, headers)

    def _list_deployments(self, request: _Request, owner: str, repo: str) -> _Reply:
        query = request.query
        deployments = [
            d
            for d in self._deployments.get(self._repo_key(owner, repo), {}).values()
            if all(d.get(name) == query[name] for name in DEPLOYMENT_FILTERS if name in query)
        ]
        page, headers = self._paginate(request, _newest_first(deployments))
        return _Reply(200, page, headers)

    def _list_statuses(
        self, request: _Request, owner: str, repo: str, deployment_id: str
    ) -> _Reply:
        key = self._repo_key(owner, repo)
        if int(deployment_id) not in self._deployments.get(key, {}):
            raise _Error(404, "Not Found")
        statuses = self._statuses.get((key, int(deployment_id)), {}).values()
        page, headers = self._paginate(request, _newest_first(statuses))
        return _Reply(200, page, headers)

    def _create_installation_token(self, request: _Request, id: str) -> _Reply:
        installation_id = int(id)
        number = len(self._installation_tokens) + 1
        token = "ghs_" + hashlib.sha256(f"{installation_id}:{number}".encode()).hexdigest()[:36]
        expiry = math.floor(self.clock()) + 3600
        self._installation_tokens[token] = (installation_id, expiry)
        expires_at = datetime.fromtimestamp(expiry, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "token": token,
            "expires_at": expires_at,
            "permissions": {"actions": "read", "deployments": "read", "metadata": "read"},
            "repository_selection": "all",
        }
        return _Reply(201, body)


class _Server(LoopbackServer):
    request_queue_size = 128  # the default 5 drops bursts of concurrent connects (1 s SYN retry)

    def __init__(self, fake: FakeGitHub) -> None:
        super().__init__(_Handler)
        self.fake = fake


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection: nothing idles open at stop()
    timeout = 10

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _handle(self) -> None:
        if length := int(self.headers.get("Content-Length") or 0):
            self.rfile.read(length)
        status, headers, body = self.server.fake._serve(self.command, self.path, self.headers)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr line; the fake keeps its own log."""


# -- helpers -------------------------------------------------------------------------------


def _copy(obj: Json) -> Json:
    """A deep copy, which also checks now that the object is JSON-serialisable."""
    copied: Json = orjson.loads(orjson.dumps(obj))
    return copied


def _id(obj: Json) -> int:
    return int(obj["id"])


def _latest(attempts: dict[int, Json]) -> Json:
    return attempts[max(attempts)]


def _repo_of(deployment: Json) -> str:
    match = _REPO_URL.search(deployment.get("repository_url") or "")
    if match is None:
        raise ValueError(
            f"deployment {deployment.get('id')}: pass (repo, dict) or a repository_url"
        )
    return match["repo"]


def _target(request: _Request) -> str:
    return f"{request.path}?{urlencode(request.pairs)}" if request.pairs else request.path


def _timestamp(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _newest_first(items: Iterable[Json]) -> list[Json]:
    epoch = "1970-01-01T00:00:00Z"
    return sorted(
        items, key=lambda d: (_timestamp(d.get("created_at") or epoch), d["id"]), reverse=True
    )


def _positive_int(text: str | None, default: int, *, maximum: int | None = None) -> int:
    """GitHub ignores unusable paging values and caps per_page at 100."""
    try:
        value = int(text) if text is not None else default
    except ValueError:
        value = default
    value = value if value >= 1 else default
    return min(value, maximum) if maximum is not None else value


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    if if_none_match is None:
        return False
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") in ("*", wanted) for tag in if_none_match.split(","))


def _without_pull_requests(run: Json, query: Mapping[str, str]) -> Json:
    return {**run, "pull_requests": []} if query.get("exclude_pull_requests") == "true" else run


def _span(text: str) -> tuple[datetime, datetime]:
    """The half-open [start, end) a search date or datetime covers: a date is its whole day."""
    try:
        if _DATE.fullmatch(text):
            start = datetime.fromisoformat(text).replace(tzinfo=UTC)
            return start, start + timedelta(days=1)
        if _DATETIME.fullmatch(text):
            moment = _timestamp(text)
            return moment, moment + timedelta(microseconds=1)
    except ValueError:
        pass
    raise _Error(422, f"created: {text!r} is not a date or datetime", invalid=True)


def _parse_created(text: str) -> tuple[datetime | None, datetime | None]:
    """GitHub's `created` qualifier as a half-open [low, high) range (None: unbounded)."""
    low: datetime | None = None
    high: datetime | None = None
    if ".." in text:
        first, _, second = text.partition("..")
        low = None if first == "*" else _span(first)[0]
        high = None if second == "*" else _span(second)[1]
    elif text.startswith(">="):
        low = _span(text[2:])[0]
    elif text.startswith(">"):
        low = _span(text[1:])[1]
    elif text.startswith("<="):
        high = _span(text[2:])[1]
    elif text.startswith("<"):
        high = _span(text[1:])[0]
    else:
        low, high = _span(text)
    return low, high


def _run_filter(query: Mapping[str, str]) -> Callable[[Json], bool]:
    """The predicate for a runs listing's filters."""
    low, high = _parse_created(query["created"]) if "created" in query else (None, None)
    status = query.get("status")
    if status is not None and status not in RUN_STATUSES:
        raise _Error(422, f"status {status!r} is not a run status or conclusion", invalid=True)
    exact: dict[str, Callable[[Json], Any]] = {
        "branch": lambda r: r.get("head_branch"),
        "event": lambda r: r.get("event"),
        "head_sha": lambda r: r.get("head_sha"),
        "actor": lambda r: (r.get("actor") or {}).get("login"),
        "check_suite_id": lambda r: str(r.get("check_suite_id")),
    }
    checks = [(get, query[name]) for name, get in exact.items() if name in query]

    def keep(run: Json) -> bool:
        created = _timestamp(run["created_at"])
        return (
            (low is None or created >= low)
            and (high is None or created < high)
            and (status is None or status in (run.get("status"), run.get("conclusion")))
            and all(get(run) == value for get, value in checks)
        )

    return keep
