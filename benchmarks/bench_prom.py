"""Prometheus sync benchmark: 30 days at 15 s for 50 series from a real local Prometheus.

The series (`up{job="github-runner",instance="runner-NN"}`, a few outages) are backfilled with
promtool into a Prometheus 2.42 on 127.0.0.1 exactly as the test fixture does
(tests/promserver.py). A child process that does only the sync runs `sync_prometheus` into a
fresh DuckDB file (raw samples by range-vector queries in 6-hour chunks, one transaction per
chunk) and reports samples stored per second end to end and its peak RSS.
Target (issue 4): >= 200,000 samples/s. `--baseline REV` also syncs with the package as of a
git revision (its src/ extracted with git archive) against the same server, in the same run,
and prints the speed-up.

    python benchmarks/bench_prom.py [--series 50] [--days 30] [--keep DIR] [--baseline REV]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.promserver import PrometheusServer, prometheus_available  # noqa: E402

STEP_S = 15
TARGET_PER_S = 200_000
CHILD = """
import json, resource, sys, time
from datetime import datetime
from deploystats.config import Settings
from deploystats.prom import sync_prometheus
from deploystats.sources.prometheus import PrometheusClient
from deploystats.store import Store, connect
db, url, start, end = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
query = {"expr": 'up{job="github-runner"}', "kind": "availability", "step": "15s"}
settings = Settings.model_validate({"prometheus": {"url": url, "queries": {"runner_up": query}}})
started = time.perf_counter()
with PrometheusClient(url=url) as client:
    result = sync_prometheus(Store(db), settings, client, since=datetime.fromisoformat(start),
                             until=datetime.fromisoformat(end))
elapsed = time.perf_counter() - started
con = connect(db, read_only=True)
stored = con.execute("SELECT count(*) FROM prom_samples").fetchall()[0][0]
con.close()
import deploystats
print(json.dumps({"elapsed_s": elapsed, "stored": stored, "chunks": result.chunks,
                  "package": deploystats.__file__,
                  "requests": result.requests,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


class BenchServer(PrometheusServer):
    """The fixture server, its OpenMetrics file streamed (millions of samples)."""

    def __init__(self, *, series: int, start: datetime, days: int, workdir: Path) -> None:
        super().__init__([], workdir=workdir)
        self.count, self.start_s, self.points = (
            series,
            int(start.timestamp()),
            days * 86400 // STEP_S,
        )

    def _write_openmetrics(self, path: Path) -> int:
        with path.open("w", encoding="utf-8") as out:
            out.write("# TYPE up gauge\n")
            for n in range(self.count):
                prefix = f'up{{job="github-runner",instance="runner-{n:02d}"}} '
                down = range(1000 + 97 * n, 1000 + 97 * n + 10 + n)  # an outage per series
                out.writelines(
                    f"{prefix}{0 if i in down else 1} {self.start_s + i * STEP_S}\n"
                    for i in range(self.points)
                )
            out.write("# EOF\n")
        return self.count * self.points


def sync(folder: Path, url: str, start: datetime, end: datetime, src: Path | None) -> dict:
    """One sync in a child process into a fresh database (the package from `src` if given)."""
    db = folder / "bench.duckdb"
    db.unlink(missing_ok=True)
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(db), url, start.isoformat(), end.isoformat()],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"bench_prom: the sync failed:\n{done.stderr}")
    got: dict = json.loads(done.stdout)
    if src is not None and not got["package"].startswith(str(src)):
        sys.exit(f"bench_prom: the baseline ran {got['package']}, not the code under {src}")
    return got


def extract(rev: str, folder: Path) -> Path:
    """src/ of the package at git revision `rev`, under folder/baseline."""
    target = folder / "baseline"
    target.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "src"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target / "src"


def report(label: str, got: dict) -> float:
    rate = got["stored"] / got["elapsed_s"]
    print(
        f"{label}: {got['stored']:,} samples in {got['chunks']} chunks ({got['requests']} "
        f"requests) in {got['elapsed_s']:.1f} s = {rate:,.0f} samples/s; "
        f"peak RSS {got['peak_rss_mib']:.0f} MiB"
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=50)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--keep", type=Path, help="keep the server data and database here")
    parser.add_argument("--baseline", help="git revision to compare with, e.g. HEAD~1")
    args = parser.parse_args()
    if (missing := prometheus_available()) is not None:
        sys.exit(f"bench_prom: {missing}")
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    start = end - timedelta(days=args.days)
    expected = args.series * args.days * 86400 // STEP_S
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        server = BenchServer(series=args.series, start=start, days=args.days, workdir=folder)
        with server:
            print(
                f"backfilled {expected:,} samples ({args.series} series, {args.days} days at "
                f"{STEP_S} s) in {time.perf_counter() - began:.1f} s; Prometheus at {server.url}"
            )
            got = sync(folder, server.url, start, end, None)
            old = None
            if args.baseline:
                src = extract(args.baseline, folder)
                old = sync(folder, server.url, start, end, src)
    for result in (got, old):
        if result is not None and result["stored"] != expected:
            sys.exit(f"bench_prom: {result['stored']:,} samples stored, {expected:,} served")
    rate = report("sync prometheus", got)
    verdict = "ok" if rate >= TARGET_PER_S else f"BELOW the {TARGET_PER_S:,}/s target"
    print(f"target >= {TARGET_PER_S:,} samples/s: {verdict}")
    if old is not None:
        before = report(f"baseline {args.baseline}", old)
        print(f"speed-up over {args.baseline}: {rate / before:.2f}x")


if __name__ == "__main__":
    main()
