"""Slack delivery against a local incoming-webhook receiver."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from deploystats.config import Settings
from deploystats.deliver import deliver_report
from deploystats.errors import ConfigError, DeliveryError
from tests.fakeslack import WEBHOOK_PATH, FakeSlack
from tests.reportdir import write_report

SETTINGS = Settings.model_validate({"delivery": {"slack": {"webhook_env": "SLACK_WEBHOOK_URL"}}})
STEM = "weekly-slo-2026-W47"


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_posts_block_kit_with_a_plain_text_fallback(tmp_path: Path) -> None:
    folder = write_report(tmp_path, base_url="https://reports.example.com")
    with FakeSlack() as slack:
        lines = deliver_report(
            folder, "slack", SETTINGS, environ={"SLACK_WEBHOOK_URL": slack.webhook_url}
        )
    assert lines == [
        "slack: posted the summary of Weekly SLO report 2026-W47 (2 met, 1 at risk, 1 MISSED) "
        "to the webhook in SLACK_WEBHOOK_URL"
    ]
    assert slack.unexpected == []
    [message] = slack.messages
    blocks = message["blocks"]
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Weekly SLO report 2026-W47", "emoji": True},
    }
    assert blocks[1]["elements"][0]["text"] == (
        "2026-11-16 00:00 – 2026-11-23 00:00 UTC, data as of 2026-11-24 05:58"
    )
    assert blocks[2]["text"]["text"].splitlines() == [
        ":white_check_mark: *deploy-success* met: 97.9 % [89.1, 99.6] (objective &gt;= 95 %, n=48)",
        ":white_check_mark: *deploy-p95* met: 7.2 min (objective &lt;= 10 min, n=47)",
        ":warning: *deploy-fast* at risk: 93.6 % [82.8, 97.8] (objective &gt;= 95 %, n=47)",
        ":x: *runner-availability* MISSED: 98.7 % (objective &gt;= 99.5 %)",
    ]
    assert blocks[3]["text"]["text"].splitlines() == [
        "*Notable*",
        "• <https://github.com/acme/platform/actions/runs/9876543210|Rollback of acme/platform "
        "run 9876543210 (deploy failed health check) &lt;24 h&gt;>",
        "• Runner dell-r640-01 down 2 h 10 min on Tuesday",
    ]
    assert blocks[4]["elements"][0]["text"] == (
        f"<https://reports.example.com/weekly-slo/2026-W47/{STEM}.html|Full report>"
    )
    assert message["text"].splitlines() == [
        "Weekly SLO report 2026-W47",
        "2026-11-16 00:00 – 2026-11-23 00:00 UTC, data as of 2026-11-24 05:58",
        "",
        "- deploy-success: met: 97.9 % [89.1, 99.6] (objective >= 95 %, n=48)",
        "- deploy-p95: met: 7.2 min (objective <= 10 min, n=47)",
        "- deploy-fast: at risk: 93.6 % [82.8, 97.8] (objective >= 95 %, n=47)",
        "- runner-availability: MISSED: 98.7 % (objective >= 99.5 %)",
        "",
        "Notable:",
        "- Rollback of acme/platform run 9876543210 (deploy failed health check) <24 h> "
        "https://github.com/acme/platform/actions/runs/9876543210",
        "- Runner dell-r640-01 down 2 h 10 min on Tuesday",
        "",
        f"Full report: https://reports.example.com/weekly-slo/2026-W47/{STEM}.html",
    ]


def test_without_base_url_the_local_path_is_given(tmp_path: Path) -> None:
    folder = write_report(tmp_path, stale=True)
    with FakeSlack() as slack:
        deliver_report(folder, "slack", SETTINGS, environ={"SLACK_WEBHOOK_URL": slack.webhook_url})
    [message] = slack.messages
    html = (folder / f"{STEM}.html").resolve()
    assert message["blocks"][-1]["elements"][0]["text"] == f"Full report: `{html}`"
    assert message["blocks"][1]["elements"][0]["text"].endswith(
        " [STALE: the last sync ended before the window end]"
    )


def test_many_items_stay_within_block_kit_limits(tmp_path: Path) -> None:
    items = [
        {
            "id": f"slo-{i}",
            "name": f"slo-{i}-" + "x" * 60,
            "objective": ">= 95 %",
            "actual": "97.0 %",
            "n": i,
            "status": "met",
        }
        for i in range(120)
    ]
    folder = write_report(tmp_path, items=items)
    with FakeSlack() as slack:
        deliver_report(folder, "slack", SETTINGS, environ={"SLACK_WEBHOOK_URL": slack.webhook_url})
    assert slack.unexpected == []
    [message] = slack.messages
    sections = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    assert sum(len(text.splitlines()) for text in sections[:-1]) == 120
    assert max(len(text) for text in sections) <= 3000


def test_429_with_retry_after_is_waited_out(tmp_path: Path) -> None:
    folder = write_report(tmp_path)
    sleeps = Sleeps()
    with FakeSlack() as slack:
        slack.fail(429, "rate_limited", headers={"Retry-After": "3"})
        deliver_report(
            folder,
            "slack",
            SETTINGS,
            environ={"SLACK_WEBHOOK_URL": slack.webhook_url},
            sleep=sleeps,
        )
    assert sleeps == [3.0]
    assert slack.statuses == [429, 200]
    assert len(slack.messages) == 1


def test_revoked_webhook_is_named_without_its_secret_path(tmp_path: Path) -> None:
    folder = write_report(tmp_path)
    with FakeSlack() as slack:
        slack.fail(404, "no_service")
        with pytest.raises(DeliveryError) as caught:
            deliver_report(
                folder, "slack", SETTINGS, environ={"SLACK_WEBHOOK_URL": slack.webhook_url}
            )
    host = slack.webhook_url.removesuffix(WEBHOOK_PATH)
    assert str(caught.value) == (
        f"Slack webhook at {host} answered 404 (no_service): the webhook was revoked or is "
        "wrong: set SLACK_WEBHOOK_URL to a current one"
    )


def test_unreachable_webhook_is_named_without_its_secret_path(tmp_path: Path) -> None:
    folder = write_report(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
    sleeps = Sleeps()
    with pytest.raises(DeliveryError) as caught:
        deliver_report(folder, "slack", SETTINGS, environ={"SLACK_WEBHOOK_URL": url}, sleep=sleeps)
    message = str(caught.value)
    assert message.startswith(f"cannot reach Slack webhook at http://127.0.0.1:{port} (POST): ")
    assert message.endswith("(5 tries): check the URL in SLACK_WEBHOOK_URL")
    assert "s3cr3t" not in message and "/services/" not in message
    assert sleeps == [1.0, 2.0, 4.0, 8.0]


def test_missing_or_malformed_webhook_variable(tmp_path: Path) -> None:
    folder = write_report(tmp_path)
    with pytest.raises(ConfigError) as caught:
        deliver_report(folder, "slack", SETTINGS, environ={})
    assert str(caught.value) == (
        "delivery credential missing: set SLACK_WEBHOOK_URL (named in delivery.slack.webhook_env)"
    )
    with pytest.raises(ConfigError) as caught:
        deliver_report(folder, "slack", SETTINGS, environ={"SLACK_WEBHOOK_URL": "T00/B00/secret"})
    assert "secret" not in str(caught.value)
    assert str(caught.value).startswith("SLACK_WEBHOOK_URL does not hold an http(s) URL")
