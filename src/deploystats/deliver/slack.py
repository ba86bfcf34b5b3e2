"""Slack delivery: the report summary posted to an incoming webhook as Block Kit with a plain-text
fallback. The webhook URL is a secret (its path is the credential): messages show its host only."""

from __future__ import annotations

from urllib.parse import urlsplit

from deploystats.config import Settings
from deploystats.deliver import summary
from deploystats.deliver.http import REAL, Endpoint, Seams
from deploystats.deliver.report import Report
from deploystats.errors import ConfigError

# what Slack answers when the webhook itself is wrong, rather than the message
REVOKED = ("invalid_token", "no_service", "no_team", "team_disabled", "channel_not_found")


def deliver_slack(
    report: Report,
    settings: Settings,
    *,
    seams: Seams = REAL,
) -> list[str]:
    """Post the summary of `report` to the webhook in the variable delivery.slack.webhook_env
    names; one line saying what was posted."""
    config = settings.delivery.slack
    if config is None:
        raise ConfigError("no Slack configured: add delivery.slack {webhook_env} to the config")
    variable = config.webhook_env
    url = settings.delivery_secret(
        variable, key="delivery.slack.webhook_env", environ=seams.environ
    )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{variable} does not hold an http(s) URL: set it to the incoming-webhook URL Slack "
            "gave (https://hooks.slack.com/services/...)"
        )
    shown = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    with Endpoint(
        service="Slack webhook",
        shown=shown,
        hint=f"check the URL in {variable}",
        secrets=[url, parts.path],
        seams=seams,
    ) as endpoint:
        payload = summary.slack_payload(report)
        response = endpoint.request("POST", url, json=payload, what="POST", idempotent=False)
        text = " ".join(response.text.split())[:200]
        if response.status_code != 200:
            advice = (
                f"the webhook was revoked or is wrong: set {variable} to a current one"
                if text in REVOKED or response.status_code in (403, 404, 410)
                else "see Slack's answer"
            )
            raise endpoint.error(
                f"Slack webhook at {shown} answered {response.status_code} "
                f"({text or 'no text'}): {advice}"
            )
    return [
        f"slack: posted the summary of {report.title} ({summary.counts_line(report)}) "
        f"to the webhook in {variable}"
    ]
