"""import github: real third-party payloads and every accepted file shape, into a real DuckDB."""

from __future__ import annotations

import csv
import gzip
import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from deploystats.errors import DumpError
from deploystats.ingest import import_dumps
from deploystats.sources.dumps import inspect_dump, json_lines_batches, prefetched
from deploystats.store import Store, connect
from deploystats.store.save import _cut

IONIC = "gha/stencil_speed_ionic"


def rows(store: Store, sql: str) -> list[tuple[Any, ...]]:
    with store.open(read_only=True) as con:
        return con.execute(sql).fetchall()


def ionic_runs(realdata: Path) -> list[dict[str, Any]]:
    """The ionic dump is a dict keyed by run id (not an API shape): unwrap it here."""
    return list(json.loads((realdata / IONIC / "workflow_runs.ee1a019.json").read_text()).values())


def ionic_jobs(realdata: Path) -> list[dict[str, Any]]:
    return list(json.loads((realdata / IONIC / "jobs.b6894b9.json").read_text()).values())


def write_list(path: Path, objects: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(objects))
    return path


def norm(value: str | None) -> str:
    return (value or "").strip().lower()


def test_ionic_runs_and_jobs_import_with_every_attempt_and_step(
    realdata: Path, store: Store, tmp_path: Path
) -> None:
    runs, jobs = ionic_runs(realdata), ionic_jobs(realdata)
    import_dumps(
        store, [write_list(tmp_path / "runs.json", runs), write_list(tmp_path / "jobs.json", jobs)]
    )

    expected = Counter(norm(r["conclusion"]) for r in runs)
    got = dict(rows(store, "SELECT conclusion, count(*) FROM workflow_runs GROUP BY ALL"))
    assert got == dict(expected)
    assert rows(store, "SELECT count(*) FROM workflow_runs WHERE run_attempt = 2") == [
        (sum(1 for r in runs if r["run_attempt"] == 2),)
    ]
    assert rows(store, "SELECT count(*) FROM jobs") == [(len(jobs),)]
    assert rows(store, "SELECT count(*) FROM job_steps") == [(sum(len(j["steps"]) for j in jobs),)]
    assert rows(store, "SELECT DISTINCT repo FROM workflow_runs") == [
        ("ionic-team/ionic-framework",)
    ]


def test_repository_objects_are_stripped_from_runs_and_kept_once(
    realdata: Path, store: Store, tmp_path: Path
) -> None:
    runs = ionic_runs(realdata)
    import_dumps(store, [write_list(tmp_path / "runs.json", runs)])

    assert rows(
        store,
        "SELECT count(*) FROM workflow_runs "
        "WHERE (raw -> '$.repository') IS NOT NULL OR (raw -> '$.head_repository') IS NOT NULL",
    ) == [(0,)]
    assert rows(store, "SELECT repo, repository_id FROM repositories") == [
        ("ionic-team/ionic-framework", runs[0]["repository"]["id"])
    ]
    sample = runs[0]
    raw = rows(
        store,
        f"SELECT raw FROM workflow_runs WHERE run_id = {sample['id']} AND run_attempt = "
        f"{sample['run_attempt']}",
    )[0][0]
    kept = {k: v for k, v in sample.items() if k not in ("repository", "head_repository")}
    assert json.loads(raw) == kept


def test_copied_jobs_of_partial_reruns_keep_their_old_timings(
    realdata: Path, store: Store, tmp_path: Path
) -> None:
    jobs = ionic_jobs(realdata)
    import_dumps(store, [write_list(tmp_path / "jobs.json", jobs)])

    copies = [
        j
        for j in jobs
        if j["run_attempt"] >= 2 and j["started_at"] < j["created_at"] and not j["runner_name"]
    ]
    assert copies, "the ionic data has copied jobs (MANIFEST)"
    assert rows(
        store,
        "SELECT count(*) FROM jobs WHERE run_attempt >= 2 AND started_at < created_at "
        "AND runner_name IS NULL",
    ) == [(len(copies),)]


def test_importing_twice_changes_nothing(realdata: Path, store: Store, tmp_path: Path) -> None:
    files = [
        write_list(tmp_path / "runs.json", ionic_runs(realdata)),
        write_list(tmp_path / "jobs.json", ionic_jobs(realdata)),
    ]
    tables = ["workflow_runs", "jobs", "job_steps", "repositories"]
    import_dumps(store, files)
    first = {t: sorted(map(repr, rows(store, f"SELECT * FROM {t}"))) for t in tables}
    import_dumps(store, files)
    second = {t: sorted(map(repr, rows(store, f"SELECT * FROM {t}"))) for t in tables}
    assert first == second


def in_progress_copy(run: dict[str, Any]) -> dict[str, Any]:
    """The same attempt as an earlier API response showed it: still running."""
    return {**run, "status": "in_progress", "conclusion": None, "updated_at": run["run_started_at"]}


def test_an_older_dump_never_reverts_a_completed_run(
    realdata: Path, store: Store, tmp_path: Path
) -> None:
    run = ionic_runs(realdata)[0]
    import_dumps(store, [write_list(tmp_path / "new.json", [run])])
    import_dumps(store, [write_list(tmp_path / "old.json", [in_progress_copy(run)])])
    assert rows(store, "SELECT status, conclusion FROM workflow_runs") == [
        ("completed", norm(run["conclusion"]))
    ]


def test_newest_copy_wins_within_one_batch_whatever_its_position(
    realdata: Path, store: Store, tmp_path: Path
) -> None:
    run = ionic_runs(realdata)[0]
    result = import_dumps(store, [write_list(tmp_path / "both.json", [run, in_progress_copy(run)])])
    assert result.objects == {"runs": 1}, "two copies of one attempt"
    assert rows(store, "SELECT status FROM workflow_runs") == [("completed",)]
    import_dumps(store, [write_list(tmp_path / "both2.json", [in_progress_copy(run), run])])
    assert rows(store, "SELECT count(*), any_value(status) FROM workflow_runs") == [
        (1, "completed")
    ]


def test_a_completed_job_replaces_its_in_progress_copy_and_its_steps(
    realdata: Path, store: Store, tmp_path: Path
) -> None:
    job = ionic_jobs(realdata)[0]
    running = {
        **job,
        "status": "in_progress",
        "conclusion": None,
        "completed_at": None,
        "steps": job["steps"][:1],
    }
    import_dumps(store, [write_list(tmp_path / "a.json", [running])])
    import_dumps(store, [write_list(tmp_path / "b.json", [job])])
    import_dumps(store, [write_list(tmp_path / "c.json", [running])])
    assert rows(store, "SELECT status FROM jobs") == [("completed",)]
    assert rows(store, "SELECT count(*) FROM job_steps") == [(len(job["steps"]),)]


def test_the_completed_copy_of_a_job_wins_within_one_batch(
    realdata: Path, store: Store, tmp_path: Path
) -> None:
    job = ionic_jobs(realdata)[0]
    running = {**job, "status": "in_progress", "conclusion": None, "completed_at": None}
    result = import_dumps(store, [write_list(tmp_path / "jobs.json", [job, running, running])])
    assert result.objects == {"jobs": 1}
    assert rows(store, "SELECT status, completed_at IS NOT NULL FROM jobs") == [("completed", True)]
    assert rows(store, "SELECT count(*) FROM job_steps") == [(len(job["steps"]),)]


def pygithub_bodies(realdata: Path, tmp_path: Path) -> list[Path]:
    """PyGithub's replay files wrap each response as {request, status, body}: unwrap the body."""
    files = []
    for path in sorted((realdata / "gha/pygithub_replaydata/extracted").glob("*.json")):
        if "timing" in path.name:
            continue  # /timing is not a kind deploystats stores
        body = json.loads(path.read_text())["body"]
        if isinstance(body, str):
            body = json.loads(body)
        files.append(write_list(tmp_path / path.name, body))
    return files


def test_pygithub_pages_including_old_schemas_import(
    realdata: Path, store: Store, tmp_path: Path
) -> None:
    files = pygithub_bodies(realdata, tmp_path)
    result = import_dumps(store, files)

    runs: dict[tuple[str, int, int], dict[str, Any]] = {}
    jobs: set[int] = set()
    for path in files:
        body = json.loads(path.read_text())
        for run in body.get(
            "workflow_runs", [body] if "head_sha" in body and "run_id" not in body else []
        ):
            runs[(run["repository"]["full_name"], run["id"], run.get("run_attempt", 1))] = run
        jobs.update(j["id"] for j in body.get("jobs", []))
    assert rows(store, "SELECT count(*) FROM workflow_runs") == [(len(runs),)]
    assert rows(store, "SELECT count(*) FROM jobs") == [(len(jobs),)]
    assert result.files == len(files)
    missing_attempt = [k for k, r in runs.items() if "run_attempt" not in r]
    assert all(key[2] == 1 for key in missing_attempt)


def test_run_attempts_of_a_rerun_are_separate_rows(realdata: Path, store: Store) -> None:
    folder = realdata / "gha/push_gha_metrics_fixtures"
    import_dumps(store, sorted(folder.glob("*.json")))
    assert rows(
        store, "SELECT run_attempt FROM workflow_runs WHERE run_id = 2499110858 ORDER BY 1"
    ) == [(1,), (2,)]
    expected_jobs = set()
    for path in folder.glob("*jobs*.json"):
        expected_jobs.update(j["id"] for j in json.loads(path.read_text())["jobs"])
    assert rows(store, "SELECT count(*) FROM jobs") == [(len(expected_jobs),)]


def test_devlake_rows_with_odd_conclusions_are_normalised(
    realdata: Path, store: Store, tmp_path: Path
) -> None:
    folder = realdata / "gha/devlake_e2e_panjf2000_ants"
    files = []
    expected: dict[str, Counter[str]] = {}
    for name, kind in (("_raw_github_api_runs.csv", "runs"), ("_raw_github_api_jobs.csv", "jobs")):
        with (folder / name).open(newline="") as handle:
            objects = [json.loads(row["data"]) for row in csv.DictReader(handle)]
        expected[kind] = Counter(norm(o.get("conclusion")) for o in objects)
        out = tmp_path / f"{kind}.jsonl"
        out.write_text("".join(json.dumps(o) + "\n" for o in objects))
        files.append(out)
    import_dumps(store, files)

    assert dict(rows(store, "SELECT conclusion, count(*) FROM workflow_runs GROUP BY ALL")) == dict(
        expected["runs"]
    )
    assert dict(rows(store, "SELECT conclusion, count(*) FROM jobs GROUP BY ALL")) == dict(
        expected["jobs"]
    )
    assert {"startup_failure", "stale", ""} <= set(expected["runs"])


@pytest.mark.parametrize("shape", ["list", "page", "jsonl", "gz", "paginate", "single"])
def test_every_accepted_file_shape_gives_the_same_rows(
    realdata: Path, tmp_path: Path, shape: str
) -> None:
    runs = ionic_runs(realdata)[:30]
    path = tmp_path / f"runs.{shape}.json"
    if shape == "list":
        path.write_text(json.dumps(runs, indent=2))
    elif shape == "page":
        path.write_text(json.dumps({"total_count": len(runs), "workflow_runs": runs}))
    elif shape == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in runs) + "\n")
    elif shape == "gz":
        path = tmp_path / "runs.jsonl.gz"
        path.write_bytes(gzip.compress(("\n".join(json.dumps(r) for r in runs)).encode()))
    elif shape == "paginate":  # gh api --paginate: whole pages one after another
        pages = [runs[:10], runs[10:20], runs[20:]]
        path.write_text("".join(json.dumps({"total_count": 30, "workflow_runs": p}) for p in pages))
    else:
        runs = runs[:1]
        path.write_text(json.dumps(runs[0], indent=2))
    store = Store(tmp_path / "db.duckdb")
    import_dumps(store, [path])
    assert sorted(rows(store, "SELECT run_id FROM workflow_runs")) == sorted(
        (r["id"],) for r in runs
    )


def test_malformed_json_names_the_file_line_and_column(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text('{"id": 1, "workflow_id": 2, "head_sha": "a"}\n{"id": 2, "workflow_id": 2,,}\n')
    with pytest.raises(DumpError) as caught:
        import_dumps(store, [path])
    assert str(caught.value) == (
        f"{path}: not valid JSON at line 2 column 28 (Expecting property name enclosed in "
        "double quotes)"
    )


def test_a_list_longer_than_any_page_is_read_from_its_head_and_imported(
    realdata: Path, store: Store, tmp_path: Path
) -> None:
    # a list as json.dump or jq -s write it, more than 8 MB (gh api --paginate pages are
    # far smaller): inspected from its head, streamed by DuckDB, every run imported
    runs = ionic_runs(realdata)
    copies = [{**run, "id": run["id"] * 1000 + i} for i in range(40) for run in runs]
    path = write_list(tmp_path / "runs.json", copies)
    assert path.stat().st_size > 8 * 2**20
    assert inspect_dump(path).fmt == "array"
    assert import_dumps(store, [path]).objects == {"runs": len(copies)}
    assert rows(store, "SELECT count(DISTINCT run_id) FROM workflow_runs") == [(len(copies),)]


def test_an_object_larger_than_the_reader_takes_says_to_write_json_lines(
    realdata: Path, store: Store, tmp_path: Path
) -> None:
    # one API page object of more than 64 MB (pages merged by hand): DuckDB's reader cannot
    # take it, so it fails before anything is read, saying how to write it instead
    runs = ionic_runs(realdata)
    page = {"total_count": 0, "workflow_runs": runs * (64 * 2**20 // len(json.dumps(runs)) + 1)}
    path = tmp_path / "page.json"
    path.write_text(json.dumps(page))
    with pytest.raises(DumpError) as caught:
        import_dumps(store, [path])
    assert str(caught.value) == (
        f"{path}: a JSON object larger than 64 MB: write it as JSON Lines (one object per "
        "line, e.g. jq -c '.workflow_runs[]')"
    )


def test_an_unrecognised_shape_lists_the_accepted_ones(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "timing.json"
    path.write_text('{"billable": {}, "run_duration_ms": 5}')
    with pytest.raises(
        DumpError,
        match=r"unrecognised shape \(an object with keys billable, "
        r"run_duration_ms\): expected GitHub API workflow runs",
    ):
        import_dumps(store, [path])


def test_a_bad_file_in_the_list_fails_before_anything_is_written(
    realdata: Path, store: Store, tmp_path: Path
) -> None:
    good = write_list(tmp_path / "runs.json", ionic_runs(realdata)[:5])
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(DumpError, match="a list of non-objects"):
        import_dumps(store, [good, bad])
    con = connect(store.path)
    try:
        assert con.execute("SELECT count(*) FROM workflow_runs").fetchall() == [(0,)]
    finally:
        con.close()


def test_identical_copies_in_one_file_are_one_row_each(
    realdata: Path, store: Store, tmp_path: Path
) -> None:
    runs, jobs = ionic_runs(realdata)[:20], ionic_jobs(realdata)[:20]
    import_dumps(
        store,
        [
            write_list(tmp_path / "runs.json", runs + runs),
            write_list(tmp_path / "jobs.json", jobs * 2),
        ],
    )
    assert rows(store, "SELECT count(*) FROM workflow_runs") == [(len(runs),)]
    assert rows(store, "SELECT count(*) FROM jobs") == [(len(jobs),)]
    assert rows(store, "SELECT count(*) FROM job_steps") == [(sum(len(j["steps"]) for j in jobs),)]


def test_simulated_dumps_import_every_kind_once(store: Store, tmp_path: Path) -> None:
    from deploystats.simulate import simulate, write_dumps

    sim = simulate(seed=3)
    paths = write_dumps(sim, tmp_path / "dumps", gzip=True)
    files = [paths[k] for k in ("runs", "jobs", "deployments", "deployment_statuses")]
    first = import_dumps(store, files)
    second = import_dumps(store, files)

    assert first.objects == {
        "runs": len(sim.runs),
        "jobs": len(sim.jobs),
        "deployments": len(sim.deployments),
        "deployment_statuses": len(sim.deployment_statuses),
    }
    assert second.objects == first.objects
    assert rows(store, "SELECT count(*) FROM deployment_statuses") == [
        (len(sim.deployment_statuses),)
    ]
    linked = {s["log_url"] for s in sim.deployment_statuses if s.get("log_url")}
    assert rows(store, "SELECT count(DISTINCT log_url) FROM deployment_statuses") == [
        (len(linked),)
    ]


def without_repositories(run: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run.items() if k not in ("repository", "head_repository")}


def stored_runs(store: Store) -> list[tuple[Any, ...]]:
    """Rows with raw parsed: a cut run keeps its text (e.g. escapes like \\u202f as written),
    a patched one is written anew by DuckDB."""
    found = rows(store, "SELECT * EXCLUDE (raw), raw FROM workflow_runs ORDER BY ALL")
    return [(*row[:-1], json.loads(row[-1])) for row in found]


def test_runs_cut_in_place_store_what_a_patched_copy_stores(realdata: Path, tmp_path: Path) -> None:
    # minified JSON Lines, as GitHub writes runs: the repository objects are cut out of the
    # text; a list read by DuckDB goes through json_merge_patch. Both store the same rows.
    runs = ionic_runs(realdata)
    lines = tmp_path / "runs.jsonl"
    lines.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in runs))
    source = next(inspect_dump(lines).batches())
    cuts = _cut(source).table
    assert all(cuts.column("tail").to_pylist()), "every run is cut in place"
    shared = len(runs) - len(set(cuts.column("same_tail").to_pylist()))
    assert shared > 0, "runs of one repository share their tail, proven once"
    cut, patched = Store(tmp_path / "cut.duckdb"), Store(tmp_path / "patched.duckdb")
    import_dumps(cut, [lines])
    import_dumps(patched, [write_list(tmp_path / "runs.json", runs)])

    assert stored_runs(cut) == stored_runs(patched)
    assert rows(cut, "SELECT * FROM repositories") == rows(patched, "SELECT * FROM repositories")
    raws = rows(cut, "SELECT run_id, run_attempt, raw FROM workflow_runs")
    # the text as written, not a copy DuckDB wrote anew
    assert {(i, a): raw for i, a, raw in raws} == {
        (r["id"], r["run_attempt"]): json.dumps(without_repositories(r), separators=(",", ":"))
        for r in runs
    }


def test_a_run_whose_text_cannot_be_cut_loses_only_its_repository_objects(
    realdata: Path, store: Store, tmp_path: Path
) -> None:
    run = ionic_runs(realdata)[0]
    repository, head = run["repository"], run["head_repository"]
    bare = without_repositories(run)
    odd = [
        # a member after the repository objects, in two runs one after the other (their
        # tails are the same text, proven once)
        {**bare, "id": 1, "repository": repository, "head_repository": head, "extra": 1},
        {**bare, "id": 4, "repository": repository, "head_repository": head, "extra": 1},
        # a nested "repository" member before the run's own
        {**bare, "id": 2, "pull_requests": [{"n": 1, "repository": {"id": 5}}],
         "repository": repository, "head_repository": head},
        # no head_repository; trailing spaces
        {**bare, "id": 3, "repository": repository},
    ]  # fmt: skip
    path = tmp_path / "odd.jsonl"
    path.write_text("".join(json.dumps(r, separators=(",", ":")) + "  \n" for r in odd))
    import_dumps(store, [path])

    raws = rows(store, "SELECT run_id, raw, repo FROM workflow_runs ORDER BY run_id")
    assert [(i, json.loads(raw), repo) for i, raw, repo in raws] == [
        (r["id"], without_repositories(r), repository["full_name"])
        for r in sorted(odd, key=lambda r: r["id"])
    ]


def write_lines(path: Path, lines: list[str], *, gz: bool) -> Path:
    """JSON Lines with a byte order mark and no newline after the last line."""
    text = ("\ufeff" + "\n".join(lines)).encode()
    if gz:
        path = path.with_suffix(".jsonl.gz")
        path.write_bytes(gzip.compress(text))
    else:
        path.write_bytes(text)
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_json_lines_come_in_batches_of_whole_row_groups(tmp_path: Path, gz: bool) -> None:
    lines = [json.dumps({"id": i, "pad": "x" * (i % 7 * 10)}) for i in range(50)]
    path = write_lines(tmp_path / "runs.jsonl", lines, gz=gz)

    batches = [
        batch.table.column("j").to_pylist()
        for batch in json_lines_batches(path, chunk_bytes=300, multiple=4)
    ]
    assert len(batches) > 3
    assert [line.strip() for batch in batches for line in batch] == lines
    assert all(len(batch) % 4 == 0 for batch in batches[:-1])
    path = write_lines(tmp_path / "blank.jsonl", [*lines[:9], "", " \t", *lines[9:]], gz=gz)
    batches = [b.table.column("j").to_pylist() for b in json_lines_batches(path, chunk_bytes=300)]
    assert [line.strip() for batch in batches for line in batch] == lines


@pytest.mark.parametrize("gz", [False, True])
def test_a_chunk_of_fewer_lines_than_a_row_group_is_widened(tmp_path: Path, gz: bool) -> None:
    lines = [json.dumps({"id": i, "pad": "x" * 90}) for i in range(30)]  # 106 bytes each
    path = write_lines(tmp_path / "runs.jsonl", lines, gz=gz)

    batches = [
        batch.table.column("j").to_pylist()
        for batch in json_lines_batches(path, chunk_bytes=150, multiple=4)
    ]
    assert [len(batch) for batch in batches] == [4] * 7 + [2]
    assert [line.strip() for batch in batches for line in batch] == lines


def test_prefetched_items_come_in_order_then_the_producers_error() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise DumpError("broken after 2")

    got = []
    with pytest.raises(DumpError, match="broken after 2"), closing(prefetched(items())) as each:
        got.extend(each)
    assert got == [1, 2]


def test_a_consumer_that_stops_early_stops_the_producer() -> None:
    produced = []

    def items() -> Iterator[int]:
        for i in range(100):
            produced.append(i)
            yield i

    with closing(prefetched(items())) as each:
        for item in each:
            if item == 3:
                break
    # the 4 consumed, one in the queue and one waiting to be put there
    assert len(produced) <= 6
    assert "deploystats-prefetch" not in [t.name for t in threading.enumerate()]
