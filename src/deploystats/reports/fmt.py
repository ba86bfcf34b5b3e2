"""How numbers read in reports: one place, shared by HTML, Markdown, JIRA markup and Slack."""

from __future__ import annotations

import math
from typing import Any

_PERCENT = ("_rate", "_share", "availability", "coverage", "budget_remaining", "budget_consumed")
_COUNTS = ("_n", "_incidents", "episodes", "changes", "counted", "overlapping_deploys", "samples")


def is_percent(metric: str) -> bool:
    return metric.endswith(_PERCENT) or metric in ("sli_fraction", "fast_share")


def is_seconds(metric: str) -> bool:
    return metric.endswith("_s")


def seconds(value: float) -> str:
    """7.2 min, 45 s, 3.1 h, 2.0 d: the unit a reader thinks in."""
    if abs(value) < 120:
        return f"{value:.0f} s"
    if abs(value) < 7200:
        return f"{value / 60:.1f} min"
    if abs(value) < 172800:
        return f"{value / 3600:.1f} h"
    return f"{value / 86400:.1f} d"


def value(metric: str, v: Any) -> str:
    """A metric value for humans; `-` for null (no data is never a made-up number)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (list, tuple)) and len(v) == 2:
        return f"[{value(metric, v[0])}, {value(metric, v[1])}]"
    if is_percent(metric):
        return f"{100 * float(v):.1f} %"
    if is_seconds(metric):
        return seconds(float(v))
    if isinstance(v, int) or metric.endswith(_COUNTS):
        return f"{int(v):,}"
    if isinstance(v, float):
        return f"{v:,.2f}"
    return str(v)


def objective(metric: str, op: str, target: float) -> str:
    """`>= 95.0 %`, `<= 10.0 min`."""
    return f"{op} {value(metric, target)}"


def interval(metric: str, ci: Any) -> str:
    if not ci:
        return ""
    return f" [{value(metric, ci[0])}, {value(metric, ci[1])}]"
