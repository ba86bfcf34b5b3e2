"""Prometheus data of a simulated history: runner `up`, ALERTS around failures, their ledger.

`simulate_prometheus(sim)` covers the last `days` (default 14, inside Prometheus's default
15-day retention) before the history's end with what the team's Prometheus recorded:

- `up{job="github-runner"}` of the primary and the secondary runner's exporter (:9101),
  scraped every 60 s (at 7 s and 37 s past the minute): the primary is down (0) for its whole
  outage in the history, during which deploys fail over to the secondary; Prometheus itself
  restarts once, leaving a scrape gap of three samples in both series (shorter than the
  5-minute lookback, so a query_range would hide it).
- `ALERTS{alertstate="firing",severity="page",service="platform"}` evaluated every 60 s (at
  23 s past the minute), 1 while firing: `RunnerDown` on the primary from two minutes into its
  outage until it is up again, and `DeployFailed` 30 s to 5 min after each failed or
  rolled-back deploy attempt, for 4 to 15 minutes, except one failure that no alert catches.

Both are written as saved query responses (`{"status": "success", "data": {"resultType":
"matrix", "result": [...]}}`, values as strings), which `deploystats import prometheus` loads
under the names of `DEMO_PROMETHEUS`. The ledger holds the ground truth as ISO times:

- `start`, `end`: the span of the data; `scrape_interval_s`, `eval_interval_s`: 60.
- `outages`: `[{instance, start_at, end_at}]`: samples with value 0 lie in [start_at, end_at).
- `scrape_gaps`: `[{instance, start_at, end_at}]`: no sample of that series in [start_at, end_at).
- `alert_incidents`: `[{alertname, start_at, end_at}]`: per alert name, the union of its
  firing samples (first sample, last sample + 60 s), as `group_by: [alertname]` counts them.
- `failures`: one row per failed or rolled-back attempt of the target whose start falls in the
  span: `run_id`, `run_attempt`, `started_at`, `failure_at` (DESIGN §5), `alerted` (the
  simulator raised DeployFailed for it), `alert_at` (the start of the first incident of all
  alert series pooled that overlaps [started_at, failure_at + 1 h), else null) and `detect_s`
  (alert_at - failure_at floored at 0; null when undetected).

Only `random.Random` seeded from `seed` is used: the same simulation and seed, the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any

import orjson

from deploystats.simulate import PRIMARY_RUNNER, SECONDARY_RUNNER, Simulation

INTERVAL_S = 60
UP_OFFSET_S = {PRIMARY_RUNNER: 7, SECONDARY_RUNNER: 37}
EVAL_OFFSET_S = 23
GAP_SAMPLES = 3
DETECT_WINDOW = timedelta(hours=1)
ALERT_LABELS = {"alertstate": "firing", "severity": "page", "service": "platform"}


@dataclass
class PromSimulation:
    """Saved responses of the demo's Prometheus queries (by query name) and their ledger."""

    responses: dict[str, dict[str, Any]]
    ledger: dict[str, Any]


def _instance(runner: str) -> str:
    return f"{runner.removesuffix('-runner')}:9101"


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat()


def _matrix(series: Iterable[tuple[dict[str, str], list[tuple[float, float]]]]) -> dict[str, Any]:
    result = [
        {"metric": labels, "values": [[ts, f"{value:g}"] for ts, value in samples]}
        for labels, samples in series
    ]
    return {"status": "success", "data": {"resultType": "matrix", "result": result}}


def _incidents(ticks: set[int], origin: float) -> list[tuple[datetime, datetime]]:
    """Runs of consecutive evaluation ticks -> [first tick, last tick + interval)."""
    out: list[tuple[datetime, datetime]] = []
    for tick in sorted(ticks):
        at = datetime.fromtimestamp(origin + tick * INTERVAL_S, UTC)
        if out and tick - 1 in ticks:
            out[-1] = (out[-1][0], at + timedelta(seconds=INTERVAL_S))
        else:
            out.append((at, at + timedelta(seconds=INTERVAL_S)))
    return out


def _failures(sim: Simulation, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Failed or rolled-back deploy attempts starting in [start, end), with DESIGN §5 times:
    with an executed deploy job (one that got a runner), its start and completion; without,
    the run's start and its last update."""
    runs = {(r["id"], r["run_attempt"]): r for r in sim.runs}
    out = []
    for row in sim.ledger:
        if row["workflow"] != "deploy" or row["outcome"] not in ("failure", "rolled_back"):
            continue
        run = runs[(row["run_id"], row["run_attempt"])]
        if row["runner_role"] is not None:
            started, failed = row["deploy_started_at"], row["deploy_completed_at"]
        else:
            started, failed = run["run_started_at"], run["updated_at"]
        if start <= _at(started) < end:
            out.append(
                {
                    "run_id": row["run_id"],
                    "run_attempt": row["run_attempt"],
                    "scenario": row["scenario"],
                    "started_at": _at(started),
                    "failure_at": _at(failed),
                }
            )
    return sorted(out, key=lambda f: (f["failure_at"], f["run_id"], f["run_attempt"]))


def simulate_prometheus(sim: Simulation, *, days: int = 14, seed: int = 7) -> PromSimulation:
    """Runner `up` and ALERTS of the last `days` of `sim` (see the module docstring)."""
    if sim.end is None:
        raise ValueError("the simulation has no end: make it with simulate()")
    end = sim.end
    start = end - timedelta(days=days)
    rng = Random(f"prometheus:{seed}")
    origin = start.timestamp()
    outage = sim.runner_outage if sim.runner_outage and start <= sim.runner_outage[0] else None

    # Prometheus restarts once in the last week, at night: every series misses GAP_SAMPLES
    gap_from = end - timedelta(days=rng.randint(2, 5), hours=rng.randint(20, 23))
    gap_from = gap_from.replace(minute=rng.randint(0, 50), second=0)
    gap = (gap_from, gap_from + timedelta(seconds=GAP_SAMPLES * INTERVAL_S))

    up, outages, gaps = [], [], []
    for runner in (PRIMARY_RUNNER, SECONDARY_RUNNER):
        labels = {"__name__": "up", "instance": _instance(runner), "job": "github-runner"}
        samples = []
        for i in range(days * 86400 // INTERVAL_S):
            ts = origin + i * INTERVAL_S + UP_OFFSET_S[runner]
            at = datetime.fromtimestamp(ts, UTC)
            if gap[0] <= at < gap[1]:
                continue
            down = runner == PRIMARY_RUNNER and outage is not None and outage[0] <= at < outage[2]
            samples.append((ts, 0.0 if down else 1.0))
        up.append((labels, samples))
        gaps.append(
            {"instance": labels["instance"], "start_at": _iso(gap[0]), "end_at": _iso(gap[1])}
        )
        if outage is not None and runner == PRIMARY_RUNNER:
            outages.append(
                {
                    "instance": labels["instance"],
                    "start_at": _iso(outage[0]),
                    "end_at": _iso(outage[2]),
                }
            )

    def tick(at: datetime) -> int:
        """The first evaluation tick at or after `at`."""
        return -(-(round(at.timestamp() - origin) - EVAL_OFFSET_S) // INTERVAL_S)

    last_tick = tick(end) - 1
    alerts: dict[tuple[str, str], set[int]] = {}
    if outage is not None:  # `for: 2m` on up == 0, resolved at the first successful scrape
        key = ("RunnerDown", _instance(PRIMARY_RUNNER))
        alerts[key] = set(range(tick(outage[0] + timedelta(minutes=2)), tick(outage[2])))
    failures = _failures(sim, start, end)
    own: list[set[int]] = []
    for failure in failures:
        first = tick(failure["failure_at"] + timedelta(seconds=rng.randint(30, 300)))
        own.append(set(range(first, min(first + rng.randint(4, 15), last_tick + 1))))

    # one failure goes unnoticed: the latest whose detection window no other alert reaches
    def pooled(skip: int | None) -> list[tuple[datetime, datetime]]:
        ticks = set().union(*alerts.values(), *(t for i, t in enumerate(own) if i != skip))
        return _incidents(ticks, origin + EVAL_OFFSET_S)

    def first_alert(failure: dict[str, Any], incidents: list[Any]) -> datetime | None:
        reach = failure["failure_at"] + DETECT_WINDOW
        found = [a for a, b in incidents if a < reach and b > failure["started_at"]]
        return min(found) if found else None

    missed = next(
        (
            i
            for i in reversed(range(len(failures)))
            if failures[i]["scenario"] != "outage" and first_alert(failures[i], pooled(i)) is None
        ),
        None,
    )
    deploy_failed = set().union(*(t for i, t in enumerate(own) if i != missed))
    if deploy_failed:
        alerts[("DeployFailed", "")] = deploy_failed

    series = []
    incidents = []
    for (name, instance), ticks in sorted(alerts.items()):
        labels = {"__name__": "ALERTS", "alertname": name, **ALERT_LABELS}
        if instance:
            labels["instance"] = instance
        times = [origin + EVAL_OFFSET_S + t * INTERVAL_S for t in sorted(ticks)]
        series.append((labels, [(ts, 1.0) for ts in times]))
    by_name: dict[str, set[int]] = {}
    for (name, _), ticks in alerts.items():
        by_name.setdefault(name, set()).update(ticks)
    for name, ticks in sorted(by_name.items()):
        for a, b in _incidents(ticks, origin + EVAL_OFFSET_S):
            incidents.append({"alertname": name, "start_at": _iso(a), "end_at": _iso(b)})

    everything = pooled(missed)
    rows = []
    for i, failure in enumerate(failures):
        alert_at = first_alert(failure, everything)
        detect = max((alert_at - failure["failure_at"]).total_seconds(), 0.0) if alert_at else None
        rows.append(
            {
                "run_id": failure["run_id"],
                "run_attempt": failure["run_attempt"],
                "started_at": _iso(failure["started_at"]),
                "failure_at": _iso(failure["failure_at"]),
                "alerted": i != missed,
                "alert_at": _iso(alert_at) if alert_at else None,
                "detect_s": detect,
            }
        )
    ledger = {
        "start": _iso(start),
        "end": _iso(end),
        "scrape_interval_s": INTERVAL_S,
        "eval_interval_s": INTERVAL_S,
        "outages": outages,
        "scrape_gaps": gaps,
        "alert_incidents": incidents,
        "failures": rows,
    }
    return PromSimulation({"runner_up": _matrix(up), "deploy_alerts": _matrix(series)}, ledger)


def write_prometheus(psim: PromSimulation, folder: Path) -> dict[str, Path]:
    """Write each saved response as `<query>.json` and the ledger as `ledger.json`; returns
    the response paths by query name."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, body in psim.responses.items():
        paths[name] = folder / f"{name}.json"
        paths[name].write_bytes(orjson.dumps(body))
    (folder / "ledger.json").write_bytes(orjson.dumps(psim.ledger, option=orjson.OPT_INDENT_2))
    return paths
