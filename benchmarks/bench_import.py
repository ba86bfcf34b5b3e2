"""Import benchmark: a 100,000-run simulated dump (runs + jobs) through `import github`.

Reports runs/s and MB/s of the bulk path (the median of 3 imports), its peak RSS (measured in
a child process that does only the import), and the ratio to a row-by-row INSERT of a
2,000-run slice of the same records, measured in the same run. Targets (issue 2):
>= 20,000 runs/s, peak RSS <= 1 GiB.

    python benchmarks/bench_import.py [--runs 100000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

CHILD = """
import json, resource, sys, time
from pathlib import Path
from deploystats.ingest import import_dumps
from deploystats.store import Store
files = [Path(p) for p in sys.argv[2:]]
started = time.perf_counter()
result = import_dumps(Store(sys.argv[1]), files)
elapsed = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"elapsed_s": elapsed, "objects": result.objects,
                  "peak_rss_mib": usage.ru_maxrss / 1024,
                  "cpu_s": usage.ru_utime + usage.ru_stime}))
"""

ROW_INSERT = """
INSERT INTO workflow_runs VALUES ($repo, $run_id, $run_attempt, $workflow_id, $workflow_name,
    $workflow_path, $run_number, $event, $status, $conclusion, $head_branch, $head_sha,
    $head_commit_at, $actor, $created_at, $run_started_at, $updated_at, $html_url, $raw)
"""


def row_by_row(path: Path, runs_path: Path, count: int) -> float:
    """The naive path: parse each run in Python and INSERT it alone. Returns runs/s."""
    from deploystats.store import connect

    con = connect(path)
    started = time.perf_counter()
    with runs_path.open("rb") as handle:
        for line in itertools.islice(handle, count):
            run = orjson.loads(line)
            raw = {k: v for k, v in run.items() if k not in ("repository", "head_repository")}
            con.execute(
                ROW_INSERT,
                {
                    "repo": run["repository"]["full_name"],
                    "run_id": run["id"],
                    "run_attempt": run.get("run_attempt", 1),
                    "workflow_id": run["workflow_id"],
                    "workflow_name": run["name"],
                    "workflow_path": run["path"],
                    "run_number": run["run_number"],
                    "event": run["event"],
                    "status": (run["status"] or "").lower(),
                    "conclusion": (run["conclusion"] or "").lower(),
                    "head_branch": run["head_branch"],
                    "head_sha": run["head_sha"],
                    "head_commit_at": (run.get("head_commit") or {}).get("timestamp"),
                    "actor": (run.get("actor") or {}).get("login"),
                    "created_at": run["created_at"],
                    "run_started_at": run["run_started_at"],
                    "updated_at": run["updated_at"],
                    "html_url": run["html_url"],
                    "raw": orjson.dumps(raw).decode(),
                },
            )
    elapsed = time.perf_counter() - started
    con.close()
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--slice", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3, help="bulk imports; the median counts")
    parser.add_argument("--keep", type=Path, help="reuse/keep the generated dumps in this folder")
    args = parser.parse_args()

    from deploystats.simulate import write_bulk_dumps

    with tempfile.TemporaryDirectory(prefix="deploystats-bench-") as scratch:
        folder = args.keep or Path(scratch) / "dumps"
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        paths = write_bulk_dumps(folder, runs=args.runs, seed=7)
        generated = time.perf_counter() - started
        files = [paths["runs"], paths["jobs"]]
        size_mb = sum(p.stat().st_size for p in files) / 1e6
        runs_mb = paths["runs"].stat().st_size / 1e6
        print(f"generated {args.runs:,} runs + jobs ({size_mb:,.0f} MB) in {generated:.1f}s")

        imports = []
        for attempt in range(args.repeat):
            db = Path(scratch) / f"bulk{attempt}.duckdb"
            child = subprocess.run(
                [sys.executable, "-c", CHILD, str(db), *map(str, files)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            imports.append(json.loads(child.stdout.strip().splitlines()[-1]))
            db.unlink()
        bulk = sorted(imports, key=lambda i: i["elapsed_s"])[len(imports) // 2]
        each = ", ".join(f"{i['elapsed_s']:.2f}s" for i in imports)
        runs = bulk["objects"]["runs"]
        runs_per_s = runs / bulk["elapsed_s"]
        print(
            f"bulk import (median of {len(imports)}: {each}): "
            f"{runs:,} runs + {bulk['objects'].get('jobs', 0):,} jobs in "
            f"{bulk['elapsed_s']:.2f}s = {runs_per_s:,.0f} runs/s, "
            f"{size_mb / bulk['elapsed_s']:,.0f} MB/s (runs file alone {runs_mb:,.0f} MB), "
            f"peak RSS {max(i['peak_rss_mib'] for i in imports):,.0f} MiB, "
            f"CPU {bulk['cpu_s']:.1f}s (the machine's other load stretches the wall time, "
            "not this)"
        )
        naive = row_by_row(Path(scratch) / "rows.duckdb", paths["runs"], args.slice)
        print(f"row-by-row INSERT of {args.slice:,} runs: {naive:,.0f} runs/s")
        print(f"ratio bulk / row-by-row: {runs_per_s / naive:,.1f}x")
        targets_met = runs_per_s >= 20_000 and max(i["peak_rss_mib"] for i in imports) <= 1024
        print(f"targets (>= 20,000 runs/s, <= 1 GiB RSS): {'met' if targets_met else 'MISSED'}")
        self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"(benchmark driver peak RSS {self_rss:,.0f} MiB)")


if __name__ == "__main__":
    main()
