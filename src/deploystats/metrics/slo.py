"""SLO evaluation (DESIGN §6): SLIs over each SLO's own window, error budgets and statuses.

An SLO's window ends where the requested period ends: a 28d SLO evaluated for --week
2026-W47 covers the 28 days before that week's end; `week` and `month` are the ISO week and
the calendar month holding the period's last instant, cut at the period's end.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import duckdb

from deploystats.config import Settings, Target, parse_duration
from deploystats.errors import ConfigError
from deploystats.metrics.core import wilson
from deploystats.metrics.windows import Window, iso_week, month, zone

OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}

# Ratio SLIs: (good, n) counted from deployment attempts in the window.
_RATIOS = {
    "success_rate": "count(*) FILTER (counted AND good), count(*) FILTER (counted)",
    "fast_share": (
        "count(*) FILTER (good AND timing_source = 'jobs' AND duration_s <= $threshold), "
        "count(*) FILTER (good AND timing_source = 'jobs')"
    ),
}

# The n behind a threshold metric, which min_events applies to.
_N_OF = {
    "duration_": "duration_n",
    "queue_": "queue_n",
    "lead_time_": "lead_time_n",
    "mttr_s": "episodes",
    "restore_": "episodes",
    "change_failure_rate": "changes",
}


def slo_window(period: Window, spec: str) -> Window:
    """The SLO's window ending where the requested period ends."""
    last = period.end - timedelta(microseconds=1)
    local = last.astimezone(zone(period.timezone))
    if spec == "week":
        year, week, _ = local.date().isocalendar()
        unit = iso_week(f"{year}-W{week:02d}", period.timezone)
    elif spec == "month":
        unit = month(f"{local.year}-{local.month:02d}", period.timezone)
    else:
        try:
            length = parse_duration(spec)
        except ValueError as exc:
            raise ConfigError(
                f"slos: window {spec!r}: use week, month or a duration like 28d"
            ) from exc
        return Window(period.end - length, period.end, f"{spec} to {period.label}", period.timezone)
    return Window(unit.start, min(unit.end, period.end), unit.label, period.timezone)


def _target(settings: Settings, name: str) -> Target:
    for target in settings.targets:
        if target.name == name:
            return target
    names = ", ".join(t.name for t in settings.targets) or "none"
    raise ConfigError(f"slos: unknown target {name!r}: configured targets are {names}")


def _ratio(
    con: duckdb.DuckDBPyConnection, metric: str, target: str, window: Window, threshold: float
) -> tuple[int, int]:
    sql = (
        f"SELECT {_RATIOS[metric]} FROM deployment_attempts "
        "WHERE target = $target AND started_at >= $start AND started_at < $end"
    )
    params: dict[str, Any] = {"target": target, "start": window.start, "end": window.end}
    if "$threshold" in sql:
        params["threshold"] = threshold
    good, n = con.execute(sql, params).fetchall()[0]
    return int(good), int(n)


def _n_for(metric: str, values: dict[str, Any]) -> int:
    for prefix, key in _N_OF.items():
        if metric.startswith(prefix):
            return int(values.get(key) or 0)
    return int(values.get("counted") or 0)


def evaluate_slos(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    period: Window,
    metrics_of: Callable[[Sequence[Target], Window], dict[str, Any]],
) -> list[dict[str, Any]]:
    """Each configured SLO for the requested period; classification must be prepared.

    `metrics_of(targets, window)` gives the metrics contract for a window (threshold SLOs).
    """
    defaults = settings.slo_defaults
    min_default = int(defaults.get("min_events", 20))
    at_risk = float(defaults.get("at_risk_budget", 0.75))
    results = []
    for spec in settings.slos:
        name, metric = spec.get("name", "?"), spec.get("metric", "?")
        op, objective = spec.get("op", ">="), float(spec.get("objective", 0))
        if op not in OPS:
            raise ConfigError(f"slos[{name}].op: {op!r} is not one of {', '.join(OPS)}")
        window = slo_window(period, str(spec.get("window", "week")))
        min_events = int(spec.get("min_events", min_default))
        result: dict[str, Any] = {
            "name": name,
            "metric": metric,
            "target": spec.get("target"),
            "op": op,
            "objective": objective,
            "min_events": min_events,
            "window": {
                "start": window.start.isoformat(),
                "end": window.end.isoformat(),
                "label": window.label,
            },
        }
        if metric == "availability":
            result |= {
                "sli": None,
                "n": 0,
                "status": "insufficient_data",
                "reason": "Prometheus availability is not ingested yet",
            }
            results.append(result)
            continue
        target = _target(settings, str(spec.get("target")))
        if metric in _RATIOS:
            threshold = float(spec.get("threshold_s", 0))
            good, n = _ratio(con, metric, target.name, window, threshold)
            period_good, period_n = _ratio(con, metric, target.name, period, threshold)
            result |= _ratio_status(
                good, n, period_good, period_n, objective, op, min_events, at_risk
            )
        else:
            values = metrics_of([target], window)["targets"][target.name]
            if metric not in values:
                raise ConfigError(f"slos[{name}].metric: unknown metric {metric!r}")
            sli, n = values[metric], _n_for(metric, values)
            met = sli is not None and OPS[op](float(sli), objective)
            result |= {"sli": sli, "n": n}
            if sli is None or n < min_events:
                result["status"] = "insufficient_data"
            else:
                result["status"] = "met" if met else "missed"
            if metric.startswith("duration_"):
                result["share_over_threshold"] = _share_over(con, target.name, window, objective)
        results.append(result)
    return results


def _share_over(
    con: duckdb.DuckDBPyConnection, target: str, window: Window, limit: float
) -> float | None:
    good, n = con.execute(
        "SELECT count(*) FILTER (duration_s > $limit), count(*) FROM deployment_attempts "
        "WHERE target = $target AND good AND timing_source = 'jobs' "
        "AND started_at >= $start AND started_at < $end",
        {"limit": limit, "target": target, "start": window.start, "end": window.end},
    ).fetchall()[0]
    return good / n if n else None


def _ratio_status(
    good: int,
    n: int,
    period_good: int,
    period_n: int,
    objective: float,
    op: str,
    min_events: int,
    at_risk: float,
) -> dict[str, Any]:
    """SLI, Wilson interval, error budget and status of a ratio SLI."""
    sli = good / n if n else None
    ci = wilson(good, n)
    budget = 1 - objective
    out: dict[str, Any] = {
        "sli": sli,
        "sli_ci": list(ci) if ci else None,
        "n": n,
        "good": good,
        "failures": n - good,
        "error_budget": budget,
        "allowed_failures": budget * n,
    }
    if sli is None or n < min_events:
        return out | {
            "status": "insufficient_data",
            "budget_consumed": None,
            "budget_remaining": None,
            "burn_rate": None,
        }
    # objective 1.0 leaves no budget: any failure exhausts it (consumed = 1, not infinity)
    consumed = (1 - sli) / budget if budget > 0 else float(sli < 1)
    period_sli = period_good / period_n if period_n else None
    burn = (
        (1 - period_sli) / budget
        if budget > 0 and period_sli is not None and period_n >= min_events
        else None
    )
    met = OPS[op](sli, objective)
    status = "missed" if not met else ("at_risk" if consumed >= at_risk else "met")
    return out | {
        "status": status,
        "budget_consumed": consumed,
        "budget_remaining": 1 - consumed,
        "burn_rate": burn,
    }
