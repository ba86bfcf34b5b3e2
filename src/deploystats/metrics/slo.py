"""SLO evaluation (DESIGN §6): SLIs over each SLO's own window, error budgets and statuses.

An SLO's window ends where the requested period ends: a 28d SLO evaluated for --week
2026-W47 covers the 28 days before that week's end; `week` and `month` are the ISO week and
the calendar month holding the period's last instant, cut at the period's end.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import duckdb

from deploystats.config import Settings, Target, parse_duration
from deploystats.errors import ConfigError
from deploystats.metrics.core import n_of, wilson
from deploystats.metrics.prometheus import series_counts
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
    """The n min_events applies to: the metric's own n, else the counted attempts."""
    n = n_of(metric, values)
    return int(values.get("counted") or 0) if n is None else n


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
            results += availability_slos(
                con, settings, spec, result, window, period, min_events, at_risk
            )
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
    ci = wilson(good, n)
    out: dict[str, Any] = {
        "sli": good / n if n else None,
        "sli_ci": list(ci) if ci else None,
        "n": n,
        "good": good,
        "failures": n - good,
    }
    period_sli = period_good / period_n if period_n else None
    return out | _budget(out["sli"], n, period_sli, period_n, objective, op, min_events, at_risk)


def _budget(
    sli: float | None,
    n: int,
    period_sli: float | None,
    period_n: int,
    objective: float,
    op: str,
    min_events: int,
    at_risk: float,
) -> dict[str, Any]:
    """Error budget, burn rate and status of a ratio SLI over n events."""
    budget = 1 - objective
    out: dict[str, Any] = {"error_budget": budget, "allowed_failures": budget * n}
    if sli is None or n < min_events:
        return out | {
            "status": "insufficient_data",
            "budget_consumed": None,
            "budget_remaining": None,
            "burn_rate": None,
        }
    # objective 1.0 leaves no budget: any failure exhausts it (consumed = 1, not infinity)
    consumed = (1 - sli) / budget if budget > 0 else float(sli < 1)
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


# ----- availability SLOs over a Prometheus query (DESIGN §6) -----------------------------------
AGGREGATES = ("each", "min", "mean", "pooled")
MIN_COVERAGE = 0.99


@dataclass(frozen=True)
class _Aggregate:
    """An availability SLI over series: `good` and `n` count samples (pooled for `mean`,
    whose SLI is the mean of the series' availabilities); coverage is the lowest of the
    series'; `labels` names the series of `each` (and the lowest one of `min`)."""

    sli: float | None
    good: int
    n: int
    coverage: float
    labels: dict[str, str] | None = None


def _aggregate(rows: list[dict[str, Any]], how: str) -> list[_Aggregate]:
    def one(row: dict[str, Any]) -> _Aggregate:
        sli = row["up"] / row["valued"] if row["valued"] else None
        return _Aggregate(sli, row["up"], row["valued"], row["coverage"], row["labels"])

    if not rows:
        return [_Aggregate(None, 0, 0, 0.0)]
    if how == "each":
        return [one(row) for row in rows]
    coverage = min(row["coverage"] for row in rows)
    good, n = sum(row["up"] for row in rows), sum(row["valued"] for row in rows)
    if how == "min":
        valued = [one(row) for row in rows if row["valued"]]
        if not valued:
            return [_Aggregate(None, 0, 0, coverage)]
        low = min(valued, key=lambda a: a.sli if a.sli is not None else 1.0)
        return [_Aggregate(low.sli, low.good, low.n, coverage, low.labels)]
    if how == "mean":
        slis = [row["up"] / row["valued"] for row in rows if row["valued"]]
        return [_Aggregate(sum(slis) / len(slis) if slis else None, good, n, coverage)]
    return [_Aggregate(good / n if n else None, good, n, coverage)]


def availability_slos(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    spec: dict[str, Any],
    base: dict[str, Any],
    window: Window,
    period: Window,
    min_events: int,
    at_risk: float,
) -> list[dict[str, Any]]:
    """An availability SLO over a `kind: availability` query: one result, or one per series
    with `aggregate: each`. Samples with a value >= 1 are good. Coverage below `min_coverage`
    (default 0.99) in the SLO window is insufficient_data with a reason; the burn rate needs
    that coverage in the requested period too."""
    name, query_name = base["name"], str(spec.get("target"))
    prom = settings.prometheus
    query = prom.queries.get(query_name) if prom is not None else None
    if prom is None or query is None or query.kind != "availability":
        names = [n for n, q in (prom.queries if prom else {}).items() if q.kind == "availability"]
        raise ConfigError(
            f"slos[{name}].target: {query_name!r} is not a prometheus query of kind "
            f"availability (configured: {', '.join(names) or 'none'})"
        )
    how = str(spec.get("aggregate", "min"))
    if how not in AGGREGATES:
        raise ConfigError(f"slos[{name}].aggregate: {how!r} is not one of {', '.join(AGGREGATES)}")
    min_coverage = float(spec.get("min_coverage", MIN_COVERAGE))
    objective, op = base["objective"], base["op"]
    step = query.step.total_seconds()
    in_window = _aggregate(series_counts(con, query_name, window, step_s=step), how)
    in_period = _aggregate(series_counts(con, query_name, period, step_s=step), how)
    period_of = {_key(a.labels): a for a in in_period} if how == "each" else {}
    results = []
    for agg in in_window:
        this = period_of.get(_key(agg.labels)) if how == "each" else in_period[0]
        usable = this is not None and this.coverage >= min_coverage
        result = base | {"aggregate": how, "min_coverage": min_coverage}
        if how in ("each", "min") and agg.labels is not None:
            result["labels"] = agg.labels
        ci = wilson(agg.good, agg.n) if how != "mean" else None
        result |= {
            "sli": agg.sli,
            "sli_ci": list(ci) if ci else None,
            "n": agg.n,
            "good": agg.good,
            "failures": agg.n - agg.good,
            "coverage": agg.coverage,
        }
        result |= _budget(
            agg.sli,
            agg.n,
            this.sli if this is not None and usable else None,
            this.n if this is not None else 0,
            objective,
            op,
            min_events,
            at_risk,
        )
        reason = _unmeasured(agg, query_name, min_coverage)
        if reason is not None:
            result |= {
                "status": "insufficient_data",
                "budget_consumed": None,
                "budget_remaining": None,
                "burn_rate": None,
                "reason": reason,
            }
        results.append(result)
    return results


def _key(labels: dict[str, str] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((labels or {}).items()))


def _unmeasured(agg: _Aggregate, query: str, min_coverage: float) -> str | None:
    if agg.n == 0 and agg.coverage == 0:
        return (
            f"no samples of {query} in the window: run deploystats sync prometheus "
            "(Prometheus keeps 15 days by default) or import saved responses"
        )
    if agg.coverage < min_coverage:
        return (
            f"coverage {agg.coverage:.2%} of {query} is below min_coverage {min_coverage:.2%}: "
            "samples are missing for part of the window (scrape gaps, or data beyond "
            "Prometheus's retention)"
        )
    return None
