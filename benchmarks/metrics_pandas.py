"""DESIGN §5 metric definitions in vectorised pandas: the comparison for bench_metrics.py.

Reads the store tables into pandas (Arrow record batches -> `to_pandas()`: for job_steps
`.df()` alone takes 7 s and 4.4 GB at 11.7 million rows; the large tables are reduced to numbers
batch by batch) and computes everything in pandas/numpy: classification of deployment attempts
and their outcome, the per-window metrics, rollback signals and incidents, change failure rate,
failure episodes and lead time. Nothing is imported from deploystats; targets are the config
models being measured. Globs are matched once per distinct value with fnmatchcase (DuckDB's GLOB).
Timestamps are float64 microseconds since the epoch (exact below 2**53), NaN for NULL, so a
comparison with a missing time is false as in SQL.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

FAILED = ("failure", "timed_out", "startup_failure")
MIN_N = {0.5: 1, 0.9: 10, 0.95: 20, 0.99: 100}
Z95 = 1.959963984540054
OUTCOMES = {
    "success": "successes", "failure": "failures", "rolled_back": "rolled_back",
    "aborted": "aborted", "superseded": "superseded", "not_deployed": "not_deployed",
    "excluded": "excluded", "not_counted": "not_counted",
}  # fmt: skip
BATCH_ROWS = 1_000_000
US = 1_000_000.0
NO_ROLE, PRIMARY, SECONDARY = 0, 1, 2
KEEP = [  # the columns of classified attempts the metrics read
    "tc", "aid", "repo", "run_id", "run_attempt", "event", "conclusion", "head_commit_at",
    "created_at", "run_started_at", "updated_at", "started_at", "completed_at", "deployed_sha",
    "timed_by_jobs", "queue_s", "pending_s", "deploy_jobs", "roles_known", "on_secondary",
    "duration_s", "outcome", "counted", "good", "bad", "cfr_include_failed", "duration_counted",
    "duration_run_timing", "history_us",
]  # fmt: skip


def _match(value: Any, patterns: Iterable[str]) -> bool:
    return isinstance(value, str) and any(fnmatchcase(value, p) for p in patterns)


def _lookup(uniques: Iterable[Any], patterns: Iterable[str]) -> np.ndarray:
    """Per factorized value: does it match a pattern; one extra False for code -1 (NULL)."""
    patterns = list(patterns)
    return np.array([_match(u, patterns) for u in uniques] + [False], dtype=bool)


def _us(series: pd.Series) -> np.ndarray:
    values = series.to_numpy(dtype="datetime64[us]")
    out = values.view("int64").astype("float64")
    out[np.isnat(values)] = np.nan
    return out


class _Codes:
    """A dictionary of values -> int codes shared by batches (-1 = NULL)."""

    def __init__(self, values: Iterable[Any] = ()) -> None:
        self.index: dict[Any, int] = {}
        for value in values:
            self.index.setdefault(value, len(self.index))

    def encode(self, column: pd.Series) -> np.ndarray:
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
        remap = np.array([self.index.setdefault(u, len(self.index)) for u in uniques] + [-1])
        return remap[codes]

    @property
    def values(self) -> list[Any]:
        return list(self.index)


def _batches(con: duckdb.DuckDBPyConnection, sql: str) -> Iterator[pa.RecordBatch]:
    """Record batches of a query; one empty batch for an empty result (columns known)."""
    reader = con.sql(sql).to_arrow_reader(BATCH_ROWS)
    empty = True
    for batch in reader:
        empty = False
        yield batch
    if empty:
        yield pa.RecordBatch.from_pylist([], schema=reader.schema)


def _frame(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    return con.sql(sql).to_arrow_table().to_pandas()


def _runner_config(target: Any) -> tuple[Any, ...]:
    return tuple(
        (role, tuple(s.names), tuple(s.labels), tuple(s.groups))
        for role, s in sorted(target.runners.items())
    )


@dataclass
class Frames:
    runs: pd.DataFrame
    jobs: pd.DataFrame
    job_names: list[str]
    roles: np.ndarray  # (runner configs, jobs): NO_ROLE / PRIMARY / SECONDARY
    runner_configs: list[tuple[Any, ...]]
    steps_not_skipped: np.ndarray  # job keys with a step that is not skipped
    steps_rollback: dict[tuple[str, ...], np.ndarray]  # per rollback-pattern set: job keys
    statuses: pd.DataFrame  # repo, deployment_id, run_id, job_id (NaN: none in the URL)
    deployments: pd.DataFrame
    workflows: pd.DataFrame  # wf, repo (code), workflow_path, workflow_name
    sync_state: pd.DataFrame
    repos: list[str]


def _job_key(repo_code: np.ndarray, job_id: np.ndarray) -> np.ndarray:
    return job_id.astype("int64") * 100_000 + repo_code.astype("int64")


def load(con: duckdb.DuckDBPyConnection, targets: Sequence[Any]) -> Frames:
    """The tables; strings of the large ones as codes and flags, batch by batch."""
    runs = _frame(
        con,
        "SELECT repo, run_id, run_attempt, workflow_name, workflow_path, event, status, "
        "conclusion, head_branch, head_sha, head_commit_at, created_at, run_started_at, "
        "updated_at FROM workflow_runs",
    )
    # Strings as numbers: repo codes keep the names' order, shas are codes (NaN = NULL)
    # shared with deployments, workflows a code into a small table.
    repos = sorted(runs["repo"].dropna().unique())
    runs["repo"] = pd.Categorical(runs["repo"], categories=repos).codes.astype("int64")
    runs["repo_code"] = runs["repo"]
    for column in ("head_commit_at", "created_at", "run_started_at", "updated_at"):
        runs[column] = _us(runs[column])
    deployments = _frame(con, "SELECT repo, deployment_id, environment, sha FROM deployments")
    deployments["repo"] = pd.Categorical(deployments["repo"], categories=repos).codes.astype(
        "int64"
    )
    sha_codes = pd.factorize(pd.concat([runs["head_sha"], deployments["sha"]]))[0]
    sha_codes = np.where(sha_codes < 0, np.nan, sha_codes.astype("float64"))
    runs["head_sha"], deployments["sha"] = sha_codes[: len(runs)], sha_codes[len(runs) :]
    cols = ["repo", "workflow_path", "workflow_name"]
    groups = runs.groupby(cols, dropna=False, sort=False)
    runs["wf"] = groups.ngroup().to_numpy()
    workflows = runs.loc[groups.head(1).index, [*cols, "wf"]].reset_index(drop=True)
    runs = runs.drop(columns=["workflow_path", "workflow_name"])
    for column in ("event", "status", "conclusion", "head_branch"):
        runs[column] = runs[column].astype("category")

    configs = sorted({_runner_config(t) for t in targets})
    names = _Codes()
    parts, role_parts = [], []
    for batch in _batches(
        con,
        "SELECT repo, job_id, run_id, run_attempt, name, conclusion, created_at, started_at, "
        "completed_at, runner_name, runner_group_name, labels FROM jobs",
    ):
        labels = pd.Series(pd.arrays.ArrowExtensionArray(batch.column("labels")))
        chunk = batch.drop_columns(["labels"]).to_pandas()
        conclusion = chunk["conclusion"]
        has_runner = chunk["runner_name"].notna().to_numpy()
        parts.append(
            pd.DataFrame(
                {
                    "repo_code": pd.Categorical(chunk["repo"], categories=repos).codes,
                    "job_id": chunk["job_id"].to_numpy(),
                    "run_id": chunk["run_id"].to_numpy(),
                    "run_attempt": chunk["run_attempt"].to_numpy(),
                    "name_code": names.encode(chunk["name"]),
                    "conclusion_ok": (conclusion.notna() & (conclusion != "skipped")).to_numpy(),
                    "failed": conclusion.isin(FAILED).to_numpy(),
                    "created_at": _us(chunk["created_at"]),
                    "started_at": _us(chunk["started_at"]),
                    "completed_at": _us(chunk["completed_at"]),
                    "has_runner": has_runner,
                }
            )
        )
        # Runner roles (by name, group or any label) per distinct runner configuration.
        name_codes, name_values = pd.factorize(chunk["runner_name"])
        group_codes, group_values = pd.factorize(chunk["runner_group_name"])
        lengths = labels.list.len().fillna(0).to_numpy(dtype="int64")
        parent = np.repeat(np.arange(len(chunk)), lengths)
        label_codes, label_values = pd.factorize(labels.list.flatten())
        roles = np.zeros((len(configs), len(chunk)), dtype="int8")
        for c, config in enumerate(configs):
            for role, role_names, role_labels, role_groups in config:
                by_label = _lookup(label_values, role_labels)[label_codes]
                hit = (
                    _lookup(name_values, role_names)[name_codes]
                    | _lookup(group_values, role_groups)[group_codes]
                    | (np.bincount(parent[by_label], minlength=len(chunk)) > 0)
                ) & has_runner
                value = SECONDARY if role == "secondary" else PRIMARY
                roles[c] = np.where(hit, np.maximum(roles[c], value), roles[c])
        role_parts.append(roles)
    jobs = pd.concat(parts, ignore_index=True)
    roles_all = np.concatenate(role_parts, axis=1)
    del parts, role_parts

    rollback_sets = sorted({tuple(p.lower() for p in t.rollback_steps) for t in targets})
    not_skipped: list[np.ndarray] = []
    rollback: dict[tuple[str, ...], list[np.ndarray]] = {s: [] for s in rollback_sets}
    for batch in _batches(con, "SELECT repo, job_id, name, conclusion FROM job_steps"):
        chunk = batch.to_pandas()
        conclusion = chunk["conclusion"]
        # a step that is not skipped may have executed its job; one that ran (not empty
        # either: still running) is what a rollback step must have done
        kept = (conclusion.notna() & (conclusion != "skipped")).to_numpy()
        chunk = chunk[kept]
        keys = _job_key(
            pd.Categorical(chunk["repo"], categories=repos).codes, chunk["job_id"].to_numpy()
        )
        not_skipped.append(np.unique(keys))  # a job's steps are mostly in one batch
        ran = (chunk["conclusion"] != "").to_numpy()
        codes, uniques = pd.factorize(chunk["name"].str.lower())
        for patterns in rollback_sets:
            hit = _lookup(uniques, patterns)[codes] & ran
            rollback[patterns].append(keys[hit])
    # Deployment statuses -> the run (and job) their log_url / target_url names.
    links = []
    for batch in _batches(
        con, "SELECT repo, deployment_id, log_url, target_url FROM deployment_statuses"
    ):
        chunk = batch.to_pandas(types_mapper={pa.string(): pd.ArrowDtype(pa.string())}.get)
        url = chunk["log_url"].fillna(chunk["target_url"]).fillna("")
        run_id = url.str.extract(r"/actions/runs/(?P<run>\d+)", expand=True)["run"]
        job_id = url.str.extract(r"/job/(?P<job>\d+)", expand=True)["job"]
        has_run = run_id.notna().to_numpy()
        links.append(
            pd.DataFrame(
                {
                    "repo": pd.Categorical(chunk["repo"], categories=repos).codes[has_run],
                    "deployment_id": chunk["deployment_id"].to_numpy()[has_run],
                    "run_id": run_id[has_run].astype("int64").to_numpy(),
                    "job_id": job_id[has_run].astype("float64").to_numpy(),
                }
            ).drop_duplicates()
        )
    statuses = pd.concat(links, ignore_index=True).astype({"repo": "int64"})
    return Frames(
        runs=runs,
        jobs=jobs,
        job_names=names.values,
        roles=roles_all,
        runner_configs=configs,
        steps_not_skipped=pd.unique(np.concatenate(not_skipped or [np.empty(0, "int64")])),
        steps_rollback={
            s: pd.unique(np.concatenate(k or [np.empty(0, "int64")])) for s, k in rollback.items()
        },
        statuses=statuses,
        deployments=deployments,
        workflows=workflows,
        sync_state=_frame(con, "SELECT source, scope, cursor FROM sync_state"),
        repos=repos,
    )


def _attempt_key(repo_code: Any, run_id: Any, run_attempt: Any) -> np.ndarray:
    """One int64 per (repo, run_id, run_attempt)."""
    return (np.asarray(run_id, dtype="int64") * 100_000 + np.asarray(repo_code, dtype="int64")) * (
        1024
    ) + np.asarray(run_attempt, dtype="int64")


def _by_target(targets: Sequence[Any], values: Iterable[Any], fn: Callable[..., bool]) -> Any:
    """A (targets x values + 1) boolean table fn(target, value); last column False (NULL)."""
    values = list(values)
    table = np.zeros((len(targets), len(values) + 1), dtype=bool)
    for i, t in enumerate(targets):
        table[i, : len(values)] = [fn(t, v) for v in values]
    return table


def classify(f: Frames, targets: Sequence[Any]) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """deployment_attempts (one row per target and attempt, with outcome and flags) and the
    rollback-workflow runs of each target (targets as `tc`, an index into targets), and the
    codes of the repos whose workflows the targets read."""
    runs = f.runs
    # Deploy / rollback workflows of each target, matched once per distinct workflow.
    wf = f.workflows
    file = wf["workflow_path"].fillna("").str.extract(r"([^/]*)$", expand=False)
    scope = []
    for tc, t in enumerate(targets):
        for w, repo, fname, wname in zip(
            wf["wf"], wf["repo"], file, wf["workflow_name"], strict=True
        ):
            if not _match(f.repos[repo] if repo >= 0 else None, t.repos):
                continue
            deploy = _match(fname, t.workflows) or _match(wname, t.workflows)
            back = _match(fname, t.rollback_workflows) or _match(wname, t.rollback_workflows)
            if deploy or back:
                scope.append((w, tc, back))
    scope_frame = pd.DataFrame(scope, columns=["wf", "tc", "is_rollback"])
    scope_repos = wf.loc[wf["wf"].isin(scope_frame["wf"]), "repo"].unique()
    att = pd.DataFrame({"wf": runs["wf"], "row": np.arange(len(runs))}).merge(scope_frame, on="wf")
    att = pd.concat(
        [runs.iloc[att["row"].to_numpy()].reset_index(drop=True), att[["tc", "is_rollback"]]],
        axis=1,
    )
    # Branches and events filter deploy runs (a rollback is often dispatched from another ref).
    keep = att["is_rollback"].to_numpy(dtype=bool).copy()
    ok = np.ones(len(att), dtype=bool)
    tcs = att["tc"].to_numpy()
    for column, option in (("head_branch", "branches"), ("event", "events")):
        codes, uniques = pd.factorize(att[column])
        pair = tcs.astype("int64") * (len(uniques) + 1) + codes
        present, where = np.unique(pair, return_inverse=True)
        verdict = np.array(
            [
                not getattr(targets[p // (len(uniques) + 1)], option)
                or _match(
                    uniques[p % (len(uniques) + 1)] if p % (len(uniques) + 1) < len(uniques)
                    else None,
                    getattr(targets[p // (len(uniques) + 1)], option),
                )
                for p in present
            ],
            dtype=bool,
        )  # fmt: skip
        ok &= verdict[where]
    keep |= ok
    att = att[keep].reset_index(drop=True)
    rollbacks = att[att["is_rollback"].to_numpy(dtype=bool)].reset_index(drop=True)
    att = att[~att["is_rollback"].to_numpy(dtype=bool)].reset_index(drop=True)
    att["aid"] = np.arange(len(att))
    att["akey"] = _attempt_key(att["repo_code"], att["run_id"], att["run_attempt"])

    # Jobs of the deploy attempts, as each target sees them.
    jobs = f.jobs
    jobs_view = pd.DataFrame(
        {
            "akey": _attempt_key(jobs["repo_code"], jobs["run_id"], jobs["run_attempt"]),
            "jrow": np.arange(len(jobs)),
        }
    ).merge(att[["akey", "aid", "tc", "run_started_at"]], on="akey")
    jrow = jobs_view["jrow"].to_numpy()
    tc = jobs_view["tc"].to_numpy()
    j = jobs.iloc[jrow].reset_index(drop=True)
    job_key = _job_key(j["repo_code"].to_numpy(), j["job_id"].to_numpy())
    not_skipped_step = pd.Series(job_key).isin(f.steps_not_skipped).to_numpy()
    deploy_ok = _by_target(
        targets, f.job_names, lambda t, n: not t.deploy_jobs or _match(n, t.deploy_jobs)
    )
    deploy_name = deploy_ok[tc, j["name_code"].to_numpy()]
    rollback_ran = np.zeros(len(j), dtype=bool)
    sets = [tuple(p.lower() for p in t.rollback_steps) for t in targets]
    for patterns in set(sets):
        mine = np.array([s == patterns for s in sets])[tc]
        hits = pd.Series(job_key[mine]).isin(f.steps_rollback[patterns]).to_numpy()
        rollback_ran[mine] = hits
    config_of = np.array([f.runner_configs.index(_runner_config(t)) for t in targets])
    role = f.roles[config_of[tc], jrow]
    executed = (
        (j["started_at"].to_numpy() >= jobs_view["run_started_at"].to_numpy())
        & j["conclusion_ok"].to_numpy()
        & (j["has_runner"].to_numpy() | not_skipped_step)
    )
    dj = executed & deploy_name
    d = pd.DataFrame(
        {
            "aid": jobs_view["aid"].to_numpy()[dj],
            "started_at": j["started_at"].to_numpy()[dj],
            "completed_at": j["completed_at"].to_numpy()[dj],
            "created_at": j["created_at"].to_numpy()[dj],
            "rollback_ran": rollback_ran[dj],
            "secondary": role[dj] == SECONDARY,
            "known": role[dj] != NO_ROLE,
        }
    )
    d["queue_s"] = (d["started_at"] - d["created_at"]) / US
    d["failed_at"] = np.where(j["failed"].to_numpy()[dj], d["completed_at"], np.nan)
    d["incomplete"] = d["completed_at"].isna()
    g = d.groupby("aid")
    per = pd.DataFrame(
        {
            "deploy_jobs": g.size(),
            "deploy_started_at": g["started_at"].min(),
            "deploy_completed_at": g["completed_at"].max().where(~g["incomplete"].any()),
            "queue_s": g["queue_s"].max(),
            "first_deploy_created_at": g["created_at"].min(),
            "rollback_step_ran": g["rollback_ran"].any(),
            "on_secondary": g["secondary"].any(),
            "roles_known": g["known"].all(),
            "first_failed_at": g["failed_at"].min(),
        }
    )
    att = att.join(per, on="aid")
    att["jobs_seen"] = np.bincount(jobs_view["aid"], minlength=len(att))
    att["deploy_jobs"] = att["deploy_jobs"].fillna(0).astype("int64")
    for column in ("rollback_step_ran", "on_secondary", "roles_known"):
        att[column] = att[column].astype("boolean").fillna(False).astype(bool)

    att = _link_environments(att, f, targets)
    has = (att["deploy_jobs"] > 0).to_numpy()
    att["started_at"] = att["deploy_started_at"].fillna(att["run_started_at"])
    att["completed_at"] = np.where(has, att["deploy_completed_at"], att["updated_at"])
    att["timed_by_jobs"] = has  # timing_source = 'jobs'
    att["pending_s"] = (att["first_deploy_created_at"] - att["run_started_at"]) / US
    att["deployed_sha"] = att["linked_sha"].fillna(att["head_sha"])
    att["duration_s"] = (att["completed_at"] - att["started_at"]) / US
    att["excluded"] = _excluded(att, targets)

    conclusion = att["conclusion"]
    no_deploy = (att["jobs_seen"] > 0) & (att["deploy_jobs"] == 0)
    att["outcome"] = np.select(
        [
            att["excluded"].to_numpy(),
            (no_deploy & conclusion.isin(["success", "neutral"])).to_numpy(dtype=bool),
            (no_deploy & (conclusion == "cancelled")).to_numpy(dtype=bool),
            att["rollback_step_ran"].to_numpy(),
            (conclusion == "success").to_numpy(dtype=bool),
            conclusion.isin(FAILED).to_numpy(dtype=bool),
            (conclusion == "cancelled").to_numpy(dtype=bool),
        ],
        ["excluded", "not_deployed", "superseded", "rolled_back", "success", "failure", "aborted"],
        "not_counted",
    )
    tcs = att["tc"].to_numpy()
    option = {
        "cancelled_counts": [t.cancelled == "failure" for t in targets],
        "rolled_back_ok": [t.rolled_back == "success" for t in targets],
        "duration_counted": [t.duration_outcomes == "counted" for t in targets],
        "duration_run_timing": [t.duration_run_timing for t in targets],
        "cfr_include_failed": [t.cfr_include_failed for t in targets],
    }
    for name, values in option.items():
        att[name] = np.array(values, dtype=bool)[tcs]
    att["history_us"] = np.array([t.history_days * 86400 * US for t in targets])[tcs]
    outcome = att["outcome"]
    aborted_counts = (outcome == "aborted") & att["cancelled_counts"]
    att["counted"] = outcome.isin(["success", "failure", "rolled_back"]) | aborted_counts
    att["good"] = (outcome == "success") | ((outcome == "rolled_back") & att["rolled_back_ok"])
    att["bad"] = (
        (outcome == "failure") | ((outcome == "rolled_back") & ~att["rolled_back_ok"])
    ) | aborted_counts
    att["outcome"] = att["outcome"].astype("category")
    return att[KEEP].copy(), rollbacks, scope_repos


def _link_environments(att: pd.DataFrame, f: Frames, targets: Sequence[Any]) -> pd.DataFrame:
    """Attempts of targets with `environment` keep only those a deployment status of a
    matching environment links to (log_url or target_url names the run and the job)."""
    att["linked_sha"] = np.nan
    env_tc = [tc for tc, t in enumerate(targets) if t.environment]
    if not env_tc:
        return att
    statuses = f.statuses.drop_duplicates().merge(f.deployments, on=["repo", "deployment_id"])
    # the statuses of each target's repos whose environment matches the target's glob
    target_repos = att.loc[att["tc"].isin(env_tc), ["tc", "repo"]].drop_duplicates()
    candidates = statuses.merge(target_repos, on="repo")
    codes, uniques = pd.factorize(candidates["environment"])
    allowed = _by_target(
        targets, uniques, lambda t, e: bool(t.environment) and _match(e, [t.environment])
    )
    links = candidates[allowed[candidates["tc"].to_numpy(), codes]]
    links = links[["tc", "repo", "sha", "run_id", "job_id"]].drop_duplicates()
    keyed = att[["aid", "tc", "repo", "run_id", "run_attempt", "repo_code"]].merge(
        links, on=["tc", "repo", "run_id"]
    )
    jobs = f.jobs
    job_attempt = pd.Series(
        jobs["run_attempt"].to_numpy(),
        index=_job_key(jobs["repo_code"].to_numpy(), jobs["job_id"].to_numpy()),
    )
    job_attempt = job_attempt[~job_attempt.index.duplicated()]
    has_job = keyed["job_id"].notna().to_numpy()
    their_attempt = np.full(len(keyed), np.nan)
    their_attempt[has_job] = job_attempt.reindex(
        _job_key(keyed["repo_code"].to_numpy()[has_job], keyed["job_id"].to_numpy()[has_job])
    ).to_numpy(dtype="float64")
    keep = ~has_job | np.isnan(their_attempt) | (their_attempt == keyed["run_attempt"].to_numpy())
    linked = keyed[keep][["aid", "sha"]].drop_duplicates()
    att = att.merge(linked.rename(columns={"sha": "linked_sha_"}), on="aid", how="left")
    att["linked_sha"] = att.pop("linked_sha_")
    env_targets = np.zeros(len(targets), dtype=bool)
    env_targets[env_tc] = True
    keep = ~env_targets[att["tc"].to_numpy()] | att["linked_sha"].notna().to_numpy()
    return att[keep].reset_index(drop=True)


def _instant_us(value: Any) -> float:
    stamp = pd.Timestamp(str(value).replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return float(stamp.value // 1000)


def _excluded(att: pd.DataFrame, targets: Sequence[Any]) -> np.ndarray:
    out = np.zeros(len(att), dtype=bool)
    tcs = att["tc"].to_numpy()
    started, completed = att["started_at"].to_numpy(), att["completed_at"].to_numpy()
    spans = completed > started
    for tc, t in enumerate(targets):
        if not t.exclude:
            continue
        mine = tcs == tc
        for e in t.exclude:
            if e.runs:
                out |= mine & att["run_id"].isin(e.runs).to_numpy()
            if e.from_ is not None:
                lo, hi = _instant_us(e.from_), _instant_us(e.to)
                # [started_at, completed_at) overlaps [from, to); an attempt without a later
                # completion is the instant it started
                overlap = spans & (completed > lo) & (started < hi)
                instant = ~spans & (started >= lo) & (started < hi)
                out |= mine & (overlap | instant)
    return out


def _in(values: pd.Series | np.ndarray, start_us: float, end_us: float) -> np.ndarray:
    values = np.asarray(values, dtype="float64")
    return (values >= start_us) & (values < end_us)


def _overlaps(att: pd.DataFrame, start_us: float, end_us: float) -> pd.Series:
    """Pairs of counted attempts of a target with overlapping [started_at, completed_at), by
    the window of the later start. A sweep: for each attempt b, the attempts before it in
    (started_at, repo, run_id, run_attempt) order, minus those completed by b's start."""
    a = att[att["counted"] & (att["completed_at"] > att["started_at"])]  # empty spans: none
    a = a.sort_values(["tc", "started_at", "repo", "run_id", "run_attempt"])
    code = a["tc"].to_numpy().astype("int64")
    started = a["started_at"].to_numpy().astype("int64")
    completed = a["completed_at"].to_numpy().astype("int64")
    base = min(started.min(initial=0), completed.min(initial=0))
    span = max(started.max(initial=0), completed.max(initial=0)) - base + 1
    rank = np.arange(len(a)) - np.searchsorted(code, code, side="left")
    ends = np.sort(code * span + (completed - base))
    done = np.searchsorted(ends, code * span + (started - base), side="right") - np.searchsorted(
        ends, code * span, side="left"
    )
    in_window = _in(started, start_us, end_us)
    return pd.Series((rank - done)[in_window]).groupby(code[in_window]).sum()


def _signals(att: pd.DataFrame, rollbacks: pd.DataFrame, targets: Sequence[Any]) -> Any:
    """Rollback signals with the change each answers, and the changes."""
    keys = ["tc", "repo", "run_id", "run_attempt"]
    # (c) redeploys: successful attempts of a version first deployed before the previous
    # successful attempt, with a head commit older than the previous one's.
    good = att[att["good"]].sort_values(["tc", "started_at", "repo", "run_id", "run_attempt"])
    by_target = good.groupby("tc", sort=False)
    prev_started = by_target["started_at"].shift()
    prev_commit = by_target["head_commit_at"].shift()
    first = good.groupby(["tc", "deployed_sha"])["started_at"].transform("min")
    redeploys = good[((first < prev_started) & (good["head_commit_at"] < prev_commit)).to_numpy()]
    changes = att[att["counted"].to_numpy() & ~att["aid"].isin(redeploys["aid"]).to_numpy()]

    latest = rollbacks.sort_values("run_attempt").groupby(["tc", "repo", "run_id"]).tail(1)
    latest = latest[latest["status"] == "completed"]
    columns = ["tc", "kind", "signal_at", "repo", "run_id", "run_attempt", "conclusion",
               "completed_at"]  # fmt: skip
    workflow = latest.assign(kind="workflow", signal_at=latest["run_started_at"],
                             completed_at=latest["updated_at"])  # fmt: skip
    signals = pd.concat(
        [workflow[columns], redeploys.assign(kind="redeploy", signal_at=redeploys["started_at"])[
            columns]],
        ignore_index=True,
    )  # fmt: skip
    signals = signals[signals["signal_at"].notna()]
    ch = changes[[*keys, "started_at"]].rename(
        columns={"repo": "c_repo", "run_id": "c_run_id", "run_attempt": "c_run_attempt",
                 "started_at": "c_started_at"}
    )  # fmt: skip
    ch = ch[ch["c_started_at"].notna()]
    answered = pd.merge_asof(
        signals.sort_values("signal_at"), ch.sort_values("c_started_at"),
        left_on="signal_at", right_on="c_started_at", by="tc",
        allow_exact_matches=False, direction="backward",
    )  # fmt: skip
    window_us = np.array([t.cfr_window / timedelta(microseconds=1) for t in targets])
    within = (answered["signal_at"] - answered["c_started_at"]).to_numpy() <= window_us[
        answered["tc"].to_numpy()
    ]
    for column in ("c_repo", "c_run_id", "c_run_attempt"):
        answered[column] = answered[column].where(within)
    steps = att[att["outcome"] == "rolled_back"]
    steps = steps.assign(kind="step", signal_at=steps["started_at"], c_repo=steps["repo"],
                         c_run_id=steps["run_id"], c_run_attempt=steps["run_attempt"])  # fmt: skip
    signals = pd.concat(
        [answered.drop(columns="c_started_at"), steps[[*columns, "c_repo", "c_run_id",
                                                        "c_run_attempt"]]],
        ignore_index=True,
    )  # fmt: skip
    return signals, changes


def _incidents(signals: pd.DataFrame) -> pd.DataFrame:
    """Signals answering the same change are one incident; one answering none is one."""
    answers = signals["c_run_id"].notna()
    return (
        signals.assign(
            i_repo=signals["c_repo"].where(answers, signals["repo"]),
            i_run_id=signals["c_run_id"].where(answers, signals["run_id"]).astype("int64"),
            i_run_attempt=signals["c_run_attempt"]
            .where(answers, signals["run_attempt"])
            .astype("int64"),
            answers_change=answers,
        )
        .groupby(["tc", "i_repo", "i_run_id", "i_run_attempt", "answers_change"])["signal_at"]
        .min()
        .reset_index()
    )


def _episodes(att: pd.DataFrame, signals: pd.DataFrame) -> pd.DataFrame:
    """From a failure after a success (or none within history_days) to the next success in
    (completed_at, run_id, run_attempt) order, or earlier to a successful rollback run
    answering one of the episode's failed attempts."""
    o = att[att["counted"] & att["completed_at"].notna()].sort_values(
        ["tc", "completed_at", "run_id", "run_attempt"]
    )
    g = o.groupby("tc", sort=False)
    prev_good = g["good"].shift()
    prev_completed = g["completed_at"].shift().to_numpy()
    gap = prev_completed < (o["completed_at"] - o["history_us"]).to_numpy()
    start = o["bad"].to_numpy() & (
        prev_good.isna().to_numpy() | (prev_good == True).to_numpy() | gap  # noqa: E712
    )
    # the next success in this order (ties on completed_at broken by run id)
    good_at = o["completed_at"].where(o["good"])
    o["next_good_at"] = good_at.groupby(o["tc"]).shift(-1).groupby(o["tc"]).bfill()
    # position in this order, and successes up to here: an episode's attempts by position
    o["seq"] = g.cumcount()
    o["goods_seen"] = o["good"].astype("int64").groupby(o["tc"]).cumsum()
    eps = o[start][
        ["tc", "repo", "run_id", "run_attempt", "completed_at", "next_good_at", "seq", "goods_seen"]
    ]
    eps = eps.rename(columns={"completed_at": "start_at", "next_good_at": "good_at"})
    eps = eps.reset_index(drop=True)
    eps["eid"] = np.arange(len(eps))
    # a failure more than history_days after the previous one starts a new episode within the
    # same streak: the attempts from there on are not this episode's
    eps["next_start_seq"] = eps.groupby("tc")["seq"].shift(-1)
    rescues = signals[
        (signals["kind"] == "workflow")
        & (signals["conclusion"] == "success")
        & signals["c_run_id"].notna()
    ]
    answered = o[o["bad"]][["tc", "repo", "run_id", "run_attempt", "seq", "goods_seen"]].merge(
        rescues[["tc", "c_repo", "c_run_id", "c_run_attempt", "completed_at"]]
        .astype({"c_run_id": "int64", "c_run_attempt": "int64"})
        .rename(columns={"c_repo": "repo", "c_run_id": "run_id", "c_run_attempt": "run_attempt",
                         "completed_at": "rescued_at"}),
        on=["tc", "repo", "run_id", "run_attempt"],
    )  # fmt: skip
    pairs = eps[["eid", "tc", "start_at", "seq", "goods_seen", "next_start_seq"]].merge(
        answered, on=["tc", "goods_seen"], suffixes=("_start", "")
    )
    inside = (
        (pairs["seq"] >= pairs["seq_start"])
        & (pairs["next_start_seq"].isna() | (pairs["seq"] < pairs["next_start_seq"]))
        & (pairs["rescued_at"] >= pairs["start_at"])
    )
    eps["rescued_at"] = eps["eid"].map(pairs[inside].groupby("eid")["rescued_at"].min())
    eps["end_at"] = eps[["good_at", "rescued_at"]].min(axis=1, skipna=True)
    eps["restore_s"] = (eps["end_at"] - eps["start_at"]) / US
    return eps


def _lead_times(att: pd.DataFrame, targets: Sequence[Any], start_us: float, end_us: float) -> Any:
    """For attempts of lead_time_events: completed_at of the first successful attempt of a sha
    (none of it, whatever its event, within history_days before) minus its head commit time."""
    good = att[att["good"] & att["completed_at"].notna()]
    good = good.sort_values(["tc", "deployed_sha", "started_at", "run_id", "run_attempt"])
    previous = good.groupby(["tc", "deployed_sha"], sort=False, dropna=False)["started_at"].shift()
    first = previous.isna().to_numpy() | (
        previous.to_numpy() < (good["started_at"] - good["history_us"]).to_numpy()
    )
    codes, uniques = pd.factorize(good["event"])
    allowed = _by_target(targets, uniques, lambda t, e: e in t.lead_time_events)
    keep = (
        first
        & allowed[good["tc"].to_numpy(), codes]
        & good["head_commit_at"].notna().to_numpy()
        & _in(good["started_at"], start_us, end_us)
    )
    chosen = good[keep]
    return pd.DataFrame(
        {
            "tc": chosen["tc"],
            "lead_time_s": (chosen["completed_at"] - chosen["head_commit_at"]) / US,
        }
    )


def _wilson(successes: int, n: int) -> list[float] | None:
    if n == 0:
        return None
    p, z = successes / n, Z95
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return [max(0.0, centre - half), min(1.0, centre + half)]


def _q(values: pd.Series | np.ndarray, by: pd.Series | np.ndarray, q: float) -> pd.Series:
    """quantile_cont per group (linear interpolation), NULLs dropped."""
    frame = pd.DataFrame({"v": np.asarray(values, dtype="float64"), "g": np.asarray(by)})
    return frame.dropna(subset=["v"]).groupby("g")["v"].quantile(q, interpolation="linear")


def compute(
    att: pd.DataFrame,
    rollbacks: pd.DataFrame,
    scope_repos: np.ndarray,
    f: Frames,
    targets: Sequence[Any],
    start: datetime,
    end: datetime,
) -> dict[str, dict[str, Any]]:
    """The metrics of each target for the window [start, end)."""
    start_us, end_us = start.timestamp() * US, end.timestamp() * US
    w = att[_in(att["started_at"], start_us, end_us)]
    tc = w["tc"].to_numpy()
    counted, good = w["counted"].to_numpy(), w["good"].to_numpy()
    deploys = (w["deploy_jobs"] > 0).to_numpy()
    known, secondary = w["roles_known"].to_numpy(), w["on_secondary"].to_numpy()
    duration_ok = np.where(w["duration_counted"], counted, good) & (
        w["timed_by_jobs"].to_numpy() | w["duration_run_timing"].to_numpy()
    )
    flags = {
        **{key: (w["outcome"] == o).to_numpy() for o, key in OUTCOMES.items()},
        "counted": counted,
        "good": counted & good,
        "duration_n": duration_ok,
        "total_n": good,
        "queue_n": counted & w["queue_s"].notna().to_numpy(),
        "pending_n": counted & w["pending_s"].notna().to_numpy(),
        "roles_known_n": counted & deploys & known,
        "on_secondary_n": counted & deploys & known & secondary,
        "unknown_runner_n": counted & deploys & ~known,
    }
    sums = pd.DataFrame(flags).groupby(tc).sum()
    total = w[good]
    total_from = np.where(total["run_attempt"] == 1, total["created_at"], total["run_started_at"])
    quantiles = {
        "duration_p50_s": (w["duration_s"][duration_ok], tc[duration_ok], 0.5, "duration_n"),
        "duration_p95_s": (w["duration_s"][duration_ok], tc[duration_ok], 0.95, "duration_n"),
        "duration_p99_s": (w["duration_s"][duration_ok], tc[duration_ok], 0.99, "duration_n"),
        "total_p50_s": ((total["completed_at"] - total_from) / US, total["tc"], 0.5, "total_n"),
        "queue_p50_s": (w["queue_s"][counted], tc[counted], 0.5, "queue_n"),
        "queue_p95_s": (w["queue_s"][counted], tc[counted], 0.95, "queue_n"),
        "pending_p50_s": (w["pending_s"][counted], tc[counted], 0.5, "pending_n"),
    }
    quantile_values = {k: (_q(v, b, q), q, n) for k, (v, b, q, n) in quantiles.items()}

    # Runs, in the window of their attempt 1: latest attempt good / counted; retried.
    latest = att.sort_values("run_attempt").groupby(["tc", "repo", "run_id"]).tail(1)
    latest = latest[["tc", "repo", "run_id", "good", "run_attempt"]].rename(
        columns={"good": "latest_good", "run_attempt": "attempts"}
    )
    first = w[(w["run_attempt"] == 1).to_numpy() & counted][["tc", "repo", "run_id", "bad"]]
    runs = first.merge(latest, on=["tc", "repo", "run_id"])
    run_counts = (
        pd.DataFrame(
            {
                "runs": np.ones(len(runs), dtype="int64"),
                "runs_good": runs["latest_good"].to_numpy(),
                "retried": (runs["bad"] & (runs["attempts"] > 1)).to_numpy(),
            }
        )
        .groupby(runs["tc"].to_numpy())
        .sum()
    )

    overlaps = _overlaps(att, start_us, end_us)
    signals, changes = _signals(att, rollbacks, targets)
    incidents = _incidents(signals)
    rollback_incidents = (
        incidents[_in(incidents["signal_at"], start_us, end_us)].groupby("tc").size()
    )
    answered = incidents[incidents["answers_change"]].rename(
        columns={"i_repo": "repo", "i_run_id": "run_id", "i_run_attempt": "run_attempt"}
    )[["tc", "repo", "run_id", "run_attempt"]]
    cin = changes[_in(changes["started_at"], start_us, end_us)]
    hit = (
        cin[["tc", "repo", "run_id", "run_attempt"]]
        .merge(answered.assign(hit=True), how="left")["hit"]
        .notna()
        .to_numpy()
    )
    failed = hit | (
        cin["cfr_include_failed"] & cin["outcome"].isin(["failure", "rolled_back"])
    ).to_numpy(dtype=bool)
    cfr = pd.DataFrame({"n": 1, "failed": failed}).groupby(cin["tc"].to_numpy()).sum()
    episodes = _episodes(att, signals)
    ended = episodes[_in(episodes["end_at"], start_us, end_us)].groupby("tc")["restore_s"]
    open_at_end = (episodes["start_at"] < end_us) & ~(episodes["end_at"] < end_us)
    open_n = episodes[open_at_end].groupby("tc").size()
    lead = _lead_times(att, targets, start_us, end_us)
    lead_ok = lead[lead["lead_time_s"] >= 0].groupby("tc")["lead_time_s"]
    lead_negative = lead[lead["lead_time_s"] < 0].groupby("tc").size()
    episodes_n, mttr = ended.size(), ended.mean()
    restore_median, restore_p90 = ended.quantile(0.5), ended.quantile(0.9)
    lead_n, lead_p50 = lead_ok.size(), lead_ok.quantile(0.5)

    as_of = _data_as_of(scope_repos, f)
    # no data at all, or none reaching into the window: no frequency (not zero)
    elapsed_end = min(end_us, as_of) if as_of is not None else start_us
    elapsed_days = max((elapsed_end - start_us) / (86400 * US), 0.0)

    def get(series: pd.Series, code: int, default: Any = None) -> Any:
        value = series.get(code)
        return default if value is None or pd.isna(value) else value

    out: dict[str, dict[str, Any]] = {}
    for code, t in enumerate(targets):
        n = {k: int(get(sums[k], code, 0)) for k in sums.columns} if len(sums) else {}
        n = {k: n.get(k, 0) for k in flags}
        runs_n = int(get(run_counts["runs"], code, 0))
        with_roles = any(s.names or s.labels or s.groups for s in t.runners.values())
        m: dict[str, Any] = {key: n[key] for key in OUTCOMES.values()}
        m |= {
            "counted": n["counted"],
            "success_rate": n["good"] / n["counted"] if n["counted"] else None,
            "success_rate_ci": _wilson(n["good"], n["counted"]),
            "run_success_rate": int(get(run_counts["runs_good"], code, 0)) / runs_n
            if runs_n
            else None,
            "retry_rate": int(get(run_counts["retried"], code, 0)) / runs_n if runs_n else None,
            "duration_n": n["duration_n"],
            "queue_n": n["queue_n"],
            "failover_share": n["on_secondary_n"] / n["roles_known_n"]
            if with_roles and n["roles_known_n"]
            else None,
            "unknown_runner_share": n["unknown_runner_n"] / n["counted"]
            if with_roles and n["counted"]
            else None,
            "overlapping_deploys": int(get(overlaps, code, 0)),
            "deploy_frequency_per_day": n["good"] / elapsed_days if elapsed_days > 0 else None,
        }
        for key, (series, q, n_key) in quantile_values.items():
            value = get(series, code)
            m[key] = float(value) if value is not None and n[n_key] >= MIN_N[q] else None
        ended_n, changes_n = int(get(episodes_n, code, 0)), int(get(cfr["n"], code, 0))
        leads = int(get(lead_n, code, 0))
        m |= {
            "lead_time_n": leads,
            "lead_time_p50_s": get(lead_p50, code) if leads else None,
            "lead_time_negative": int(get(lead_negative, code, 0)),
            "rollback_incidents": int(get(rollback_incidents, code, 0)),
            "changes": changes_n,
            "change_failure_rate": int(get(cfr["failed"], code, 0)) / changes_n
            if changes_n
            else None,
            "episodes": ended_n,
            "mttr_s": get(mttr, code) if ended_n else None,
            "restore_median_s": get(restore_median, code) if ended_n >= 1 else None,
            "restore_p90_s": get(restore_p90, code) if ended_n >= 10 else None,
            "open_episodes": int(get(open_n, code, 0)),
        }
        out[t.name] = {k: float(v) if isinstance(v, np.floating) else v for k, v in m.items()}
    return out


def _data_as_of(scope_repos: np.ndarray, f: Frames) -> float | None:
    """The end of the last sync of the repos the targets read, else the newest updated_at
    of their runs."""
    s = f.sync_state
    names = {f.repos[c] for c in scope_repos if c >= 0}
    mine = s[(s["source"] == "github") & s["scope"].str.split(":").str[0].isin(names)]
    cursors = _us(mine["cursor"]) if len(mine) else np.empty(0)
    if len(cursors) and not np.isnan(cursors).all():
        return float(np.nanmin(cursors))
    updated = f.runs.loc[f.runs["repo"].isin(scope_repos), "updated_at"].dropna()
    return float(updated.max()) if len(updated) else None


def run(
    con: duckdb.DuckDBPyConnection,
    targets: Sequence[Any],
    start: datetime,
    end: datetime,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
    """Load, classify and compute; returns the metrics and the seconds of each phase."""
    t0 = clock()
    frames = load(con, targets)
    t1 = clock()
    att, rollbacks, scope_repos = classify(frames, targets)
    t2 = clock()
    result = compute(att, rollbacks, scope_repos, frames, targets, start, end)
    t3 = clock()
    return result, {"load_s": t1 - t0, "classify_s": t2 - t1, "metrics_s": t3 - t2}
