"""Real third-party data (ionic-framework's nightly build) through import and `metrics`,
checked against a straightforward computation written here from DESIGN §5."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import run_deploystats

IONIC = "gha/stencil_speed_ionic"


def when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def classify(run: dict[str, Any], jobs: list[dict[str, Any]]) -> tuple[str, float | None]:
    """Outcome and deploy duration of one attempt; every executed job is a deploy job."""
    started = when(run["run_started_at"])
    executed = [
        j
        for j in jobs
        if when(j["started_at"])
        and when(j["started_at"]) >= started
        and (j["conclusion"] or "").lower() != "skipped"
        and (
            j["runner_name"]
            or any((s["conclusion"] or "") not in ("skipped", "") for s in j["steps"])
        )
    ]
    conclusion = (run["conclusion"] or "").strip().lower()
    if jobs and not executed and conclusion in ("success", "neutral"):
        return "not_deployed", None
    if jobs and not executed and conclusion == "cancelled":
        return "superseded", None
    duration = None
    if executed and all(j["completed_at"] for j in executed):
        begin = min(when(j["started_at"]) for j in executed)  # type: ignore[type-var]
        end = max(when(j["completed_at"]) for j in executed)  # type: ignore[type-var]
        duration = (end - begin).total_seconds()
    if conclusion == "success":
        return "success", duration
    if conclusion in ("failure", "timed_out", "startup_failure"):
        return "failure", duration
    if conclusion == "cancelled":
        return "aborted", duration
    return "not_counted", duration


def test_ionic_nightly_metrics_match_a_straightforward_computation(
    realdata: Path, tmp_path: Path
) -> None:
    runs = list(json.loads((realdata / IONIC / "workflow_runs.ee1a019.json").read_text()).values())
    jobs = list(json.loads((realdata / IONIC / "jobs.b6894b9.json").read_text()).values())
    (tmp_path / "runs.json").write_text(json.dumps(runs))
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    config = {
        "targets": [
            {
                "name": "nightly",
                "repos": ["ionic-team/ionic-framework"],
                "workflows": ["stencil-nightly.yml"],
                "branches": ["main"],
            }
        ]
    }
    (tmp_path / "deploystats.yml").write_text(json.dumps(config))

    def cli(*args: str) -> str:
        done = run_deploystats("--db", "db.duckdb", *args, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return done.stdout

    cli("import", "github", "runs.json", "jobs.json")
    got = json.loads(
        cli("metrics", "--since", "2023-11-01", "--until", "2024-03-01", "--format", "json")
    )["targets"]["nightly"]

    by_attempt: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for job in jobs:
        by_attempt.setdefault((job["run_id"], job["run_attempt"]), []).append(job)
    outcomes: Counter[str] = Counter()
    durations = []
    for run in runs:
        if run["head_branch"] != "main":
            continue
        outcome, duration = classify(run, by_attempt.get((run["id"], run["run_attempt"]), []))
        outcomes[outcome] += 1
        if outcome == "success" and duration is not None:
            durations.append(duration)
    counted = outcomes["success"] + outcomes["failure"]
    assert {
        k: got[k]
        for k in ("successes", "failures", "aborted", "superseded", "not_deployed", "not_counted")
    } == {
        "successes": outcomes["success"],
        "failures": outcomes["failure"],
        "aborted": outcomes["aborted"],
        "superseded": outcomes["superseded"],
        "not_deployed": outcomes["not_deployed"],
        "not_counted": outcomes["not_counted"],
    }
    assert got["success_rate"] == pytest.approx(outcomes["success"] / counted)
    assert got["duration_n"] == len(durations)
    assert got["duration_p50_s"] == pytest.approx(float(np.quantile(durations, 0.5)))
    assert got["duration_p95_s"] == pytest.approx(float(np.quantile(durations, 0.95)))
