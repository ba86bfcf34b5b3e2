"""Report folders as delivery reads them, delivery specs, and the delivery config section."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deploystats.config import load_settings
from deploystats.deliver import load_report, parse_specs
from deploystats.errors import ConfigError, DeliveryError
from tests.reportdir import write_report

STEM = "epic-closure-INFRA-472"


def test_report_folder_is_read_from_its_evidence(tmp_path: Path) -> None:
    folder = write_report(
        tmp_path,
        kind="epic-closure",
        period="INFRA-472",
        generated_at="2026-12-01T09:15:00Z",
        sidecar_rows=2,
    )
    report = load_report(folder)
    assert (report.kind, report.period, report.title) == (
        "epic-closure",
        "INFRA-472",
        "Epic closure INFRA-472",
    )
    assert report.generated_at == datetime(2026, 12, 1, 9, 15, tzinfo=UTC)
    assert [p.name for p in report.attachments] == [
        f"{STEM}.html",
        f"{STEM}.json",
        f"{STEM}.md",
        f"{STEM}.rows.parquet",
    ]
    assert report.counts() == {"met": 2, "at_risk": 1, "missed": 1}
    assert report.url is None and report.location == str((folder / f"{STEM}.html").resolve())


@pytest.mark.parametrize("missing", [".html", ".md", ".ipynb", ".rows.parquet"])
def test_a_missing_report_file_is_named(tmp_path: Path, missing: str) -> None:
    folder = write_report(tmp_path, kind="epic-closure", period="INFRA-472", sidecar_rows=1)
    (folder / f"{STEM}{missing}").unlink()
    with pytest.raises(DeliveryError) as caught:
        load_report(folder)
    assert str(caught.value) == (
        f"{folder}: report files missing: {STEM}{missing}: render it again with "
        "`deploystats report ... --force`"
    )


def test_a_folder_without_evidence_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DeliveryError) as caught:
        load_report(tmp_path)
    assert str(caught.value) == (
        f"{tmp_path}: expected exactly one evidence file <kind>-<period>.json, found none: "
        "pass the folder `deploystats report` wrote"
    )
    with pytest.raises(DeliveryError, match="is not a report folder"):
        load_report(tmp_path / "nowhere")


def test_malformed_evidence_is_named(tmp_path: Path) -> None:
    folder = write_report(tmp_path)
    path = folder / "weekly-slo-2026-W47.json"
    evidence = json.loads(path.read_text())
    evidence["summary"]["items"][0]["status"] = "green"
    path.write_text(json.dumps(evidence))
    with pytest.raises(DeliveryError) as caught:
        load_report(folder)
    assert str(caught.value) == (
        f"{path}: not a deploystats evidence file (status 'green' is not one of met, at_risk, "
        "missed, insufficient_data, manual): render it again with `deploystats report ... --force`"
    )
    del evidence["window"]
    path.write_text(json.dumps(evidence))
    with pytest.raises(DeliveryError, match=r"not a deploystats evidence file \(no key 'window'\)"):
        load_report(folder)


def test_delivery_specs_are_checked_up_front() -> None:
    assert parse_specs("slack, email,jira:INFRA-472") == ["slack", "email", "jira:INFRA-472"]
    with pytest.raises(DeliveryError) as caught:
        parse_specs("slack,teams")
    assert str(caught.value) == (
        "unknown delivery 'teams': use slack, email or jira:ISSUE-KEY, separated by commas"
    )
    with pytest.raises(DeliveryError, match="is not a JIRA issue key"):
        parse_specs("jira:infra-472")


def test_delivery_config_keys(tmp_path: Path) -> None:
    config = tmp_path / "deploystats.yml"
    config.write_text(
        "delivery:\n"
        "  jira: {url: 'https://jira.example.com/', auth: bearer, token_env: JIRA_PAT,"
        " max_attachment_size: 10MiB}\n"
        "  slack: {webhook_env: SRE_WEBHOOK}\n"
        "  email: {smtp_host: smtp.example.com, security: ssl, username: sre,"
        " password_env: SMTP_PASSWORD, from: sre@example.com, to: [team@example.com]}\n"
    )
    delivery = load_settings(config).delivery
    assert delivery.jira is not None and delivery.slack is not None
    assert delivery.email is not None
    assert delivery.jira.url == "https://jira.example.com"
    assert delivery.jira.max_attachment_size == 10 * 1024 * 1024
    assert delivery.slack.webhook_env == "SRE_WEBHOOK"
    assert (delivery.email.smtp_port, delivery.email.from_) == (465, "sre@example.com")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("jira: {url: x}", "delivery.jira.url: 'x' is not an http(s) URL"),
        ("jira: {url: 'https://j', token: abc}", "delivery.jira.token: unknown key"),
        ("teams: {}", "delivery.teams: unknown key"),
        (
            "email: {smtp_host: h, security: none, username: u, password_env: P, from: a, to: [b]}",
            "delivery.email: username with security: none would send the password",
        ),
        ("email: {smtp_host: h, from: a, to: []}", "delivery.email.to: List should have at least"),
    ],
)
def test_delivery_config_errors_are_one_line(tmp_path: Path, text: str, error: str) -> None:
    config = tmp_path / "deploystats.yml"
    config.write_text("delivery:\n  " + text + "\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert str(caught.value).startswith(f"{config}: {error}")
    assert "\n" not in str(caught.value)


def test_settings_and_epic_files_share_one_line_file_errors(tmp_path: Path) -> None:
    from deploystats.reports.epic import load_epic

    bad = tmp_path / "bad.yml"
    bad.write_text("targets:\n  - name: [unclosed\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(bad)
    assert str(caught.value) == f"{bad}: not valid YAML at line 3 column 1"
    with pytest.raises(ConfigError) as caught:
        load_epic(bad)
    assert str(caught.value) == f"epic file {bad}: not valid YAML at line 3 column 1"
    with pytest.raises(ConfigError) as caught:
        load_epic(tmp_path / "missing.yml")
    assert str(caught.value) == f"epic file {tmp_path / 'missing.yml'}: No such file or directory"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(bad)
    assert str(caught.value) == f"{bad}: expected a mapping of settings at the top level"
