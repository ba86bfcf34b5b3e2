"""What every report shares: the rows it read, its evidence, header banners, coverage,
Prometheus numbers, the definitions appendix and writing the evidence file."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from deploystats.api import Deploystats
from deploystats.metrics.core import n_of
from deploystats.metrics.windows import Window, zone
from deploystats.reports import charts, display, fmt
from deploystats.reports.evidence import Evidence, definitions

PEOPLE = ("actor", "triggering_actor", "author", "committer", "email")


def week_label(day: datetime | date, like: Window) -> str:
    """The ISO week holding `day`, read in the window's time zone."""
    local = day.astimezone(zone(like.timezone)).date() if isinstance(day, datetime) else day
    year, week, _ = local.isocalendar()[:3]
    return f"{year}-W{week:02d}"


def window_from(spec: dict[str, Any], timezone: str) -> Window:
    return Window(
        datetime.fromisoformat(spec["start"]),
        datetime.fromisoformat(spec["end"]),
        spec.get("label", ""),
        timezone,
    )


class ReportBase:
    kind: ClassVar[str]

    def __init__(self, ds: Deploystats, window: Window, *, period: str, title: str) -> None:
        self.ds = ds
        self.window = window
        self.period = period
        self.title = title
        self.show_people = bool(ds.settings.reports.get("show_people", False))
        self.metrics: dict[str, Any] = {}
        self.attempts: dict[str, pd.DataFrame] = {}
        self.episodes: dict[str, pd.DataFrame] = {}
        self.rollbacks: dict[str, pd.DataFrame] = {}
        self._rowsets: dict[tuple[str, datetime, datetime], str] = {}
        self.evidence = Evidence(self.kind, period, title, {}, ds.settings)

    @property
    def stem(self) -> str:
        return f"{self.kind}-{self.period}"

    @property
    def info(self) -> dict[str, Any]:
        """The metrics window block (data_as_of, provisional, stale) of the main window."""
        return dict(self.metrics.get("window", {}))

    @property
    def prometheus(self) -> dict[str, Any]:
        return dict(self.metrics.get("prometheus") or {})

    # ---------------------------------------------------------------- reading
    def _read_window(self, window: Window) -> None:
        self.evidence.window = self.info
        for target in self.metrics["targets"]:
            self.attempt_rowset(target, window)
            self.episodes[target] = self.ds.episodes(target=target, window=window)
            self.rollbacks[target] = self.ds.rollbacks(target=target, window=window)
            if not self.episodes[target].empty:
                self.evidence.rows(
                    f"episodes:{target}:{window.label}",
                    self.episodes[target][
                        ["repo", "run_id", "run_attempt", "start_at", "end_at", "restore_s"]
                    ],
                    digest=self._rowset_digest(target, window),
                    kind="episodes",
                    window=window,
                    target=target,
                )
            if not self.rollbacks[target].empty:
                self.evidence.rows(
                    f"rollbacks:{target}:{window.label}",
                    self.rollbacks[target][
                        ["repo", "change_run_id", "change_run_attempt", "first_signal_at"]
                    ],
                    digest=self._rowset_digest(target, window),
                    kind="rollback_incidents",
                    window=window,
                    target=target,
                )

    def _rowset_digest(self, target: str, window: Window) -> str:
        rowset = self._rowsets[(target, window.start, window.end)]
        return str(self.evidence.rowsets[rowset]["digest"])

    def attempt_rowset(self, target: str, window: Window) -> str:
        """Read (once) the attempts of a target in a window; return their row-set id."""
        key = (target, window.start, window.end)
        if key not in self._rowsets:
            frame, digest = self.ds.attempt_rows(target, window, people=self.show_people)
            if window == self.window:
                self.attempts[target] = frame
            keys = frame[
                [
                    "repo",
                    "run_id",
                    "run_attempt",
                    "updated_at",
                    "outcome",
                    "counted",
                    "good",
                    "duration_s",
                    "timing_source",
                ]
            ]
            self._rowsets[key] = self.evidence.rows(
                f"attempts:{target}:{window.label or window.start.isoformat()}",
                keys,
                digest=digest,
                kind="attempts",
                window=window,
                target=target,
            )
        return self._rowsets[key]

    def _record_target(
        self,
        target: str,
        values: dict[str, Any],
        window: Window,
        *,
        prefix: str = "",
        shown: tuple[str, ...] | None = None,
    ) -> None:
        rows = self.attempt_rowset(target, window)
        for metric, value in values.items():
            if shown is not None and metric not in shown:
                continue
            if metric.endswith("_ci"):
                continue
            extra: dict[str, Any] = {}
            if metric == "success_rate":
                extra["ci"] = values.get("success_rate_ci")
            name = f"{prefix + '.' if prefix else ''}{target}.{metric}"
            self.evidence.number(
                name,
                metric=metric,
                value=value,
                n=n_of(metric, values),
                window=window,
                rows=rows,
                target=target,
                **extra,
            )

    def _slo_window(self, slo: dict[str, Any]) -> Window:
        return window_from(slo["window"], self.window.timezone)

    def _objective(self, target: str, metric: str) -> float | None:
        for spec in self.ds.settings.slos:
            if spec.get("target") == target and spec.get("metric") == metric:
                return float(spec["objective"])
        return None

    def figure(self, fig: Any) -> str:
        self.evidence.figures += 1
        return display.figure_html(fig)

    # ---------------------------------------------------------------- display
    def header(self) -> display.HTML:
        """plotly.js (once), title, window and the provisional/stale banners."""
        info = self.info
        parts = [display.plotly_js().data, f"<h1>{display.esc(self.title)}</h1>"]
        as_of = info.get("data_as_of")
        if info.get("stale"):
            parts.append(
                display.banner(
                    "stale",
                    f"STALE: the data ends at {as_of or 'nothing (no data)'}, before this "
                    f"window ends ({self.window.end.isoformat()}). Sync, then render again.",
                )
            )
        elif info.get("provisional"):
            parts.append(
                display.banner(
                    "provisional",
                    "PROVISIONAL: the window ended less than a cfr_window before the data "
                    "ends; rollbacks and recoveries may still change these numbers.",
                )
            )
        parts.append(
            display.note(
                f"Window {self.window.label}: {self.window.start.isoformat()} to "
                f"{self.window.end.isoformat()} (end excluded, {self.window.timezone}); "
                f"data as of {as_of or 'no data'}; generated "
                f"{datetime.now(UTC).replace(microsecond=0).isoformat()}."
            )
        )
        return display.raw("".join(parts))

    def incidents(self) -> display.HTML:
        parts = []
        for target in self.metrics["targets"]:
            episodes = self.episodes[target]
            if episodes.empty:
                parts.append(display.note(f"{target}: no failure episode in {self.window.label}."))
            else:
                rows = [
                    [
                        display.link(f"run {r.run_id} #{r.run_attempt}", r.html_url),
                        display.esc(r.start_at),
                        display.esc(r.end_at if pd.notna(r.end_at) else "open"),
                        display.esc(fmt.value("restore_s", r.restore_s)),
                    ]
                    for r in episodes.itertuples()
                ]
                cols = ["failed attempt", "started", "restored", "time to restore"]
                parts.append(
                    f"<h4>{display.esc(target)}: failure episodes</h4>"
                    + display.table(cols, rows, raw=cols)
                )
            rollbacks = self.rollbacks[target]
            if rollbacks.empty:
                parts.append(
                    display.note(f"{target}: no rollback incident in {self.window.label}.")
                )
            else:
                rows = []
                for r in rollbacks.itertuples():
                    urls = list(r.evidence_urls) if r.evidence_urls is not None else []
                    links = " ".join(
                        display.link(f"evidence {i + 1}", u) for i, u in enumerate(urls)
                    )
                    rows.append(
                        [
                            display.esc(f"run {r.change_run_id} #{r.change_run_attempt}"),
                            display.esc(r.first_signal_at),
                            display.esc(", ".join(r.kinds) if r.kinds is not None else ""),
                            links,
                        ]
                    )
                cols = ["change answered", "first signal", "signal kinds", "evidence"]
                parts.append(
                    f"<h4>{display.esc(target)}: rollback incidents</h4>"
                    + display.table(cols, rows, raw=cols)
                )
        return display.raw("".join(parts))

    def coverage(self) -> display.HTML:
        """Which data the numbers stand on: attempts read, latest syncs and imports."""
        rows = []
        for target, frame in self.attempts.items():
            by_class = frame["outcome"].value_counts().to_dict() if not frame.empty else {}
            rows.append(
                [
                    target,
                    len(frame),
                    ", ".join(f"{k} {v}" for k, v in sorted(by_class.items())) or "-",
                ]
            )
        parts = [
            display.table(
                ["target", "attempts read", "by outcome class"], rows, numeric=["attempts read"]
            )
        ]
        history = self.ds.ingest_history()
        if history.empty:
            parts.append(display.note("No sync or import recorded in this database."))
        else:
            cols = ["source", "scope", "finished_at", "rows", "outcome"]
            parts.append(
                "<h4>Latest syncs and imports</h4>"
                + display.table(
                    cols, history[cols].astype(str).itertuples(index=False), numeric=["rows"]
                )
            )
        return display.raw("".join(parts))

    def _record_prometheus(self) -> None:
        for query, values in self.prometheus.items():
            if "series" in values:
                for s in values["series"]:
                    labels = ",".join(f"{k}={v}" for k, v in sorted(s["labels"].items()))
                    for metric in ("availability", "coverage", "samples"):
                        self.evidence.number(
                            f"prometheus.{query}.{{{labels}}}.{metric}",
                            metric=metric,
                            value=s[metric],
                            n=s["samples"],
                            window=self.window,
                            series={"query": query, "labels": s["labels"]},
                        )
            else:
                for metric, value in values.items():
                    self.evidence.number(
                        f"prometheus.{query}.{metric}",
                        metric=metric,
                        value=value,
                        window=self.window,
                        series={"query": query},
                    )

    def prometheus_html(self) -> str:
        if not self.prometheus:
            return display.note(
                "No Prometheus queries configured: runner availability and "
                "alert incidents not shown."
            )
        parts = []
        for query, values in self.prometheus.items():
            if "series" in values:
                if values["series"]:
                    parts.append(
                        self.figure(
                            charts.availability(
                                values["series"],
                                f"{query}: availability and coverage {self.window.label}",
                            )
                        )
                    )
                else:
                    parts.append(display.note(f"{query}: no samples in {self.window.label}."))
            else:
                rows = [[k, fmt.value(k, v)] for k, v in values.items()]
                parts.append(
                    f"<h4>{display.esc(query)}</h4>"
                    + display.table(["metric", "value"], rows, numeric=["value"])
                )
        return "".join(parts)

    def appendix(self) -> display.HTML:
        """Every metric shown, defined in the words of docs/metrics.md."""
        shown = sorted({n["metric"] for n in self.evidence.numbers})
        words = definitions()
        rows = [[m, words.get(m, "")] for m in shown]
        return display.raw(display.table(["metric", "definition"], rows))

    def provenance(self) -> display.HTML:
        from deploystats.reports.evidence import config_digest, sql_digest, versions

        rows = [
            ["database", str(self.ds.db)],
            ["config digest", config_digest(self.ds.settings)],
            ["metric SQL digest", sql_digest()],
            *([k, v] for k, v in versions().items() if k != "python_executable"),
        ]
        return display.raw(
            display.table(["item", "value"], rows)
            + display.note(
                "The evidence file (.json) lists every number with the "
                "row keys behind it and a SHA-256 of those rows."
            )
        )

    # ---------------------------------------------------------------- writing
    def save(self, output: str | os.PathLike[str] | None) -> list[str]:
        """Write the evidence JSON (and Parquet sidecars) into `output`; '' writes nothing."""
        if not output:
            return []
        folder = Path(output)
        now = datetime.now(UTC).replace(microsecond=0)
        written = []
        for name, frame in self.evidence.sidecars(self.stem).items():
            _atomic(folder / name, lambda p, f=frame: f.to_parquet(p, index=False))
            written.append(name)
        document = self.evidence.to_dict(self.stem, [], now)
        text = json.dumps(document, indent=1, default=str, allow_nan=False)
        _atomic(folder / f"{self.stem}.json", lambda p: Path(p).write_text(text, "utf-8"))
        written.append(f"{self.stem}.json")
        return written


def _atomic(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
