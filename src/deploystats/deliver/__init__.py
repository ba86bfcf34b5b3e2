"""Delivery of a rendered report folder to JIRA, Slack and e-mail (DESIGN §7, config §9).

    deliver_report(folder, "jira:INFRA-472", settings)   attach the files to the issue
    deliver_report(folder, "slack", settings)            post the summary to the webhook
    deliver_report(folder, "email", settings)            send the summary with the report

Secrets come from the variables the config names (read by deploystats.config only); every
failure is a one-line ConfigError or DeliveryError naming the endpoint, never a secret.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx

from deploystats.config import Settings
from deploystats.deliver.email import deliver_email
from deploystats.deliver.http import Seams
from deploystats.deliver.jira import check_issue_key, deliver_jira
from deploystats.deliver.report import Report, load_report
from deploystats.deliver.slack import deliver_slack
from deploystats.errors import DeliveryError

__all__ = ["Report", "deliver_report", "load_report", "parse_specs"]

SPEC_HELP = "use slack, email or jira:ISSUE-KEY, separated by commas"


def parse_specs(text: str) -> list[str]:
    """`slack,email,jira:INFRA-472` -> checked specs, so a typo fails before any rendering."""
    specs = [part.strip() for part in text.split(",") if part.strip()]
    if not specs:
        raise DeliveryError(f"no delivery given: {SPEC_HELP}")
    for spec in specs:
        _check_spec(spec)
    return specs


def deliver_report(
    folder: Path,
    spec: str,
    settings: Settings,
    *,
    jira_comment: bool = False,
    environ: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
    on_wait: Callable[[str], None] | None = None,
) -> list[str]:
    """Deliver the report in `folder` as `spec` says (`slack`, `email` or `jira:KEY`); returns
    one line per thing done or skipped. `environ` replaces os.environ for the secrets;
    `transport`, `sleep` and `clock` are seams for tests; `on_wait` hears of each retry wait."""
    _check_spec(spec)
    report = load_report(folder)
    seams = Seams(environ, transport, sleep, clock, on_wait)
    if spec == "slack":
        return deliver_slack(report, settings, seams=seams)
    if spec == "email":
        return deliver_email(report, settings, seams=seams)
    key = spec.partition(":")[2]
    return deliver_jira(report, key, settings, comment=jira_comment, seams=seams)


def _check_spec(spec: str) -> None:
    if spec in ("slack", "email"):
        return
    kind, colon, key = spec.partition(":")
    if kind != "jira" or not colon:
        raise DeliveryError(f"unknown delivery {spec!r}: {SPEC_HELP}")
    check_issue_key(key)
