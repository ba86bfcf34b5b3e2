"""deploystats.yml -> validated settings; the only module that reads environment variables."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ByteSize,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from deploystats.errors import ConfigError

DEFAULT_DB = Path("data/deploystats.duckdb")
DEFAULT_CONFIG = Path("deploystats.yml")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(value: object) -> timedelta:
    """Parse `90s`, `15m`, `24h`, `7d`, `2w` or a number of seconds into a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=float(value))
    match = _DURATION.match(str(value))
    if not match:
        if str(value).startswith("P"):  # ISO 8601, as a dumped config writes durations
            return TypeAdapter(timedelta).validate_python(value)
        raise ValueError(f"{value!r} is not a duration: use e.g. 90s, 15m, 24h, 7d")
    return timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)])


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrgScope(_Model):
    name: str
    include: list[str] = ["*"]
    exclude: list[str] = []


class AppSettings(_Model):
    app_id: int | str
    private_key_file: Path
    installation_id: int


class GitHubSettings(_Model):
    repos: list[str] = []
    org: OrgScope | None = None
    base_url: str = "https://api.github.com"
    api_version: str = "2022-11-28"
    token_env: str = "GITHUB_TOKEN"
    app: AppSettings | None = None
    rescan_days: Annotated[int, Field(ge=0)] = 30
    backfill_days: Annotated[int, Field(ge=1)] = 90

    @field_validator("repos")
    @classmethod
    def _repos_are_owner_name(cls, repos: list[str]) -> list[str]:
        for repo in repos:
            if not re.fullmatch(r"[\w.-]+/[\w.*?\[\]-]+", repo):
                raise ValueError(f"{repo!r} is not OWNER/NAME")
        return repos


class StoreSettings(_Model):
    lock_timeout: Duration = timedelta(seconds=120)


class RunnerRole(_Model):
    names: list[str] = []
    labels: list[str] = []
    groups: list[str] = []


class Exclusion(_Model):
    runs: list[int] = []
    from_: Annotated[Any, Field(alias="from")] = None
    to: Any = None
    reason: str


class Target(_Model):
    """A deployment target (DESIGN §5); classification itself lives in metrics/."""

    name: str
    repos: list[str] = Field(min_length=1)
    workflows: list[str] = Field(min_length=1)
    environment: str | None = None
    branches: list[str] = []
    events: list[str] = []
    deploy_jobs: list[str] = []
    rollback_workflows: list[str] = []
    rollback_steps: list[str] = []
    runners: dict[Literal["primary", "secondary"], RunnerRole] = {}
    team: str | None = None
    service: str | None = None
    cancelled: Literal["ignore", "failure"] = "ignore"
    rolled_back: Literal["failure", "success"] = "failure"
    cfr_window: Duration = timedelta(hours=24)
    cfr_include_failed: bool = True
    history_days: int = 90
    duration_outcomes: Literal["success", "counted"] = "success"
    duration_run_timing: bool = False
    lead_time_events: list[str] = ["push", "workflow_dispatch"]
    alerts_query: str | None = None
    alerts_match_labels: dict[str, str] = {}
    exclude: list[Exclusion] = []


class BasicAuth(_Model):
    username: str
    password_env: str


class PromAuthSettings(_Model):
    bearer_token_env: str | None = None
    basic: BasicAuth | None = None


class PromQuery(_Model):
    """A named Prometheus query (DESIGN §4): plain selectors of kind availability/alerts are
    fetched as raw samples, anything else through query_range at `step`."""

    expr: str
    kind: Literal["availability", "alerts", "series"] = "series"
    step: Duration = timedelta(seconds=60)
    group_by: list[str] = []


class PrometheusSettings(_Model):
    url: str
    auth: PromAuthSettings | None = None
    ca_file: Path | None = None
    insecure_skip_verify: bool = False
    headers: dict[str, str] = {}
    queries: dict[str, PromQuery] = {}
    backfill_days: Annotated[int, Field(ge=1)] = 15  # Prometheus keeps 15 days by default


class JiraDelivery(_Model):
    """delivery.jira: basic auth = user + API token (Cloud) or password; bearer = a personal
    access token (Server/Data Center). Values come from the variables named here."""

    url: str
    auth: Literal["basic", "bearer"] = "basic"
    user_env: str = "JIRA_USER"  # basic only
    token_env: str = "JIRA_TOKEN"
    max_attachment_size: ByteSize | None = None  # e.g. 10MB; the server's own limit also applies

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not re.match(r"https?://[^/\s]+", url):
            raise ValueError(f"{url!r} is not an http(s) URL such as https://jira.example.com")
        return url.rstrip("/")


class SlackDelivery(_Model):
    """delivery.slack: the incoming-webhook URL is itself the secret, so only its variable."""

    webhook_env: str = "SLACK_WEBHOOK_URL"


class EmailDelivery(_Model):
    """delivery.email: SMTP submission; port defaults to 587 (starttls), 465 (ssl), 25 (none)."""

    smtp_host: str
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    from_: Annotated[str, Field(alias="from")]
    to: list[str] = Field(min_length=1)
    ca_file: Path | None = None  # a private CA (or a test's self-signed certificate)
    timeout: Duration = timedelta(seconds=30)

    @model_validator(mode="after")
    def _password_needs_tls(self) -> EmailDelivery:
        if self.username is not None and self.security == "none":
            raise ValueError(
                "username with security: none would send the password in clear: "
                "use security: starttls or ssl"
            )
        if (self.username is None) != (self.password_env is None):
            raise ValueError("set both username and password_env, or neither")
        return self

    @property
    def smtp_port(self) -> int:
        return self.port or {"starttls": 587, "ssl": 465, "none": 25}[self.security]


class DeliverySettings(_Model):
    jira: JiraDelivery | None = None
    slack: SlackDelivery | None = None
    email: EmailDelivery | None = None


class Settings(_Model):
    """The whole deploystats.yml. Sections owned by later features stay loosely typed for now."""

    timezone: str = "UTC"
    github: GitHubSettings = GitHubSettings()
    store: StoreSettings = StoreSettings()
    targets: list[Target] = []
    prometheus: PrometheusSettings | None = None
    slos: list[dict[str, Any]] = []
    slo_defaults: dict[str, Any] = {}
    reports: dict[str, Any] = {}
    delivery: DeliverySettings = DeliverySettings()

    def prometheus_secret(self, variable: str, environ: Mapping[str, str] | None = None) -> str:
        """A Prometheus credential from the variable the config names; ConfigError if unset."""
        env = os.environ if environ is None else environ
        value = env.get(variable)
        if not value:
            raise ConfigError(
                f"Prometheus credential missing: set {variable} (named in prometheus.auth)"
            )
        return value

    def github_token(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The token from the variable `github.token_env` names, or None when unset."""
        env = os.environ if environ is None else environ
        return env.get(self.github.token_env) or None

    def delivery_secret(
        self, variable: str, *, key: str, environ: Mapping[str, str] | None = None
    ) -> str:
        """A delivery credential from `variable` (named by the config key `key`, e.g.
        delivery.jira.token_env); ConfigError naming the variable if it is unset or empty."""
        env = os.environ if environ is None else environ
        value = env.get(variable)
        if not value:
            raise ConfigError(f"delivery credential missing: set {variable} (named in {key})")
        return value


def _format_error(name: str, error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    what = {"missing": "missing key", "extra_forbidden": "unknown key"}.get(
        first["type"], first["msg"].removeprefix("Value error, ")
    )
    more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{name}: {where}: {what}{more}"


_Loaded = TypeVar("_Loaded", bound=BaseModel)


def load_yaml_model(path: Path, model: type[_Loaded], *, name: str, expected: str) -> _Loaded:
    """A YAML file holding one mapping, validated as `model`. Errors are one line starting
    with `name` (e.g. the path): the file unreadable, not YAML (line and column), not a
    mapping (`expected` says what it should hold), or the first key that is wrong."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{name}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{name}: not valid YAML{where}") from exc
    if not isinstance(data, dict | None):
        raise ConfigError(f"{name}: expected {expected}")
    try:
        return model.model_validate(data or {})
    except ValidationError as exc:
        raise ConfigError(_format_error(name, exc)) from exc


def load_settings(path: Path | None = None, *, required: bool = False) -> Settings:
    """Read and validate deploystats.yml; defaults when the file is absent and not required."""
    path = path or config_path()
    if not path.exists():
        if required:
            raise ConfigError(f"{path}: no such config file: run `deploystats init` to write one")
        return Settings()
    return load_yaml_model(
        path, Settings, name=str(path), expected="a mapping of settings at the top level"
    )


def config_path(explicit: Path | None = None) -> Path:
    """--config, else DEPLOYSTATS_CONFIG, else ./deploystats.yml."""
    return explicit or Path(os.environ.get("DEPLOYSTATS_CONFIG") or DEFAULT_CONFIG)


def db_path(explicit: Path | None = None) -> Path:
    """--db, else DEPLOYSTATS_DB, else data/deploystats.duckdb."""
    return explicit or Path(os.environ.get("DEPLOYSTATS_DB") or DEFAULT_DB)
