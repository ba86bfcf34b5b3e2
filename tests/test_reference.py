"""Tests of the DESIGN §5 oracle (tests/reference.py) and the compact-history factories.

Every expected number is worked out by hand in the test (the arithmetic is in a comment), never
copied from the oracle's output. Histories are one ISO week, Monday 2026-11-16 to Monday
2026-11-23, with data as of the window end unless a test says otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.factories import History, history_from_spec, load_spec, make_job, make_run
from tests.reference import classify, find_episodes, find_incidents, reference_metrics

WEEK = """
window: {start: 2026-11-16T00:00:00Z, end: 2026-11-23T00:00:00Z}
data_as_of: 2026-11-23T00:00:00Z
"""
MONDAY = datetime(2026, 11, 16, tzinfo=UTC)
Z = 1.959963984540054


def history(text: str) -> History:
    return history_from_spec(load_spec(WEEK + text))


def metrics(text: str, **kwargs: Any) -> dict[str, Any]:
    return reference_metrics(history(text), **kwargs)


def outcomes(text: str) -> dict[tuple[int, int], str]:
    return {(a["run_id"], a["run_attempt"]): a["outcome"] for a in classify(history(text))}


def attempt(text: str, run_id: int, run_attempt: int = 1) -> dict[str, Any]:
    found = [
        a
        for a in classify(history(text))
        if (a["run_id"], a["run_attempt"]) == (run_id, run_attempt)
    ]
    assert len(found) == 1
    return found[0]


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def timed_successes(durations_s: list[float]) -> dict[str, Any]:
    """One successful attempt per duration, an hour apart from Monday 00:00."""
    runs = []
    for i, seconds in enumerate(durations_s):
        start = MONDAY + timedelta(hours=i)
        job = {"completed": iso(start + timedelta(seconds=seconds)), "runner": "prim-1"}
        runs.append({"id": i + 1, "started": iso(start), "jobs": [job]})
    return {
        "window": {"start": "2026-11-16T00:00:00Z", "end": "2026-11-23T00:00:00Z"},
        "data_as_of": "2026-11-23T00:00:00Z",
        "runs": runs,
    }


# ----- factories -------------------------------------------------------------------------------
def test_load_spec_keeps_timestamps_as_strings() -> None:
    spec = load_spec("data_as_of: 2026-11-24T00:00:00Z\nruns: [{started: 2026-11-16T10:00:00Z}]")
    assert spec == {
        "data_as_of": "2026-11-24T00:00:00Z",
        "runs": [{"started": "2026-11-16T10:00:00Z"}],
    }


def test_compact_defaults_build_github_shaped_run_and_jobs() -> None:
    h = history("""
runs:
  - {id: 7, started: 2026-11-16T10:00:00Z, jobs: [
      {name: build, completed: 2026-11-16T10:04:00Z, runner: gh-1},
      {name: deploy, started: 2026-11-16T10:04:30Z, completed: 2026-11-16T10:09:00Z}]}
""")
    (run,) = h.runs
    assert run["url"] == "https://api.github.com/repos/acme/platform/actions/runs/7"
    assert (run["path"], run["name"], run["event"], run["head_branch"]) == (
        ".github/workflows/deploy.yml", "Deploy", "push", "main",
    )  # fmt: skip
    assert (run["status"], run["conclusion"], run["run_attempt"]) == ("completed", "success", 1)
    assert run["created_at"] == run["run_started_at"] == "2026-11-16T10:00:00Z"
    assert run["updated_at"] == "2026-11-16T10:09:00Z"  # the latest job completion
    assert run["repository"]["full_name"] == "acme/platform"
    # job ids: 7 * 100 + (1 - 1) * 10 + index + 1
    assert [j["id"] for j in h.jobs] == [701, 702]
    build, deploy = h.jobs
    assert build["created_at"] == "2026-11-16T10:00:00Z"  # the run's start
    assert deploy["created_at"] == "2026-11-16T10:00:00Z"
    assert (deploy["runner_name"], deploy["runner_group_name"]) == ("", "")
    assert build["html_url"] == "https://github.com/acme/platform/actions/runs/7/job/701"


def test_later_attempt_takes_the_run_creation_time_and_its_own_job_ids() -> None:
    h = history("""
runs:
  - {id: 3, started: 2026-11-16T10:00:00Z, conclusion: failure}
  - {id: 3, attempt: 2, started: 2026-11-16T12:00:00Z, jobs: [{completed: 2026-11-16T12:05:00Z}]}
""")
    second = h.runs[1]
    assert (second["created_at"], second["run_started_at"]) == (
        "2026-11-16T10:00:00Z", "2026-11-16T12:00:00Z",
    )  # fmt: skip
    assert h.jobs[0]["id"] == 3 * 100 + (2 - 1) * 10 + 0 + 1


def test_steps_are_numbered_inside_the_job_span() -> None:
    h = history("""
runs:
  - {id: 1, started: 2026-11-16T10:00:00Z, jobs: [{completed: 2026-11-16T10:04:00Z,
     steps: [checkout, {name: rescue, conclusion: skipped}]}]}
""")
    steps = h.jobs[0]["steps"]
    assert [(s["number"], s["name"], s["conclusion"]) for s in steps] == [
        (1, "checkout", "success"), (2, "rescue", "skipped"),
    ]  # fmt: skip
    assert [(s["started_at"], s["completed_at"]) for s in steps] == [
        ("2026-11-16T10:00:00Z", "2026-11-16T10:02:00Z"),
        ("2026-11-16T10:02:00Z", "2026-11-16T10:04:00Z"),
    ]


def test_runs_of_one_sha_share_the_head_commit_time() -> None:
    h = history("""
runs:
  - {id: 1, sha: aaa, commit_at: 2026-11-16T08:00:00Z, started: 2026-11-16T10:00:00Z}
  - {id: 2, sha: aaa, started: 2026-11-18T10:00:00Z}
""")
    assert [r["head_commit"]["timestamp"] for r in h.runs] == ["2026-11-16T08:00:00Z"] * 2


def test_make_run_takes_api_field_overrides_and_rejects_unknown_keys() -> None:
    run = make_run(id=5, started="2026-11-16T10:00:00Z", run_started_at=MONDAY)
    assert run["run_started_at"] == "2026-11-16T00:00:00Z"
    job = make_job(run, name="deploy", runner_name=None)
    assert job["runner_name"] is None
    with pytest.raises(TypeError, match="statred"):
        make_run(id=5, started="2026-11-16T10:00:00Z", statred="2026-11-16T10:00:00Z")


def test_deployment_status_urls_name_the_run_and_job() -> None:
    h = history("""
target: {environment: production}
runs:
  - {id: 1, sha: aaa, started: 2026-11-16T10:00:00Z, jobs: [
      {name: build, completed: 2026-11-16T10:02:00Z},
      {name: deploy, completed: 2026-11-16T10:05:00Z}]}
deployments:
  - {id: 7, statuses: [{state: in_progress, run: 1, job: deploy}, {state: success}]}
""")
    (deployment,) = h.deployments
    assert (deployment["environment"], deployment["sha"]) == ("production", "aaa")
    url = "https://github.com/acme/platform/actions/runs/1/job/102"
    assert [(s["state"], s["log_url"], s["target_url"]) for s in h.deployment_statuses] == [
        ("in_progress", url, url), ("success", url, url),
    ]  # fmt: skip
    assert h.deployment_statuses[0]["deployment_url"].endswith("/repos/acme/platform/deployments/7")


# ----- executed jobs and timing ----------------------------------------------------------------
def test_copied_jobs_of_a_partial_rerun_are_not_executed() -> None:
    text = """
runs:
  - {id: 1, started: 2026-11-17T10:00:00Z, conclusion: failure, jobs: [
      {name: build, started: 2026-11-17T10:00:10Z, completed: 2026-11-17T10:05:00Z, runner: gh-1},
      {name: deploy, started: 2026-11-17T10:05:10Z, completed: 2026-11-17T10:06:00Z, runner: prim-1,
       conclusion: failure}]}
  - {id: 1, attempt: 2, started: 2026-11-17T11:00:00Z, jobs: [
      {name: build, created: 2026-11-17T11:00:05Z, started: 2026-11-17T10:00:10Z,
       completed: 2026-11-17T10:05:00Z, steps: [checkout, build]},
      {name: deploy, created: 2026-11-17T11:00:05Z, started: 2026-11-17T11:00:20Z,
       completed: 2026-11-17T11:04:20Z, runner: prim-1}]}
"""
    second = attempt(text, 1, 2)
    # every executed job is a deploy job here; the copied build (started 10:00:10, before the
    # attempt's 11:00) is not executed, so the attempt spans 11:00:20 .. 11:04:20 = 240 s
    assert second["deploy_job_ids"] == [112]
    assert second["started_at"] == datetime(2026, 11, 17, 11, 0, 20, tzinfo=UTC)
    assert metrics(text)["duration_p50_s"] == 240.0


def test_attempt_whose_deploy_job_is_a_copy_is_not_deployed_with_run_timing() -> None:
    text = """
target: {deploy_jobs: ["deploy*"]}
runs:
  - {id: 1, started: 2026-11-17T10:00:00Z, conclusion: failure, jobs: [
      {name: deploy, completed: 2026-11-17T10:05:00Z, runner: prim-1},
      {name: notify, started: 2026-11-17T10:05:00Z, completed: 2026-11-17T10:06:00Z, runner: gh-1,
       conclusion: failure}]}
  - {id: 1, attempt: 2, started: 2026-11-17T11:00:00Z, jobs: [
      {name: deploy, created: 2026-11-17T11:00:05Z, started: 2026-11-17T10:00:00Z,
       completed: 2026-11-17T10:05:00Z, steps: [deploy]},
      {name: notify, started: 2026-11-17T11:00:10Z, completed: 2026-11-17T11:00:40Z, runner: gh-1}]}
"""
    assert outcomes(text) == {(1, 1): "failure", (1, 2): "not_deployed"}
    second = attempt(text, 1, 2)
    assert (second["timing_source"], second["started_at"], second["completed_at"]) == (
        "run",
        datetime(2026, 11, 17, 11, 0, tzinfo=UTC),  # run_started_at
        datetime(2026, 11, 17, 11, 0, 40, tzinfo=UTC),  # updated_at (the last job's end)
    )


def test_job_without_runner_name_but_with_a_step_that_ran_is_executed() -> None:
    text = """
target: {runners: {primary: {names: ["prim-*"]}}}
runs:
  - {id: 1, started: 2026-11-17T10:00:00Z, jobs: [
      {completed: 2026-11-17T10:05:00Z, steps: [deploy]}]}
"""
    result = metrics(text)
    # executed (a step ran) -> success; its runner has no name -> unknown runner, 1 / 1
    assert (result["successes"], result["unknown_runner_share"]) == (1, 1.0)


def test_failure_whose_deploy_job_never_got_a_runner_uses_run_timing() -> None:
    text = """
runs:
  - {id: 1, started: 2026-11-17T10:00:00Z, updated: 2026-11-17T10:30:00Z, conclusion: failure,
     jobs: [{created: 2026-11-17T10:00:05Z, started: 2026-11-17T10:30:00Z,
             completed: 2026-11-17T10:30:00Z, conclusion: failure}]}
"""
    only = attempt(text, 1)
    assert (only["outcome"], only["timing_source"], only["duration_s"]) == (
        "failure",
        "run",
        1800.0,
    )
    assert only["started_at"] == datetime(2026, 11, 17, 10, 0, tzinfo=UTC)


def test_deploy_interval_spans_every_deploy_job() -> None:
    text = """
target: {deploy_jobs: ["deploy-*"]}
runs:
  - {id: 1, started: 2026-11-17T10:00:00Z, jobs: [
      {name: deploy-eu, created: 2026-11-17T10:01:00Z, started: 2026-11-17T10:02:00Z,
       completed: 2026-11-17T10:07:00Z, runner: prim-1},
      {name: deploy-us, created: 2026-11-17T10:01:00Z, started: 2026-11-17T10:04:00Z,
       completed: 2026-11-17T10:09:00Z, runner: prim-2}]}
"""
    only = attempt(text, 1)
    # min start 10:02, max completion 10:09 -> 420 s; queue max(60, 180) = 180 s;
    # pending: the first deploy job (deploy-eu) created 10:01 - run start 10:00 = 60 s
    assert (only["duration_s"], only["queue_s"], only["pending_s"]) == (420.0, 180.0, 60.0)


def test_queue_pending_and_total_times_of_an_attempt() -> None:
    text = """
runs:
  - {id: 1, started: 2026-11-17T10:00:00Z, jobs: [{created: 2026-11-17T10:02:00Z,
     started: 2026-11-17T10:03:00Z, completed: 2026-11-17T10:08:00Z, runner: prim-1}]}
"""
    result = metrics(text)
    # queue 10:03 - 10:02 = 60; pending 10:02 - 10:00 = 120; total 10:08 - created 10:00 = 480
    assert (result["queue_p50_s"], result["pending_p50_s"], result["total_p50_s"]) == (
        60.0, 120.0, 480.0,
    )  # fmt: skip
    assert result["queue_p95_s"] is None  # n = 1 < 20


def test_total_time_of_a_later_attempt_starts_at_its_run_started_at() -> None:
    text = """
runs:
  - {id: 1, started: 2026-11-17T10:00:00Z, conclusion: failure, jobs: [
      {completed: 2026-11-17T10:05:00Z, runner: prim-1, conclusion: failure}]}
  - {id: 1, attempt: 2, started: 2026-11-17T12:00:00Z, jobs: [
      {completed: 2026-11-17T12:10:00Z, runner: prim-1}]}
"""
    # attempt 2: 12:10 - run_started_at 12:00 = 600 s (not 12:10 - created 10:00 = 7800 s)
    assert metrics(text)["total_p50_s"] == 600.0


# ----- outcomes --------------------------------------------------------------------------------
def test_cancelled_while_the_deploy_job_waited_is_superseded() -> None:
    text = """
runs:
  - {id: 1, started: 2026-11-17T10:00:00Z, conclusion: cancelled, jobs: [
      {created: 2026-11-17T10:00:05Z, started: 2026-11-17T10:03:00Z,
       completed: 2026-11-17T10:03:00Z, conclusion: cancelled}]}
"""
    result = metrics(text)
    assert (result["superseded"], result["aborted"], result["success_rate"]) == (1, 0, None)


CANCELLED_MID_DEPLOY = """
runs:
  - {id: 1, started: 2026-11-17T10:00:00Z, conclusion: cancelled, jobs: [
      {completed: 2026-11-17T10:04:00Z, runner: prim-1, conclusion: cancelled,
       steps: [checkout, {name: deploy, conclusion: cancelled}]}]}
  - {id: 2, started: 2026-11-17T11:00:00Z, jobs: [
      {completed: 2026-11-17T11:05:00Z, runner: prim-1}]}
"""


def test_cancelled_after_the_deploy_job_ran_is_aborted_and_ignored_by_default() -> None:
    result = metrics(CANCELLED_MID_DEPLOY)
    # counted = 1 success; the aborted attempt is not counted: 1 / 1
    assert (result["aborted"], result["success_rate"]) == (1, 1.0)


def test_aborted_counts_as_a_failure_with_cancelled_failure() -> None:
    h = history(CANCELLED_MID_DEPLOY)
    result = reference_metrics(h, target={**h.target, "cancelled": "failure"})
    # counted = success + aborted = 2 -> 1 / 2
    assert (result["aborted"], result["success_rate"]) == (1, 0.5)


def test_deploy_job_skipped_by_if_is_not_deployed() -> None:
    text = """
target: {deploy_jobs: ["deploy*"]}
runs:
  - {id: 1, started: 2026-11-17T10:00:00Z, jobs: [
      {name: build, completed: 2026-11-17T10:04:00Z, runner: gh-1},
      {name: deploy, started: 2026-11-17T10:04:00Z, completed: 2026-11-17T10:04:00Z,
       conclusion: skipped}]}
"""
    result = metrics(text)
    assert (result["not_deployed"], result["successes"], result["success_rate"]) == (1, 0, None)


GREEN_RESCUE = """
target: {rollback_steps: ["rollback*", "*rescue*"]}
runs:
  - {id: 1, started: 2026-11-17T10:00:00Z, jobs: [{completed: 2026-11-17T10:06:00Z, runner: prim-1,
     steps: [checkout, {name: deploy, conclusion: failure},
             {name: Run RESCUE script, conclusion: success}]}]}
  - {id: 2, started: 2026-11-17T11:00:00Z, jobs: [
      {completed: 2026-11-17T11:05:00Z, runner: prim-1}]}
"""


def test_rollback_step_that_ran_in_a_green_run_is_rolled_back() -> None:
    result = metrics(GREEN_RESCUE)
    # run 1 concluded success but its rescue step ran (case-insensitive *rescue*): 1 / 2
    assert (result["rolled_back"], result["successes"], result["success_rate"]) == (1, 1, 0.5)


def test_skipped_rollback_step_does_not_roll_back() -> None:
    text = GREEN_RESCUE.replace(
        "Run RESCUE script, conclusion: success", "rescue, conclusion: skipped"
    )
    assert outcomes(text) == {(1, 1): "success", (2, 1): "success"}


def test_rolled_back_success_option_treats_it_as_a_success() -> None:
    h = history(GREEN_RESCUE)
    result = reference_metrics(h, target={**h.target, "rolled_back": "success"})
    # success rate 2 / 2; durations 360 and 300 s; frequency 2 / 7 days
    assert (result["success_rate"], result["duration_n"], result["duration_p50_s"]) == (
        1.0,
        2,
        330.0,
    )
    assert result["deploy_frequency_per_day"] == pytest.approx(2 / 7)
    assert (result["rolled_back"], result["successes"]) == (1, 1)  # the classes stay apart


def test_rollback_step_in_a_job_that_is_not_a_deploy_job_is_ignored() -> None:
    text = """
target: {deploy_jobs: ["deploy*"], rollback_steps: ["rollback*"]}
runs:
  - {id: 1, started: 2026-11-17T10:00:00Z, jobs: [
      {name: deploy, completed: 2026-11-17T10:05:00Z, runner: prim-1},
      {name: cleanup, started: 2026-11-17T10:05:00Z, completed: 2026-11-17T10:06:00Z, runner: gh-1,
       steps: [rollback temp files]}]}
"""
    assert outcomes(text) == {(1, 1): "success"}


def test_rollback_step_in_a_cancelled_run_is_rolled_back() -> None:
    # READING: rule 4 comes before the conclusion rules, so it holds for a cancelled run too
    text = """
target: {rollback_steps: ["rollback*"]}
runs:
  - {id: 1, started: 2026-11-17T10:00:00Z, conclusion: cancelled, jobs: [
      {completed: 2026-11-17T10:05:00Z, runner: prim-1, conclusion: cancelled,
       steps: [{name: deploy, conclusion: failure}, rollback release]}]}
"""
    assert outcomes(text) == {(1, 1): "rolled_back"}


def test_stale_and_action_required_runs_are_not_counted() -> None:
    text = """
runs:
  - {id: 1, started: 2026-11-17T10:00:00Z, conclusion: stale}
  - {id: 2, started: 2026-11-17T11:00:00Z, conclusion: action_required}
"""
    result = metrics(text)
    assert (result["not_counted"], result["success_rate"]) == (2, None)


def test_startup_failure_is_a_failure_timed_by_the_run() -> None:
    text = """
runs:
  - {id: 1, started: 2026-11-17T10:00:00Z, updated: 2026-11-17T10:00:02Z,
     conclusion: startup_failure}
"""
    only = attempt(text, 1)
    assert (only["outcome"], only["timing_source"], only["duration_s"]) == ("failure", "run", 2.0)


def test_upper_case_and_padded_conclusions_are_normalised() -> None:
    text = """
target: {deploy_jobs: ["deploy*"]}
runs:
  - {id: 1, started: 2026-11-17T10:00:00Z, conclusion: SUCCESS, jobs: [
      {completed: 2026-11-17T10:05:00Z, runner: prim-1, conclusion: " Success "}]}
  - {id: 2, started: 2026-11-17T11:00:00Z, conclusion: Success, jobs: [
      {started: 2026-11-17T11:00:00Z, completed: 2026-11-17T11:00:00Z, conclusion: SKIPPED,
       steps: [{name: deploy, conclusion: SKIPPED}]}]}
  - {id: 3, started: 2026-11-17T12:00:00Z, conclusion: TIMED_OUT, jobs: [
      {completed: 2026-11-17T12:30:00Z, runner: prim-1, conclusion: FAILURE}]}
  - {id: 4, started: 2026-11-17T13:00:00Z, conclusion: " Cancelled", jobs: [
      {completed: 2026-11-17T13:01:00Z, conclusion: CANCELLED}]}
"""
    assert outcomes(text) == {
        (1, 1): "success", (2, 1): "not_deployed", (3, 1): "failure", (4, 1): "superseded",
    }  # fmt: skip


def test_neutral_run_without_a_deploy_job_is_not_deployed() -> None:
    text = """
runs:
  - {id: 1, started: 2026-11-17T10:00:00Z, conclusion: neutral, jobs: [
      {name: deploy, conclusion: skipped}]}
"""
    assert outcomes(text) == {(1, 1): "not_deployed"}


def test_without_job_data_a_run_counts_by_its_conclusion() -> None:
    # DECIDED: rules 2 and 3 need job data; a job-less run is timed by the run (timing 'run')
    text = """
runs:
  - {id: 1, started: 2026-11-17T10:00:00Z, conclusion: success}
  - {id: 2, started: 2026-11-17T11:00:00Z, conclusion: cancelled}
"""
    assert outcomes(text) == {(1, 1): "success", (2, 1): "aborted"}


def test_neutral_run_with_a_deploy_job_is_not_counted() -> None:
    # READING: no rule before 8 names `neutral` once a deploy job executed
    text = """
runs:
  - {id: 1, started: 2026-11-17T10:00:00Z, conclusion: neutral, jobs: [
      {completed: 2026-11-17T10:05:00Z, runner: prim-1}]}
"""
    assert outcomes(text) == {(1, 1): "not_counted"}


def test_run_in_progress_is_not_counted_and_has_no_completion() -> None:
    text = """
runs:
  - {id: 1, started: 2026-11-17T10:00:00Z, status: in_progress, jobs: [
      {started: 2026-11-17T10:01:00Z, status: in_progress, runner: prim-1}]}
"""
    only = attempt(text, 1)
    assert (only["outcome"], only["timing_source"], only["completed_at"]) == (
        "not_counted", "jobs", None,
    )  # fmt: skip


# ----- exclusions ------------------------------------------------------------------------------
def test_drill_excluded_by_run_id_leaves_the_success_rate() -> None:
    text = """
target: {exclude: [{runs: [2], reason: rollback drill}]}
runs:
  - {id: 1, started: 2026-11-17T10:00:00Z, jobs: [
      {completed: 2026-11-17T10:05:00Z, runner: prim-1}]}
  - {id: 2, started: 2026-11-18T10:00:00Z, conclusion: failure, jobs: [
      {completed: 2026-11-18T10:05:00Z, runner: prim-1, conclusion: failure}]}
"""
    result = metrics(text)
    assert (result["excluded"], result["failures"], result["success_rate"]) == (1, 0, 1.0)


def test_time_range_excludes_attempts_overlapping_it_half_open() -> None:
    text = """
target: {exclude: [{from: 2026-11-18T12:00:00Z, to: 2026-11-18T14:00:00Z, reason: GitHub outage}]}
runs:
  - {id: 1, started: 2026-11-18T11:55:00Z, conclusion: failure, jobs: [
      {completed: 2026-11-18T12:05:00Z, runner: prim-1, conclusion: failure}]}
  - {id: 2, started: 2026-11-18T14:00:00Z, jobs: [
      {completed: 2026-11-18T14:05:00Z, runner: prim-1}]}
  - {id: 3, started: 2026-11-18T11:50:00Z, jobs: [
      {completed: 2026-11-18T12:00:00Z, runner: prim-1}]}
"""
    # [11:55, 12:05) overlaps [12:00, 14:00); [14:00, 14:05) starts at `to`; [11:50, 12:00) ends
    # at `from`: neither of the last two overlaps
    assert outcomes(text) == {(1, 1): "excluded", (2, 1): "success", (3, 1): "success"}


# ----- target matching -------------------------------------------------------------------------
def test_workflow_globs_match_the_file_basename_or_the_name() -> None:
    text = """
target: {workflows: ["deploy-*.yml", Release]}
runs:
  - {id: 1, workflow: deploy-prod.yml, started: 2026-11-17T10:00:00Z, jobs: [
      {completed: 2026-11-17T10:05:00Z, runner: r1}]}
  - {id: 2, workflow: release.yml, started: 2026-11-17T11:00:00Z, jobs: [
      {completed: 2026-11-17T11:05:00Z, runner: r1}]}
  - {id: 3, workflow: ci.yml, started: 2026-11-17T12:00:00Z, jobs: [
      {completed: 2026-11-17T12:05:00Z, runner: r1}]}
"""
    # run 1 by basename, run 2 by its name "Release", run 3 neither
    assert outcomes(text) == {(1, 1): "success", (2, 1): "success"}


def test_branches_events_and_repos_filter_runs() -> None:
    text = """
target: {repos: ["acme/*"], branches: [main], events: [push]}
runs:
  - {id: 1, started: 2026-11-17T10:00:00Z, jobs: [{completed: 2026-11-17T10:05:00Z, runner: r1}]}
  - {id: 2, branch: feature/x, started: 2026-11-17T11:00:00Z, jobs: [
      {completed: 2026-11-17T11:05:00Z, runner: r1}]}
  - {id: 3, event: schedule, started: 2026-11-17T12:00:00Z, jobs: [
      {completed: 2026-11-17T12:05:00Z, runner: r1}]}
  - {id: 4, repo: other/platform, started: 2026-11-17T13:00:00Z, jobs: [
      {completed: 2026-11-17T13:05:00Z, runner: r1}]}
"""
    assert list(outcomes(text)) == [(1, 1)]


def test_rollback_workflow_runs_are_never_deployment_attempts() -> None:
    text = """
target: {workflows: ["*"], rollback_workflows: [rollback.yml]}
runs:
  - {id: 1, started: 2026-11-17T10:00:00Z, jobs: [{completed: 2026-11-17T10:05:00Z, runner: r1}]}
  - {id: 2, workflow: rollback.yml, started: 2026-11-17T11:00:00Z, jobs: [
      {completed: 2026-11-17T11:05:00Z, runner: r1}]}
"""
    assert list(outcomes(text)) == [(1, 1)]


ENVIRONMENT = """
target: {environment: production, deploy_jobs: ["deploy*"]}
runs:
  - {id: 1, sha: aaa, started: 2026-11-17T10:00:00Z, jobs: [
      {name: build, completed: 2026-11-17T10:02:00Z, runner: r1},
      {name: deploy, completed: 2026-11-17T10:05:00Z, runner: r1}]}
  - {id: 2, started: 2026-11-17T11:00:00Z, jobs: [
      {name: deploy, completed: 2026-11-17T11:05:00Z, runner: r1}]}
  - {id: 3, started: 2026-11-17T12:00:00Z, jobs: [
      {name: deploy, completed: 2026-11-17T12:05:00Z, runner: r1}]}
deployments:
  - {id: 7, sha: fff, statuses: [{state: in_progress, run: 1, job: deploy}, {run: 1, job: deploy}]}
  - {id: 8, environment: staging, statuses: [{run: 3}]}
"""


def test_environment_keeps_only_attempts_linked_by_a_deployment_status() -> None:
    # run 1 is linked in production; run 2 has no deployment; run 3 deploys to staging
    assert outcomes(ENVIRONMENT) == {(1, 1): "success"}


def test_deployed_version_is_the_deployment_sha() -> None:
    assert (attempt(ENVIRONMENT, 1)["head_sha"], attempt(ENVIRONMENT, 1)["sha"]) == ("aaa", "fff")


def test_target_url_alone_links_the_attempt() -> None:
    text = ENVIRONMENT.replace("{run: 3}", "{run: 2, job: 201, log_url: null}").replace(
        "environment: staging, ", ""
    )
    # run 2's deploy job id: 2 * 100 + 0 + 1 = 201, named by target_url only
    assert outcomes(text) == {(1, 1): "success", (2, 1): "success"}


# ----- windows, rates and counts ---------------------------------------------------------------
def test_attempt_belongs_to_the_window_of_its_deploy_start() -> None:
    text = """
runs:
  - {id: 1, started: 2026-11-15T23:50:00Z, jobs: [
      {started: 2026-11-16T00:05:00Z, completed: 2026-11-16T00:10:00Z, runner: r1}]}
  - {id: 2, started: 2026-11-22T23:55:00Z, jobs: [
      {started: 2026-11-23T00:01:00Z, completed: 2026-11-23T00:06:00Z, runner: r1}]}
"""
    # run 1 was created on Sunday but deployed on Monday; run 2 deployed the next Monday
    assert metrics(text)["successes"] == 1


def test_success_rate_ci_is_the_wilson_score_interval() -> None:
    text = """
runs:
  - {id: 1, started: 2026-11-17T10:00:00Z, jobs: [{completed: 2026-11-17T10:05:00Z, runner: r1}]}
  - {id: 2, started: 2026-11-17T11:00:00Z, conclusion: failure, jobs: [
      {completed: 2026-11-17T11:05:00Z, conclusion: failure, runner: r1}]}
"""
    # p = 1/2, n = 2, z^2 = 3.841459: denominator 1 + z^2/2 = 2.920729; centre 0.5;
    # half = z * sqrt(0.125 + z^2/16) / 2.920729 = 1.959964 * 0.604228 / 2.920729 = 0.405469
    low, high = metrics(text)["success_rate_ci"]
    assert (low, high) == (pytest.approx(0.0945312, abs=1e-6), pytest.approx(0.9054688, abs=1e-6))


def test_success_rate_ci_of_all_successes_ends_at_one() -> None:
    runs = "".join(
        f"\n  - {{id: {i}, started: 2026-11-17T1{i}:00:00Z,"
        f" jobs: [{{completed: 2026-11-17T1{i}:05:00Z, runner: r1}}]}}"
        for i in range(1, 5)
    )
    # p = 1, n = 4: low = 1 / (1 + z^2/4), high = (1 + z^2/8 + z^2/8) / (1 + z^2/4) = 1
    low, high = metrics("runs:" + runs)["success_rate_ci"]
    assert (low, high) == (pytest.approx(1 / (1 + Z * Z / 4)), pytest.approx(1.0))


RERUNS = """
runs:
  - {id: 1, started: 2026-11-16T10:00:00Z, conclusion: failure, jobs: [
      {completed: 2026-11-16T10:05:00Z, conclusion: failure, runner: r1}]}
  - {id: 1, attempt: 2, started: 2026-11-17T10:00:00Z, jobs: [
      {completed: 2026-11-17T10:05:00Z, runner: r1}]}
  - {id: 2, started: 2026-11-16T12:00:00Z, jobs: [{completed: 2026-11-16T12:05:00Z, runner: r1}]}
  - {id: 3, started: 2026-11-16T14:00:00Z, conclusion: failure, jobs: [
      {completed: 2026-11-16T14:05:00Z, conclusion: failure, runner: r1}]}
"""


def test_run_success_rate_and_retry_rate_follow_the_latest_attempt() -> None:
    result = metrics(RERUNS)
    # runs 1 (retried to success), 2 (success), 3 (failure): 2 / 3 succeed, 1 / 3 retried
    assert (result["run_success_rate"], result["retry_rate"]) == (
        pytest.approx(2 / 3),
        pytest.approx(1 / 3),
    )


def test_rerun_of_a_successful_attempt_is_not_a_retry() -> None:
    text = """
runs:
  - {id: 1, started: 2026-11-16T10:00:00Z, jobs: [{completed: 2026-11-16T10:05:00Z, runner: r1}]}
  - {id: 1, attempt: 2, started: 2026-11-16T11:00:00Z, jobs: [
      {completed: 2026-11-16T11:05:00Z, runner: r1}]}
"""
    result = metrics(text)
    # attempt 1 succeeded: 0 retried / 1 run; the latest attempt succeeded: 1 / 1
    assert (result["retry_rate"], result["run_success_rate"]) == (0.0, 1.0)


def test_run_success_rate_ignores_attempts_after_data_as_of() -> None:
    as_of = datetime(2026, 11, 16, 20, tzinfo=UTC)
    result = reference_metrics(history(RERUNS), data_as_of=as_of)
    # attempt 2 of run 1 starts on Tuesday, after data_as_of: only run 2 succeeds, no retry
    assert (result["run_success_rate"], result["retry_rate"]) == (pytest.approx(1 / 3), 0.0)


def test_run_belongs_to_the_window_of_its_attempt_1() -> None:
    text = """
runs:
  - {id: 1, started: 2026-11-15T10:00:00Z, conclusion: failure, jobs: [
      {completed: 2026-11-15T10:05:00Z, conclusion: failure, runner: r1}]}
  - {id: 1, attempt: 2, started: 2026-11-16T10:00:00Z, jobs: [
      {completed: 2026-11-16T10:05:00Z, runner: r1}]}
"""
    result = metrics(text)
    # the attempt-2 success is this week's; the run is last week's (its attempt 1)
    assert (result["successes"], result["run_success_rate"], result["retry_rate"]) == (
        1,
        None,
        None,
    )


def test_deploy_frequency_divides_by_the_days_up_to_data_as_of() -> None:
    spec = timed_successes([300.0] * 7)
    spec["data_as_of"] = "2026-11-19T12:00:00Z"
    # 7 successes / (Thursday 12:00 - Monday 00:00 = 3.5 days) = 2.0 per day
    assert reference_metrics(history_from_spec(spec))["deploy_frequency_per_day"] == 2.0


# ----- quantiles -------------------------------------------------------------------------------
def test_p95_is_null_below_20_durations() -> None:
    result = reference_metrics(history_from_spec(timed_successes([60.0 * k for k in range(1, 20)])))
    # 19 values 60..1140: p50 at rank (19 - 1) * 0.5 = 9 -> 600
    assert (result["duration_n"], result["duration_p50_s"], result["duration_p95_s"]) == (
        19,
        600.0,
        None,
    )


def test_p95_interpolates_between_closest_ranks_from_20_durations() -> None:
    result = reference_metrics(history_from_spec(timed_successes([60.0 * k for k in range(1, 21)])))
    # 20 values 60..1200: p50 rank 9.5 -> (600 + 660) / 2 = 630;
    # p95 rank 19 * 0.95 = 18.05 -> 1140 + 0.05 * 60 = 1143
    assert (result["duration_p50_s"], result["duration_p95_s"]) == (630.0, pytest.approx(1143.0))


def test_p99_is_null_below_100_durations() -> None:
    result = reference_metrics(
        history_from_spec(timed_successes([float(k) for k in range(1, 100)]))
    )
    assert (result["duration_n"], result["duration_p99_s"]) == (99, None)


def test_p99_interpolates_from_100_durations() -> None:
    result = reference_metrics(
        history_from_spec(timed_successes([float(k) for k in range(1, 101)]))
    )
    # 100 values 1..100: rank 99 * 0.99 = 98.01 -> 99 + 0.01 * (100 - 99) = 99.01
    assert result["duration_p99_s"] == pytest.approx(99.01)


def test_durations_cover_only_successes_timed_by_jobs_by_default() -> None:
    text = """
runs:
  - {id: 1, started: 2026-11-17T10:00:00Z, jobs: [
      {completed: 2026-11-17T10:05:00Z, runner: prim-1}]}
  - {id: 2, started: 2026-11-17T11:00:00Z, updated: 2026-11-17T11:30:00Z, conclusion: failure}
"""
    h = history(text)
    counted_runs = {**h.target, "duration_outcomes": "counted", "duration_run_timing": True}
    # default: the 300 s success only; counted + run timing: (300 + 1800) / 2 = 1050
    assert reference_metrics(h)["duration_n"] == 1
    assert reference_metrics(h, target=counted_runs)["duration_p50_s"] == 1050.0


# ----- runners ---------------------------------------------------------------------------------
RUNNERS = """
target: {runners: {primary: {names: ["prim-*"]}, secondary: {labels: [prod-secondary]}}}
runs:
  - {id: 1, started: 2026-11-17T10:00:00Z, jobs: [
      {completed: 2026-11-17T10:05:00Z, runner: prim-1}]}
  - {id: 2, started: 2026-11-17T11:00:00Z, jobs: [{completed: 2026-11-17T11:05:00Z, runner: sec-1,
     labels: [self-hosted, prod-secondary]}]}
  - {id: 3, started: 2026-11-17T12:00:00Z, jobs: [
      {completed: 2026-11-17T12:05:00Z, runner: mystery-1,
     labels: [self-hosted]}]}
  - {id: 4, started: 2026-11-17T13:00:00Z, updated: 2026-11-17T13:20:00Z, conclusion: failure,
     jobs: [
      {started: 2026-11-17T13:20:00Z, completed: 2026-11-17T13:20:00Z, conclusion: failure}]}
"""


def test_failover_share_counts_secondary_runs_among_attempts_with_known_runners() -> None:
    # counted: 1 primary, 2 secondary, 3 unknown runner, 4 no deploy job (never got a runner);
    # every deploy job matches a role in 1 and 2 only: 1 secondary / 2
    assert metrics(RUNNERS)["failover_share"] == 0.5


def test_unknown_runner_share_is_over_all_counted_attempts() -> None:
    # attempt 3's runner matches no role: 1 / 4 counted
    assert metrics(RUNNERS)["unknown_runner_share"] == 0.25


def test_runner_shares_are_null_when_the_target_configures_no_runners() -> None:
    # docs/metrics.md 7.4: no role globs, no roles to know or to miss (not 4 unknown / 4 = 1.0)
    for target in ("target: {}", "target: {runners: {primary: {}}}"):
        result = metrics(RUNNERS.replace(RUNNERS.splitlines()[1], target))
        assert (result["successes"], result["failures"]) == (3, 1)
        assert (result["failover_share"], result["unknown_runner_share"]) == (None, None)


def test_runner_role_matches_by_group() -> None:
    text = """
target: {runners: {primary: {names: ["prim-*"]}, secondary: {groups: ["dr-*"]}}}
runs:
  - {id: 1, started: 2026-11-17T10:00:00Z, jobs: [{completed: 2026-11-17T10:05:00Z, runner: box-9,
     group: dr-site}]}
"""
    assert attempt(text, 1)["runner_roles"] == ["secondary"]


def test_overlapping_deploys_count_pairs_in_the_window_of_the_later_start() -> None:
    text = """
runs:
  - {id: 1, started: 2026-11-15T23:50:00Z, jobs: [{completed: 2026-11-16T00:10:00Z, runner: r1}]}
  - {id: 2, started: 2026-11-16T00:05:00Z, jobs: [{completed: 2026-11-16T00:15:00Z, runner: r1}]}
  - {id: 3, started: 2026-11-16T00:15:00Z, jobs: [{completed: 2026-11-16T00:20:00Z, runner: r1}]}
  - {id: 4, started: 2026-11-22T23:55:00Z, jobs: [{completed: 2026-11-23T00:10:00Z, runner: r1}]}
  - {id: 5, started: 2026-11-23T00:05:00Z, jobs: [{completed: 2026-11-23T00:08:00Z, runner: r1}]}
"""
    # (1, 2) overlap, later start 00:05 Monday: this week; (2, 3) only touch at 00:15;
    # (4, 5) overlap but 5 starts next week
    assert metrics(text)["overlapping_deploys"] == 1


# ----- lead time -------------------------------------------------------------------------------
def test_lead_time_counts_the_first_successful_deploy_of_each_sha() -> None:
    text = """
runs:
  - {id: 1, sha: aaa, commit_at: 2026-11-16T08:00:00Z, started: 2026-11-16T10:00:00Z, jobs: [
      {completed: 2026-11-16T10:05:00Z, runner: r1}]}
  - {id: 2, sha: aaa, event: workflow_dispatch, started: 2026-11-17T10:00:00Z, jobs: [
      {completed: 2026-11-17T10:05:00Z, runner: r1}]}
  - {id: 3, sha: bbb, commit_at: 2026-11-17T09:00:00Z, started: 2026-11-17T11:00:00Z,
     conclusion: failure, jobs: [
      {completed: 2026-11-17T11:05:00Z, conclusion: failure, runner: r1}]}
  - {id: 3, attempt: 2, sha: bbb, started: 2026-11-17T11:50:00Z, jobs: [
      {completed: 2026-11-17T12:00:00Z, runner: r1}]}
"""
    # aaa: 10:05 - 08:00 = 7500 s (run 2 redeploys it); bbb: first success 12:00 - 09:00 =
    # 10800 s; median (7500 + 10800) / 2 = 9150
    assert metrics(text)["lead_time_p50_s"] == 9150.0


def test_negative_lead_time_is_counted_apart() -> None:
    text = """
runs:
  - {id: 1, sha: aaa, commit_at: 2026-11-16T10:10:00Z, started: 2026-11-16T10:00:00Z, jobs: [
      {completed: 2026-11-16T10:05:00Z, runner: r1}]}
"""
    result = metrics(text)
    assert (result["lead_time_negative"], result["lead_time_p50_s"]) == (1, None)


def test_lead_time_skips_events_outside_lead_time_events() -> None:
    text = """
runs:
  - {id: 1, event: schedule, sha: aaa, commit_at: 2026-11-16T08:00:00Z,
     started: 2026-11-16T10:00:00Z, jobs: [{completed: 2026-11-16T10:05:00Z, runner: r1}]}
"""
    assert metrics(text)["lead_time_p50_s"] is None


# ----- rollback signals and change failure rate ------------------------------------------------
SIGNALS = """
target: {deploy_jobs: ["deploy*"], rollback_workflows: [rollback.yml],
         rollback_steps: ["rollback*"]}
runs:
  - {id: 1, sha: aaa, commit_at: 2026-11-16T08:00:00Z, started: 2026-11-16T09:00:00Z, jobs: [
      {completed: 2026-11-16T09:05:00Z, runner: r1}]}
  - {id: 2, sha: bbb, commit_at: 2026-11-16T10:00:00Z, started: 2026-11-17T09:00:00Z, jobs: [
      {completed: 2026-11-17T09:05:00Z, runner: r1}]}
  - {id: 3, sha: ccc, commit_at: 2026-11-17T12:00:00Z, started: 2026-11-18T09:00:00Z,
     conclusion: failure, jobs: [{completed: 2026-11-18T09:10:00Z, conclusion: failure, runner: r1,
     steps: [{name: deploy, conclusion: failure}, rollback release]}]}
  - {id: 4, workflow: rollback.yml, event: workflow_dispatch, started: 2026-11-18T09:30:00Z,
     jobs: [{name: rollback, completed: 2026-11-18T09:40:00Z, runner: r1}]}
  - {id: 5, sha: aaa, event: workflow_dispatch, started: 2026-11-18T10:00:00Z, jobs: [
      {completed: 2026-11-18T10:05:00Z, runner: r1}]}
"""


def test_three_rollback_signals_answering_one_change_form_one_incident() -> None:
    # (b) run 3's rescue step (Wed 09:00) answers run 3; (a) rollback run 4 (09:30) answers the
    # latest change before it, run 3; (c) run 5 redeploys aaa (deployed by run 1, not by the
    # previous success run 2) whose commit (Mon 08:00) is older than bbb's (Mon 10:00): it
    # answers run 3 too
    h = history(SIGNALS)
    (incident,) = find_incidents(h)
    assert (incident["change"], incident["kinds"]) == (
        ("acme/platform", 3, 1), ["redeploy", "step", "workflow"],
    )  # fmt: skip
    assert reference_metrics(h)["rollback_incidents"] == 1


def test_redeploy_of_an_older_version_is_not_a_change() -> None:
    # changes: runs 1, 2, 3 (run 5 is a (c) signal); failed: run 3 -> 1 / 3
    assert metrics(SIGNALS)["change_failure_rate"] == pytest.approx(1 / 3)


def test_successful_rollback_run_ends_the_episode_before_the_next_success() -> None:
    result = metrics(SIGNALS)
    # episode from run 3's completion (09:10) to the rollback run's (09:40) rather than run 5's
    # (10:05): 1800 s
    assert (result["episodes"], result["mttr_s"], result["restore_median_s"]) == (1, 1800.0, 1800.0)


def test_failed_rollback_run_still_signals_but_ends_no_episode() -> None:
    h = history(
        SIGNALS.replace("jobs: [{name: rollback,", "conclusion: failure, jobs: [{name: rollback,")
    )
    (incident,) = find_incidents(h)
    assert "workflow" in incident["kinds"]
    # the episode now ends at run 5's success: 10:05 - 09:10 = 3300 s
    assert reference_metrics(h)["mttr_s"] == 3300.0


ROLLBACK_DURING_FAILING_DEPLOY = """
target: {rollback_workflows: [rollback.yml]}
runs:
  - {id: 1, started: 2026-11-16T09:00:00Z, jobs: [{completed: 2026-11-16T09:05:00Z, runner: r1}]}
  - {id: 2, started: 2026-11-17T10:00:00Z, conclusion: failure, jobs: [
      {completed: 2026-11-17T10:30:00Z, conclusion: failure, runner: r1}]}
  - {id: 3, workflow: rollback.yml, started: 2026-11-17T10:10:00Z,
     jobs: [{name: rollback, completed: 2026-11-17T10:15:00Z, runner: r1}]}
  - {id: 4, started: 2026-11-17T12:00:00Z, jobs: [{completed: 2026-11-17T12:05:00Z, runner: r1}]}
"""


def test_rollback_run_completed_before_the_failure_does_not_end_its_episode() -> None:
    h = history(ROLLBACK_DURING_FAILING_DEPLOY)
    # the rollback run (signal 10:10) answers run 2 (started 10:00): a failed change, one
    # incident; but it completed at 10:15, before run 2 failed at 10:30 where the episode
    # starts, so it ends nothing (the literal "earlier of" would give 10:15 - 10:30 = -900 s);
    # the episode runs to run 4's success: 12:05 - 10:30 = 5700 s
    (incident,) = find_incidents(h)
    assert (incident["change"], incident["kinds"]) == (("acme/platform", 2, 1), ["workflow"])
    (episode,) = find_episodes(h)
    assert (episode["start"], episode["end"], episode["restore_s"]) == (
        datetime(2026, 11, 17, 10, 30, tzinfo=UTC), datetime(2026, 11, 17, 12, 5, tzinfo=UTC),
        5700.0,
    )  # fmt: skip
    result = reference_metrics(h)
    assert (result["episodes"], result["mttr_s"], result["restore_median_s"]) == (1, 5700.0, 5700.0)


def test_rollback_run_completed_at_the_failure_ends_its_episode_at_once() -> None:
    # the rollback run now completes at 10:30 sharp, when run 2 fails: restore 0 s
    text = ROLLBACK_DURING_FAILING_DEPLOY.replace(
        "completed: 2026-11-17T10:15:00Z", "completed: 2026-11-17T10:30:00Z"
    )
    assert metrics(text)["mttr_s"] == 0.0


def test_signals_beyond_cfr_window_answer_no_change_and_stand_alone() -> None:
    h = history(SIGNALS)
    narrow = {**h.target, "cfr_window": "10m"}
    # the rollback run (30 min after run 3) and the redeploy (60 min after) find no change
    # started within 10 min before them: each is an incident of its own, answering nothing;
    # run 3's own step signal stays with run 3
    incidents = find_incidents(h, narrow)
    assert [i["kinds"] for i in incidents] == [["step"], ["workflow"], ["redeploy"]]
    assert incidents[0]["change"][1] == 3


def test_change_failure_rate_counts_failed_changes_without_a_rollback() -> None:
    text = """
runs:
  - {id: 1, started: 2026-11-17T10:00:00Z, jobs: [{completed: 2026-11-17T10:05:00Z, runner: r1}]}
  - {id: 2, started: 2026-11-17T11:00:00Z, conclusion: failure, jobs: [
      {completed: 2026-11-17T11:05:00Z, conclusion: failure, runner: r1}]}
"""
    h = history(text)
    # cfr_include_failed (default true): 1 failed / 2 changes; false: 0 / 2
    assert reference_metrics(h)["change_failure_rate"] == 0.5
    assert (
        reference_metrics(h, target={**h.target, "cfr_include_failed": False})[
            "change_failure_rate"
        ]
        == 0.0
    )


# ----- failure episodes ------------------------------------------------------------------------
def test_episode_open_at_window_end_is_open_and_not_ended() -> None:
    text = """
runs:
  - {id: 1, started: 2026-11-16T10:00:00Z, jobs: [{completed: 2026-11-16T10:05:00Z, runner: r1}]}
  - {id: 2, started: 2026-11-20T10:00:00Z, conclusion: failure, jobs: [
      {completed: 2026-11-20T10:05:00Z, conclusion: failure, runner: r1}]}
"""
    result = metrics(text)
    assert (result["open_episodes"], result["episodes"], result["mttr_s"]) == (1, 0, None)


def test_episode_starting_before_the_window_counts_where_it_ends() -> None:
    text = """
runs:
  - {id: 1, started: 2026-11-13T10:00:00Z, jobs: [{completed: 2026-11-13T10:05:00Z, runner: r1}]}
  - {id: 2, started: 2026-11-14T10:00:00Z, conclusion: failure, jobs: [
      {completed: 2026-11-14T10:05:00Z, conclusion: failure, runner: r1}]}
  - {id: 3, started: 2026-11-16T10:00:00Z, jobs: [{completed: 2026-11-16T10:05:00Z, runner: r1}]}
"""
    result = metrics(text)
    # Saturday 10:05 -> Monday 10:05 = 2 days = 172800 s; the failure itself is last week's
    assert (result["episodes"], result["mttr_s"], result["failures"], result["open_episodes"]) == (
        1, 172800.0, 0, 0,
    )  # fmt: skip


def test_episode_started_before_the_window_and_never_ended_is_open() -> None:
    text = """
runs:
  - {id: 1, started: 2026-11-13T10:00:00Z, jobs: [{completed: 2026-11-13T10:05:00Z, runner: r1}]}
  - {id: 2, started: 2026-11-14T10:00:00Z, conclusion: failure, jobs: [
      {completed: 2026-11-14T10:05:00Z, conclusion: failure, runner: r1}]}
"""
    assert metrics(text)["open_episodes"] == 1


def test_failures_in_a_row_form_one_episode() -> None:
    text = """
runs:
  - {id: 1, started: 2026-11-16T09:00:00Z, jobs: [{completed: 2026-11-16T09:05:00Z, runner: r1}]}
  - {id: 2, started: 2026-11-17T09:00:00Z, conclusion: failure, jobs: [
      {completed: 2026-11-17T09:05:00Z, conclusion: failure, runner: r1}]}
  - {id: 3, started: 2026-11-17T11:00:00Z, conclusion: failure, jobs: [
      {completed: 2026-11-17T11:05:00Z, conclusion: failure, runner: r1}]}
  - {id: 4, started: 2026-11-17T13:00:00Z, jobs: [{completed: 2026-11-17T13:05:00Z, runner: r1}]}
"""
    result = metrics(text)
    # one episode, 09:05 -> 13:05 = 14400 s
    assert (result["episodes"], result["mttr_s"]) == (1, 14400.0)


def test_failure_whose_failed_predecessor_is_beyond_history_days_starts_an_episode() -> None:
    text = """
target: {history_days: 1}
runs:
  - {id: 1, started: 2026-11-16T09:00:00Z, conclusion: failure, jobs: [
      {completed: 2026-11-16T09:05:00Z, conclusion: failure, runner: r1}]}
  - {id: 2, started: 2026-11-18T09:00:00Z, conclusion: failure, jobs: [
      {completed: 2026-11-18T09:05:00Z, conclusion: failure, runner: r1}]}
  - {id: 3, started: 2026-11-19T09:00:00Z, jobs: [{completed: 2026-11-19T09:05:00Z, runner: r1}]}
"""
    h = history(text)
    # run 1 has no predecessor; run 2's (run 1) completed 2 days > 1 day before it: two
    # episodes, both ended by run 3: 3 days and 1 day, mean 2 days = 172800 s
    assert [e["restore_s"] for e in find_episodes(h)] == [259200.0, 86400.0]
    assert reference_metrics(h)["mttr_s"] == 172800.0


# ----- the simulator's ground truth ------------------------------------------------------------
def test_oracle_agrees_with_the_simulator_ledger() -> None:
    """A large, realistic cross-check: outcomes, deploy intervals and runner roles."""
    from deploystats.simulate import DEMO_TARGET, simulate

    sim = simulate(seed=7, end=datetime(2026, 11, 23, tzinfo=UTC))
    drills = sorted({row["run_id"] for row in sim.ledger if row["drill"]})
    target = {**DEMO_TARGET, "exclude": [{"runs": drills, "reason": "drill"}]}
    mine = {(a["run_id"], a["run_attempt"]): a for a in classify(sim, target)}
    rows = [row for row in sim.ledger if row["workflow"] == "deploy"]
    assert {(r["run_id"], r["run_attempt"]): r["outcome"] for r in rows} == {
        key: a["outcome"] for key, a in mine.items()
    }
    for row in rows:
        a = mine[row["run_id"], row["run_attempt"]]
        if row["deploy_started_at"]:
            assert a["started_at"] == datetime.fromisoformat(row["deploy_started_at"])
        if row["runner_role"]:
            assert a["runner_roles"] == [row["runner_role"]]
