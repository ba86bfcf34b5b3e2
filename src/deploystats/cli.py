"""The `deploystats` command: parses arguments, calls the library, renders results.

The one place where a DeploystatsError becomes a one-line message and exit code 1.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from deploystats import __version__
from deploystats.config import Settings, config_path, db_path, load_settings, parse_duration
from deploystats.errors import ConfigError, DeploystatsError

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


class Context:
    """Global options, resolved once."""

    def __init__(self, db: Path | None, config: Path | None) -> None:
        self.db = db_path(db)
        self.config = config_path(config)
        self._settings: Settings | None = None

    def settings(self, *, required: bool = False) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config, required=required)
        return self._settings

    def store(self) -> Any:
        from deploystats.store import Store

        lock = self.settings().store.lock_timeout.total_seconds()
        return Store(self.db, lock_timeout_s=lock)


def _parse_when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(value), datetime.min.time())
        except ValueError:
            raise click.BadParameter(
                f"{value!r}: use an ISO date or datetime, e.g. 2026-11-01 or 2026-11-01T12:00:00Z",
                param_hint=option,
            ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Example: deploystats demo   (sample data -> data/deploystats.duckdb, offline)",
)
@click.option(
    "--db",
    type=click.Path(path_type=Path),
    help="DuckDB file [DEPLOYSTATS_DB; data/deploystats.duckdb]",
)
@click.option(
    "--config",
    type=click.Path(path_type=Path),
    help="config file [DEPLOYSTATS_CONFIG; deploystats.yml]",
)
@click.version_option(__version__, "--version", prog_name="deploystats")
@click.pass_context
def cli(ctx: click.Context, db: Path | None, config: Path | None) -> None:
    """Deployment analytics and SLO reporting from GitHub Actions and Prometheus."""
    ctx.obj = Context(db, config)


@cli.command(epilog="Example: deploystats init && $EDITOR deploystats.yml")
@click.option("--force", is_flag=True, help="overwrite an existing file")
@click.pass_obj
def init(obj: Context, force: bool) -> None:
    """Write a commented starter deploystats.yml."""
    if obj.config.exists() and not force:
        raise ConfigError(f"{obj.config} exists: edit it, or pass --force to overwrite it")
    text = resources.files("deploystats").joinpath("starter.yml").read_text(encoding="utf-8")
    obj.config.parent.mkdir(parents=True, exist_ok=True)
    obj.config.write_text(text, encoding="utf-8")
    out.print(f"wrote {obj.config}: set github.repos and targets, then `deploystats sync github`")


@cli.group("import")
def import_() -> None:
    """Import saved API responses (files) into the database."""


@import_.command(
    "github",
    epilog="Example: gh api --paginate repos/acme/platform/actions/runs > runs.json && "
    "deploystats import github runs.json",
)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--repo", help="OWNER/NAME for objects that do not name their repository")
@click.option(
    "--until",
    help="when the dump was taken (ISO datetime): its repositories' runs are complete until "
    "then; default: the newest run",
)
@click.pass_obj
def import_github(obj: Context, files: Sequence[Path], repo: str | None, until: str | None) -> None:
    """Import saved GitHub API JSON: runs, attempts, jobs, deployments (kind detected).

    Accepts API pages, pages one after another (gh api --paginate), lists, single objects,
    JSON Lines, and any of them gzip-compressed. Importing twice changes nothing.
    """
    from deploystats.ingest import import_dumps

    result = import_dumps(
        obj.store(),
        files,
        repo=repo,
        until=_parse_when(until, "--until"),
        on_progress=err.print,
    )
    parts = ", ".join(
        f"{n:,} {kind.replace('_', ' ')}" for kind, n in sorted(result.objects.items())
    )
    out.print(f"imported {result.files} files into {obj.db}: {parts or 'nothing'}")
    _refresh_classification(obj)


@import_.command(
    "prometheus",
    epilog="Example: curl -s 'http://prom:9090/api/v1/query_range?query=up&start=...&"
    "end=2026-11-27T10:00:00Z&step=60' > up.json && deploystats import prometheus up.json "
    "--query runner_up --step 60s --until 2026-11-27T10:00:00Z",
)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--query", required=True, help="the name the samples are stored under (prometheus.queries)"
)
@click.option("--step", help="the sampling step of query_range output, e.g. 60s (coverage)")
@click.option(
    "--until",
    help="the end the responses were fetched with (ISO datetime): the query's data is "
    "complete until then; default: its newest sample",
)
@click.pass_obj
def import_prometheus_cmd(
    obj: Context, files: Sequence[Path], query: str, step: str | None, until: str | None
) -> None:
    """Import saved Prometheus query responses (matrix results; full response or result list)."""
    from deploystats.prom import import_prometheus

    step_s = None
    if step is not None:
        try:
            step_s = parse_duration(step).total_seconds()
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--step") from None
    result = import_prometheus(
        obj.store(), files, query=query, step_s=step_s, until=_parse_when(until, "--until")
    )
    for warning in result.warnings:
        err.print(f"warning: Prometheus returned partial data: {warning}", markup=False)
    out.print(
        f"imported {len(files)} files into {obj.db} as {query}: {result.series:,} series, "
        f"{result.samples:,} samples read"
    )


@cli.group()
def sync() -> None:
    """Fetch new data from the configured sources."""


@sync.command(
    "github",
    epilog="Example: deploystats sync github --since 2026-09-01 --max-requests 2000",
)
@click.option("--repo", help="only this OWNER/NAME")
@click.option("--since", help="start of the first window (ISO date); default: cursor - rescan_days")
@click.option(
    "--full", is_flag=True, help="ignore cursors and ETags; re-list from --since or backfill_days"
)
@click.option(
    "--all-workflows", is_flag=True, help="every run of the repos, not only target workflows"
)
@click.option("--max-requests", type=click.IntRange(min=1), help="stop cleanly after N requests")
@click.option(
    "--max-wait", default="15m", show_default=True, help="longest rate-limit wait before stopping"
)
@click.pass_obj
def sync_github_cmd(
    obj: Context,
    repo: str | None,
    since: str | None,
    full: bool,
    all_workflows: bool,
    max_requests: int | None,
    max_wait: str,
) -> None:
    """Sync workflow runs, attempts, jobs and deployments from the GitHub API."""
    from deploystats.sync import sync_github

    settings = obj.settings(required=True)
    try:
        wait = parse_duration(max_wait)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--max-wait") from None
    client = make_github_client(settings, max_requests=max_requests, max_wait=wait)
    with (
        client,
        Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=err,
            disable=not err.is_terminal,  # a log file gets the summary line only
        ) as progress,
    ):
        task = progress.add_task("sync github", total=None)

        def show(result: Any, where: str) -> None:
            progress.update(
                task,
                description=(
                    f"{where}  runs {result.runs:,}  attempts {result.attempts:,}  "
                    f"jobs {result.jobs:,}  requests {result.requests:,}  "
                    f"rate left {_or_unknown(result.rate_remaining)}"
                ),
            )

        result = sync_github(
            obj.store(),
            settings,
            client,
            repo=repo,
            since=_parse_when(since, "--since"),
            full=full,
            all_workflows=all_workflows,
            on_progress=show,
        )
    out.print(
        f"synced {len(result.scopes)} scopes: {result.runs:,} changed runs, {result.attempts:,} "
        f"attempts, {result.jobs:,} jobs, {result.deployments:,} deployments; "
        f"{result.requests:,} requests ({result.not_modified:,} not modified), "
        f"rate limit left {_or_unknown(result.rate_remaining)}"
    )
    _refresh_classification(obj)


@sync.command(
    "prometheus",
    epilog="Example: deploystats sync prometheus --since 2026-11-01",
)
@click.option("--since", help="start (ISO date or datetime); default: each query's cursor")
@click.option("--until", help="end, exclusive (default: a minute ago)")
@click.pass_obj
def sync_prometheus_cmd(obj: Context, since: str | None, until: str | None) -> None:
    """Sync the configured Prometheus queries (raw samples or query_range), chunk by chunk."""
    from deploystats.prom import sync_prometheus

    settings = obj.settings(required=True)
    with make_prometheus_client(settings) as client:
        result = sync_prometheus(
            obj.store(),
            settings,
            client,
            since=_parse_when(since, "--since"),
            until=_parse_when(until, "--until"),
        )
    for warning in result.warnings:
        err.print(f"warning: Prometheus returned partial data: {warning}", markup=False)
    out.print(
        f"synced {result.queries} Prometheus queries: {result.series:,} series, "
        f"{result.samples:,} samples in {result.chunks:,} chunks, {result.requests:,} requests"
    )


def _refresh_classification(obj: Context) -> None:
    """After new GitHub data: classify the configured targets once, stored in the file, so
    the next metrics call, report or notebook does not pay for it (metrics/cache.py)."""
    import time

    from deploystats.metrics.cache import refresh

    settings = obj.settings()
    started = time.monotonic()
    lock = settings.store.lock_timeout.total_seconds()
    if refresh(obj.db, settings.targets, lock_timeout_s=lock):
        took = time.monotonic() - started
        out.print(f"classified {len(settings.targets)} targets for metrics ({took:.1f} s)")


def make_prometheus_client(settings: Settings) -> Any:
    """A PrometheusClient from the config; credentials from the variables it names."""
    from deploystats.sources.prometheus import PromAuth, PrometheusClient

    prom = settings.prometheus
    if prom is None:
        raise ConfigError("no Prometheus configured: add prometheus.url and prometheus.queries")
    auth = None
    if prom.auth is not None:
        token = prom.auth.bearer_token_env
        basic = prom.auth.basic
        auth = PromAuth(
            bearer_token=settings.prometheus_secret(token) if token else None,
            username=basic.username if basic else None,
            password=settings.prometheus_secret(basic.password_env) if basic else None,
        )
    return PrometheusClient(
        url=prom.url,
        auth=auth,
        ca_file=str(prom.ca_file) if prom.ca_file else None,
        insecure_skip_verify=prom.insecure_skip_verify,
        headers=prom.headers,
        on_event=_show_wait,
    )


def _or_unknown(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def _show_wait(event: Any) -> None:
    if event.kind == "wait":
        err.print(f"waiting {event.seconds:.0f}s: {event.reason}", markup=False)


def make_github_client(settings: Settings, *, max_requests: int | None, max_wait: timedelta) -> Any:
    """A GitHubClient from the config: token from the environment, or a GitHub App."""
    from deploystats.sources.github import AppAuth, GitHubClient

    gh = settings.github
    app = None
    token = None
    if gh.app is not None:
        try:
            key = gh.app.private_key_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"cannot read github.app.private_key_file {gh.app.private_key_file}: {exc.strerror}"
            ) from None
        app = AppAuth(app_id=gh.app.app_id, private_key=key, installation_id=gh.app.installation_id)
    else:
        token = settings.github_token()
        if token is None:
            raise ConfigError(
                f"GitHub token missing: set {gh.token_env} (or the variable github.token_env "
                "names) or configure github.app"
            )
    return GitHubClient(
        base_url=gh.base_url,
        api_version=gh.api_version,
        token=token,
        app=app,
        max_requests=max_requests,
        max_wait_s=max_wait.total_seconds(),
        on_event=_show_wait,
    )


def window_options(command: Any) -> Any:
    """--week / --month / --since --until (default: the last complete ISO week), passed on as
    keyword arguments of Deploystats.window()."""
    for option in reversed(
        [
            click.option("--week", help="ISO week, e.g. 2026-W47"),
            click.option("--month", help="calendar month, e.g. 2026-11"),
            click.option("--since", help="start (ISO date or datetime, inclusive)"),
            click.option("--until", help="end (ISO date or datetime, exclusive)"),
        ]
    ):
        command = option(command)
    return command


@cli.command(epilog="Example: deploystats metrics --week 2026-W47 --format json")
@click.option("--target", help="one configured target (default: all)")
@click.option(
    "--group-by",
    type=click.Choice(["target", "repo", "team", "service"]),
    help="group the targets (adds an `all` roll-up of the pooled attempts)",
)
@window_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
@click.pass_obj
def metrics(
    obj: Context, /, target: str | None, group_by: str | None, fmt: str, **when: Any
) -> None:
    """Deployment metrics of a window (DESIGN §5 definitions; see docs/metrics.md)."""
    from deploystats.api import Deploystats

    ds = Deploystats(obj.db, config=obj.settings(required=True))
    result = ds.metrics(target=target, group_by=group_by, window=ds.window(**when))
    if fmt == "json":
        click.echo(json.dumps(result, indent=2))
    elif fmt == "csv":
        _print_csv(result)
    else:
        _print_table(result)


@cli.command(epilog="Example: deploystats slo --week 2026-W47")
@window_options
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.pass_obj
def slo(obj: Context, /, fmt: str, **when: Any) -> None:
    """Every configured SLO: SLI, error budget, burn rate and status (DESIGN §6)."""
    from deploystats.api import Deploystats

    ds = Deploystats(obj.db, config=obj.settings(required=True))
    result = ds.slos(window=ds.window(**when))
    if fmt == "json":
        click.echo(json.dumps(result, indent=2))
    else:
        _print_slos(result)


@cli.command(epilog="Example: deploystats explain rollback_incidents --week 2026-W47")
@click.argument("metric")
@click.option("--target", help="the target (default: the first configured)")
@window_options
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv"]), default="table", show_default=True
)
@click.pass_obj
def explain(obj: Context, /, metric: str, target: str | None, fmt: str, **when: Any) -> None:
    """The rows behind a metric, with their GitHub URLs."""
    from deploystats.api import Deploystats

    ds = Deploystats(obj.db, config=obj.settings(required=True))
    frame = ds.explain(metric, target=target, window=ds.window(**when))
    if fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
        return
    from rich import box
    from rich.table import Table

    table = Table(title=f"{metric}: {len(frame)} rows", box=box.SIMPLE)
    for column in frame.columns:
        table.add_column(str(column), overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*("-" if value is None else str(value) for value in row))
    out.print(table)


def _print_slos(result: dict[str, Any]) -> None:
    from rich import box
    from rich.table import Table

    period = result["period"]
    table = Table(
        title=f"SLOs for {period['label']} (data as of {period['data_as_of'] or 'never'})",
        box=box.ROUNDED,
    )
    for column in (
        "slo",
        "target",
        "window",
        "SLI",
        "objective",
        "n",
        "budget left",
        "burn",
        "status",
    ):
        table.add_column(
            column, justify="left" if column in ("slo", "target", "status") else "right"
        )
    for item in result["slos"]:
        metric = item["metric"]
        table.add_row(
            item["name"],
            str(item["target"]) + _labels_text(item.get("labels")),
            item["window"]["label"],
            _cell(metric, item.get("sli")),
            f"{item['op']} {_cell(metric, item['objective'])}",
            _cell("n", item.get("n")),
            _cell("_share", item.get("budget_remaining")),
            _cell("x", item.get("burn_rate")),
            item["status"].replace("_", " "),
        )
    out.print(table)


def _labels_text(labels: dict[str, str] | None) -> str:
    """{k="v",...} as PromQL writes it, without __name__; empty without labels."""
    shown = {k: v for k, v in (labels or {}).items() if k != "__name__"}
    return "{" + ",".join(f'{k}="{v}"' for k, v in shown.items()) + "}" if shown else ""


def _print_csv(result: dict[str, Any]) -> None:
    rows = []
    for name, values in result["targets"].items():
        flat = {"target": name, **result["window"]}
        for key, value in values.items():
            if isinstance(value, list):
                flat[f"{key}_low"], flat[f"{key}_high"] = value
            else:
                flat[key] = value
        rows.append(flat)
    writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["target"])
    writer.writeheader()
    writer.writerows(rows)


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return "[" + ", ".join(_cell(key, v) for v in value) + "]"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if key.endswith(("_rate", "_share", "_ci", "availability")):
            return f"{value:.1%}"
        return f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _print_table(result: dict[str, Any]) -> None:
    from rich import box
    from rich.table import Table

    window = result["window"]
    flags = [flag for flag in ("provisional", "stale") if window[flag]]
    title = (
        f"{window['label']}: {window['start']} .. {window['end']} ({window['timezone']}); "
        f"data as of {window['data_as_of'] or 'never'}"
        + (f"  [{', '.join(flags).upper()}]" if flags else "")
    )
    table = Table(title=title, box=box.ROUNDED)
    table.add_column("metric")
    names = list(result["targets"])
    for name in names:
        table.add_column(name, justify="right")
    keys = list(next(iter(result["targets"].values()), {}))
    for key in keys:
        table.add_row(key, *(_cell(key, result["targets"][n][key]) for n in names))
    out.print(table)
    if result.get("prometheus"):
        _print_prometheus(result["prometheus"])


def _print_prometheus(section: dict[str, Any]) -> None:
    """One row per availability series and per alerts query."""
    from rich import box
    from rich.table import Table

    table = Table(title="Prometheus", box=box.ROUNDED)
    for column in ("query", "series", "availability", "coverage", "samples", "incidents", "mttr"):
        table.add_column(column, justify="left" if column in ("query", "series") else "right")
    for name, values in section.items():
        for one in values.get("series", []):
            table.add_row(
                name,
                _labels_text(one["labels"]) or "-",
                _cell("availability", one["availability"]),
                _cell("_share", one["coverage"]),
                _cell("n", one["samples"]),
                "",
                "",
            )
        if "alert_incidents" in values:
            incidents, mttr = values["alert_incidents"], values["alert_mttr_s"]
            table.add_row(name, "-", "", "", "", _cell("n", incidents), _cell("_s", mttr))
    out.print(table)


@cli.command(epilog="Example: deploystats --db /tmp/demo.duckdb demo --seed 3")
@click.option("--seed", default=7, show_default=True, help="simulator seed")
@click.option(
    "--data",
    "data_dir",
    default=Path("data/sample"),
    show_default=True,
    type=click.Path(path_type=Path),
    help="where the sample dumps are written",
)
@click.option(
    "--out",
    "reports_dir",
    type=click.Path(path_type=Path),
    default=Path("reports"),
    show_default=True,
    help="where the weekly and epic-closure reports are rendered",
)
@click.option("--no-reports", is_flag=True, help="skip rendering the reports")
@click.pass_obj
def demo(obj: Context, seed: int, data_dir: Path, reports_dir: Path, no_reports: bool) -> None:
    """Simulated history -> dumps -> database -> metrics, SLOs and reports; offline, no token.

    The history ends at the current hour, so the last complete ISO week is fully covered; a
    previous demo's rows (repository acme/platform) are replaced, never mixed.
    """
    from deploystats.api import Deploystats
    from deploystats.demo import load_demo

    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    loaded = load_demo(obj.store(), data_dir, seed=seed, end=end)
    sim, config, config_file = loaded.sim, loaded.config, loaded.config_file
    out.print(
        f"demo: simulated {len(sim.ledger):,} attempts (seed {seed}, story until "
        f"{loaded.story_end.isoformat()}, until {end.isoformat()}) "
        f"into {data_dir}; loaded {loaded.objects:,} objects and {loaded.samples:,} "
        f"Prometheus samples into {obj.db}"
    )
    ds = Deploystats(obj.db, config=Settings.model_validate(config))
    week = ds.window(now=end)
    _print_table(ds.metrics(window=week))
    _print_slos(ds.slos(window=week))
    if not no_reports:
        import yaml

        from deploystats.reports import render
        from deploystats.simulate import demo_epic

        epic_file = data_dir / "INFRA-472.yml"
        epic = demo_epic(sim, until=week.end)
        epic_file.write_text(yaml.safe_dump(epic, sort_keys=False), encoding="utf-8")
        common = {"db": str(obj.db.resolve()), "config": str(config_file.resolve())}
        for kind, period, extra in (
            ("weekly-slo", week.label, {"week": week.label}),
            ("epic-closure", str(epic["key"]), {"epic": str(epic_file.resolve())}),
        ):
            done = render(kind, period, common | extra, out=reports_dir, force=True)
            out.print(f"report: {done.html} ({done.seconds:.1f} s)")
    out.print(f"next: deploystats --db {obj.db} --config {config_file} explain success_rate")


@cli.group()
def report() -> None:
    """Render reports: notebooks -> HTML, Markdown, JIRA markup and JSON evidence."""


def _report_options(command: Any) -> Any:
    command = click.option(
        "--out",
        type=click.Path(path_type=Path),
        default=Path("reports"),
        show_default=True,
        help="reports folder; the report goes to OUT/<kind>/<period>/",
    )(command)
    command = click.option(
        "--deliver",
        "deliver_to",
        metavar="SPECS",
        help="then deliver it: slack, email, jira:ISSUE-KEY, comma-separated "
        "(jira also comments the success-criteria table once)",
    )(command)
    return click.option(
        "--force", is_flag=True, help="replace an existing report of the same period"
    )(command)


def _delivery_specs(deliver_to: str | None) -> list[str]:
    """Checked before rendering, so a typo fails before minutes of work."""
    if deliver_to is None:
        return []
    from deploystats.deliver import parse_specs

    return parse_specs(deliver_to)


def _rendered(result: Any, obj: Context, specs: Sequence[str] = ()) -> None:
    evidence = json.loads(result.evidence.read_text(encoding="utf-8"))
    window = evidence["window"]
    out.print(f"report: {result.html} ({result.seconds:.1f} s)")
    out.print(f"  evidence: {result.evidence}; also .md, .jira.txt, .ipynb in {result.folder}")
    if window.get("stale"):
        err.print(
            f"warning: {evidence['report']['title']} is STALE: the data ends at "
            f"{window.get('data_as_of') or 'nothing'}, before the window ends "
            f"({window['end']}); sync and render again with --force",
            markup=False,
        )
    for spec in specs:
        _deliver(obj, result.folder, spec, jira_comment=spec.startswith("jira:"))


@report.command("weekly-slo", epilog="Example: deploystats report weekly-slo --week 2026-W47")
@click.option("--week", help="ISO week, e.g. 2026-W47 (default: the last complete ISO week)")
@_report_options
@click.pass_obj
def report_weekly(
    obj: Context, week: str | None, out: Path, force: bool, deliver_to: str | None
) -> None:
    """The weekly SLO report for one ISO week."""
    from deploystats.api import Deploystats
    from deploystats.reports import render

    settings = obj.settings(required=True)
    specs = _delivery_specs(deliver_to)
    label = Deploystats(obj.db, config=settings).window(week=week).label
    parameters = {"db": str(obj.db.resolve()), "config": str(obj.config.resolve()), "week": label}
    _rendered(render("weekly-slo", label, parameters, out=out, force=force), obj, specs)


@report.command(
    "epic-closure",
    epilog="Example: deploystats report epic-closure examples/epics/INFRA-472.yml",
)
@click.argument("epic_file", type=click.Path(path_type=Path))
@_report_options
@click.pass_obj
def report_epic(
    obj: Context, epic_file: Path, out: Path, force: bool, deliver_to: str | None
) -> None:
    """The closure evidence report of an epic file (success criteria, baseline, stories)."""
    from deploystats.reports import render
    from deploystats.reports.epic import load_epic

    obj.settings(required=True)
    specs = _delivery_specs(deliver_to)
    epic = load_epic(epic_file)  # a bad epic file is said before anything runs
    parameters = {
        "db": str(obj.db.resolve()),
        "config": str(obj.config.resolve()),
        "epic": str(epic_file.resolve()),
    }
    _rendered(render("epic-closure", epic.key, parameters, out=out, force=force), obj, specs)


# -- deliver: rendered report folders to JIRA, Slack and e-mail ----------------------------


@cli.group()
def deliver() -> None:
    """Deliver a rendered report folder (reports/<kind>/<period>/) to JIRA, Slack or e-mail.

    Credentials come from the variables the config's `delivery:` section names.
    """


def _deliver(obj: Context, report_dir: Path, spec: str, **options: Any) -> None:
    from deploystats.deliver import deliver_report

    lines = deliver_report(
        report_dir,
        spec,
        obj.settings(required=True),
        on_wait=lambda line: err.print(line, markup=False),
        **options,
    )
    for line in lines:
        out.print(line, markup=False)


@deliver.command(
    "jira", epilog="Example: deploystats deliver jira INFRA-472 reports/epic-closure/INFRA-472"
)
@click.argument("issue_key")
@click.argument("report_dir", type=click.Path(path_type=Path))
@click.option("--comment", is_flag=True, help="also comment with the success-criteria table (once)")
@click.pass_obj
def deliver_jira_cmd(obj: Context, issue_key: str, report_dir: Path, comment: bool) -> None:
    """Attach the report (HTML, evidence JSON, Markdown, Parquet sidecars) to a JIRA issue.

    A file already attached with the same content is skipped; a changed one is attached under a
    name carrying the report's generation time, never replacing earlier evidence.
    """
    _deliver(obj, report_dir, f"jira:{issue_key}", jira_comment=comment)


@deliver.command("slack", epilog="Example: deploystats deliver slack reports/weekly-slo/2026-W47")
@click.argument("report_dir", type=click.Path(path_type=Path))
@click.pass_obj
def deliver_slack_cmd(obj: Context, report_dir: Path) -> None:
    """Post the report's summary to the Slack incoming webhook (Block Kit)."""
    _deliver(obj, report_dir, "slack")


@deliver.command("email", epilog="Example: deploystats deliver email reports/weekly-slo/2026-W47")
@click.argument("report_dir", type=click.Path(path_type=Path))
@click.pass_obj
def deliver_email_cmd(obj: Context, report_dir: Path) -> None:
    """E-mail the report's summary (HTML) with the report attached, to delivery.email.to."""
    _deliver(obj, report_dir, "email")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: exit 0 ok, 1 a DeploystatsError (one line on stderr), 2 usage."""
    try:
        code = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="deploystats",
            standalone_mode=False,
        )
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        err.print("aborted")
        return 130
    except DeploystatsError as exc:
        err.print(f"deploystats: error: {exc}", markup=False, soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        err.print("interrupted: every committed batch is complete; run the command again to resume")
        return 130
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
