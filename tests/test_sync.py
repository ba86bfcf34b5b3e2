"""sync github against the fake GitHub server over real HTTP: windows, resumes, request logs."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deploystats.config import GitHubSettings, Settings, Target
from deploystats.errors import BudgetExhausted, GitHubError, RateLimitError
from deploystats.simulate import Simulation, simulate
from deploystats.sources.github import GitHubClient
from deploystats.store import Store
from deploystats.sync import sync_github
from tests.conftest import run_deploystats
from tests.fakegithub import FakeGitHub

NOW = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday: the simulated history ends here
REPO = "acme/platform"
TABLES = {
    "workflow_runs": "repo, run_id, run_attempt",
    "jobs": "repo, job_id",
    "job_steps": "repo, job_id, number",
    "deployments": "repo, deployment_id",
    "deployment_statuses": "repo, status_id",
    "sync_state": "source, scope",
}


def settings(**github: Any) -> Settings:
    return Settings(
        github=GitHubSettings(repos=[REPO], **github),
        targets=[
            Target(
                name="production",
                repos=[REPO],
                workflows=["deploy-production.yml"],
                rollback_workflows=["rollback-production.yml"],
                environment="production",
            )
        ],
    )


@pytest.fixture(scope="module")
def history() -> Simulation:
    return simulate(seed=11, end=NOW)


def serve(history: Simulation) -> FakeGitHub:
    fake = FakeGitHub()
    fake.load(
        runs=history.runs,
        jobs=history.jobs,
        deployments=history.deployments,
        statuses=history.deployment_statuses,
    )
    return fake


@pytest.fixture
def github(history: Simulation) -> Iterator[FakeGitHub]:
    with serve(history) as fake:
        yield fake
        assert fake.unexpected == []


def client(fake: FakeGitHub, **options: Any) -> GitHubClient:
    return GitHubClient(base_url=fake.url, token="test-token", sleep=lambda s: None, **options)


def sync(store: Store, fake: FakeGitHub, **options: Any) -> Any:
    config = options.pop("config", settings())
    with client(fake, max_requests=options.pop("max_requests", None)) as gh:
        return sync_github(store, config, gh, clock=lambda: NOW, **options)


def snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the data tables, ordered by key (sync_state without its write time)."""
    with store.open(read_only=True) as con:
        out = {}
        for table, key in TABLES.items():
            columns = "source, scope, cursor" if table == "sync_state" else "*"
            out[table] = con.execute(f"SELECT {columns} FROM {table} ORDER BY {key}").fetchall()
        return out


def latest_attempts(history: Simulation) -> dict[int, dict[str, Any]]:
    latest: dict[int, dict[str, Any]] = {}
    for run in history.runs:
        if run["id"] not in latest or run["run_attempt"] > latest[run["id"]]["run_attempt"]:
            latest[run["id"]] = run
    return latest


def grid_windows_between(start: datetime, end: datetime) -> int:
    """7-day windows starting on Mondays 00:00 UTC that cover [start, end)."""
    first = (start - timedelta(days=start.weekday())).replace(hour=0, minute=0, second=0)
    return -(-(end - first).days // 7)


def test_first_sync_stores_every_attempt_job_and_deployment(
    history: Simulation, github: FakeGitHub, store: Store
) -> None:
    result = sync(store, github)

    rows = snapshot(store)
    assert {(r[1], r[2]) for r in rows["workflow_runs"]} == {
        (r["id"], r["run_attempt"]) for r in history.runs
    }
    assert {r[1] for r in rows["jobs"]} == {j["id"] for j in history.jobs}
    production = [d for d in history.deployments if d["environment"] == "production"]
    assert len(rows["deployments"]) == len(production)
    latest = latest_attempts(history)
    windows = grid_windows_between(NOW - timedelta(days=90), NOW)
    earlier_attempts = sum(run["run_attempt"] - 1 for run in latest.values())
    assert github.count(r"/actions/workflows/[^/]+/runs$") == 2 * windows
    assert github.count(r"/attempts/\d+$") == earlier_attempts
    assert github.count(r"/actions/runs/\d+/jobs$") == len(latest)
    assert github.count(r"/deployments/\d+/statuses$") == len(production)
    assert github.count(".*", status=200) == len(github.requests)
    assert result.runs == len(latest)


def test_a_resync_with_nothing_new_sends_only_conditional_requests(
    github: FakeGitHub, store: Store
) -> None:
    sync(store, github)
    before = snapshot(store)
    github.reset_log()

    result = sync(store, github)

    windows = grid_windows_between(NOW - timedelta(days=30), NOW)
    assert len(github.requests) == 2 * windows + 1  # both workflows' windows + deployments page 1
    assert all(r.conditional and r.status == 304 for r in github.requests)
    assert result.not_modified == len(github.requests)
    assert snapshot(store) == before


def test_a_rerun_costs_one_listing_and_its_jobs(
    history: Simulation, github: FakeGitHub, store: Store
) -> None:
    sync(store, github)
    latest = latest_attempts(history)
    run = max(
        (r for r in latest.values() if r["conclusion"] == "failure" and r["run_attempt"] == 1),
        key=lambda r: r["created_at"],
    )
    rerun = {
        **run,
        "run_attempt": 2,
        "conclusion": "success",
        "run_started_at": (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "updated_at": (NOW - timedelta(minutes=50)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    github.add_run(rerun)
    github.reset_log()

    sync(store, github)

    changed = [r for r in github.requests if r.status == 200]
    assert [r.path for r in changed] == [  # attempt 1 is stored complete: not fetched again
        f"/repos/{REPO}/actions/workflows/deploy-production.yml/runs",
        f"/repos/{REPO}/actions/runs/{run['id']}/jobs",
    ]
    with store.open(read_only=True) as con:
        assert con.execute(
            "SELECT run_attempt, conclusion FROM workflow_runs WHERE run_id = $id ORDER BY 1",
            {"id": run["id"]},
        ).fetchall() == [(1, "failure"), (2, "success")]


def burst(history: Simulation, count: int) -> list[dict[str, Any]]:
    """`count` runs of the deploy workflow created in the last week (more than one listing)."""
    template = next(r for r in history.runs if r["path"].endswith("deploy-production.yml"))
    start = NOW - timedelta(days=7)
    runs = []
    for i in range(count):
        created = (start + timedelta(seconds=i * 7 * 86400 // count)).strftime("%Y-%m-%dT%H:%M:%SZ")
        runs.append(
            {
                **template,
                "id": 9_000_000 + i,
                "run_attempt": 1,
                "created_at": created,
                "run_started_at": created,
                "updated_at": created,
            }
        )
    return runs


@pytest.mark.slow
def test_a_window_of_1000_runs_or_more_is_split_until_every_run_is_reachable(
    history: Simulation, store: Store
) -> None:
    runs = burst(history, 1_500)
    with FakeGitHub() as fake:
        fake.load(runs=runs)
        config = Settings(
            github=GitHubSettings(repos=[REPO]),
            targets=[Target(name="p", repos=[REPO], workflows=["deploy-production.yml"])],
        )
        sync(store, fake, config=config, since=NOW - timedelta(days=7))
        listings = [r for r in fake.requests if r.path.endswith("/runs")]
        assert fake.unexpected == []
    with store.open(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM workflow_runs").fetchall() == [(1_500,)]
    assert max(int(r.query.get("page", 1)) for r in listings) <= 10
    # one listing found 1,500 (>= 1,000): halves of 750 each take 8 pages
    assert len(listings) == 1 + 2 * 8


def test_max_requests_stops_at_a_window_boundary_and_a_rerun_completes(
    history: Simulation, github: FakeGitHub, tmp_path: Path
) -> None:
    whole = Store(tmp_path / "whole.duckdb")
    sync(whole, github)
    budget = len(github.requests) // 2
    partial = Store(tmp_path / "partial.duckdb")

    with pytest.raises(BudgetExhausted) as caught:
        sync(partial, github, max_requests=budget)
    assert f"--max-requests {budget} reached" in str(caught.value)
    assert "run the same command again to continue" in str(caught.value)
    stopped = snapshot(partial)
    assert 0 < len(stopped["workflow_runs"]) < len(snapshot(whole)["workflow_runs"])

    sync(partial, github)
    assert snapshot(partial) == snapshot(whole)


KILLER = """
import os, signal, sys
from datetime import UTC, datetime
from deploystats.sources.github import GitHubClient
from deploystats.store import Store
from deploystats.sync import sync_github
from tests.test_sync import settings

commits = 0
def crash_on_sixth_commit():
    global commits
    commits += 1
    if commits == 6:
        os.kill(os.getpid(), signal.SIGKILL)

store = Store(sys.argv[1], before_commit=crash_on_sixth_commit)
with GitHubClient(base_url=sys.argv[2], token="test-token") as gh:
    sync_github(store, settings(), gh, clock=lambda: datetime(2026, 11, 23, tzinfo=UTC))
"""


def test_a_sync_killed_mid_way_resumes_to_exactly_the_uninterrupted_rows(
    github: FakeGitHub, tmp_path: Path
) -> None:
    whole = Store(tmp_path / "whole.duckdb")
    sync(whole, github)
    killed = Store(tmp_path / "killed.duckdb")

    done = subprocess.run(
        [sys.executable, "-c", KILLER, str(killed.path), github.url],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    after_kill = snapshot(killed)
    assert len(after_kill["sync_state"]) == 1  # five windows of one scope committed
    assert 0 < len(after_kill["workflow_runs"]) < len(snapshot(whole)["workflow_runs"])

    sync(killed, github)
    assert snapshot(killed) == snapshot(whole)


def test_an_unknown_repo_is_one_clear_line(github: FakeGitHub, store: Store) -> None:
    config = Settings(github=GitHubSettings(repos=["acme/nope"]))
    with pytest.raises(GitHubError) as caught:
        sync(store, github, config=config)
    assert str(caught.value).startswith("unknown repository acme/nope (404 from GitHub)")


def test_rejected_credentials_name_the_fix_and_not_the_token(
    github: FakeGitHub, store: Store
) -> None:
    with (
        GitHubClient(base_url=github.url, token="ghp_wrongtoken", sleep=lambda s: None) as gh,
        pytest.raises(GitHubError) as caught,
    ):
        sync_github(store, settings(), gh, clock=lambda: NOW)
    assert "GitHub rejected the credentials (401 Bad credentials)" in str(caught.value)
    assert "ghp_wrongtoken" not in str(caught.value)
    with store.open(read_only=True) as con:
        logged = con.execute("SELECT outcome, error FROM ingest_log").fetchall()
    assert logged[0][0] == "failed" and "ghp_wrongtoken" not in logged[0][1]


def test_a_502_on_a_listing_is_retried_and_the_sync_completes(
    history: Simulation, github: FakeGitHub, store: Store
) -> None:
    github.fail_next(r"/actions/workflows/deploy-production\.yml/runs$", 502)
    sync(store, github)
    assert github.count(".*", status=502) == 1
    assert len(snapshot(store)["workflow_runs"]) == len(history.runs)


def write_config(folder: Path, base_url: str, **extra: Any) -> None:
    config = {
        "github": {"repos": [REPO], "base_url": base_url, **extra},
        "targets": [
            {
                "name": "production",
                "repos": [REPO],
                "workflows": ["deploy-production.yml"],
                "rollback_workflows": ["rollback-production.yml"],
                "environment": "production",
            }
        ],
    }
    (folder / "deploystats.yml").write_text(json.dumps(config))  # JSON is YAML


def cli(
    folder: Path, *args: str, token: str | None = "test-token"
) -> subprocess.CompletedProcess[str]:
    env = {"GITHUB_TOKEN": token} if token else {}
    return run_deploystats("--db", "db.duckdb", *args, cwd=folder, env=env)


def test_the_sync_command_prints_its_summary_and_classifies_for_metrics(
    history: Simulation, github: FakeGitHub, tmp_path: Path
) -> None:
    write_config(tmp_path, github.url, backfill_days=3650)
    done = cli(tmp_path, "sync", "github")
    assert done.returncode == 0, done.stderr
    latest = latest_attempts(history)
    assert re.fullmatch(
        rf"synced 2 scopes: {len(latest):,} changed runs, {len(history.runs):,} attempts, "
        rf"{len(history.jobs):,} jobs, \d+ deployments; {len(github.requests):,} requests "
        r"\(0 not modified\), rate limit left [\d,]+\n"
        # then the configured target is classified once, for the next metrics call
        r"classified 1 targets for metrics \([\d.]+ s\)\n",
        done.stdout,
    ), done.stdout
    assert "test-token" not in done.stdout + done.stderr


def test_max_requests_on_the_command_line_is_one_line_saying_how_far_it_got(
    github: FakeGitHub, tmp_path: Path
) -> None:
    write_config(tmp_path, github.url)
    done = cli(tmp_path, "sync", "github", "--max-requests", "5")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("deploystats: error: --max-requests 5 reached")
    assert lines[-1].endswith("run the same command again to continue")
    assert len(github.requests) == 5


def test_an_unreachable_server_names_the_url(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    write_config(tmp_path, f"http://127.0.0.1:{port}")
    done = cli(tmp_path, "sync", "github", "--max-wait", "1s")
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(f"deploystats: error: cannot reach GitHub at http://127.0.0.1:{port}")
    )


def test_org_scope_syncs_included_repos_and_skips_excluded_ones(
    history: Simulation, store: Store
) -> None:
    with serve(history) as fake:
        fake.add_repo("acme/platform-archive", org="acme")
        config = Settings(
            github=GitHubSettings(org={"name": "acme", "exclude": ["*-archive"]}),
            targets=[Target(name="p", repos=["acme/*"], workflows=["deploy-production.yml"])],
        )
        result = sync(store, fake, config=config)
        assert fake.count("/repos/acme/platform-archive/") == 0
        assert fake.unexpected == []
    assert result.scopes == [f"{REPO}:deploy-production.yml"]


def test_a_primary_rate_limit_is_waited_out_on_the_injected_clock(
    history: Simulation, store: Store
) -> None:
    now = [1_800_000_000.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    with FakeGitHub(clock=lambda: now[0]) as fake:
        fake.load(runs=history.runs, jobs=history.jobs)
        fake.exhaust_rate_limit(reset_in=120)
        config = Settings(
            github=GitHubSettings(repos=[REPO]),
            targets=[Target(name="p", repos=[REPO], workflows=["deploy-production.yml"])],
        )
        with GitHubClient(
            base_url=fake.url, token="test-token", clock=lambda: now[0], sleep=sleep
        ) as gh:
            sync_github(store, config, gh, clock=lambda: NOW)
        assert fake.count(".*", status=403) == 1
    assert waits == [121.0]
    deploys = {r["id"] for r in history.runs if r["path"].endswith("deploy-production.yml")}
    with store.open(read_only=True) as con:
        assert con.execute("SELECT count(DISTINCT run_id) FROM workflow_runs").fetchall() == [
            (len(deploys),)
        ]


def test_a_rate_limit_beyond_max_wait_stops_cleanly_and_says_how_far_it_got(
    history: Simulation, store: Store
) -> None:
    with serve(history) as fake:
        with GitHubClient(base_url=fake.url, token="test-token", max_wait_s=60) as gh:
            fake.exhaust_rate_limit(reset_in=3600)
            with pytest.raises(RateLimitError) as caught:
                sync_github(store, settings(), gh, clock=lambda: NOW)
        assert fake.count(".*", status=403) == 1
    message = str(caught.value)
    assert "beyond --max-wait 60 s" in message
    assert message.endswith("run the same command again to continue")
    with store.open(read_only=True) as con:
        assert con.execute("SELECT outcome FROM ingest_log").fetchall() == [("stopped",)]


def test_full_ignores_cursors_and_etags_and_changes_no_row(
    github: FakeGitHub, store: Store
) -> None:
    sync(store, github)
    before = snapshot(store)
    github.reset_log()
    sync(store, github, full=True)
    assert not any(r.conditional for r in github.requests)
    assert github.count(r"/actions/workflows/[^/]+/runs$") == 2 * grid_windows_between(
        NOW - timedelta(days=90), NOW
    )
    after = snapshot(store)
    assert {t: v for t, v in after.items() if t != "sync_state"} == {
        t: v for t, v in before.items() if t != "sync_state"
    }


def test_all_workflows_lists_every_run_of_the_repo(
    history: Simulation, github: FakeGitHub, store: Store
) -> None:
    result = sync(store, github, all_workflows=True)
    assert result.scopes == [f"{REPO}:*"]
    assert github.count(r"/actions/workflows/") == 0
    assert len(snapshot(store)["workflow_runs"]) == len(history.runs)


def test_an_unknown_workflow_is_one_clear_line(github: FakeGitHub, store: Store) -> None:
    config = Settings(
        github=GitHubSettings(repos=[REPO]),
        targets=[Target(name="p", repos=[REPO], workflows=["deploy-nope.yml"])],
    )
    with pytest.raises(GitHubError) as caught:
        sync(store, github, config=config)
    assert "deploy-nope.yml" in str(caught.value)
    assert "404" in str(caught.value)


def test_the_sync_command_authenticates_as_a_github_app(
    history: Simulation, app_key: tuple[str, bytes], tmp_path: Path
) -> None:
    private, public = app_key
    (tmp_path / "app.pem").write_text(private)
    with FakeGitHub(app_id=4242, app_public_key_pem=public) as fake:
        fake.load(runs=history.runs, jobs=history.jobs)
        app = {"app_id": 4242, "private_key_file": "app.pem", "installation_id": 99}
        write_config(tmp_path, fake.url, app=app)
        done = cli(tmp_path, "sync", "github", "--since", "2026-11-16", token=None)
        assert done.returncode == 0, done.stderr
        assert fake.count(r"^/app/installations/99/access_tokens$", status=201) == 1
        assert fake.unexpected == []
    assert "BEGIN" not in done.stdout + done.stderr
