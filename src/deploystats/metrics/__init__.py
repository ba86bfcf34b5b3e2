"""Metrics: classification of deployment attempts and one SQL definition per metric."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from deploystats.config import Settings, Target
from deploystats.errors import ConfigError
from deploystats.metrics.attempts import prepare
from deploystats.metrics.core import group_metrics, wilson
from deploystats.metrics.recovery import prepare_recovery, recovery_metrics
from deploystats.metrics.windows import Window, WindowError, resolve_window

__all__ = [
    "GROUPINGS",
    "Window",
    "WindowError",
    "compute_metrics",
    "data_as_of",
    "prepare",
    "resolve_window",
    "select_targets",
    "wilson",
    "window_metrics",
]

# The end of the last successful sync of the scopes a target reads; for imported data, the
# newest updated_at among the runs of its repositories.
_DATA_AS_OF = """
WITH repos AS (SELECT DISTINCT repo FROM _scopes),
synced AS (
    SELECT min(s.cursor) AS as_of FROM sync_state s
    WHERE s.source = 'github' AND split_part(s.scope, ':', 1) IN (SELECT repo FROM repos)
),
imported AS (  -- import github --until
    SELECT min(s.cursor) AS as_of FROM sync_state s
    WHERE s.source = 'github-import' AND s.scope IN (SELECT repo FROM repos)
)
SELECT coalesce((SELECT as_of FROM synced), (SELECT as_of FROM imported),
                (SELECT max(updated_at) FROM workflow_runs WHERE repo IN (SELECT repo FROM repos)))
"""


def select_targets(settings: Settings, name: str | None) -> list[Target]:
    """The configured targets, or the one named; unknown names list the configured ones."""
    if not settings.targets:
        raise ConfigError(
            "no deployment targets configured: add targets to deploystats.yml "
            "(deploystats init writes an example)"
        )
    if name is None:
        return list(settings.targets)
    chosen = [t for t in settings.targets if t.name == name]
    if not chosen:
        names = ", ".join(t.name for t in settings.targets)
        raise ConfigError(f"unknown target {name!r}: configured targets are {names}")
    return chosen


def data_as_of(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """When the data of the prepared targets was last known complete (DESIGN §5)."""
    rows = con.execute(_DATA_AS_OF).fetchall()
    value = rows[0][0] if rows else None
    return value if isinstance(value, datetime) else None


GROUPINGS = ("target", "repo", "team", "service")


def _register_groups(
    con: duckdb.DuckDBPyConnection, targets: Sequence[Target], group_by: str | None
) -> list[str]:
    """_groups(target, repo, grp): where each target's attempts in each repo pool; with a
    grouping, everything also pools into `all`. Returns the group names in display order."""
    if group_by is not None and group_by not in GROUPINGS:
        raise ConfigError(f"--group-by {group_by!r}: use one of {', '.join(GROUPINGS)}")
    field = "name" if group_by in (None, "target", "repo") else group_by
    names = [t.name for t in targets]
    configured = [getattr(t, field) or "(none)" for t in targets]
    con.register("_group_of", pa.table({"target": names, "grp": configured}))
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _groups AS
        SELECT DISTINCT r.target, r.repo, CASE WHEN $by_repo THEN r.repo ELSE m.grp END AS grp
        FROM _target_repos r JOIN _group_of m USING (target)
        """,
        {"by_repo": group_by == "repo"},
    )
    con.unregister("_group_of")
    if group_by is None:
        return names
    if group_by == "repo":
        order = [
            r[0] for r in con.execute("SELECT DISTINCT grp FROM _groups ORDER BY 1").fetchall()
        ]
    else:  # configured groups are shown even without data
        order = list(dict.fromkeys(configured))
    con.execute("INSERT INTO _groups SELECT DISTINCT target, repo, 'all' FROM _groups")
    return [*order, "all"]


def compute_metrics(
    con: duckdb.DuckDBPyConnection,
    targets: Sequence[Target],
    window: Window,
    *,
    group_by: str | None = None,
) -> dict[str, Any]:
    """The JSON contract of `deploystats metrics` (DESIGN §9).

    `targets` is keyed by target, or by the `group_by` value (repo, team, service) with an
    `all` roll-up computed from the pooled attempts, not averaged rates.
    """
    prepare(con, targets)
    prepare_recovery(con)
    return window_metrics(con, targets, window, group_by=group_by)


def window_metrics(
    con: duckdb.DuckDBPyConnection,
    targets: Sequence[Target],
    window: Window,
    *,
    group_by: str | None = None,
) -> dict[str, Any]:
    """compute_metrics on a connection where prepare() and prepare_recovery() already ran."""
    as_of = data_as_of(con)
    cfr = max((t.cfr_window for t in targets), default=timedelta(0))
    header = {
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
        "timezone": window.timezone,
        "label": window.label,
        "data_as_of": as_of.isoformat() if as_of else None,
        "provisional": as_of is None or window.end > as_of - cfr,
        "stale": as_of is None or window.end > as_of,
    }
    groups = _register_groups(con, targets, group_by)
    results = group_metrics(con, groups, window, as_of)
    for name, extra in recovery_metrics(con, groups, window).items():
        results[name] |= extra
    return {"window": header, "targets": results}
