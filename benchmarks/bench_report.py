"""Report rendering benchmark: the weekly SLO report of the demo data, kernel start included.

Simulates the demo history (seed 7, with its Prometheus data) into a fresh DuckDB file in a
temporary folder, then renders `deploystats report weekly-slo` and the INFRA-472 closure
report through the CLI, each `--runs` times, as a user would. Prints wall time per render
(papermill, kernel start, nbconvert, evidence), the HTML size and the evidence size.
Target (issue 5): weekly report <= 30 s.

    python benchmarks/bench_report.py [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 30.0


def _run(folder: Path, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "deploystats", *args], cwd=folder, check=True, capture_output=True
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        folder = Path(tmp)
        setup = _run(folder, "demo", "--no-reports")
        print(f"demo data (simulate + import, no reports): {setup:.1f} s")
        config = ("--config", "data/sample/deploystats.yml")
        for kind, extra in (("weekly-slo", ()), ("epic-closure", ("data/sample/INFRA-472.yml",))):
            if kind == "epic-closure":  # the demo writes the epic file only when rendering
                _run(folder, "demo")
            times = [
                _run(folder, *config, "report", kind, *extra, "--force")
                for _ in range(options.runs)
            ]
            html = next((folder / "reports" / kind).glob(f"*/{kind}-*.html"))
            evidence = html.with_suffix(".json")
            verdict = "meets" if max(times) <= TARGET_S else "MISSES"
            print(
                f"{kind}: median {statistics.median(times):.1f} s, max {max(times):.1f} s "
                f"over {options.runs} renders ({verdict} the {TARGET_S:.0f} s target); "
                f"HTML {html.stat().st_size / 1e6:.2f} MB, evidence "
                f"{evidence.stat().st_size / 1e3:.0f} kB"
            )


if __name__ == "__main__":
    main()
