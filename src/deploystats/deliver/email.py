"""E-mail delivery: the summary as HTML (with a plain-text part) over SMTP with STARTTLS, implicit
TLS or none, the report's HTML and evidence JSON attached.

Connection failures and 4xx answers (the server's "try again later") are retried with backoff
through `sleep`; 5xx answers, rejected logins and TLS failures are raised at once.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from deploystats.config import EmailDelivery, Settings
from deploystats.deliver import summary
from deploystats.deliver.http import REAL, Seams
from deploystats.deliver.report import Report
from deploystats.errors import ConfigError, DeliveryError

MAX_TRIES = 3
SUFFIXES = (".html", ".json")  # attached: the full report and its evidence


def build_message(
    report: Report, config: EmailDelivery, *, clock: Callable[[], float] = time.time
) -> EmailMessage:
    """The message: plain text and HTML alternatives, the report files attached."""
    message = EmailMessage()
    message["Subject"] = summary.subject(report)
    message["From"] = config.from_
    message["To"] = ", ".join(config.to)
    message["Date"] = formatdate(clock(), usegmt=True)
    # make_msgid's default domain is socket.getfqdn(), which can stall without DNS
    message["Message-ID"] = make_msgid("deploystats", domain=config.from_.rpartition("@")[2])
    names = [report.path(suffix).name for suffix in SUFFIXES]
    message.set_content(summary.plain_text(report) + "\n\nAttached: " + ", ".join(names) + "\n")
    message.add_alternative(summary.html_body(report, attached=names), subtype="html")
    for suffix in SUFFIXES:
        path = report.path(suffix)
        subtype = "html" if suffix == ".html" else "json"
        maintype = "text" if suffix == ".html" else "application"
        message.add_attachment(
            path.read_bytes(), maintype=maintype, subtype=subtype, filename=path.name
        )
    return message


def deliver_email(
    report: Report,
    settings: Settings,
    *,
    seams: Seams = REAL,
) -> list[str]:
    """Send the report to delivery.email.to; one line saying what was sent."""
    config = settings.delivery.email
    if config is None:
        raise ConfigError(
            "no e-mail configured: add delivery.email {smtp_host, port, security, from, to}"
        )
    password = None
    if config.password_env is not None:
        password = settings.delivery_secret(
            config.password_env, key="delivery.email.password_env", environ=seams.environ
        )
    context = _tls_context(config)
    message = build_message(report, config, clock=seams.clock)
    where = f"{config.smtp_host}:{config.smtp_port}"
    tries = 0
    while True:
        tries += 1
        try:
            _send(config, message, password, context)
            break
        except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError) as exc:
            reason = f"{type(exc).__name__}: {_first_line(exc)}"
        except smtplib.SMTPResponseException as exc:
            if not 400 <= exc.smtp_code < 500:
                raise _answer_error(exc, config, where, password) from None
            reason = f"{exc.smtp_code} {_decode(exc.smtp_error)}"
        except smtplib.SMTPRecipientsRefused as exc:
            refused = ", ".join(sorted(exc.recipients))
            raise DeliveryError(
                f"SMTP server {where} refused the recipients {refused}: fix delivery.email.to"
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(
                f"SMTP server {where}: {_first_line(exc)}: check delivery.email.security"
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(
                f"TLS with SMTP server {where} failed: {exc.verify_message}: set "
                "delivery.email.ca_file to the CA that signed its certificate"
            ) from None
        except ssl.SSLError as exc:
            raise DeliveryError(
                f"TLS with SMTP server {where} failed ({exc.reason or exc}): use security: ssl "
                "for implicit TLS (port 465), starttls for port 587"
            ) from None
        except OSError as exc:  # refused, unreachable, timed out, unknown host
            reason = exc.strerror or type(exc).__name__
        if tries >= MAX_TRIES:
            raise _scrub(
                DeliveryError(
                    f"cannot deliver to SMTP server {where}: {reason} ({tries} tries): check "
                    "delivery.email.smtp_host and port, or try later"
                ),
                password,
            ) from None
        seconds = 2.0 ** (tries - 1)
        if seams.on_wait is not None:
            seams.on_wait(
                f"SMTP: waiting {seconds:.0f}s after {reason} (try {tries + 1} of {MAX_TRIES})"
            )
        seams.sleep(seconds)
    security = {"starttls": "STARTTLS", "ssl": "TLS", "none": "no TLS"}[config.security]
    return [
        f"email: sent {message['Subject']!r} to {', '.join(config.to)} via {where} ({security}) "
        f"with {', '.join(report.path(s).name for s in SUFFIXES)} attached"
    ]


def _send(
    config: EmailDelivery, message: EmailMessage, password: str | None, context: ssl.SSLContext
) -> None:
    host, port = config.smtp_host, config.smtp_port
    timeout = config.timeout.total_seconds()
    local = socket.gethostname()  # EHLO name; the default getfqdn() can stall without DNS
    smtp: smtplib.SMTP
    if config.security == "ssl":
        smtp = smtplib.SMTP_SSL(host, port, local, timeout=timeout, context=context)
    else:
        smtp = smtplib.SMTP(host, port, local, timeout=timeout)
    with smtp:
        smtp.ehlo()
        if config.security == "starttls":
            if not smtp.has_extn("starttls"):
                raise smtplib.SMTPNotSupportedError(
                    "it does not offer STARTTLS; use security: ssl (port 465) if it speaks TLS"
                )
            smtp.starttls(context=context)
            smtp.ehlo()
        if config.username is not None and password is not None:
            if not smtp.has_extn("auth"):
                raise smtplib.SMTPNotSupportedError(
                    "it offers no login (AUTH); remove username and password_env"
                )
            smtp.login(config.username, password)
        smtp.send_message(message)


def _tls_context(config: EmailDelivery) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(
            cafile=str(config.ca_file) if config.ca_file is not None else None
        )
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load delivery.email.ca_file {config.ca_file}: "
            f"{getattr(exc, 'strerror', None) or exc}; point it at a PEM file"
        ) from None


def _answer_error(
    exc: smtplib.SMTPResponseException, config: EmailDelivery, where: str, password: str | None
) -> DeliveryError:
    text = f"{exc.smtp_code} {_decode(exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        error = DeliveryError(
            f"SMTP server {where} rejected the login of {config.username!r} ({text}): check "
            f"{config.password_env} (delivery.email.password_env)"
        )
    elif isinstance(exc, smtplib.SMTPSenderRefused):
        error = DeliveryError(
            f"SMTP server {where} refused the sender {config.from_} ({text}): "
            "fix delivery.email.from"
        )
    else:
        error = DeliveryError(f"SMTP server {where} answered {text}")
    return _scrub(error, password)


def _scrub(error: DeliveryError, password: str | None) -> DeliveryError:
    if password and password in str(error):
        return DeliveryError(str(error).replace(password, "***"))
    return error


def _decode(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return " ".join(text.split())[:300]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
