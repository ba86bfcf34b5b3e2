"""The report charts (plotly): readable without colour (symbols and dashes differ too), axis
titles with units, objectives drawn as labelled lines."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

# outcome class -> (colour, marker symbol): shape alone tells classes apart
OUTCOME_STYLE = {
    "success": ("#1b7837", "circle"),
    "failure": ("#b2182b", "x"),
    "rolled_back": ("#d6604d", "triangle-down"),
    "aborted": ("#8c510a", "square"),
    "superseded": ("#878787", "diamond-open"),
    "not_deployed": ("#4393c3", "circle-open"),
    "not_counted": ("#bababa", "cross-thin-open"),
    "excluded": ("#542788", "star-open"),
}
_LAYOUT = {
    "template": "plotly_white",
    "height": 380,
    "margin": {"l": 70, "r": 30, "t": 60, "b": 60},
    "legend": {"orientation": "h", "y": -0.22},
    "font": {"size": 12},
}


def _minutes(seconds: pd.Series) -> pd.Series:
    return seconds.astype("float64") / 60.0


def _labels(part: pd.DataFrame) -> list[str]:
    """Hover text: run and attempt, and the actor when the frame carries one (show_people)."""
    people = part["actor"] if "actor" in part else [None] * len(part)
    return [
        f"run {r} attempt {a}" + (f" by {who}" if who else "")
        for r, a, who in zip(part["run_id"], part["run_attempt"], people, strict=True)
    ]


def timeline(attempts: pd.DataFrame, rollbacks: Sequence[Any], title: str) -> go.Figure:
    """Deployment attempts over time by outcome class; rollback signals as dashed lines."""
    fig = go.Figure()
    for outcome, (colour, symbol) in OUTCOME_STYLE.items():
        part = attempts[attempts["outcome"] == outcome]
        if part.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=part["started_at"],
                y=_minutes(part["duration_s"].fillna(0)),
                mode="markers",
                name=f"{outcome} ({len(part)})",
                marker={"color": colour, "symbol": symbol, "size": 9, "line": {"width": 1}},
                text=_labels(part),
                hovertemplate="%{text}<br>%{x}<br>%{y:.1f} min<extra>" + outcome + "</extra>",
            )
        )
    for at in rollbacks:
        fig.add_vline(x=at, line={"dash": "dash", "color": "#762a83", "width": 1})
    if len(rollbacks):
        fig.add_trace(  # a legend entry for the rollback lines
            go.Scatter(
                x=[None],
                y=[None],
                mode="lines",
                name=f"rollback signal ({len(rollbacks)})",
                line={"dash": "dash", "color": "#762a83"},
            )
        )
    fig.update_layout(title=title, **_LAYOUT)
    fig.update_xaxes(title_text="deploy started (UTC)")
    fig.update_yaxes(title_text="deploy duration (min)", rangemode="tozero")
    return fig


def duration_distribution(
    durations_s: pd.Series, p95_s: float | None, objective_s: float | None, title: str
) -> go.Figure:
    """Histogram of deploy durations with the p95 (dotted) and the objective (solid)."""
    fig = go.Figure(
        go.Histogram(
            x=_minutes(durations_s),
            nbinsx=30,
            name="attempts",
            marker={"color": "#4393c3", "line": {"color": "#2166ac", "width": 1}},
        )
    )
    if p95_s is not None:
        fig.add_vline(
            x=p95_s / 60,
            line={"dash": "dot", "color": "#000", "width": 2},
            annotation_text=f"p95 {p95_s / 60:.1f} min",
            annotation_position="top",
        )
    if objective_s is not None:
        fig.add_vline(
            x=objective_s / 60,
            line={"color": "#b2182b", "width": 2},
            annotation_text=f"objective {objective_s / 60:.1f} min",
            annotation_position="top left",
        )
    fig.update_layout(title=title, bargap=0.05, **_LAYOUT)
    fig.update_xaxes(title_text="deploy duration (min)", rangemode="tozero")
    fig.update_yaxes(title_text="successful attempts (count)")
    return fig


def _scaled(
    values: Sequence[float | None],
    lows: Sequence[float | None] | None,
    highs: Sequence[float | None] | None,
    scale: float,
) -> tuple[list[float | None], dict[str, Any] | None]:
    """Values in display units and asymmetric error bars from interval bounds (if given)."""
    ys = [None if v is None else v * scale for v in values]
    if lows is None or highs is None:
        return ys, None
    above = [
        None if h is None or y is None else h * scale - y for h, y in zip(highs, ys, strict=True)
    ]
    below = [
        None if lo is None or y is None else y - lo * scale for lo, y in zip(lows, ys, strict=True)
    ]
    return ys, {"type": "data", "symmetric": False, "array": above, "arrayminus": below}


def _finish(
    fig: go.Figure, *, title: str, axis: str, objective: float | None, scale: float, **layout: Any
) -> go.Figure:
    """The objective as a dashed red line, title and axis titles."""
    if objective is not None:
        fig.add_hline(
            y=objective * scale,
            line={"color": "#b2182b", "width": 2, "dash": "dash"},
            annotation_text=f"objective {objective * scale:g}",
            annotation_position="top left",
        )
    fig.update_layout(title=title, **(_LAYOUT | layout))
    fig.update_yaxes(title_text=axis)
    return fig


def trend(
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    title: str,
    axis: str,
    objective: float | None = None,
    lows: Sequence[float | None] | None = None,
    highs: Sequence[float | None] | None = None,
    scale: float = 1.0,
) -> go.Figure:
    """One value per period (weeks), optional interval bars, the objective as a line."""
    ys, error = _scaled(values, lows, highs, scale)
    fig = go.Figure(
        go.Scatter(
            x=list(labels),
            y=ys,
            mode="lines+markers",
            name="measured",
            marker={"size": 9, "symbol": "circle"},
            line={"width": 2},
            error_y=error,
        )
    )
    fig.update_xaxes(title_text="period", type="category")
    return _finish(fig, title=title, axis=axis, objective=objective, scale=scale)


def compare(
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    title: str,
    axis: str,
    objective: float | None,
    lows: Sequence[float | None] | None = None,
    highs: Sequence[float | None] | None = None,
    scale: float = 1.0,
) -> go.Figure:
    """Baseline against epic period as bars with intervals and the objective line; the
    baseline bar is grey and hatched, so the two read apart without colour."""
    ys, error = _scaled(values, lows, highs, scale)
    baseline = len(ys) > 1
    fig = go.Figure(
        go.Bar(
            x=list(labels),
            y=ys,
            name="measured",
            error_y=error,
            marker={
                "color": ["#bababa"] * baseline + ["#4393c3"] * (len(ys) - baseline),
                "pattern": {"shape": ["/"] * baseline + [""] * (len(ys) - baseline)},
            },
            text=[None if y is None else f"{y:.3g}" for y in ys],
            textposition="outside",
        )
    )
    fig.update_xaxes(title_text="period")
    fig.update_yaxes(rangemode="tozero")
    return _finish(fig, title=title, axis=axis, objective=objective, scale=scale, height=340)


def availability(series: Sequence[dict[str, Any]], title: str) -> go.Figure:
    """Availability per series as horizontal bars, coverage beside it."""
    names = [", ".join(f"{k}={v}" for k, v in s["labels"].items()) or "(no labels)" for s in series]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            y=names,
            x=[None if s["availability"] is None else 100 * s["availability"] for s in series],
            orientation="h",
            name="availability (%)",
            marker={"color": "#1b7837"},
        )
    )
    fig.add_trace(
        go.Bar(
            y=names,
            x=[100 * s["coverage"] for s in series],
            orientation="h",
            name="coverage (%)",
            marker={"color": "#bababa", "pattern": {"shape": "/"}},
        )
    )
    fig.update_layout(title=title, barmode="group", **_LAYOUT)
    fig.update_xaxes(title_text="percent of the window (%)", range=[0, 100])
    fig.update_yaxes(title_text="series")
    return fig
