"""sync_github: list runs by created windows, fetch what changed, commit window by window.

Windows lie on a fixed 7-day grid (halved while a window holds 1,000 runs or more), so their
URLs and therefore their ETags stay the same from one sync to the next: a sync with nothing
new sends only conditional requests. A window is one batch: its runs, earlier attempts, jobs,
ETags and the scope's cursor commit together, oldest window first (DESIGN §2).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from deploystats.config import Settings
from deploystats.errors import BudgetExhausted, ConfigError, DeploystatsError, RateLimitError
from deploystats.sources.github import (
    PER_PAGE,
    GitHubClient,
    Params,
    fetch_deployment_statuses,
    fetch_deployments,
    fetch_org_repos,
    fetch_repo,
    fetch_runs,
    fetch_workflows,
)
from deploystats.store import (
    Store,
    load_attempts,
    load_etags,
    log_ingest,
    read_cursor,
    save_deployment_statuses,
    save_deployments,
    save_etags,
    save_jobs,
    save_runs,
    write_cursor,
)
from deploystats.store.save import Source

GRID = timedelta(days=7)
EPOCH = datetime(2020, 1, 6, tzinfo=UTC)  # a Monday: windows start on Mondays 00:00 UTC
MAX_LISTED = 1000
_PLAIN_FILE = ("*", "?", "[")


@dataclass
class SyncResult:
    """Counts of one sync; `stopped` explains an early, clean stop."""

    windows: int = 0
    runs: int = 0
    attempts: int = 0
    jobs: int = 0
    deployments: int = 0
    statuses: int = 0
    requests: int = 0
    not_modified: int = 0
    rate_remaining: int | None = None
    stopped: str | None = None
    scopes: list[str] = field(default_factory=list)


ProgressFn = Callable[[SyncResult, str], None]


@dataclass(frozen=True)
class Scope:
    """One repository and workflow (file name or id; None = every workflow)."""

    repo: str
    workflow: str | None

    @property
    def key(self) -> str:
        return f"{self.repo}:{self.workflow or '*'}"


def grid_windows(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """[from, to) windows on the 7-day grid covering [start, end), oldest first."""
    first = EPOCH + ((start - EPOCH) // GRID) * GRID
    while first < end:
        yield first, first + GRID
        first += GRID


def resolve_repos(client: GitHubClient, settings: Settings, only: str | None) -> list[str]:
    """The configured repos plus those the org scope includes; `only` restricts to one."""
    if only:
        return [only]
    repos = list(settings.github.repos)
    org = settings.github.org
    if org is not None:
        for repo in fetch_org_repos(client, org.name):
            name = str(repo["full_name"])
            short = name.split("/", 1)[1]
            included = any(
                fnmatch.fnmatch(short, g) or fnmatch.fnmatch(name, g) for g in org.include
            )
            excluded = any(
                fnmatch.fnmatch(short, g) or fnmatch.fnmatch(name, g) for g in org.exclude
            )
            if included and not excluded and name not in repos:
                repos.append(name)
    if not repos:
        raise ConfigError("no repositories to sync: set github.repos or github.org in the config")
    return repos


def _patterns_for(settings: Settings, repo: str) -> list[str]:
    patterns: list[str] = []
    for target in settings.targets:
        if any(fnmatch.fnmatch(repo, glob) for glob in target.repos):
            patterns += target.workflows + target.rollback_workflows
    return list(dict.fromkeys(patterns))


def resolve_scopes(
    client: GitHubClient, settings: Settings, repo: str, *, all_workflows: bool
) -> list[Scope]:
    """The workflows of a repo that targets name (file basenames used as they are)."""
    if all_workflows or not settings.targets:
        fetch_repo(client, repo)  # an unknown repo fails here with a clear message
        return [Scope(repo, None)]
    patterns = _patterns_for(settings, repo)
    if not patterns:
        raise ConfigError(
            f"no target names a workflow of {repo}: add one under targets, or pass --all-workflows"
        )
    if all(
        p.endswith((".yml", ".yaml")) and not any(c in p for c in _PLAIN_FILE) for p in patterns
    ):
        return [Scope(repo, p) for p in patterns]
    workflows = fetch_workflows(client, repo)
    scopes = []
    for workflow in workflows:
        base = str(workflow.get("path", "")).rsplit("/", 1)[-1]
        if any(
            fnmatch.fnmatch(base, p) or fnmatch.fnmatch(str(workflow.get("name")), p)
            for p in patterns
        ):
            scopes.append(Scope(repo, base))
    if not scopes:
        names = ", ".join(sorted(str(w.get("path", "")).rsplit("/", 1)[-1] for w in workflows))
        raise ConfigError(
            f"no workflow of {repo} matches {', '.join(patterns)} (it has: {names or 'none'})"
        )
    return scopes


@dataclass
class _Batch:
    """What one window fetched, saved in one transaction."""

    runs: list[Any] = field(default_factory=list)
    jobs: list[Any] = field(default_factory=list)
    etags: dict[str, str] = field(default_factory=dict)
    not_modified: int = 0
    too_many: bool = False


class _GitHubSync:
    """One sync: a client, a store connection and the counters."""

    def __init__(
        self,
        store: Store,
        con: duckdb.DuckDBPyConnection,
        client: GitHubClient,
        *,
        full: bool,
        on_progress: ProgressFn | None,
    ) -> None:
        self.store = store
        self.con = con
        self.client = client
        self.full = full
        self.on_progress = on_progress
        self.result = SyncResult()

    def progress(self, message: str) -> None:
        self.result.requests = self.client.requests_made
        self.result.rate_remaining = self.client.rate_remaining
        if self.on_progress:
            self.on_progress(self.result, message)

    def start(
        self, key: str, settings: Settings, since: datetime | None, now: datetime
    ) -> datetime:
        """--since, else the cursor less rescan_days, else backfill_days ago."""
        if since is not None:
            return since
        cursor = None if self.full else read_cursor(self.con, "github", key)
        if cursor is not None:
            return cursor - timedelta(days=settings.github.rescan_days)
        return now - timedelta(days=settings.github.backfill_days)

    def sync_scope(self, scope: Scope, start: datetime, now: datetime) -> None:
        etags = (
            {} if self.full else load_etags(self.con, self.client.url_for(f"/repos/{scope.repo}/"))
        )
        for window in grid_windows(start, now):
            self.sync_window(scope, window, now, etags)

    def sync_window(
        self,
        scope: Scope,
        window: tuple[datetime, datetime],
        now: datetime,
        etags: dict[str, str],
    ) -> None:
        batch = self.fetch_window(scope, window, etags)
        if batch.too_many and window[1] - window[0] > timedelta(seconds=2):
            middle = window[0] + (window[1] - window[0]) / 2
            middle = middle.replace(microsecond=0)
            self.sync_window(scope, (window[0], middle), now, etags)
            self.sync_window(scope, (middle, window[1]), now, etags)
            return
        stored = load_attempts(self.con, scope.repo, [int(run["id"]) for run in batch.runs])
        changed = _changed_runs(batch.runs, stored)
        self.fetch_details(scope.repo, changed, stored, batch)
        with self.store.batch(self.con):
            if batch.runs:
                self.result.attempts += save_runs(self.con, Source.from_objects(batch.runs))
            if batch.jobs:
                self.result.jobs += save_jobs(self.con, Source.from_objects(batch.jobs))
            save_etags(self.con, batch.etags)
            write_cursor(self.con, "github", scope.key, min(window[1], now))
        etags.update(batch.etags)
        self.result.windows += 1
        self.result.runs += len(changed)
        self.result.not_modified += batch.not_modified
        self.progress(f"{scope.key} {window[0]:%Y-%m-%d}..{window[1]:%Y-%m-%d}")

    def fetch_window(
        self, scope: Scope, window: tuple[datetime, datetime], etags: dict[str, str]
    ) -> _Batch:
        """Every page of one window; pages answered 304 hold no change."""
        batch = _Batch()
        pages = fetch_runs(
            self.client,
            scope.repo,
            workflow=scope.workflow,
            created_from=window[0],
            created_to=window[1],
            etags=etags,
        )
        for page in pages:
            if page.status == 304:
                batch.not_modified += 1
                continue
            if (page.total_count or 0) >= MAX_LISTED:
                batch.too_many = True
                return batch
            batch.runs += page.data.get("workflow_runs", [])
            if page.etag:
                batch.etags[page.url] = page.etag
        return batch

    def fetch_details(
        self,
        repo: str,
        runs: Sequence[dict[str, Any]],
        stored: Mapping[tuple[int, int], tuple[str, datetime | None]],
        batch: _Batch,
    ) -> None:
        """Earlier attempts of changed runs not stored complete, and the jobs of all attempts."""
        batch.runs = list(runs)
        base = f"/repos/{repo}/actions/runs"
        attempt_requests: list[tuple[str, Params | None, str | None]] = [
            (f"{base}/{run['id']}/attempts/{n}", None, None)
            for run in runs
            for n in range(1, int(run.get("run_attempt") or 1))
            if stored.get((int(run["id"]), n), ("",))[0] != "completed"
        ]
        for page in self.client.get_many(attempt_requests):
            batch.runs.append(page.data)
        all_jobs: Params = {"filter": "all", "per_page": PER_PAGE}
        job_requests = [(f"{base}/{run['id']}/jobs", all_jobs, None) for run in runs]
        for page in self.client.get_many(job_requests):
            batch.jobs += page.data.get("jobs", [])
            next_url = page.next_url
            while next_url:
                more = self.client.get(next_url)
                batch.jobs += more.data.get("jobs", [])
                next_url = more.next_url
        self.progress(f"{repo}: {len(runs)} changed runs")

    def sync_deployments(
        self, repo: str, environment: str | None, since: datetime, now: datetime
    ) -> None:
        """Deployments newest first until older than `since`, with their statuses."""
        key = f"deployments:{repo}:{environment}"
        etags = (
            {}
            if self.full
            else load_etags(self.con, self.client.url_for(f"/repos/{repo}/deployments"))
        )
        deployments: list[dict[str, Any]] = []
        statuses: list[dict[str, Any]] = []
        new_etags: dict[str, str] = {}
        for page in fetch_deployments(self.client, repo, environment=environment, etags=etags):
            if page.status == 304:
                self.result.not_modified += 1
                break
            if page.etag:
                new_etags[page.url] = page.etag
            recent = [d for d in page.data if (_parse_time(d.get("created_at")) or since) >= since]
            deployments += recent
            if len(recent) < len(page.data):
                break
        for deployment in deployments:
            for page in fetch_deployment_statuses(self.client, repo, int(deployment["id"])):
                statuses += page.data
        with self.store.batch(self.con):
            if deployments:
                self.result.deployments += save_deployments(
                    self.con, Source.from_objects(deployments)
                )
            if statuses:
                self.result.statuses += save_deployment_statuses(
                    self.con, Source.from_objects(statuses)
                )
            save_etags(self.con, new_etags)
            write_cursor(self.con, "github", key, now)
        self.progress(f"{repo}: deployments")


def _changed_runs(
    listed: Sequence[dict[str, Any]],
    stored: Mapping[tuple[int, int], tuple[str, datetime | None]],
) -> list[dict[str, Any]]:
    """Listed runs whose latest attempt is not stored with the same status and updated_at."""
    changed = []
    for run in listed:
        key = (int(run["id"]), int(run.get("run_attempt") or 1))
        version = (str(run.get("status") or "").strip().lower(), _parse_time(run.get("updated_at")))
        if stored.get(key) != version:
            changed.append(run)
    return changed


def _parse_time(value: object) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def sync_github(
    store: Store,
    settings: Settings,
    client: GitHubClient,
    *,
    repo: str | None = None,
    since: datetime | None = None,
    full: bool = False,
    all_workflows: bool = False,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_progress: ProgressFn | None = None,
) -> SyncResult:
    """Bring the store up to date with GitHub for every configured scope.

    A first sync starts at `since` or `github.backfill_days` ago; later syncs re-list the last
    `github.rescan_days` before their cursor. `full` ignores cursors and ETags. A stop on
    --max-requests or --max-wait keeps every committed window and says how far it got.
    """
    now = clock()
    with store.open() as con:
        sync = _GitHubSync(store, con, client, full=full, on_progress=on_progress)
        started = datetime.now(UTC)
        current = "(setup)"
        try:
            for repo_name in resolve_repos(client, settings, repo):
                for scope in resolve_scopes(
                    client, settings, repo_name, all_workflows=all_workflows
                ):
                    current = scope.key
                    sync.result.scopes.append(scope.key)
                    sync.sync_scope(scope, sync.start(scope.key, settings, since, now), now)
                for environment in _environments(settings, repo_name):
                    current = f"deployments:{repo_name}:{environment}"
                    start = sync.start(current, settings, since, now)
                    sync.sync_deployments(repo_name, environment, start, now)
        except (BudgetExhausted, RateLimitError) as exc:
            sync.progress("stopped")
            _log(con, sync, started, "stopped", str(exc))
            so_far = (
                f"saved {sync.result.windows} windows ({sync.result.runs} changed runs); "
                f"stopped in {current}; run the same command again to continue"
            )
            if isinstance(exc, RateLimitError):
                raise RateLimitError(
                    f"{exc}; {so_far}", reset_at=exc.reset_at, url=exc.url
                ) from exc
            raise BudgetExhausted(f"{exc}: {so_far}") from exc
        except DeploystatsError as exc:
            _log(con, sync, started, "failed", str(exc))
            raise
        _log(con, sync, started, "ok", None)
        sync.progress("done")
        return sync.result


def _environments(settings: Settings, repo: str) -> list[str]:
    return sorted(
        {
            target.environment
            for target in settings.targets
            if target.environment and any(fnmatch.fnmatch(repo, g) for g in target.repos)
        }
    )


def _log(
    con: duckdb.DuckDBPyConnection,
    sync: _GitHubSync,
    started: datetime,
    outcome: str,
    error: str | None,
) -> None:
    log_ingest(
        con,
        started_at=started,
        source="github",
        scope=",".join(sync.result.scopes) or "(none)",
        requests=sync.client.requests_made,
        rows=sync.result.attempts + sync.result.jobs,
        outcome=outcome,
        error=error,
    )
