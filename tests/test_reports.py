"""Reports rendered for real: papermill in the deploystats kernel, nbconvert HTML opened in
headless Chromium with the network cut, evidence checked against the CLI and the database."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import jsonschema
import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml
from referencing import Registry, Resource

from deploystats.config import Settings
from deploystats.reports import ReportError, render
from deploystats.simulate import Simulation, demo_config, demo_epic
from tests.browser import open_offline
from tests.conftest import run_deploystats

ROOT = Path(__file__).resolve().parents[1]
WEEK = "2026-W47"


def _write_config(sim: Simulation, folder: Path, **extra: Any) -> Path:
    config = demo_config(sim) | extra
    path = folder / "deploystats.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def weekly(
    demo: tuple[Simulation, Path, Settings], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The weekly report of the demo's last week, rendered once through the CLI."""
    sim, db, _ = demo
    folder = tmp_path_factory.mktemp("weekly")
    config = _write_config(sim, folder)
    done = run_deploystats(
        "--db",
        str(db),
        "--config",
        str(config),
        "report",
        "weekly-slo",
        "--week",
        WEEK,
        "--out",
        str(folder / "reports"),
        cwd=folder,
    )
    assert done.returncode == 0, done.stderr
    report = folder / "reports" / "weekly-slo" / WEEK
    evidence = json.loads((report / f"weekly-slo-{WEEK}.json").read_text())
    return {
        "db": db,
        "config": config,
        "folder": report,
        "evidence": evidence,
        "stdout": done.stdout,
        "stderr": done.stderr,
        "cwd": folder,
    }


def _cli(
    where: dict[str, Any], *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """deploystats with the database and config of a rendered fixture."""
    return run_deploystats(
        "--db", str(where["db"]), "--config", str(where["config"]), *args, cwd=cwd, env=env
    )


def _weekly(
    where: dict[str, Any],
    week: str,
    out: str,
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`deploystats report weekly-slo --week WEEK --out OUT` on a fixture's database."""
    return _cli(
        where, "report", "weekly-slo", "--week", week, "--out", out, *args, cwd=cwd, env=env
    )


def _numbers(evidence: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["id"]: n for n in evidence["numbers"]}


def test_report_folder_holds_every_format(weekly: dict[str, Any]) -> None:
    stem = f"weekly-slo-{WEEK}"
    names = sorted(p.name for p in weekly["folder"].iterdir())
    assert names == sorted(f"{stem}.{ext}" for ext in ("html", "ipynb", "jira.txt", "json", "md"))
    assert weekly["evidence"]["report"]["files"] == names
    assert f"{stem}.html" in weekly["stdout"]


def test_evidence_numbers_equal_metrics_json(weekly: dict[str, Any]) -> None:
    done = _cli(
        weekly,
        "metrics",
        "--week",
        WEEK,
        "--format",
        "json",
        cwd=weekly["cwd"],
    )
    assert done.returncode == 0, done.stderr
    cli = json.loads(done.stdout)
    numbers = _numbers(weekly["evidence"])
    compared = 0
    for target, values in cli["targets"].items():
        for metric, value in values.items():
            if metric.endswith("_ci"):
                continue
            assert numbers[f"{target}.{metric}"]["value"] == value, metric
            compared += 1
    assert compared >= 30
    assert weekly["evidence"]["window"] == cli["window"]


def test_numbers_recompute_from_the_row_keys(weekly: dict[str, Any]) -> None:
    evidence = weekly["evidence"]
    numbers = _numbers(evidence)
    rate = numbers["production.success_rate"]
    rowset = evidence["rowsets"][rate["rows"]]
    rows = [dict(zip(rowset["columns"], r, strict=True)) for r in rowset["data"]]
    counted = [r for r in rows if r["counted"]]
    assert rate["n"] == len(counted) > 20
    assert rate["value"] == sum(r["good"] for r in counted) / len(counted)
    timed = sorted(r["duration_s"] for r in rows if r["good"] and r["timing_source"] == "jobs")
    p95 = numbers["production.duration_p95_s"]
    assert p95["n"] == len(timed)
    assert p95["value"] == pytest.approx(float(np.percentile(timed, 95)), abs=1e-9)
    # the keys are rows of the database as they are now: the digest matches
    lines = "\n".join(
        f"{r['repo']}/{r['run_id']}/{r['run_attempt']}@{r['updated_at']}" for r in rows
    )
    assert hashlib.sha256(lines.encode()).hexdigest() == rowset["digest"]
    con = duckdb.connect(str(weekly["db"]), read_only=True)
    try:
        stored = con.execute(
            "SELECT count(*) FROM workflow_runs w JOIN (SELECT unnest($keys) AS k) "
            "ON w.repo = k.repo AND w.run_id = k.run_id AND w.run_attempt = k.run_attempt",
            {
                "keys": [
                    {"repo": r["repo"], "run_id": r["run_id"], "run_attempt": r["run_attempt"]}
                    for r in rows
                ]
            },
        ).fetchall()[0][0]
    finally:
        con.close()
    assert stored == len(rows)


def test_evidence_validates_against_its_schema(weekly: dict[str, Any]) -> None:
    schemas = [
        json.loads((ROOT / "docs" / name).read_text())
        for name in ("evidence.schema.json", "metrics.schema.json")
    ]
    registry = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in schemas)
    jsonschema.Draft202012Validator(schemas[0], registry=registry).validate(weekly["evidence"])
    slos = {i["id"]: i for i in weekly["evidence"]["summary"]["items"]}
    assert set(slos) == {s["name"] for s in yaml.safe_load(weekly["config"].read_text())["slos"]}
    assert all(len(v) == 64 for v in weekly["evidence"]["digests"].values())


def test_markdown_and_jira_carry_the_slo_table(weekly: dict[str, Any]) -> None:
    stem = weekly["folder"] / f"weekly-slo-{WEEK}"
    md = stem.with_suffix(".md").read_text()
    jira = Path(f"{stem}.jira.txt").read_text()
    assert "| ID | Criterion | Target | Actual | n | Status |" in md
    assert "||ID||Criterion||Target||Actual||n||Status||" in jira
    for item in weekly["evidence"]["summary"]["items"]:
        assert f"| {item['id']} | " in md
        assert f"|{item['id']}|" in jira


def test_html_renders_offline_in_chromium(weekly: dict[str, Any], tmp_path: Path) -> None:
    html_path = weekly["folder"] / f"weekly-slo-{WEEK}.html"
    text = html_path.read_text()
    assert 'src="http' not in text
    # the only absolute links are anchors to the evidence (GitHub run pages of the rows)
    linked = set(re.findall(r'<a href="(https?://[^"]+)"', text))
    assert text.count('href="http') == text.count('<a href="http')
    urls = {r for n in weekly["evidence"]["summary"]["notable"] if (r := n["url"])}
    assert urls <= linked
    assert all(u.startswith("https://github.com/acme/platform/actions/runs/") for u in linked)
    page = open_offline(html_path, tmp_path / "screenshot.png")
    assert page.errors == []
    assert page.figures == page.rendered == weekly["evidence"]["report"]["figures"] >= 4
    assert (tmp_path / "screenshot.png").stat().st_size > 10_000


def test_notebooks_are_stripped_with_one_parameters_cell() -> None:
    books = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert {b.name for b in books} >= {"weekly_slo.ipynb"}
    for book in books:
        nb = nbformat.read(book, as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, book.name
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, book.name


def test_a_python3_kernelspec_of_the_user_cannot_hijack(
    weekly: dict[str, Any], tmp_path: Path
) -> None:
    """A `python3` kernelspec that would run another interpreter is never used."""
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": ["/bin/false", "{connection_file}"],
                "display_name": "hijack",
                "language": "python",
            }
        )
    )
    done = _weekly(
        weekly,
        "2026-W46",
        str(tmp_path / "out"),
        cwd=tmp_path,
        env={"JUPYTER_PATH": str(tmp_path / "jupyter"), "JUPYTER_DATA_DIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    evidence = json.loads(
        (tmp_path / "out/weekly-slo/2026-W46/weekly-slo-2026-W46.json").read_text()
    )
    assert evidence["versions"]["python_executable"] == sys.executable


def test_an_empty_week_renders_no_deployments(weekly: dict[str, Any], tmp_path: Path) -> None:
    done = _weekly(
        weekly,
        "2026-W20",
        str(tmp_path),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "weekly-slo" / "2026-W20"
    html = (folder / "weekly-slo-2026-W20.html").read_text()
    assert "production: no deployments in 2026-W20." in html
    numbers = _numbers(json.loads((folder / "weekly-slo-2026-W20.json").read_text()))
    assert numbers["production.counted"]["value"] == 0
    assert numbers["production.success_rate"]["value"] is None


def test_an_existing_report_is_kept_unless_forced(weekly: dict[str, Any]) -> None:
    out = str(weekly["folder"].parents[1])
    before = {p.name: p.stat().st_mtime_ns for p in weekly["folder"].iterdir()}
    done = _weekly(weekly, WEEK, out, cwd=weekly["cwd"])
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"deploystats: error: {weekly['folder']} already holds a report; evidence may be "
        "attached somewhere, so it is kept: pass --force to replace it"
    ]
    assert {p.name: p.stat().st_mtime_ns for p in weekly["folder"].iterdir()} == before


def test_force_replaces_and_numbers_are_reproducible(
    weekly: dict[str, Any], tmp_path: Path
) -> None:
    assert _weekly(weekly, WEEK, str(tmp_path), cwd=tmp_path).returncode == 0
    done = _weekly(weekly, WEEK, str(tmp_path), "--force", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    again = json.loads((tmp_path / f"weekly-slo/{WEEK}/weekly-slo-{WEEK}.json").read_text())
    assert again["numbers"] == weekly["evidence"]["numbers"]
    assert again["digests"] == weekly["evidence"]["digests"]
    assert not [p for p in (tmp_path / "weekly-slo").iterdir() if p.name.startswith(".")]


def test_a_failing_cell_names_report_cell_and_partial_notebook(
    weekly: dict[str, Any], tmp_path: Path
) -> None:
    missing = tmp_path / "missing.duckdb"
    with pytest.raises(ReportError) as caught:
        render(
            "weekly-slo",
            WEEK,
            {"db": str(missing), "config": str(weekly["config"]), "week": WEEK},
            out=tmp_path,
        )
    message = str(caught.value)
    failed = list((tmp_path / "weekly-slo").glob(f"weekly-slo-{WEEK}.failed-*.ipynb"))
    assert len(failed) == 1
    assert message == (
        f"report weekly-slo failed in cell 3 (StoreError: no database at {missing}: run "
        "`deploystats sync github`, `deploystats import github` or `deploystats demo` first "
        f"(or pass --db)); partial notebook kept: {failed[0]}"
    )
    assert not (tmp_path / "weekly-slo" / WEEK).exists()


def test_an_unwritable_output_folder_is_said_before_anything_runs(
    weekly: dict[str, Any], tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = _cli(
        weekly,
        "report",
        "weekly-slo",
        "--out",
        str(blocker / "reports"),
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"deploystats: error: cannot write reports into {blocker}/reports/weekly-slo: Not a "
        "directory; pass --out with a folder you can write to"
    )


def test_a_week_after_the_data_is_stale_and_says_so(weekly: dict[str, Any], tmp_path: Path) -> None:
    done = _weekly(
        weekly,
        "2026-W49",
        str(tmp_path),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith("warning: Weekly SLO report 2026-W49 is STALE: the data ends at 2026-11-22T")
    )
    folder = tmp_path / "weekly-slo" / "2026-W49"
    assert json.loads((folder / "weekly-slo-2026-W49.json").read_text())["window"]["stale"]
    assert "STALE: the data ends at" in (folder / "weekly-slo-2026-W49.html").read_text()
    assert (folder / "weekly-slo-2026-W49.md").read_text().splitlines()[2].startswith("> **STALE")


EPIC = ROOT / "examples" / "epics" / "INFRA-472.yml"


def test_example_epic_is_the_demo_epic(demo: tuple[Simulation, Path, Settings]) -> None:
    """examples/epics/INFRA-472.yml is what `deploystats demo` writes for its history."""
    assert yaml.safe_load(EPIC.read_text()) == demo_epic(demo[0])


@pytest.fixture(scope="session")
def epic(weekly: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("epic")
    done = _cli(
        weekly,
        "report",
        "epic-closure",
        str(EPIC),
        "--out",
        str(folder),
        cwd=folder,
    )
    assert done.returncode == 0, done.stderr
    report = folder / "epic-closure" / "INFRA-472"
    evidence = json.loads((report / "epic-closure-INFRA-472.json").read_text())
    return {"folder": report, "evidence": evidence, **{k: weekly[k] for k in ("db", "config")}}


def test_epic_criteria_are_the_metrics_of_period_and_baseline(epic: dict[str, Any]) -> None:
    def metrics(since: str, until: str) -> dict[str, Any]:
        done = _cli(
            epic,
            "metrics",
            "--since",
            since,
            "--until",
            until,
            "--format",
            "json",
            cwd=epic["folder"],
        )
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout)["targets"]["production"])

    period, baseline = metrics("2026-10-12", "2026-11-23"), metrics("2026-09-14", "2026-10-12")
    numbers = _numbers(epic["evidence"])
    items = {i["id"]: i for i in epic["evidence"]["summary"]["items"]}
    for cid, metric in (("SC-001", "success_rate"), ("SC-002", "duration_p95_s")):
        assert numbers[f"criterion.{cid}"]["value"] == period[metric]
        assert numbers[f"criterion.{cid}.baseline"]["value"] == baseline[metric]
    # the seed's story: from about 85 % to above 95 %, p95 from above 15 min to below 10 min
    assert baseline["success_rate"] < 0.9 < 0.95 <= period["success_rate"]
    assert baseline["duration_p95_s"] > 900 > 600 >= period["duration_p95_s"]
    assert items["SC-001"]["status"] == items["SC-002"]["status"] == "met"
    assert items["SC-001"]["n"] == period["counted"]
    assert items["SC-002"]["n"] == period["duration_n"]
    # time to detect needs Prometheus alerts; without them the criterion says so, not "met"
    assert items["SC-003"]["status"] == "insufficient_data"
    assert items["SC-004"] == {
        "id": "SC-004",
        "name": "Secret leakage in logs and reports: zero",
        "objective": "manual review",
        "actual": "see evidence",
        "n": None,
        "status": "met",
    }
    rate = numbers["criterion.SC-001"]
    rows = epic["evidence"]["rowsets"][rate["rows"]]
    flags = [dict(zip(rows["columns"], r, strict=True)) for r in rows["data"]]
    counted = [r for r in flags if r["counted"]]
    assert rate["value"] == sum(r["good"] for r in counted) / len(counted)


def test_epic_report_reads_as_a_closure_summary(epic: dict[str, Any], tmp_path: Path) -> None:
    md = (epic["folder"] / "epic-closure-INFRA-472.md").read_text()
    assert md.startswith("# INFRA-472: Reliable production deployments\n")
    assert "| SC-001 | Deployment success rate | >= 95.0 % |" in md
    assert "## Baseline to epic" in md
    html = (epic["folder"] / "epic-closure-INFRA-472.html").read_text()
    for text in (
        "US-1: Deploys fail over to the secondary runner",
        "Acceptance criteria",
        "Sign-off",
        "https://jira.example.com/browse/INFRA-481",
        "n = 0, fewer than min_events = 5",
        "A p95 is not estimable",
    ):
        assert text in html
    page = open_offline(epic["folder"] / "epic-closure-INFRA-472.html", tmp_path / "epic.png")
    assert page.errors == []
    assert page.figures == page.rendered == epic["evidence"]["report"]["figures"] == 3


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda e: e.pop("period"), "period: missing key"),
        (
            lambda e: e["success_criteria"][0].update(metric="success_ratio"),
            "success_criteria.0: unknown metric 'success_ratio': use a key of `deploystats "
            "metrics --format json`, e.g. success_rate",
        ),
        (lambda e: e.update(key="infra 472"), "key: String should match pattern"),
        (
            lambda e: e["success_criteria"][1].update(colour="red"),
            "success_criteria.1.colour: unknown key",
        ),
    ],
)
def test_a_bad_epic_file_is_said_before_anything_runs(
    weekly: dict[str, Any], tmp_path: Path, edit: Any, message: str
) -> None:
    data = yaml.safe_load(EPIC.read_text())
    edit(data)
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump(data))
    done = _cli(
        weekly,
        "report",
        "epic-closure",
        str(bad),
        "--out",
        str(tmp_path / "out"),
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert done.stderr.startswith(f"deploystats: error: epic file {bad}: {message}")
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("week", [WEEK, "2026-W20"])
def test_explore_notebook_runs_on_a_small_database_and_an_empty_week(
    weekly: dict[str, Any], tmp_path: Path, week: str
) -> None:
    import papermill

    from deploystats.reports.kernel import ensure_kernel

    papermill.execute_notebook(
        str(ROOT / "notebooks" / "explore.ipynb"),
        str(tmp_path / "explore.ipynb"),
        parameters={"db": str(weekly["db"]), "config": str(weekly["config"]), "week": week},
        kernel_name=ensure_kernel(),
        progress_bar=False,
        cwd=str(tmp_path),
    )
    exported = pd.read_parquet(tmp_path / "attempts.parquet")
    assert len(exported) == (
        0 if week == "2026-W20" else len(pd.read_csv(tmp_path / "attempts.csv"))
    )
    if week == WEEK:
        assert len(exported) > 20


def test_an_epic_without_data_renders_insufficient_data(
    weekly: dict[str, Any], tmp_path: Path
) -> None:
    data = yaml.safe_load(EPIC.read_text())
    data["period"] = {"from": "2026-05-04", "to": "2026-05-18"}
    data["baseline"] = {"from": "2026-04-20", "to": "2026-05-04"}
    quiet = tmp_path / "quiet.yml"
    quiet.write_text(yaml.safe_dump(data))
    done = _cli(weekly, "report", "epic-closure", str(quiet), "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    evidence = json.loads(
        (tmp_path / "out/epic-closure/INFRA-472/epic-closure-INFRA-472.json").read_text()
    )
    statuses = [i["status"] for i in evidence["summary"]["items"]]
    assert statuses == ["insufficient_data"] * 3 + ["met"]
    html = (tmp_path / "out/epic-closure/INFRA-472/epic-closure-INFRA-472.html").read_text()
    assert "production: no failure episode in 2026-05-04..2026-05-18." in html


def test_report_deliver_shorthand_sends_a_real_report(
    weekly: dict[str, Any], tmp_path: Path
) -> None:
    """`report epic-closure --deliver jira:KEY,slack`: the rendered files reach the peers."""
    from tests.fakejira import FakeJira
    from tests.fakeslack import FakeSlack

    config = yaml.safe_load(weekly["config"].read_text())
    with FakeJira() as jira, FakeSlack() as slack:
        config["delivery"] = {
            "jira": {
                "url": jira.url,
                "auth": "basic",
                "user_env": "JIRA_USER",
                "token_env": "JIRA_TOKEN",
            },
            "slack": {"webhook_env": "SLACK_WEBHOOK_URL"},
        }
        (tmp_path / "deploystats.yml").write_text(yaml.safe_dump(config))
        done = run_deploystats(
            "--db",
            str(weekly["db"]),
            "--config",
            "deploystats.yml",
            "report",
            "epic-closure",
            str(EPIC),
            "--out",
            "reports",
            "--deliver",
            "jira:INFRA-472,slack",
            cwd=tmp_path,
            env={
                "JIRA_USER": jira.user,
                "JIRA_TOKEN": jira.token,
                "SLACK_WEBHOOK_URL": slack.webhook_url,
            },
        )
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "reports" / "epic-closure" / "INFRA-472"
    attached = {a.filename: a for a in jira.attachments["INFRA-472"]}
    assert set(attached) == {f"epic-closure-INFRA-472.{e}" for e in ("html", "json", "md")}
    for name, item in attached.items():
        assert item.data == (folder / name).read_bytes()
    [comment] = jira.comments["INFRA-472"]
    assert comment.api == 2  # the fake is JIRA Server: wiki markup through API v2
    # one table row per criterion; wiki markup escapes "-" (strike-through): SC\-001
    rows = [line for line in comment.body.splitlines() if line.startswith("|SC")]
    assert [r.split()[0] for r in rows] == [f"|SC\\-00{i}" for i in range(1, 5)]
    [message] = slack.messages
    assert "INFRA-472" in json.dumps(message)
    assert done.stdout.splitlines()[-1].startswith("slack: posted the summary of INFRA-472")


def test_people_are_left_out_unless_show_people(weekly: dict[str, Any], tmp_path: Path) -> None:
    from deploystats.simulate import _TEAM

    logins = [login for login, _, _ in _TEAM]
    for path in weekly["folder"].iterdir():
        text = path.read_text()
        assert not [login for login in logins if login in text], path.name
    config = yaml.safe_load(weekly["config"].read_text()) | {"reports": {"show_people": True}}
    (tmp_path / "deploystats.yml").write_text(yaml.safe_dump(config))
    done = run_deploystats(
        "--db",
        str(weekly["db"]),
        "--config",
        "deploystats.yml",
        "report",
        "weekly-slo",
        "--week",
        WEEK,
        "--out",
        "reports",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    html = (tmp_path / f"reports/weekly-slo/{WEEK}/weekly-slo-{WEEK}.html").read_text()
    assert [login for login in logins if f" by {login}" in html]
