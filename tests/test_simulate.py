"""Tests of the seeded history generator: shapes, edge cases and the ledger's ground truth.

Expected values are recomputed here from the API objects with DESIGN §5 written out plainly;
nothing is taken from deploystats except the generator itself.
"""

from __future__ import annotations

import gzip
import itertools
import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import orjson
import pytest

from deploystats.simulate import Simulation, simulate, write_bulk_dumps, write_dumps

END = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday
COUNTED = ("success", "failure", "rolled_back")


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return simulate(seed=7, end=END)


@pytest.fixture(scope="module")
def runs(sim: Simulation) -> dict[tuple[int, int], dict[str, Any]]:
    return {(r["id"], r["run_attempt"]): r for r in sim.runs}


@pytest.fixture(scope="module")
def jobs(sim: Simulation) -> dict[tuple[int, int], list[dict[str, Any]]]:
    by_attempt: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for job in sim.jobs:
        by_attempt[job["run_id"], job["run_attempt"]].append(job)
    return by_attempt


def deploy_rows(sim: Simulation) -> list[dict[str, Any]]:
    return [row for row in sim.ledger if row["workflow"] == "deploy"]


def executed(run: dict[str, Any], its_jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """DESIGN §5 executed jobs: started in this attempt, not skipped, a runner or a step ran."""
    return [
        j
        for j in its_jobs
        if ts(j["started_at"]) >= ts(run["run_started_at"])
        and (j["conclusion"] or "") != "skipped"
        and (j["runner_name"] or any(s["conclusion"] not in (None, "skipped") for s in j["steps"]))
    ]


def deploy_jobs(run: dict[str, Any], its_jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [j for j in executed(run, its_jobs) if fnmatch(j["name"].lower(), "deploy*")]


def classify(run: dict[str, Any], its_jobs: list[dict[str, Any]], drills: set[int]) -> str:
    """DESIGN §5 outcome rules in order, with deploy_jobs deploy*, cancelled: ignore."""
    conclusion = (run["conclusion"] or "").strip().lower()
    deploys = deploy_jobs(run, its_jobs)
    steps_ran = [
        s for j in deploys for s in j["steps"] if s["conclusion"] not in (None, "", "skipped")
    ]
    ran = [s["name"].lower() for s in steps_ran]
    if run["id"] in drills:
        return "excluded"
    if conclusion in ("success", "neutral") and not deploys:
        return "not_deployed"
    if conclusion == "cancelled" and not deploys:
        return "superseded"
    if any(fnmatch(name, p) for name in ran for p in ("rollback*", "*rescue*")):
        return "rolled_back"
    if conclusion == "success":
        return "success"
    if conclusion in ("failure", "timed_out", "startup_failure"):
        return "failure"
    if conclusion == "cancelled":
        return "aborted"
    return "not_counted"


def segment_rates(sim: Simulation, segment: str) -> tuple[float, float]:
    """(success rate, p95 deploy duration in seconds) of one segment, from the ledger."""
    rows = [r for r in deploy_rows(sim) if r["segment"] == segment and r["outcome"] in COUNTED]
    successes = [r for r in rows if r["outcome"] == "success"]
    durations = [
        (ts(r["deploy_completed_at"]) - ts(r["deploy_started_at"])).total_seconds()
        for r in successes
    ]
    p95 = statistics.quantiles(durations, n=20, method="inclusive")[18]
    return len(successes) / len(rows), p95


def attempt_start(row: dict[str, Any], runs: dict[tuple[int, int], dict[str, Any]]) -> datetime:
    run = runs[row["run_id"], row["run_attempt"]]
    return ts(row["deploy_started_at"] or run["run_started_at"])


# ----- determinism ---------------------------------------------------------------------------
def test_same_seed_and_end_write_identical_bytes(tmp_path: Path) -> None:
    first = write_dumps(simulate(seed=3, end=END), tmp_path / "a", gzip=True)
    second = write_dumps(simulate(seed=3, end=END), tmp_path / "b", gzip=True)
    assert {k: p.read_bytes() for k, p in first.items()} == {
        k: p.read_bytes() for k, p in second.items()
    }


def test_different_seed_gives_a_different_history(sim: Simulation) -> None:
    other = simulate(seed=8, end=END)
    assert orjson.dumps(other.runs) != orjson.dumps(sim.runs)
    assert [r["sha"] for r in other.ledger] != [r["sha"] for r in sim.ledger]


def test_default_end_is_monday_midnight_of_the_current_iso_week() -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    monday = today - timedelta(days=today.weekday())
    latest = max(ts(r["updated_at"]) for r in simulate(seed=1).runs)
    assert monday - timedelta(hours=1) <= latest < monday


def test_naive_end_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        simulate(end=datetime(2026, 11, 23))


# ----- coverage of DESIGN §5 edge cases -----------------------------------------------------
def test_every_outcome_class_occurs(sim: Simulation) -> None:
    outcomes = {row["outcome"] for row in sim.ledger}
    classes = "excluded not_deployed superseded rolled_back success failure aborted not_counted"
    assert outcomes == {*classes.split(), "rollback_run"}


def test_every_rollback_kind_occurs(sim: Simulation) -> None:
    assert {row["rollback_kind"] for row in sim.ledger} == {None, "step", "workflow", "redeploy"}


def test_rolled_back_attempts_occur_in_green_and_red_runs(sim: Simulation) -> None:
    rolled_back = [r for r in sim.ledger if r["outcome"] == "rolled_back"]
    assert {r["conclusion"] for r in rolled_back} == {"success", "failure"}


def test_odd_conclusions_are_present(sim: Simulation) -> None:
    conclusions = {r["conclusion"] for r in sim.runs}
    assert {"stale", "action_required", "startup_failure", None} <= conclusions


def test_ledger_outcomes_follow_the_design_rules_applied_to_the_api_objects(
    sim: Simulation, runs: dict[tuple[int, int], dict[str, Any]], jobs: dict[Any, Any]
) -> None:
    drills = {r["run_id"] for r in sim.ledger if r["drill"]}
    for row in deploy_rows(sim):
        key = (row["run_id"], row["run_attempt"])
        assert classify(runs[key], jobs[key], drills) == row["outcome"], key


def test_ledger_deploy_interval_equals_the_executed_deploy_job(
    sim: Simulation, runs: dict[tuple[int, int], dict[str, Any]], jobs: dict[Any, Any]
) -> None:
    for row in deploy_rows(sim):
        key = (row["run_id"], row["run_attempt"])
        deploys = deploy_jobs(runs[key], jobs[key])
        started = [j["started_at"] for j in deploys]
        completed = [j["completed_at"] for j in deploys]
        assert [row["deploy_started_at"]] == (started or [None]), key
        assert [row["deploy_completed_at"]] == (completed or [None]), key


def test_copied_jobs_start_before_their_attempt_are_created_later_and_have_no_runner(
    sim: Simulation, runs: dict[tuple[int, int], dict[str, Any]]
) -> None:
    copies = [j for j in sim.jobs if j["runner_name"] == "" and j["steps"]]
    assert copies
    for job in copies:
        run_started = ts(runs[job["run_id"], job["run_attempt"]]["run_started_at"])
        assert ts(job["started_at"]) < run_started < ts(job["created_at"])
        assert (job["runner_id"], job["runner_group_name"]) == (0, "")


def test_partial_rerun_copies_jobs_of_the_earlier_attempt(
    sim: Simulation, jobs: dict[Any, Any]
) -> None:
    earlier_names = set()
    for job in (j for j in sim.jobs if j["runner_name"] == "" and j["steps"]):
        before = jobs[job["run_id"], job["run_attempt"] - 1]
        original = [j for j in before if j["name"] == job["name"]]
        assert [(j["started_at"], j["completed_at"], j["conclusion"]) for j in original] == [
            (job["started_at"], job["completed_at"], job["conclusion"])
        ]
        earlier_names.add(job["name"])
    assert earlier_names == {"build", "deploy"}


def test_every_attempt_is_its_own_run_object(runs: dict[tuple[int, int], dict[str, Any]]) -> None:
    reruns = [r for (run_id, n), r in runs.items() if n > 1]
    assert max(r["run_attempt"] for r in reruns) >= 3
    for run in reruns:
        first = runs[run["id"], 1]
        assert run["previous_attempt_url"].endswith(f"/attempts/{run['run_attempt'] - 1}")
        assert run["created_at"] == first["created_at"] < run["run_started_at"]


def test_some_reruns_come_days_later(runs: dict[tuple[int, int], dict[str, Any]]) -> None:
    delays = [ts(r["run_started_at"]) - ts(r["created_at"]) for (_, n), r in runs.items() if n > 1]
    assert max(delays) > timedelta(days=1)


def test_superseded_deploy_jobs_never_got_a_runner(sim: Simulation, jobs: dict[Any, Any]) -> None:
    superseded = [r for r in sim.ledger if r["outcome"] == "superseded"]
    assert superseded
    for row in superseded:
        (deploy,) = [j for j in jobs[row["run_id"], row["run_attempt"]] if j["name"] == "deploy"]
        assert (deploy["conclusion"], deploy["runner_name"], deploy["steps"]) == (
            "cancelled",
            None,
            [],
        )


def test_not_deployed_runs_skip_the_deploy_job_by_if(sim: Simulation, jobs: dict[Any, Any]) -> None:
    (row,) = [r for r in sim.ledger if r["scenario"] == "not_deployed"]
    skipped = [j for j in jobs[row["run_id"], row["run_attempt"]] if j["name"] == "deploy"]
    assert [(j["conclusion"], j["runner_name"], j["steps"]) for j in skipped] == [
        ("skipped", None, [])
    ]


def test_runner_less_failures_have_no_runner_and_no_steps(
    sim: Simulation, runs: dict[tuple[int, int], dict[str, Any]], jobs: dict[Any, Any]
) -> None:
    failures = [r for r in deploy_rows(sim) if r["outcome"] == "failure" and not r["runner_role"]]
    conclusions = {runs[r["run_id"], r["run_attempt"]]["conclusion"] for r in failures}
    assert conclusions == {"failure", "startup_failure"}
    for row in failures:
        for job in jobs[row["run_id"], row["run_attempt"]]:
            if job["name"] == "deploy":
                assert (job["conclusion"], job["runner_name"], job["steps"]) == (
                    "failure",
                    None,
                    [],
                )


def test_failover_deploys_run_on_the_secondary_during_the_primary_outage(
    sim: Simulation,
) -> None:
    secondary = [r for r in sim.ledger if r["runner_role"] == "secondary"]
    starts = sorted(ts(r["deploy_started_at"]) for r in secondary)
    assert len(secondary) >= 2
    assert starts[-1] - starts[0] < timedelta(hours=4)
    labels = {tuple(j["labels"]) for j in sim.jobs if j["runner_name"] == "dell-r640-02-runner"}
    assert labels == {("self-hosted", "linux", "prod-secondary")}


def test_deploy_jobs_wait_in_queue_and_pending(
    runs: dict[tuple[int, int], dict[str, Any]], jobs: dict[Any, Any]
) -> None:
    queue, pending = [], []
    for key, run in runs.items():
        for job in deploy_jobs(run, jobs[key]):
            queue.append((ts(job["started_at"]) - ts(job["created_at"])).total_seconds())
            pending.append((ts(job["created_at"]) - ts(run["run_started_at"])).total_seconds())
    assert min(queue) >= 0 and max(queue) >= 60
    assert min(pending) >= 0 and max(pending) >= 600  # a burst waits for the deploy ahead


def test_counted_deploys_never_overlap(sim: Simulation) -> None:
    intervals = sorted(
        (ts(r["deploy_started_at"]), ts(r["deploy_completed_at"]))
        for r in deploy_rows(sim)
        if r["outcome"] in COUNTED and r["deploy_started_at"]
    )
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(intervals))


def test_head_commits_precede_their_deploys_except_one_skewed_clock(
    sim: Simulation, runs: dict[tuple[int, int], dict[str, Any]]
) -> None:
    future = [
        row["scenario"]
        for row in deploy_rows(sim)
        if row["outcome"] == "success"
        and ts(runs[row["run_id"], row["run_attempt"]]["head_commit"]["timestamp"])
        > ts(row["deploy_completed_at"])
    ]
    assert future == ["clock_skew"]


def test_a_run_is_still_in_progress_at_end(sim: Simulation) -> None:
    in_progress = [r for r in sim.runs if r["status"] == "in_progress"]
    assert [r["conclusion"] for r in in_progress] == [None]
    assert ts(in_progress[0]["run_started_at"]) > END - timedelta(hours=1)


def test_drill_is_flagged_and_excluded(sim: Simulation) -> None:
    drills = [r for r in sim.ledger if r["drill"]]
    assert [(r["outcome"], r["conclusion"]) for r in drills] == [("excluded", "failure")]


# ----- rollback signals and episodes --------------------------------------------------------
def test_rollback_runs_answer_the_latest_change_before_them(
    sim: Simulation, runs: dict[tuple[int, int], dict[str, Any]]
) -> None:
    """Signal (a): the latest change started before the run and at most 24 h before it."""
    changes = [
        r for r in deploy_rows(sim) if r["outcome"] in COUNTED and r["rollback_kind"] != "redeploy"
    ]
    rollbacks = [r for r in sim.ledger if r["workflow"] == "rollback"]
    assert rollbacks
    for rollback in rollbacks:
        signal = ts(runs[rollback["run_id"], 1]["run_started_at"])
        before = [
            c for c in changes if signal - timedelta(hours=24) <= attempt_start(c, runs) < signal
        ]
        latest = max(before, key=lambda c: attempt_start(c, runs))
        answered = (rollback["answers_run_id"], rollback["answers_run_attempt"])
        assert (latest["run_id"], latest["run_attempt"]) == answered


def test_redeploy_deploys_a_version_older_than_the_change_it_answers(
    sim: Simulation, runs: dict[tuple[int, int], dict[str, Any]]
) -> None:
    """Signal (c): same version as an earlier success, commit older than the last success's."""
    successes = sorted(
        (r for r in deploy_rows(sim) if r["outcome"] == "success"),
        key=lambda r: attempt_start(r, runs),
    )
    (redeploy,) = [r for r in successes if r["rollback_kind"] == "redeploy"]
    earlier = successes[: successes.index(redeploy)]
    previous = earlier[-1]
    answered = (redeploy["answers_run_id"], redeploy["answers_run_attempt"])
    assert (previous["run_id"], previous["run_attempt"]) == answered
    assert redeploy["sha"] in {r["sha"] for r in earlier[:-1]}
    commit_at = {k: ts(r["head_commit"]["timestamp"]) for k, r in runs.items()}
    key = (redeploy["run_id"], redeploy["run_attempt"])
    assert commit_at[key] < commit_at[previous["run_id"], previous["run_attempt"]]


def test_episodes_match_the_design_rule_over_counted_attempts(
    sim: Simulation, runs: dict[tuple[int, int], dict[str, Any]]
) -> None:
    """Failed/rolled_back after a success opens an episode; a success or rollback run ends it."""

    def completed(row: dict[str, Any]) -> datetime:
        return ts(
            row["deploy_completed_at"] or runs[row["run_id"], row["run_attempt"]]["updated_at"]
        )

    counted = sorted(
        (r for r in deploy_rows(sim) if r["outcome"] in COUNTED),
        key=lambda r: (completed(r), r["run_id"], r["run_attempt"]),
    )
    rollback_ends = {
        (r["answers_run_id"], r["answers_run_attempt"]): ts(r["deploy_completed_at"])
        for r in sim.ledger
        if r["workflow"] == "rollback"
    }
    expected, episode, members, previous_ok = {}, 0, [], True
    for row in counted:
        key = (row["run_id"], row["run_attempt"])
        if row["outcome"] != "success":
            if previous_ok:
                episode, members = episode + 1, []
            members.append(key)
            expected[key], previous_ok = episode, False
            continue
        ends = [rollback_ends[m] for m in members if m in rollback_ends]
        if members and not (ends and min(ends) < completed(row)):
            expected[key] = episode
        members, previous_ok = [], True
    actual = {(r["run_id"], r["run_attempt"]): r["episode"] for r in deploy_rows(sim)}
    assert {k: v for k, v in actual.items() if v is not None} == expected
    assert episode >= 10


# ----- API object shapes ---------------------------------------------------------------------
def test_run_objects_are_about_15_kb_and_belong_to_acme_platform(sim: Simulation) -> None:
    sizes = [len(orjson.dumps(r)) for r in sim.runs]
    assert 13_000 <= statistics.mean(sizes) <= 17_000
    assert min(sizes) >= 12_000
    assert {r["repository"]["full_name"] for r in sim.runs} == {"acme/platform"}
    assert {r["head_repository"]["full_name"] for r in sim.runs} == {"acme/platform"}


def test_ids_grow_with_time(sim: Simulation) -> None:
    first_attempts = sorted((r for r in sim.runs if r["run_attempt"] == 1), key=lambda r: r["id"])
    assert [r["created_at"] for r in first_attempts] == sorted(
        r["created_at"] for r in first_attempts
    )
    by_id = sorted(sim.jobs, key=lambda j: j["id"])
    assert [j["created_at"] for j in by_id] == sorted(j["created_at"] for j in by_id)
    assert 1.5e10 < first_attempts[0]["id"] < 2.5e10 and 4e10 < by_id[0]["id"] < 7e10


def test_no_timestamp_reaches_end(sim: Simulation) -> None:
    stamps = [r[k] for r in sim.runs for k in ("created_at", "run_started_at", "updated_at")]
    stamps += [j[k] for j in sim.jobs for k in ("created_at", "started_at", "completed_at")]
    stamps += [s["created_at"] for s in sim.deployment_statuses]
    assert max(ts(s) for s in stamps if s) < END


def test_deployment_statuses_name_the_run_and_job(sim: Simulation) -> None:
    job_runs = {j["id"]: j["run_id"] for j in sim.jobs}
    deployments = {d["url"]: d for d in sim.deployments}
    for status in sim.deployment_statuses:
        run_id, job_id = status["log_url"].split("/runs/")[1].split("/job/")
        assert status["target_url"] == status["log_url"]
        assert status["log_url"].startswith("https://github.com/acme/platform/actions/runs/")
        assert job_runs[int(job_id)] == int(run_id)
        assert deployments[status["deployment_url"]]["environment"] == "production"


def test_ledger_in_environment_matches_the_linked_deployments(sim: Simulation) -> None:
    job_attempts = {j["id"]: (j["run_id"], j["run_attempt"]) for j in sim.jobs}
    linked = {job_attempts[int(s["log_url"].rsplit("/", 1)[1])] for s in sim.deployment_statuses}
    flagged = {(r["run_id"], r["run_attempt"]) for r in sim.ledger if r["in_environment"]}
    assert linked == flagged


# ----- segments ------------------------------------------------------------------------------
def test_baseline_success_rate_is_about_85_percent(sim: Simulation) -> None:
    rate, _ = segment_rates(sim, "baseline")
    assert 0.80 <= rate <= 0.90


def test_improved_success_rate_is_97_to_98_percent(sim: Simulation) -> None:
    rate, _ = segment_rates(sim, "improved")
    assert 0.96 <= rate <= 0.99


def test_baseline_p95_deploy_duration_exceeds_15_minutes(sim: Simulation) -> None:
    _, p95 = segment_rates(sim, "baseline")
    assert p95 > 900


def test_improved_p95_deploy_duration_is_about_7_minutes(sim: Simulation) -> None:
    _, p95 = segment_rates(sim, "improved")
    assert 360 <= p95 <= 480


def test_working_days_see_6_to_10_deploy_runs_on_average(sim: Simulation) -> None:
    per_day: dict[str, int] = defaultdict(int)
    for run in sim.runs:
        day = ts(run["created_at"])
        if run["run_attempt"] == 1 and run["name"] == "Deploy production" and day.weekday() < 5:
            per_day[day.date().isoformat()] += 1
    assert 6 <= statistics.mean(per_day.values()) <= 10


# ----- files ---------------------------------------------------------------------------------
def read_lines(path: Path) -> list[dict[str, Any]]:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return [orjson.loads(line) for line in data.splitlines()]


def test_write_dumps_round_trips_every_object(sim: Simulation, tmp_path: Path) -> None:
    paths = write_dumps(sim, tmp_path)
    for name in ("runs", "jobs", "deployments", "deployment_statuses", "ledger"):
        assert read_lines(paths[name]) == getattr(sim, name), name
    page = orjson.loads(paths["workflows"].read_bytes())
    assert page == {"total_count": len(sim.workflows), "workflows": sim.workflows}
    assert {"Deploy production", "Rollback production"} <= {w["name"] for w in sim.workflows}


def test_write_dumps_gzip_round_trips(sim: Simulation, tmp_path: Path) -> None:
    paths = write_dumps(sim, tmp_path, gzip=True)
    assert paths["runs"].name == "runs.jsonl.gz"
    assert read_lines(paths["jobs"]) == sim.jobs


def test_write_bulk_dumps_writes_valid_real_sized_lines(tmp_path: Path) -> None:
    paths = write_bulk_dumps(tmp_path, runs=2_000, seed=7, end=END)
    runs = read_lines(paths["runs"])
    jobs = read_lines(paths["jobs"])
    assert len(runs) == 2_000
    assert statistics.mean(len(orjson.dumps(r)) for r in runs) >= 13_000
    assert len({(r["id"], r["run_attempt"]) for r in runs}) == 2_000
    assert len({j["id"] for j in jobs}) == len(jobs)
    assert {(j["run_id"], j["run_attempt"]) for j in jobs} <= {
        (r["id"], r["run_attempt"]) for r in runs
    }
    assert len({r["repository"]["full_name"] for r in runs}) > 1
