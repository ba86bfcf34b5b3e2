"""JIRA delivery against the fake JIRA REST server: attachments, idempotence, comments, errors."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path
from typing import Any

import pytest

from deploystats.config import Settings
from deploystats.deliver import deliver_report
from deploystats.errors import ConfigError, DeliveryError
from tests.fakejira import FakeJira
from tests.reportdir import write_report

KEY = "INFRA-472"
STEM = "weekly-slo-2026-W47"
NAMES = [f"{STEM}.html", f"{STEM}.json", f"{STEM}.md"]


def settings_for(url: str, **jira: Any) -> Settings:
    return Settings.model_validate({"delivery": {"jira": {"url": url, **jira}}})


def env_for(fake: FakeJira) -> dict[str, str]:
    return {"JIRA_USER": fake.user, "JIRA_TOKEN": fake.token}


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def deliver(folder: Path, fake: FakeJira, **options: Any) -> list[str]:
    settings = options.pop("settings", None) or settings_for(fake.url)
    return deliver_report(
        folder,
        f"jira:{options.pop('key', KEY)}",
        settings,
        environ=options.pop("environ", None) or env_for(fake),
        sleep=options.pop("sleep", Sleeps()),
        **options,
    )


def stored(fake: FakeJira) -> dict[str, bytes]:
    return {a.filename: a.data for a in fake.attachments[KEY]}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_attaches_html_json_md_and_sidecars(tmp_path: Path) -> None:
    folder = write_report(tmp_path, sidecar_rows=3)
    with FakeJira() as fake:
        lines = deliver(folder, fake)
    files = [*NAMES, f"{STEM}.rows.parquet"]
    assert stored(fake) == {name: (folder / name).read_bytes() for name in files}
    sizes = [(folder / name).stat().st_size for name in files]
    assert lines == [
        f"jira {KEY}: attached {name} ({size:,} bytes)"
        for name, size in zip(files, sizes, strict=True)
    ]
    assert [a.mime_type for a in fake.attachments[KEY]] == [
        "text/html",
        "application/json",
        "text/markdown",
        "application/vnd.apache.parquet",
    ]
    assert fake.calls() == [
        f"GET /rest/api/2/issue/{KEY}",
        "GET /rest/api/2/attachment/meta",
        *[f"POST /rest/api/2/issue/{KEY}/attachments"] * 4,
    ]
    assert fake.unexpected == []


def test_delivering_again_attaches_nothing(tmp_path: Path) -> None:
    folder = write_report(tmp_path)
    with FakeJira() as fake:
        deliver(folder, fake)
        fake.requests.clear()
        lines = deliver(folder, fake)
    assert lines == [
        f"jira {KEY}: {name} already attached with the same content, skipped" for name in NAMES
    ]
    assert len(fake.attachments[KEY]) == 3
    downloads = [f"GET /secure/attachment/{a.id}/{a.filename}" for a in fake.attachments[KEY]]
    assert fake.calls() == [
        f"GET /rest/api/2/issue/{KEY}",
        "GET /rest/api/2/attachment/meta",
        *downloads,
    ]
    assert fake.unexpected == []


def test_changed_report_is_attached_under_its_generation_time(tmp_path: Path) -> None:
    folder = write_report(tmp_path)
    first = {name: (folder / name).read_bytes() for name in NAMES}
    with FakeJira() as fake:
        deliver(folder, fake)
        write_report(tmp_path, generated_at="2026-11-25T08:30:00+01:00", html_note="re-rendered")
        lines = deliver(folder, fake)
        again = deliver(folder, fake)
    html, evidence = (folder / f"{STEM}.html"), (folder / f"{STEM}.json")
    assert lines == [
        f"jira {KEY}: attached {STEM}.html as {STEM}.20261125T073000Z.html "
        f"({html.stat().st_size:,} bytes): its content differs from the {STEM}.html already "
        "attached",
        f"jira {KEY}: attached {STEM}.json as {STEM}.20261125T073000Z.json "
        f"({evidence.stat().st_size:,} bytes): its content differs from the {STEM}.json already "
        "attached",
        f"jira {KEY}: {STEM}.md already attached with the same content, skipped",
    ]
    assert stored(fake) == {
        **first,  # the evidence attached first is still there, unchanged
        f"{STEM}.20261125T073000Z.html": html.read_bytes(),
        f"{STEM}.20261125T073000Z.json": evidence.read_bytes(),
    }
    assert again == [
        f"jira {KEY}: {STEM}.20261125T073000Z.html already attached with the same content, skipped",
        f"jira {KEY}: {STEM}.20261125T073000Z.json already attached with the same content, skipped",
        f"jira {KEY}: {STEM}.md already attached with the same content, skipped",
    ]
    assert fake.unexpected == []


def test_same_size_but_different_content_is_told_apart_by_digest(tmp_path: Path) -> None:
    folder = write_report(tmp_path)
    markdown = (folder / f"{STEM}.md").read_bytes()
    forged = markdown.replace(b"met", b"MET")
    assert len(forged) == len(markdown) and forged != markdown
    with FakeJira() as fake:
        fake.add_attachment(KEY, f"{STEM}.md", forged)
        lines = deliver(folder, fake)
    assert lines[2].startswith(f"jira {KEY}: attached {STEM}.md as {STEM}.20261124T060000Z.md")
    assert stored(fake)[f"{STEM}.20261124T060000Z.md"] == markdown
    assert stored(fake)[f"{STEM}.md"] == forged


def test_429_with_retry_after_is_waited_out_and_nothing_is_attached_twice(
    tmp_path: Path,
) -> None:
    folder = write_report(tmp_path)
    sleeps = Sleeps()
    with FakeJira() as fake:
        fake.fail("POST", r".*/attachments", 429, times=2, headers={"Retry-After": "7"})
        fake.fail("GET", r"/rest/api/2/attachment/meta", 503)
        waits: list[str] = []
        deliver(folder, fake, sleep=sleeps, on_wait=waits.append)
    assert sleeps == [1.0, 7.0, 7.0]  # 503 without Retry-After: backoff 1 s
    assert waits[1] == "JIRA: waiting 7s after 429 (try 2 of 5)"
    assert sorted(stored(fake)) == sorted(NAMES)
    statuses = [r.status for r in fake.requests if r.method == "POST"]
    assert statuses == [429, 429, 200, 200, 200]


def test_retry_after_as_http_date_is_measured_with_the_clock(tmp_path: Path) -> None:
    folder = write_report(tmp_path)
    sleeps = Sleeps()
    retry_at = "Tue, 24 Nov 2026 06:10:30 GMT"
    now = 1795500600.0  # 2026-11-24T06:10:00Z
    with FakeJira() as fake:
        fake.fail("GET", rf"/rest/api/2/issue/{KEY}", 429, headers={"Retry-After": retry_at})
        deliver(folder, fake, sleep=sleeps, clock=lambda: now)
    assert sleeps == [30.0]


def test_a_server_asking_to_wait_too_long_is_an_error(tmp_path: Path) -> None:
    folder = write_report(tmp_path)
    with FakeJira() as fake:
        fake.fail("GET", rf"/rest/api/2/issue/{KEY}", 429, headers={"Retry-After": "3600"})
        with pytest.raises(DeliveryError) as caught:
            deliver(folder, fake)
    assert str(caught.value) == (
        f"JIRA at {fake.url} answered 429 to GET /rest/api/2/issue/{KEY} and asks to wait "
        "3600 s (more than 300 s): try later"
    )


def test_unknown_issue_is_one_line_naming_it(tmp_path: Path) -> None:
    folder = write_report(tmp_path)
    with FakeJira() as fake, pytest.raises(DeliveryError) as caught:
        deliver(folder, fake, key="INFRA-999")
    assert str(caught.value) == (
        f"JIRA issue INFRA-999 not found at {fake.url} (404: Issue does not exist or you do not "
        "have permission to see it.): check the key, and that the account may see the issue"
    )
    assert fake.calls("POST") == []


def test_wrong_credentials_name_the_variables_not_the_values(tmp_path: Path) -> None:
    folder = write_report(tmp_path)
    with FakeJira() as fake, pytest.raises(DeliveryError) as caught:
        deliver(folder, fake, environ={"JIRA_USER": fake.user, "JIRA_TOKEN": "wrong-token-9"})
    message = str(caught.value)
    assert message == (
        f"JIRA at {fake.url} rejected the credentials (401) for GET /rest/api/2/issue/{KEY}: "
        "check JIRA_USER and JIRA_TOKEN (delivery.jira)"
    )
    assert "wrong-token-9" not in message and fake.user not in message


def test_bearer_token_authenticates(tmp_path: Path) -> None:
    folder = write_report(tmp_path)
    with FakeJira(auth="bearer", token="pat-ABCDEF") as fake:
        settings = settings_for(fake.url, auth="bearer", token_env="JIRA_PAT")
        deliver(folder, fake, settings=settings, environ={"JIRA_PAT": "pat-ABCDEF"})
        with pytest.raises(DeliveryError, match=r"check JIRA_PAT \(a personal access token\)"):
            deliver(folder, fake, settings=settings, environ={"JIRA_PAT": "pat-WRONG"})
    assert sorted(stored(fake)) == sorted(NAMES)


def test_unreachable_host_is_retried_then_named(tmp_path: Path) -> None:
    folder = write_report(tmp_path)
    url = f"http://127.0.0.1:{closed_port()}"
    sleeps = Sleeps()
    with pytest.raises(DeliveryError) as caught:
        deliver_report(
            folder,
            f"jira:{KEY}",
            settings_for(url),
            environ={"JIRA_USER": "u", "JIRA_TOKEN": "t0ken-value"},
            sleep=sleeps,
        )
    message = str(caught.value)
    assert message.startswith(
        f"cannot reach JIRA at {url} (GET /rest/api/2/issue/{KEY}): ConnectError: "
    )
    assert message.endswith("(5 tries): check delivery.jira.url")
    assert sleeps == [1.0, 2.0, 4.0, 8.0]
    assert "t0ken-value" not in message


@pytest.mark.parametrize("key", ["infra-472", "INFRA472", "INFRA-0", "I-1", "INFRA-472 "])
def test_malformed_issue_key_is_refused_before_any_request(tmp_path: Path, key: str) -> None:
    folder = write_report(tmp_path)
    with pytest.raises(DeliveryError) as caught:
        deliver_report(folder, f"jira:{key}", settings_for("http://127.0.0.1:9"), environ={})
    assert str(caught.value) == (
        f"{key!r} is not a JIRA issue key: use the form ABC-123 (project key in capitals)"
    )


def test_file_above_the_server_limit_is_refused_before_uploading(tmp_path: Path) -> None:
    folder = write_report(tmp_path, html_padding=5000)
    size = (folder / f"{STEM}.html").stat().st_size
    with FakeJira(upload_limit=4096) as fake, pytest.raises(DeliveryError) as caught:
        deliver(folder, fake)
    assert str(caught.value) == (
        f"{STEM}.html is {size:,} bytes, more than the 4,096 bytes JIRA at {fake.url} accepts "
        "(its upload limit): nothing was attached; raise the limit, or publish the report at "
        "reports.base_url and deliver the link"
    )
    assert fake.attachments[KEY] == []


def test_413_from_the_server_reports_its_limit(tmp_path: Path) -> None:
    folder = write_report(tmp_path, html_padding=5000)
    size = (folder / f"{STEM}.html").stat().st_size
    with FakeJira(upload_limit=4096) as fake:
        fake.fail("GET", r"/rest/api/2/attachment/meta", 404)  # an older server: no meta
        with pytest.raises(DeliveryError) as caught:
            deliver(folder, fake)
    assert str(caught.value) == (
        f"JIRA at {fake.url} refused {STEM}.html ({size:,} bytes) as too large (413: The field "
        "file exceeds its maximum permitted size of 4096 bytes.): raise JIRA's attachment limit, "
        "or publish the report at reports.base_url and deliver the link"
    )


def test_configured_attachment_limit_applies(tmp_path: Path) -> None:
    folder = write_report(tmp_path, html_padding=2000)
    with FakeJira() as fake:
        settings = settings_for(fake.url, max_attachment_size="1KiB")
        with pytest.raises(
            DeliveryError, match=r"more than the 1,024 bytes .*\(delivery.jira.max_"
        ):
            deliver(folder, fake, settings=settings)
    assert fake.attachments[KEY] == []


def test_server_comment_is_wiki_markup_once(tmp_path: Path) -> None:
    folder = write_report(tmp_path, base_url="https://reports.example.com")
    digest = hashlib.sha256((folder / f"{STEM}.json").read_bytes()).hexdigest()
    with FakeJira() as fake:
        lines = deliver(folder, fake, jira_comment=True)
        again = deliver(folder, fake, jira_comment=True)
    assert lines[-1] == f"jira {KEY}: comment added with 4 items (wiki markup, JIRA Server)"
    assert again[-1] == f"jira {KEY}: a comment for this evidence is already there, skipped"
    [comment] = fake.comments[KEY]
    assert comment.api == 2
    assert comment.body.splitlines() == [
        r"*Weekly SLO report 2026\-W47*",
        r"2026\-11\-16 00:00 – 2026\-11\-23 00:00 UTC, data as of 2026\-11\-24 05:58",
        "",
        "||Criterion||Objective||Actual||n||Status||",
        r"|deploy\-success deploy\-success|>= 95 %|97.9 % \[89.1, 99.6\]|48|(/) met|",
        r"|deploy\-p95 deploy\-p95|<= 10 min|7.2 min|47|(/) met|",
        r"|deploy\-fast deploy\-fast|>= 95 %|93.6 % \[82.8, 97.8\]|47|(!) at risk|",
        r"|runner\-availability runner\-availability|>= 99.5 %|98.7 %| |(x) MISSED|",
        "",
        "Notable:",
        r"* [Rollback of acme/platform run 9876543210 (deploy failed health check) <24 h>|"
        "https://github.com/acme/platform/actions/runs/9876543210]",
        "* Runner dell\\-r640\\-01 down 2 h 10 min on Tuesday",
        "",
        f"Evidence: [^{STEM}.html], [^{STEM}.json], [^{STEM}.md]",
        f"[Full report|https://reports.example.com/weekly-slo/2026-W47/{STEM}.html]",
        "",
        f"{{{{deploystats evidence {STEM}.json sha256:{digest}}}}}",
    ]
    assert fake.unexpected == []


def test_cloud_comment_is_adf_and_attachments_download_through_redirects(tmp_path: Path) -> None:
    folder = write_report(tmp_path)
    with FakeJira(deployment_type="Cloud") as fake:
        deliver(folder, fake, jira_comment=True)
        again = deliver(folder, fake, jira_comment=True)
    assert again == [
        *[f"jira {KEY}: {n} already attached with the same content, skipped" for n in NAMES],
        f"jira {KEY}: a comment for this evidence is already there, skipped",
    ]
    assert f"GET /rest/api/3/attachment/content/{fake.attachments[KEY][0].id}" in fake.calls()
    assert any(call.startswith("GET /media/") for call in fake.calls())
    [comment] = fake.comments[KEY]
    assert comment.api == 3 and comment.body["type"] == "doc"
    [table] = [node for node in comment.body["content"] if node["type"] == "table"]
    cells = [
        [cell["content"][0]["content"][0]["text"] for cell in row["content"]]
        for row in table["content"]
    ]
    assert cells[0] == ["Criterion", "Objective", "Actual", "n", "Status"]
    success = ["deploy-success deploy-success", ">= 95 %", "97.9 % [89.1, 99.6]", "48", "met"]
    assert cells[1] == success
    runners = ["runner-availability runner-availability", ">= 99.5 %", "98.7 %", "-", "MISSED"]
    assert cells[4] == runners
    assert fake.unexpected == []


def test_content_links_to_another_host_are_fetched_from_the_configured_one(
    tmp_path: Path,
) -> None:
    folder = write_report(tmp_path)
    with FakeJira(base_url_setting="http://jira.internal.invalid:8080") as fake:
        deliver(folder, fake)
        lines = deliver(folder, fake)
    assert all(line.endswith("already attached with the same content, skipped") for line in lines)


def test_missing_variable_is_named(tmp_path: Path) -> None:
    folder = write_report(tmp_path)
    with pytest.raises(ConfigError) as caught:
        deliver_report(
            folder, f"jira:{KEY}", settings_for("http://127.0.0.1:9"), environ={"JIRA_USER": "u"}
        )
    assert str(caught.value) == (
        "delivery credential missing: set JIRA_TOKEN (named in delivery.jira.token_env)"
    )


def test_missing_jira_config_says_what_to_add(tmp_path: Path) -> None:
    folder = write_report(tmp_path)
    with pytest.raises(ConfigError, match=r"^no JIRA configured: add delivery.jira"):
        deliver_report(folder, f"jira:{KEY}", Settings(), environ={})
