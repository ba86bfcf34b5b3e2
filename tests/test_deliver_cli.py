"""`deploystats deliver jira|slack|email` as a user runs them (subprocess)."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

from tests.conftest import run_deploystats
from tests.fakejira import FakeJira
from tests.fakeslack import FakeSlack
from tests.reportdir import write_report
from tests.smtpserver import SMTPServer

STEM = "epic-closure-INFRA-472"


def write_config(folder: Path, *, jira_url: str = "http://127.0.0.1:9", smtp_port: int = 9) -> None:
    (folder / "deploystats.yml").write_text(
        "delivery:\n"
        f"  jira: {{url: '{jira_url}', auth: basic, user_env: JIRA_USER, token_env: JIRA_TOKEN}}\n"
        "  slack: {webhook_env: SLACK_WEBHOOK_URL}\n"
        f"  email: {{smtp_host: 127.0.0.1, port: {smtp_port}, security: none,"
        " from: sre@example.com, to: [team@example.com]}\n",
        encoding="utf-8",
    )


def test_deliver_jira_with_comment_then_again(tmp_path: Path) -> None:
    folder = write_report(tmp_path / "reports", kind="epic-closure", period="INFRA-472")
    with FakeJira() as fake:
        write_config(tmp_path, jira_url=fake.url)
        env = {"JIRA_USER": fake.user, "JIRA_TOKEN": fake.token}
        args = ("deliver", "jira", "INFRA-472", "reports/epic-closure/INFRA-472", "--comment")
        first = run_deploystats(*args, cwd=tmp_path, env=env)
        second = run_deploystats(*args, cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    sizes = {n: (folder / f"{STEM}.{n}").stat().st_size for n in ("html", "json", "md")}
    assert first.stdout.splitlines() == [
        f"jira INFRA-472: attached {STEM}.html ({sizes['html']:,} bytes)",
        f"jira INFRA-472: attached {STEM}.json ({sizes['json']:,} bytes)",
        f"jira INFRA-472: attached {STEM}.md ({sizes['md']:,} bytes)",
        "jira INFRA-472: comment added with 4 items (wiki markup, JIRA Server)",
    ]
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == [
        f"jira INFRA-472: {STEM}.html already attached with the same content, skipped",
        f"jira INFRA-472: {STEM}.json already attached with the same content, skipped",
        f"jira INFRA-472: {STEM}.md already attached with the same content, skipped",
        "jira INFRA-472: a comment for this evidence is already there, skipped",
    ]
    assert len(fake.attachments["INFRA-472"]) == 3 and len(fake.comments["INFRA-472"]) == 1
    assert fake.unexpected == []


def test_deliver_slack_and_email(tmp_path: Path) -> None:
    write_report(tmp_path / "reports")
    with FakeSlack() as slack, SMTPServer(security="none") as smtp:
        write_config(tmp_path, smtp_port=smtp.port)
        env = {"SLACK_WEBHOOK_URL": slack.webhook_url}
        posted = run_deploystats(
            "deliver", "slack", "reports/weekly-slo/2026-W47", cwd=tmp_path, env=env
        )
        sent = run_deploystats("deliver", "email", "reports/weekly-slo/2026-W47", cwd=tmp_path)
    assert posted.returncode == 0, posted.stderr
    assert posted.stdout.startswith("slack: posted the summary of Weekly SLO report 2026-W47")
    assert len(slack.messages) == 1
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith("email: sent 'Weekly SLO report 2026-W47: 2 met, 1 at risk")
    [received] = smtp.messages
    message = email.message_from_bytes(received.data, policy=email.policy.default)
    assert message["To"] == "team@example.com"


def test_bad_input_is_one_line_and_exit_1(tmp_path: Path) -> None:
    write_report(tmp_path / "reports", kind="epic-closure", period="INFRA-472")
    write_config(tmp_path)
    folder = "reports/epic-closure/INFRA-472"
    bad_key = run_deploystats("deliver", "jira", "infra-472", folder, cwd=tmp_path)
    no_token = run_deploystats(
        "deliver",
        "jira",
        "INFRA-472",
        folder,
        cwd=tmp_path,
        env={"JIRA_USER": "sre", "JIRA_TOKEN": ""},
    )
    no_folder = run_deploystats("deliver", "slack", "reports/nowhere", cwd=tmp_path)
    assert (bad_key.returncode, bad_key.stderr) == (
        1,
        "deploystats: error: 'infra-472' is not a JIRA issue key: use the form ABC-123 "
        "(project key in capitals)\n",
    )
    assert (no_token.returncode, no_token.stderr) == (
        1,
        "deploystats: error: delivery credential missing: set JIRA_TOKEN (named in "
        "delivery.jira.token_env)\n",
    )
    assert no_folder.returncode == 1
    assert no_folder.stderr == (
        "deploystats: error: reports/nowhere is not a report folder: pass one such as "
        "reports/weekly-slo/2026-W47\n"
    )
