"""The Python API for notebooks and scripts: `ds = deploystats.open(db, config=...)`.

A Deploystats object holds paths, never a connection: every call opens the DuckDB file
read-only and closes it, so a notebook kernel never blocks a sync. The one exception is a
stale classification cache (metrics/cache.py): the call rebuilds it with the file opened for
writing when no other process has it open, and classifies in memory otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from deploystats.config import Settings, Target, db_path, load_settings
from deploystats.metrics import data_as_of, resolve_window, select_targets, window_metrics
from deploystats.metrics.cache import open_classified
from deploystats.metrics.explain import explain_rows
from deploystats.metrics.prometheus import detection, prometheus_as_of, prometheus_metrics
from deploystats.metrics.slo import evaluate_slos
from deploystats.metrics.windows import Window
from deploystats.store import connect

if TYPE_CHECKING:
    import pandas as pd


class Deploystats:
    """Metrics of one database under one configuration."""

    def __init__(
        self, db: Path | str | None = None, *, config: Path | str | Settings | None = None
    ):
        self.db = db_path(Path(db) if db is not None else None)
        if isinstance(config, Settings):
            self.settings = config
        else:
            self.settings = load_settings(Path(config) if config is not None else None)

    def window(
        self,
        *,
        week: str | None = None,
        month: str | None = None,
        since: str | None = None,
        until: str | None = None,
        now: datetime | None = None,
    ) -> Window:
        """A window in the configured timezone; default the last complete ISO week."""
        return resolve_window(
            week=week,
            month_text=month,
            since=since,
            until=until,
            tz_name=self.settings.timezone,
            now=now or datetime.now(UTC),
        )

    @contextmanager
    def _read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        lock = self.settings.store.lock_timeout.total_seconds()
        con = connect(self.db, read_only=True, lock_timeout_s=lock)
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def _classified(self, chosen: list[Target]) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection with `chosen` classified: from the cache in the file when it is valid
        (rebuilt when the file is free to write), else classified in memory."""
        lock = self.settings.store.lock_timeout.total_seconds()
        with open_classified(self.db, self.settings.targets, chosen, lock_timeout_s=lock) as con:
            yield con

    def metrics(
        self,
        *,
        target: str | None = None,
        group_by: str | None = None,
        window: Window | None = None,
        **when: Any,
    ) -> dict[str, Any]:
        """The JSON contract of `deploystats metrics` as a dict (window: see `window()`)."""
        span = window or self.window(**when)
        prom = self.settings.prometheus
        chosen = select_targets(self.settings, target) if self.settings.targets or not prom else []
        with self._classified(chosen) as con:
            result = window_metrics(con, chosen, span, group_by=group_by)
            if prom is not None and prom.queries:
                result["prometheus"] = prometheus_metrics(con, prom, span)
                _freshness(result["window"], prometheus_as_of(con, list(prom.queries)), chosen)
                for detected in chosen if group_by in (None, "target") else []:
                    if detected.alerts_query:
                        values = detection(con, detected, span, prom)
                        result["targets"][detected.name] |= values
        return result

    def slos(self, *, window: Window | None = None, **when: Any) -> dict[str, Any]:
        """Every configured SLO for the requested period (DESIGN §6)."""
        period = window or self.window(**when)
        targets = list(self.settings.targets)
        with self._classified(targets) as con:
            results = evaluate_slos(
                con, self.settings, period, lambda chosen, span: window_metrics(con, chosen, span)
            )
            as_of = data_as_of(con)
        return {
            "period": {
                "start": period.start.isoformat(),
                "end": period.end.isoformat(),
                "label": period.label,
                "timezone": period.timezone,
                "data_as_of": as_of.isoformat() if as_of else None,
            },
            "slos": results,
        }

    def explain(
        self, metric: str, *, target: str | None = None, window: Window | None = None, **when: Any
    ) -> pd.DataFrame:
        """The rows behind one metric of one target (default: the only or first target)."""
        chosen = select_targets(self.settings, target)[:1]
        span = window or self.window(**when)
        with self._classified(chosen) as con:
            return explain_rows(con, metric, chosen[0].name, span)

    def rollbacks(
        self, *, target: str | None = None, window: Window | None = None, **when: Any
    ) -> pd.DataFrame:
        """Rollback incidents whose first signal falls in the window, with evidence URLs."""
        return self.explain("rollback_incidents", target=target, window=window, **when)

    def episodes(
        self, *, target: str | None = None, window: Window | None = None, **when: Any
    ) -> pd.DataFrame:
        """Failure episodes ending in the window or open at its end."""
        return self.explain("episodes", target=target, window=window, **when)

    def attempts(
        self, *, target: str | None = None, window: Window | None = None, **when: Any
    ) -> pd.DataFrame:
        """Deployment attempts of the window with their outcome class, timing and runner role."""
        chosen = select_targets(self.settings, target)
        span = window or self.window(**when)
        with self._classified(chosen) as con:
            return con.execute(
                """
                SELECT target, repo, run_id, run_attempt, outcome, counted, started_at,
                       completed_at, duration_s, timing_source, failure_at, queue_s, pending_s,
                       on_secondary, deployed_sha, conclusion, event, head_branch,
                       excluded_reason, html_url
                FROM deployment_attempts
                WHERE started_at >= $start AND started_at < $end
                ORDER BY started_at, repo, run_id, run_attempt
                """,
                {"start": span.start, "end": span.end},
            ).df()

    def attempt_rows(
        self, target: str, window: Window, *, people: bool = False
    ) -> tuple[pd.DataFrame, str]:
        """The attempts of a target started in the window (the rows behind its numbers), and the
        SHA-256 over `repo/run_id/run_attempt@updated_at` lines in key order, computed in SQL.

        `people` adds the run's actor (reports leave it out unless reports.show_people).
        """
        actor = ", w.actor" if people else ""
        where = "a.target = $target AND a.started_at >= $start AND a.started_at < $end"
        params = {"target": target, "start": window.start, "end": window.end}
        stamp = "coalesce(strftime(a.updated_at, '%Y-%m-%dT%H:%M:%S.%fZ'), '')"
        with self._classified(select_targets(self.settings, target)) as con:
            frame = con.execute(
                f"""
                SELECT a.repo, a.run_id, a.run_attempt, {stamp} AS updated_at, a.outcome,
                       a.counted, a.good, a.started_at, a.completed_at, a.duration_s,
                       a.timing_source, a.queue_s, a.on_secondary, a.excluded_reason,
                       a.html_url{actor}
                FROM deployment_attempts a
                LEFT JOIN workflow_runs w USING (repo, run_id, run_attempt)
                WHERE {where}
                ORDER BY a.repo, a.run_id, a.run_attempt
                """,
                params,
            ).df()
            digest = con.execute(
                f"""
                SELECT sha256(coalesce(string_agg(
                    a.repo || '/' || a.run_id || '/' || a.run_attempt || '@' || {stamp},
                    chr(10) ORDER BY a.repo, a.run_id, a.run_attempt), ''))
                FROM deployment_attempts a WHERE {where}
                """,
                params,
            ).fetchall()[0][0]
        return frame, str(digest)

    def ingest_history(self, limit: int = 20) -> pd.DataFrame:
        """The latest syncs and imports (data coverage): source, scope, when, rows, outcome."""
        with self._read() as con:
            return con.execute(
                """
                SELECT source, scope, started_at, finished_at, requests, rows, outcome
                FROM ingest_log ORDER BY finished_at DESC NULLS LAST, ingest_id DESC LIMIT $n
                """,
                {"n": limit},
            ).df()


def _freshness(header: dict[str, Any], prom_as_of: datetime | None, targets: list[Any]) -> None:
    """data_as_of is the minimum over every scope read, Prometheus queries included (DESIGN
    §5): a Prometheus sync that lags makes the window provisional or stale too. The GitHub
    metrics themselves (deploy frequency, run success rate) keep the GitHub data's as-of."""
    github = header["data_as_of"]
    as_of = prom_as_of if github is None else datetime.fromisoformat(github)
    if prom_as_of is not None and as_of is not None:
        as_of = min(as_of, prom_as_of)
    if as_of is None:
        return
    end = datetime.fromisoformat(header["end"])
    cfr = max((t.cfr_window for t in targets), default=timedelta(0))
    header |= {
        "data_as_of": as_of.isoformat(),
        "provisional": end > as_of - cfr,
        "stale": end > as_of,
    }


def open(
    db: Path | str | None = None, *, config: Path | str | Settings | None = None
) -> Deploystats:
    """Deploystats over a DuckDB file (default data/deploystats.duckdb) and a config file."""
    return Deploystats(db, config=config)
