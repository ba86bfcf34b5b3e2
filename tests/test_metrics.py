"""The metrics engine against the simulator's ground-truth ledger and independent computations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import deploystats
from deploystats.config import Settings, Target
from deploystats.errors import ConfigError
from deploystats.ingest import import_dumps
from deploystats.metrics import prepare, wilson
from deploystats.metrics.windows import WindowError, iso_week, last_complete_week, month
from deploystats.simulate import Simulation
from deploystats.store import Store, connect
from tests.conftest import run_deploystats
from tests.factories import history_from_spec, load_spec

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def attempts(db: Path, settings: Settings) -> dict[tuple[int, int], dict[str, Any]]:
    con = connect(db, read_only=True)
    try:
        prepare(con, settings.targets)
        cursor = con.execute("SELECT * FROM deployment_attempts")
        names = [d[0] for d in cursor.description or []]
        return {
            (r[names.index("run_id")], r[names.index("run_attempt")]): dict(
                zip(names, r, strict=True)
            )
            for r in cursor.fetchall()
        }
    finally:
        con.close()


def ledger_deploys(sim: Simulation) -> dict[tuple[int, int], dict[str, Any]]:
    return {(r["run_id"], r["run_attempt"]): r for r in sim.ledger if r["workflow"] == "deploy"}


def parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def test_every_attempt_gets_the_outcome_the_simulator_intended(demo: Any) -> None:
    sim, db, settings = demo
    got = attempts(db, settings)
    want = ledger_deploys(sim)
    assert set(got) == set(want)
    assert {k: got[k]["outcome"] for k in got} == {k: want[k]["outcome"] for k in want}


def test_deploy_intervals_and_runner_roles_match_the_ledger(demo: Any) -> None:
    sim, db, settings = demo
    got = attempts(db, settings)
    for key, row in ledger_deploys(sim).items():
        if row["deploy_started_at"] is None:
            assert got[key]["timing_source"] == "run", key
            continue
        assert got[key]["timing_source"] == "jobs", key
        assert got[key]["started_at"] == parse(row["deploy_started_at"]), key
        assert got[key]["completed_at"] == parse(row["deploy_completed_at"]), key
        assert got[key]["on_secondary"] == (row["runner_role"] == "secondary"), key


def ledger_week(sim: Simulation, start: datetime) -> list[dict[str, Any]]:
    """Deploy attempts of the ledger whose start falls in [start, start + 7 days): the deploy
    job's start, or the run's when no deploy job executed."""
    run_started = {(r["id"], r["run_attempt"]): parse(r["run_started_at"]) for r in sim.runs}
    end = start + timedelta(days=7)
    rows = []
    for key, row in ledger_deploys(sim).items():
        began = parse(row["deploy_started_at"]) or run_started[key]
        if began is not None and start <= began < end:
            rows.append(row)
    return rows


@pytest.mark.parametrize("week", ["2026-W38", "2026-W41", "2026-W47"])
def test_weekly_success_rate_and_duration_quantiles_match_the_ledger(demo: Any, week: str) -> None:
    sim, db, settings = demo
    window = iso_week(week)
    result = deploystats.open(db, config=settings).metrics(window=window)["targets"]["production"]

    rows = ledger_week(sim, window.start)
    counted = [r for r in rows if r["outcome"] in ("success", "failure", "rolled_back")]
    successes = [r for r in rows if r["outcome"] == "success" and r["deploy_started_at"]]
    durations = [
        (parse(r["deploy_completed_at"]) - parse(r["deploy_started_at"])).total_seconds()  # type: ignore[operator]
        for r in successes
    ]
    assert result["counted"] == len(counted)
    assert result["success_rate"] == pytest.approx(len(successes) / len(counted))
    assert result["duration_n"] == len(durations)
    assert result["duration_p50_s"] == pytest.approx(float(np.quantile(durations, 0.5)))
    if len(durations) >= 20:
        assert result["duration_p95_s"] == pytest.approx(float(np.quantile(durations, 0.95)))
    else:
        assert result["duration_p95_s"] is None
    assert result["duration_p99_s"] is None  # fewer than 100 successes in a week


def test_baseline_and_improved_segments_show_the_seed_story(demo: Any) -> None:
    _, db, settings = demo
    ds = deploystats.open(db, config=settings)
    baseline = ds.metrics(since="2026-09-14", until="2026-10-12")["targets"]["production"]
    improved = ds.metrics(since="2026-10-12", until="2026-11-23")["targets"]["production"]
    assert baseline["success_rate"] < 0.9 < 0.95 < improved["success_rate"]
    assert baseline["duration_p95_s"] > 900 > 600 > improved["duration_p95_s"]


def test_wilson_interval_matches_published_values() -> None:
    # Wilson (1927) / Newcombe (1998): 0 of 10 -> [0, 0.2775]; 10 of 10 -> [0.7225, 1]
    assert wilson(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-5)
    assert wilson(10, 10) == pytest.approx((0.72247, 1.0), abs=1e-5)
    assert wilson(0, 0) is None


def test_wilson_interval_equals_the_quadratic_solution() -> None:
    # the interval is where |p_hat - p| = z * sqrt(p (1 - p) / n): solve the quadratic directly
    x, n, z = 47, 48, 1.959963984540054
    p_hat = x / n
    a, b, c = 1 + z * z / n, -(2 * p_hat + z * z / n), p_hat * p_hat
    roots = sorted(np.roots([a, b, c]).real)
    assert wilson(x, n) == pytest.approx(tuple(roots), abs=1e-12)


def test_an_iso_week_across_a_dst_change_is_seven_local_days() -> None:
    # EU summer time ends on 2026-10-25: Monday 19 Oct 00:00 CEST to Monday 26 Oct 00:00 CET
    week = iso_week("2026-W43", "Europe/Berlin")
    assert week.start == datetime(2026, 10, 18, 22, tzinfo=UTC)
    assert week.end == datetime(2026, 10, 25, 23, tzinfo=UTC)
    assert week.end - week.start == timedelta(days=7, hours=1)


def test_a_month_and_the_default_week_are_local_calendar_spans() -> None:
    november = month("2026-11", "America/Los_Angeles")
    assert november.start == datetime(2026, 11, 1, 7, tzinfo=UTC)  # PDT until 1 Nov 09:00 UTC
    assert november.end == datetime(2026, 12, 1, 8, tzinfo=UTC)  # PST
    assert last_complete_week(datetime(2026, 11, 25, 12, tzinfo=UTC)).label == "2026-W47"


def test_malformed_windows_show_the_format() -> None:
    with pytest.raises(WindowError, match=r"--week '2026-47': use an ISO week like 2026-W47"):
        iso_week("2026-47")
    with pytest.raises(WindowError, match=r"--month '2026-13': use a month like 2026-11"):
        month("2026-13")


def test_a_window_without_data_gives_null_metrics_not_errors(demo: Any) -> None:
    _, db, settings = demo
    result = deploystats.open(db, config=settings).metrics(week="2025-W01")
    production = result["targets"]["production"]
    assert production["counted"] == 0
    assert production["success_rate"] is None
    assert production["success_rate_ci"] is None
    assert production["duration_p50_s"] is None
    assert production["successes"] == 0


def test_an_unknown_target_lists_the_configured_ones(demo: Any) -> None:
    _, db, settings = demo
    with pytest.raises(
        ConfigError, match=r"unknown target 'staging': configured targets are production"
    ):
        deploystats.open(db, config=settings).metrics(target="staging")


def test_runner_globs_matching_both_roles_are_a_config_error(demo: Any) -> None:
    _, db, settings = demo
    runners = {"primary": {"names": ["dell-*"]}, "secondary": {"names": ["*-02-*"]}}
    bad = Target.model_validate(
        {**settings.targets[0].model_dump(by_alias=True), "runners": runners}
    )
    with pytest.raises(
        ConfigError, match=r"runner 'dell-r640-02-runner' matches both primary and secondary"
    ):
        deploystats.open(db, config=Settings(targets=[bad])).metrics(week="2026-W47")


def test_the_metrics_command_prints_the_api_result_as_json(demo: Any, tmp_path: Path) -> None:
    _, db, settings = demo
    (tmp_path / "deploystats.yml").write_text(
        json.dumps(settings.model_dump(mode="json", by_alias=True))
    )
    done = run_deploystats(
        "--db",
        str(db),
        "metrics",
        "--week",
        "2026-W47",
        "--format",
        "json",
        cwd=tmp_path,
        env={"TZ": "America/Los_Angeles"},  # the machine's zone must not matter
    )
    assert done.returncode == 0, done.stderr
    expected = deploystats.open(db, config=settings).metrics(week="2026-W47")
    assert json.loads(done.stdout) == json.loads(json.dumps(expected))


def recovery_tables(db: Path, settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    from deploystats.metrics.recovery import prepare_recovery

    con = connect(db, read_only=True)
    try:
        prepare(con, settings.targets)
        prepare_recovery(con)
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_rollback_incidents_answer_the_changes_the_ledger_names(demo: Any) -> None:
    sim, db, settings = demo
    ours = {
        (run_id, attempt): sorted(kinds)
        for run_id, attempt, kinds in recovery_tables(
            db, settings, "SELECT run_id, run_attempt, kinds FROM rollback_incidents"
        )
    }
    ledger: dict[tuple[int, int], set[str]] = {}
    for row in sim.ledger:
        if row["rollback_kind"]:
            key = (row["answers_run_id"], row["answers_run_attempt"])
            ledger.setdefault(key, set()).add(row["rollback_kind"])
    assert ours == {key: sorted(kinds) for key, kinds in ledger.items()}
    assert {"step", "workflow", "redeploy"} == {k for kinds in ours.values() for k in kinds}


def test_failure_episodes_start_where_the_ledger_says(demo: Any) -> None:
    sim, db, settings = demo
    starts = set(recovery_tables(db, settings, "SELECT run_id, run_attempt FROM failure_episodes"))
    first_of_episode: dict[int, tuple[str, int, int]] = {}
    for row in sim.ledger:
        if row["workflow"] == "deploy" and row["episode"] is not None:
            key = (row["deploy_completed_at"] or "", row["run_id"], row["run_attempt"])
            first_of_episode[row["episode"]] = min(first_of_episode.get(row["episode"], key), key)
    assert starts == {(run_id, attempt) for _, run_id, attempt in first_of_episode.values()}


def test_group_by_pools_attempts_into_an_all_roll_up(demo: Any) -> None:
    _, db, settings = demo
    base = settings.targets[0].model_dump(by_alias=True)
    two = Settings(
        targets=[
            Target.model_validate({**base, "name": "a", "team": "sre"}),
            Target.model_validate({**base, "name": "b", "team": "web", "branches": ["nope"]}),
        ]
    )
    ds = deploystats.open(db, config=two)
    by_team = ds.metrics(week="2026-W47", group_by="team")["targets"]
    by_target = ds.metrics(week="2026-W47")["targets"]
    assert list(by_team) == ["sre", "web", "all"]
    assert by_team["sre"] == by_target["a"]
    assert by_team["web"]["counted"] == 0
    assert by_team["all"]["counted"] == by_target["a"]["counted"]
    assert by_team["all"]["success_rate"] == by_target["a"]["success_rate"]


def test_group_by_repo_keys_the_result_by_repository(demo: Any) -> None:
    _, db, settings = demo
    result = deploystats.open(db, config=settings).metrics(week="2026-W47", group_by="repo")
    single = deploystats.open(db, config=settings).metrics(week="2026-W47")
    assert list(result["targets"]) == ["acme/platform", "all"]
    assert result["targets"]["acme/platform"] == single["targets"]["production"]


@pytest.mark.parametrize("week", ["2026-W40", "2026-W47"])
def test_explain_returns_the_rows_each_number_is_made_of(demo: Any, week: str) -> None:
    _, db, settings = demo
    ds = deploystats.open(db, config=settings)
    numbers = ds.metrics(week=week)["targets"]["production"]

    attempts = ds.explain("success_rate", week=week)
    assert int(attempts["counted"].sum()) == numbers["counted"]
    assert (attempts["outcome"] == "success").sum() == numbers["successes"]
    durations = ds.explain("duration_p50_s", week=week)
    assert len(durations) == numbers["duration_n"]
    assert float(np.quantile(durations["duration_s"], 0.5)) == pytest.approx(
        numbers["duration_p50_s"]
    )
    assert len(ds.rollbacks(week=week)) == numbers["rollback_incidents"]
    changes = ds.explain("change_failure_rate", week=week)
    assert len(changes) == numbers["changes"]
    assert changes["failed_change"].mean() == pytest.approx(numbers["change_failure_rate"])
    episodes = ds.episodes(week=week)
    ended = episodes[episodes["end_at"].notna()]
    assert len(ended[ended["end_at"] < ds.window(week=week).end]) == numbers["episodes"]
    assert all(
        url.startswith("https://github.com/acme/platform/actions/runs/")
        for url in attempts["html_url"]
    )


def test_explain_of_an_unknown_metric_says_what_to_name(demo: Any) -> None:
    _, db, settings = demo
    with pytest.raises(
        ConfigError, match=r"unknown metric 'speed': name a key of `deploystats metrics"
    ):
        deploystats.open(db, config=settings).explain("speed", week="2026-W47")


def test_a_week_across_a_dst_change_counts_attempts_of_seven_local_days(demo: Any) -> None:
    sim, db, settings = demo
    berlin = settings.model_copy(update={"timezone": "Europe/Berlin"})
    result = deploystats.open(db, config=berlin).metrics(week="2026-W43")
    # 2026-W43 in Berlin: Mon 19 Oct 00:00 CEST (18 Oct 22:00Z) to Mon 26 Oct 00:00 CET (23:00Z)
    assert (result["window"]["start"], result["window"]["end"]) == (
        "2026-10-18T22:00:00+00:00",
        "2026-10-25T23:00:00+00:00",
    )
    run_started = {(r["id"], r["run_attempt"]): r["run_started_at"] for r in sim.runs}
    start, end = datetime(2026, 10, 18, 22, tzinfo=UTC), datetime(2026, 10, 25, 23, tzinfo=UTC)
    expected = 0
    for key, row in ledger_deploys(sim).items():
        began = parse(row["deploy_started_at"] or run_started[key])
        expected += bool(began and start <= began < end and row["outcome"] == "success")
    assert result["targets"]["production"]["successes"] == expected


@pytest.mark.slow
def test_the_metric_suites_pass_under_a_non_utc_machine_timezone() -> None:
    """DuckDB follows the machine's TZ unless told otherwise: every number must not move."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "TZ": "America/Los_Angeles"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_metrics.py",
            "tests/test_slo.py",
            "-k",
            "not non_utc_machine",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:]


def test_a_target_without_any_deploy_run_reports_zero_or_null_metrics(demo: Any) -> None:
    sim, db, settings = demo
    base = settings.targets[0].model_dump(by_alias=True)
    nothing = Settings(targets=[Target.model_validate({**base, "branches": ["no-such-branch"]})])
    production = deploystats.open(db, config=nothing).metrics(week="2026-W47")["targets"][
        "production"
    ]
    full = deploystats.open(db, config=settings).metrics(week="2026-W47")["targets"]["production"]
    assert set(production) == set(full)
    # rollback-workflow runs are not filtered by branch: each answers no change, and stands alone
    week = iso_week("2026-W47")
    rollbacks = {
        r["id"]
        for r in sim.runs
        if r["path"].endswith("rollback-production.yml")
        and week.start <= parse(r["run_started_at"]) < week.end  # type: ignore[operator]
    }
    assert {k: v for k, v in production.items() if v not in (0, None, 0.0)} == (
        {"rollback_incidents": len(rollbacks)} if rollbacks else {}
    )


# ----- hand-written histories: regressions found by tests/test_properties.py -------------------
def metrics_and_episodes(text: str, folder: Path) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    """Import a compact history (tests/factories.py) and compute its W47 metrics and episodes."""
    history = history_from_spec(load_spec(text))
    folder.mkdir()
    files = []
    for kind in ("runs", "jobs"):
        path = folder / f"{kind}.json"
        path.write_text(json.dumps(getattr(history, kind)), encoding="utf-8")
        files.append(path)
    db = folder / "db.duckdb"
    import_dumps(Store(db), files)
    ds = deploystats.open(db, config=Settings(targets=[Target.model_validate(history.target)]))
    week = iso_week("2026-W47")
    episodes = ds.episodes(window=week)
    rows = [
        (
            r.run_id,
            r.run_attempt,
            r.start_at,
            *(None if pd.isna(v) else v for v in (r.end_at, r.restore_s)),
        )
        for r in episodes.itertuples()
    ]
    return ds.metrics(window=week)["targets"][history.target["name"]], rows


# Found by the property test (hypothesis): rollback run 901 answers run 102's first attempt, but
# completes (05:36) while that attempt's deploy job is still running; the attempt fails at
# 05:51:19. The literal "earlier of the next success or a successful rollback run" ended the
# episode before it started (restore -919 s).
ROLLBACK_BEFORE_FAILURE = """
target:
  name: production
  repos: [acme/platform]
  workflows: [deploy.yml]
  branches: [main]
  deploy_jobs: ["deploy*"]
  rollback_workflows: [rollback.yml]
  rollback_steps: ["rescue*"]
  runners: {primary: {names: ["prim-*"]}, secondary: {names: ["sec-*"]}}
  cfr_window: 2h
  cancelled: failure
  rolled_back: success
runs:
  - {id: 100, conclusion: success, created: 2026-11-16T08:02:00Z, sha: a1,
     commit_at: 2026-11-15T23:00:00Z, jobs: []}
  - {id: 101, conclusion: success, created: 2026-11-16T01:25:00Z, sha: a1,
     commit_at: 2026-11-15T23:00:00Z, jobs: []}
  - {id: 102, conclusion: startup_failure, created: 2026-11-16T05:23:00Z, sha: d4,
     commit_at: 2026-11-15T23:00:00Z, jobs: [
      {name: build, created: 2026-11-16T05:23:00Z, started: 2026-11-16T05:23:00Z,
       completed: 2026-11-16T05:25:25Z, runner: gh-1},
      {name: deploy, created: 2026-11-16T05:25:37Z, started: 2026-11-16T05:29:20Z,
       completed: 2026-11-16T05:51:19Z, conclusion: failure, runner: null,
       steps: [deploy, {name: rescue, conclusion: skipped}]}]}
  - {id: 102, attempt: 2, conclusion: failure, created: 2026-11-16T05:23:00Z,
     started: 2026-11-17T09:23:00Z, sha: d4, commit_at: 2026-11-15T23:00:00Z, jobs: [
      {name: deploy, created: 2026-11-17T09:23:00Z, started: 2026-11-17T09:23:28Z,
       completed: 2026-11-17T09:33:10Z, conclusion: failure, runner: prim-2,
       steps: [deploy, {name: rescue, conclusion: skipped}]}]}
  - {id: 103, conclusion: success, created: 2026-11-15T14:01:00Z, sha: b2,
     commit_at: 2026-11-15T23:00:00Z, event: schedule, jobs: [
      {name: build, created: 2026-11-15T14:01:00Z, started: 2026-11-15T14:01:00Z,
       completed: 2026-11-15T14:04:17Z, runner: gh-1},
      {name: deploy, created: 2026-11-15T14:05:27Z, started: 2026-11-15T14:05:36Z,
       completed: 2026-11-15T14:07:39Z, conclusion: success, runner: lab-9,
       steps: [deploy, {name: rescue, conclusion: skipped}]}]}
  - {id: 104, conclusion: success, created: 2026-11-16T09:58:00Z, sha: d4,
     commit_at: 2026-11-15T23:00:00Z, jobs: [
      {name: build, created: 2026-11-16T09:58:00Z, started: 2026-11-16T09:58:00Z,
       completed: 2026-11-16T09:59:36Z, runner: gh-1},
      {name: deploy, created: 2026-11-16T09:59:59Z, started: 2026-11-16T10:01:33Z,
       completed: 2026-11-16T10:14:35Z, conclusion: success, runner: sec-1,
       steps: [deploy, {name: rescue, conclusion: success}]}]}
  - {id: 900, workflow: rollback.yml, created: 2026-11-16T00:08:00Z, conclusion: failure,
     jobs: [{name: rollback, runner: prim-1, completed: 2026-11-16T00:11:00Z}]}
  - {id: 901, workflow: rollback.yml, created: 2026-11-16T05:33:00Z, conclusion: success,
     jobs: [{name: rollback, runner: prim-1, completed: 2026-11-16T05:36:00Z}]}
"""


def test_rollback_run_completed_before_the_failure_does_not_end_the_episode(
    tmp_path: Path,
) -> None:
    got, episodes = metrics_and_episodes(ROLLBACK_BEFORE_FAILURE, tmp_path / "h")
    # Counted attempts by completed_at: 103 success (Sun 14:07:39); 101 success, no job data:
    # run timing, 01:25:00; 102#1 failure (startup_failure; its deploy job had no runner but
    # ran a step, so it executed: 05:29:20-05:51:19); 100 success, run timing, 08:02:00; 104
    # rolled_back, a success under `rolled_back: success` (10:14:35); 102#2 failure (Tue
    # 09:23:28-09:33:10).
    # Rollback run 901 (signal 05:33) answers the latest change started in [03:33, 05:33):
    # 102#1 (05:29:20). It completed at 05:36, before 102#1 failed at 05:51:19: it ends no
    # episode. Episode 1 runs from 05:51:19 to run 100's success at 08:02:00: 7841 s.
    # Episode 2 starts at 102#2's failure (its predecessor 104 succeeded) and stays open.
    assert episodes == [
        (102, 1, datetime(2026, 11, 16, 5, 51, 19, tzinfo=UTC),
         datetime(2026, 11, 16, 8, 2, tzinfo=UTC), 7841.0),
        (102, 2, datetime(2026, 11, 17, 9, 33, 10, tzinfo=UTC), None, None),
    ]  # fmt: skip
    # Rollback incidents: 900 (failed, signal 00:08: no change within 2 h before it, its own),
    # 901 -> 102#1, 104's rescue step -> 104. Changes in W47: 101, 102#1, 100, 104, 102#2;
    # failed: 102#1, 104 (incidents; 102#1 also failed), 102#2 (failure): 3 / 5.
    assert {
        k: got[k]
        for k in ("episodes", "mttr_s", "restore_median_s", "restore_p90_s", "open_episodes",
                  "rollback_incidents", "changes", "change_failure_rate")
    } == {
        "episodes": 1, "mttr_s": 7841.0, "restore_median_s": 7841.0, "restore_p90_s": None,
        "open_episodes": 1, "rollback_incidents": 3, "changes": 5, "change_failure_rate": 0.6,
    }  # fmt: skip


# Found by reading (the property test never varied history_days): a failure more than
# history_days after the previous one starts a second episode inside one streak of failures;
# a rollback run answering that failure ended the first episode too.
ROLLBACK_OF_A_LATER_EPISODE = """
target: {name: production, repos: [acme/platform], workflows: [deploy.yml], history_days: 1,
         rollback_workflows: [rollback.yml]}
runs:
  - {id: 1, started: 2026-11-16T09:00:00Z, conclusion: failure, jobs: [
      {completed: 2026-11-16T09:05:00Z, conclusion: failure, runner: r1}]}
  - {id: 2, started: 2026-11-18T09:00:00Z, conclusion: failure, jobs: [
      {completed: 2026-11-18T09:05:00Z, conclusion: failure, runner: r1}]}
  - {id: 3, workflow: rollback.yml, started: 2026-11-18T09:10:00Z,
     jobs: [{name: rollback, completed: 2026-11-18T09:15:00Z, runner: r1}]}
  - {id: 4, started: 2026-11-19T09:00:00Z, jobs: [{completed: 2026-11-19T09:05:00Z, runner: r1}]}
"""


def test_rollback_run_ends_only_the_episode_of_the_attempt_it_answers(tmp_path: Path) -> None:
    got, episodes = metrics_and_episodes(ROLLBACK_OF_A_LATER_EPISODE, tmp_path / "h")
    # Run 1 fails (Mon 09:05, no predecessor): episode 1. Run 2 fails Wed 09:05, 2 days after
    # run 1, beyond history_days (1): episode 2. Rollback run 3 (signal 09:10) answers run 2,
    # the latest change started before it: it ends episode 2 at 09:15 (600 s). Run 2 is not an
    # attempt of episode 1, which runs to run 4's success on Thu 09:05: 3 days = 259200 s.
    assert episodes == [
        (1, 1, datetime(2026, 11, 16, 9, 5, tzinfo=UTC),
         datetime(2026, 11, 19, 9, 5, tzinfo=UTC), 259200.0),
        (2, 1, datetime(2026, 11, 18, 9, 5, tzinfo=UTC),
         datetime(2026, 11, 18, 9, 15, tzinfo=UTC), 600.0),
    ]  # fmt: skip
    # mean (259200 + 600) / 2 = 129900; the median of two is their mean
    assert (got["episodes"], got["mttr_s"], got["restore_median_s"], got["open_episodes"]) == (
        2, 129900.0, 129900.0, 0,
    )  # fmt: skip


# Found by reading: a failure completing in the same second as the next success, but before it
# in the (completed_at, run_id, run_attempt) order, is an attempt of the episode; it was left
# out because attempts were matched by time.
ROLLBACK_OF_A_FAILURE_TIED_WITH_THE_SUCCESS = """
target: {name: production, repos: [acme/platform], workflows: [deploy.yml],
         rollback_workflows: [rollback.yml]}
runs:
  - {id: 1, started: 2026-11-17T08:00:00Z, jobs: [{completed: 2026-11-17T08:05:00Z, runner: r1}]}
  - {id: 2, started: 2026-11-17T09:50:00Z, conclusion: failure, jobs: [
      {completed: 2026-11-17T10:00:00Z, conclusion: failure, runner: r1}]}
  - {id: 3, started: 2026-11-17T10:10:00Z, conclusion: failure, jobs: [
      {completed: 2026-11-17T11:00:00Z, conclusion: failure, runner: r1}]}
  - {id: 4, started: 2026-11-17T10:50:00Z, jobs: [{completed: 2026-11-17T11:00:00Z, runner: r1}]}
  - {id: 5, workflow: rollback.yml, started: 2026-11-17T10:20:00Z,
     jobs: [{name: rollback, completed: 2026-11-17T10:30:00Z, runner: r1}]}
"""


def test_rollback_of_a_failure_tied_with_the_next_success_ends_the_episode(
    tmp_path: Path,
) -> None:
    got, episodes = metrics_and_episodes(
        ROLLBACK_OF_A_FAILURE_TIED_WITH_THE_SUCCESS, tmp_path / "h"
    )
    # Order: run 1 (08:05, success), run 2 (10:00, failure: the episode starts), run 3 (11:00,
    # failure), run 4 (11:00, success; after run 3 by run id). Run 3 is an attempt of the
    # episode. Rollback run 5 (signal 10:20) answers run 3, the latest change started before it
    # (10:10), and completes at 10:30, before run 4: the episode ends 10:30, 1800 s (not 3600 s).
    assert episodes == [
        (2, 1, datetime(2026, 11, 17, 10, tzinfo=UTC), datetime(2026, 11, 17, 10, 30, tzinfo=UTC),
         1800.0),
    ]  # fmt: skip
    assert (got["episodes"], got["mttr_s"], got["open_episodes"]) == (1, 1800.0, 0)
