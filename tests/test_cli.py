"""The deploystats command as a user runs it: a real subprocess, exit codes, one-line errors."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import yaml

import deploystats
from deploystats.config import Settings
from tests.conftest import lock_held, run_deploystats

run = run_deploystats


def test_version_and_help_exit_zero(tmp_path: Path) -> None:
    from deploystats import __version__

    assert run("--version", cwd=tmp_path).stdout.strip() == f"deploystats, version {__version__}"
    helped = run("--help", cwd=tmp_path)
    assert helped.returncode == 0
    for command in ("init", "import", "sync", "demo"):
        assert command in helped.stdout


def test_every_command_help_shows_an_example(tmp_path: Path) -> None:
    for command in (["init"], ["import", "github"], ["sync", "github"], ["demo"]):
        done = run(*command, "--help", cwd=tmp_path)
        assert done.returncode == 0
        assert "Example:" in done.stdout, command


def test_init_writes_a_starter_config_that_validates(tmp_path: Path) -> None:
    done = run("init", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    settings = Settings.model_validate(yaml.safe_load((tmp_path / "deploystats.yml").read_text()))
    assert settings.github.token_env == "GITHUB_TOKEN"
    assert settings.targets[0].name == "production"


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "deploystats.yml").write_text("timezone: UTC\n")
    done = run("init", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "deploystats: error: deploystats.yml exists: edit it, or pass --force to overwrite it"
    )


def test_usage_errors_exit_two(tmp_path: Path) -> None:
    assert run("import", "github", cwd=tmp_path).returncode == 2
    assert run("no-such-command", cwd=tmp_path).returncode == 2


def test_import_reports_counts_and_honours_db_option(tmp_path: Path) -> None:
    runs = tmp_path / "runs.jsonl"
    runs.write_text(
        "".join(
            json.dumps(
                {
                    "id": i,
                    "workflow_id": 1,
                    "head_sha": "a",
                    "run_attempt": 1,
                    "url": f"https://api.github.com/repos/acme/platform/actions/runs/{i}",
                    "updated_at": "2026-11-20T10:00:00Z",
                }
            )
            + "\n"
            for i in range(1, 4)
        )
    )
    done = run("--db", "x.duckdb", "import", "github", "runs.jsonl", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "imported 1 files into x.duckdb: 3 runs"
    assert (tmp_path / "x.duckdb").exists()


def test_a_malformed_dump_is_one_line_with_exit_one(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"id": 1,\n "workflow_id": }')
    done = run("import", "github", "bad.json", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "deploystats: error: bad.json: not valid JSON at line 2 column 17 (Expecting value)"
    ]


def test_invalid_config_names_the_key_path(tmp_path: Path) -> None:
    (tmp_path / "deploystats.yml").write_text(
        "targets:\n  - name: production\n    repos: [acme/platform]\n    workflows: []\n"
    )
    done = run("sync", "github", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "deploystats: error: deploystats.yml: targets.0.workflows: "
        "List should have at least 1 item after validation, not 0"
    )


def test_sync_without_a_token_says_how_to_provide_one(tmp_path: Path) -> None:
    (tmp_path / "deploystats.yml").write_text(
        "github:\n  repos: [acme/platform]\n  token_env: MY_TOKEN\n"
    )
    done = run("sync", "github", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "deploystats: error: GitHub token missing: set MY_TOKEN (or the variable "
        "github.token_env names) or configure github.app"
    )


def test_a_locked_database_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "runs.json").write_text("[]")
    (tmp_path / "deploystats.yml").write_text("store: {lock_timeout: 1s}\n")
    with lock_held(tmp_path / "x.duckdb") as pid:
        done = run("--db", "x.duckdb", "import", "github", "runs.json", cwd=tmp_path)
    assert done.returncode == 1
    assert re.fullmatch(
        rf"deploystats: error: database x\.duckdb is locked by PID {pid} \(python[\d.]*\); "
        r"waited 1s: let it finish, or raise store\.lock_timeout\n",
        done.stderr,
    ), done.stderr


def test_demo_loads_the_simulated_history_offline(tmp_path: Path) -> None:
    from deploystats.simulate import simulate
    from deploystats.simulate_prom import simulate_prometheus

    done = run("demo", "--seed", "5", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    until = re.search(r"story until (\S+), until (\S+)\)", lines[0])
    assert until is not None, lines[0]
    story, end = (datetime.fromisoformat(t) for t in until.groups())
    sim = simulate(seed=5, end=end, story_end=story)
    total = len(sim.runs) + len(sim.jobs) + len(sim.deployments) + len(sim.deployment_statuses)
    responses = simulate_prometheus(sim, seed=5).responses.values()
    samples = sum(len(s["values"]) for body in responses for s in body["data"]["result"])
    assert lines[0] == (
        f"demo: simulated {len(sim.ledger):,} attempts (seed 5, story until {until[1]}, "
        f"until {until[2]}) into "
        f"data/sample; loaded {total:,} objects and {samples:,} Prometheus samples into "
        "data/deploystats.duckdb"
    )
    ds = deploystats.open(
        tmp_path / "data/deploystats.duckdb", config=tmp_path / "data/sample/deploystats.yml"
    )
    week = ds.metrics()["targets"]["production"]
    assert any(re.fullmatch(rf"│ counted\s+│\s+{week['counted']} │", line) for line in lines)
    statuses = [item["status"].replace("_", " ") for item in ds.slos()["slos"]]
    assert [
        line.split("│")[-2].strip()
        for line in lines
        if line.startswith(("│ deploy-", "│ runner-availability"))
    ] == statuses
    metrics = ds.metrics()
    for series in metrics["prometheus"]["runner_up"]["series"]:
        instance, shown = series["labels"]["instance"], f"{series['availability']:.1%}"
        assert any(
            instance in line and re.search(rf"│\s+{re.escape(shown)} │", line) for line in lines
        ), instance
    incidents = metrics["prometheus"]["deploy_alerts"]["alert_incidents"]
    assert any(re.match(rf"│ deploy_alerts .*│\s+{incidents} │", line) for line in lines)
    # it ends by rendering both reports, not stale: the history runs to the current hour
    label = ds.window().label
    reports = [line.split()[1] for line in lines if line.startswith("report: ")]
    assert reports == [
        f"reports/weekly-slo/{label}/weekly-slo-{label}.html",
        "reports/epic-closure/INFRA-472/epic-closure-INFRA-472.html",
    ]
    evidence = json.loads((tmp_path / reports[0]).with_suffix(".json").read_text())
    assert evidence["window"]["stale"] is False
    # a second demo replaces the first one's rows instead of mixing two histories
    again = run("demo", "--seed", "6", "--no-reports", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    second = re.search(r"story until (\S+), until (\S+)\)", again.stdout)
    assert second is not None
    story, end = (datetime.fromisoformat(t) for t in second.groups())
    sim = simulate(seed=6, end=end, story_end=story)
    responses = simulate_prometheus(sim, seed=6).responses.values()
    samples = sum(len(s["values"]) for body in responses for s in body["data"]["result"])
    con = duckdb.connect(str(tmp_path / "data/deploystats.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM workflow_runs").fetchall() == [(len(sim.runs),)]
        assert con.execute("SELECT count(*) FROM prom_samples").fetchall() == [(samples,)]
    finally:
        con.close()


def test_import_until_makes_the_week_complete_until_the_dump_was_taken(tmp_path: Path) -> None:
    from deploystats.simulate import demo_config, simulate, write_dumps

    sim = simulate(seed=5)  # ends on a Monday 00:00: its newest run ended a little earlier
    assert sim.end is not None
    paths = write_dumps(sim, tmp_path / "dumps")
    (tmp_path / "deploystats.yml").write_text(yaml.safe_dump(demo_config(sim)))
    taken = sim.end.isoformat()
    done = run_deploystats("import", "github", str(paths["runs"]), "--until", taken, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    year, week, _ = (sim.end - timedelta(days=7)).isocalendar()
    metrics = run_deploystats(
        "metrics", "--week", f"{year}-W{week:02d}", "--format", "json", cwd=tmp_path
    )
    assert metrics.returncode == 0, metrics.stderr
    window = json.loads(metrics.stdout)["window"]
    assert (window["data_as_of"], window["stale"]) == (taken, False)
    bad = run_deploystats("import", "github", str(paths["runs"]), "--until", "Monday", cwd=tmp_path)
    assert bad.returncode == 2
    assert "'Monday': use an ISO date or datetime" in bad.stderr
