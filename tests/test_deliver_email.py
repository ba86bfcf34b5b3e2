"""E-mail delivery against a real SMTP server (aiosmtpd), messages parsed with `email`."""

from __future__ import annotations

import email
import email.policy
import socket
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from deploystats.config import Settings
from deploystats.deliver import deliver_report
from deploystats.errors import DeliveryError
from tests.reportdir import write_report
from tests.smtpserver import SMTPServer, make_certificate

STEM = "weekly-slo-2026-W47"
PASSWORD = "smtp-pa55word"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


def settings_for(server: SMTPServer, **email_options: Any) -> Settings:
    config = {
        "smtp_host": "127.0.0.1",
        "port": server.port,
        "security": server.security,
        "from": "sre@example.com",
        "to": ["team@example.com", "lead@example.com"],
        **email_options,
    }
    return Settings.model_validate({"delivery": {"email": config}})


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def parsed(server: SMTPServer) -> EmailMessage:
    [received] = server.messages
    message = email.message_from_bytes(received.data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_starttls_with_login_sends_html_summary_and_the_report(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    folder = write_report(tmp_path, base_url="https://reports.example.com")
    with SMTPServer(
        security="starttls", certificate=certificate, credentials=("sre", PASSWORD)
    ) as server:
        settings = settings_for(
            server, username="sre", password_env="SMTP_PASSWORD", ca_file=str(certificate[0])
        )
        lines = deliver_report(folder, "email", settings, environ={"SMTP_PASSWORD": PASSWORD})
    subject = "Weekly SLO report 2026-W47: 2 met, 1 at risk, 1 MISSED"
    assert lines == [
        f"email: sent {subject!r} to team@example.com, lead@example.com via "
        f"127.0.0.1:{server.port} (STARTTLS) with {STEM}.html, {STEM}.json attached"
    ]
    [received] = server.messages
    assert received.login == "sre"
    assert received.mail_from == "sre@example.com"
    assert received.rcpt_tos == ["team@example.com", "lead@example.com"]
    message = parsed(server)
    assert message["Subject"] == subject
    assert message["To"] == "team@example.com, lead@example.com"
    html = message.get_body(preferencelist=("html",))
    assert html is not None
    body = html.get_content()
    assert "<h2>Weekly SLO report 2026-W47</h2>" in body
    assert ">&gt;= 95 %</td>" in body and ">97.9 % [89.1, 99.6]</td>" in body
    assert ';color:#cf222e;font-weight:bold">MISSED</td>' in body
    assert f'<a href="https://reports.example.com/weekly-slo/2026-W47/{STEM}.html">' in body
    text = message.get_body(preferencelist=("plain",))
    assert text is not None
    assert "- runner-availability: MISSED: 98.7 % (objective >= 99.5 %)" in text.get_content()
    attachments = {part.get_filename(): part for part in message.iter_attachments()}
    assert sorted(attachments) == [f"{STEM}.html", f"{STEM}.json"]
    for name, part in attachments.items():
        assert part.get_payload(decode=True) == (folder / name).read_bytes()
    assert attachments[f"{STEM}.html"].get_content_type() == "text/html"


def test_implicit_tls(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    folder = write_report(tmp_path)
    with SMTPServer(security="ssl", certificate=certificate) as server:
        settings = settings_for(server, ca_file=str(certificate[0]))
        [line] = deliver_report(folder, "email", settings, environ={})
    assert line.endswith(
        f"via 127.0.0.1:{server.port} (TLS) with {STEM}.html, {STEM}.json attached"
    )
    assert parsed(server)["Subject"].startswith("Weekly SLO report 2026-W47")


def test_plain_smtp(tmp_path: Path) -> None:
    folder = write_report(tmp_path, stale=True)
    with SMTPServer(security="none") as server:
        deliver_report(folder, "email", settings_for(server), environ={})
    assert parsed(server)["Subject"] == (
        "[STALE] Weekly SLO report 2026-W47: 2 met, 1 at risk, 1 MISSED"
    )


def test_wrong_password_names_the_variable_not_the_value(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    folder = write_report(tmp_path)
    with SMTPServer(
        security="starttls", certificate=certificate, credentials=("sre", PASSWORD)
    ) as server:
        settings = settings_for(
            server, username="sre", password_env="SMTP_PASSWORD", ca_file=str(certificate[0])
        )
        with pytest.raises(DeliveryError) as caught:
            deliver_report(folder, "email", settings, environ={"SMTP_PASSWORD": "not-it-123"})
    assert str(caught.value) == (
        f"SMTP server 127.0.0.1:{server.port} rejected the login of 'sre' "
        "(535 5.7.8 Authentication credentials invalid): check SMTP_PASSWORD "
        "(delivery.email.password_env)"
    )
    assert server.messages == []


def test_untrusted_certificate_points_at_ca_file(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    folder = write_report(tmp_path)
    with (
        SMTPServer(security="starttls", certificate=certificate) as server,
        pytest.raises(DeliveryError) as caught,
    ):
        deliver_report(folder, "email", settings_for(server), environ={})
    message = str(caught.value)
    assert message.startswith(f"TLS with SMTP server 127.0.0.1:{server.port} failed: self")
    assert message.endswith(": set delivery.email.ca_file to the CA that signed its certificate")


def test_server_without_starttls(tmp_path: Path) -> None:
    folder = write_report(tmp_path)
    with SMTPServer(security="none") as server, pytest.raises(DeliveryError) as caught:
        deliver_report(folder, "email", settings_for(server, security="starttls"), environ={})
    assert str(caught.value) == (
        f"SMTP server 127.0.0.1:{server.port}: it does not offer STARTTLS; use security: ssl "
        "(port 465) if it speaks TLS: check delivery.email.security"
    )


def test_transient_refusal_is_retried(tmp_path: Path) -> None:
    folder = write_report(tmp_path)
    sleeps = Sleeps()
    with SMTPServer(security="none") as server:
        server.refuse_next("451 4.3.0 Try again later")
        deliver_report(folder, "email", settings_for(server), environ={}, sleep=sleeps)
    assert sleeps == [1.0]
    assert len(server.messages) == 1


def test_permanent_refusal_is_not_retried(tmp_path: Path) -> None:
    folder = write_report(tmp_path)
    sleeps = Sleeps()
    with SMTPServer(security="none") as server:
        server.refuse_next("554 5.7.1 Message rejected as spam")
        with pytest.raises(DeliveryError) as caught:
            deliver_report(folder, "email", settings_for(server), environ={}, sleep=sleeps)
    assert str(caught.value) == (
        f"SMTP server 127.0.0.1:{server.port} answered 554 5.7.1 Message rejected as spam"
    )
    assert sleeps == []


def test_unreachable_server_is_retried_then_named(tmp_path: Path) -> None:
    folder = write_report(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings.model_validate(
        {
            "delivery": {
                "email": {
                    "smtp_host": "127.0.0.1",
                    "port": port,
                    "security": "none",
                    "from": "sre@example.com",
                    "to": ["team@example.com"],
                }
            }
        }
    )
    sleeps = Sleeps()
    with pytest.raises(DeliveryError) as caught:
        deliver_report(folder, "email", settings, environ={}, sleep=sleeps)
    assert str(caught.value) == (
        f"cannot deliver to SMTP server 127.0.0.1:{port}: Connection refused (3 tries): check "
        "delivery.email.smtp_host and port, or try later"
    )
    assert sleeps == [1.0, 2.0]
