"""JIRA delivery: report files as issue attachments, idempotent by name and SHA-256 digest, and
optionally a comment with the items table (wiki markup on Server/Data Center, Atlassian Document
Format on Cloud, chosen by /rest/api/2/serverInfo `deploymentType`).

An attachment already on the issue under the file's name (or a generation-time name given to an
earlier changed version) with the same digest is not attached again. A changed file is attached
as `<stem>.<generated_at as 20261124T060000Z>.<ext>`: evidence on an issue is never replaced.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from deploystats.config import JiraDelivery, Settings
from deploystats.deliver import summary
from deploystats.deliver.http import REAL, Endpoint, Seams
from deploystats.deliver.report import Report, sha256_file
from deploystats.errors import ConfigError, DeliveryError

ISSUE_KEY = re.compile(r"[A-Z][A-Z0-9_]+-[1-9][0-9]*")
COMMENT_PAGE = 100
MIME = {".md": "text/markdown", ".parquet": "application/vnd.apache.parquet"}


@dataclass(frozen=True)
class Attachment:
    id: str
    filename: str
    size: int
    content: str  # the download URL JIRA gives


def check_issue_key(key: str) -> str:
    """`key` if it has the form ABC-123, else DeliveryError."""
    if not ISSUE_KEY.fullmatch(key):
        raise DeliveryError(
            f"{key!r} is not a JIRA issue key: use the form ABC-123 (project key in capitals)"
        )
    return key


class JiraClient:
    """The few JIRA REST calls delivery needs, for Cloud and Server/Data Center alike."""

    def __init__(
        self,
        config: JiraDelivery,
        *,
        user: str | None,
        token: str,
        seams: Seams = REAL,
        timeout_s: float = 60,
    ) -> None:
        self.config = config
        self.url = config.url
        if config.auth == "basic":
            credentials = f"{config.user_env} and {config.token_env}"
            auth: httpx.Auth | None = httpx.BasicAuth(user or "", token)
            headers = {}
        else:
            credentials = f"{config.token_env} (a personal access token)"
            auth = None
            headers = {"Authorization": f"Bearer {token}"}
        self._credentials = credentials
        self._origin = _origin(config.url)
        self.http = Endpoint(
            service="JIRA",
            shown=config.url,
            hint="check delivery.jira.url",
            base_url=config.url,
            auth=auth,
            headers={"Accept": "application/json", **headers},
            secrets=[token],
            seams=seams,
            timeout_s=timeout_s,
        )

    def close(self) -> None:
        self.http.close()

    def deployment_type(self) -> str:
        """`Cloud`, `Server` or `DataCenter` (Server when JIRA does not say)."""
        body = self._json("GET", "/rest/api/2/serverInfo")
        return str(body.get("deploymentType") or "Server") if isinstance(body, dict) else "Server"

    def attachments(self, key: str) -> list[Attachment]:
        """The issue's attachments; DeliveryError if the issue does not exist."""
        path = f"/rest/api/2/issue/{key}"
        body = self._json("GET", path, params={"fields": "attachment"}, key=key)
        try:
            return [
                Attachment(str(a["id"]), str(a["filename"]), int(a["size"]), str(a["content"]))
                for a in body["fields"]["attachment"] or []
            ]
        except (KeyError, TypeError, ValueError):
            raise self.http.error(
                f"JIRA at {self.url} answered GET /rest/api/2/issue/{key} without an attachment "
                "list: check delivery.jira.url"
            ) from None

    def upload_limit(self) -> tuple[bool, int | None]:
        """(attachments enabled, the server's upload limit in bytes if it says)."""
        response = self._send("GET", "/rest/api/2/attachment/meta")
        if response.status_code == 404:
            return True, None
        body = self._checked(response, "GET /rest/api/2/attachment/meta", None)
        limit = body.get("uploadLimit") if isinstance(body, dict) else None
        enabled = bool(body.get("enabled", True)) if isinstance(body, dict) else True
        return enabled, int(limit) if isinstance(limit, int) and limit > 0 else None

    def sha256(self, attachment: Attachment) -> str:
        """The digest of an attachment's content, downloaded from JIRA's own host."""
        target = urlsplit(attachment.content)
        url = self._origin + (target.path or "/") + (f"?{target.query}" if target.query else "")
        what = f"GET attachment {attachment.id} ({attachment.filename})"
        response = self.http.request("GET", url, what=what, idempotent=True, follow_redirects=True)
        self._checked(response, what, None, parse=False)
        return hashlib.sha256(response.content).hexdigest()

    def attach(self, key: str, path: Path, name: str) -> None:
        """POST the file as an attachment called `name`."""
        mime = MIME.get(path.suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
        what = f"POST /rest/api/2/issue/{key}/attachments ({name})"
        with path.open("rb") as handle:
            response = self._send(
                "POST",
                f"/rest/api/2/issue/{key}/attachments",
                files={"file": (name, handle, mime)},
                headers={"X-Atlassian-Token": "no-check"},
            )
        if response.status_code == 413:
            raise self.http.error(
                f"JIRA at {self.url} refused {name} ({path.stat().st_size:,} bytes) as too large "
                f"(413{_messages(response)}): raise JIRA's attachment limit, or publish the "
                "report at reports.base_url and deliver the link"
            )
        self._checked(response, what, key)

    def comment_bodies(self, key: str) -> list[str]:
        """The text of every comment on the issue (API v2: strings on Cloud and Server)."""
        bodies: list[str] = []
        while True:
            body = self._json(
                "GET",
                f"/rest/api/2/issue/{key}/comment",
                params={"startAt": str(len(bodies)), "maxResults": str(COMMENT_PAGE)},
                key=key,
            )
            page = body.get("comments") if isinstance(body, dict) else None
            if not page:
                return bodies
            bodies += [str(c.get("body", "")) for c in page]
            if len(bodies) >= int(body.get("total", 0)):
                return bodies

    def add_comment(self, key: str, body: str | dict[str, Any], *, cloud: bool) -> None:
        """A comment: an ADF document through API v3 (Cloud), wiki markup through API v2."""
        path = f"/rest/api/{3 if cloud else 2}/issue/{key}/comment"
        response = self._send("POST", path, json={"body": body})
        self._checked(response, f"POST {path}", key)

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(
            method, path, what=f"{method} {path}", idempotent=method == "GET", **kwargs
        )

    def _json(self, method: str, path: str, *, key: str | None = None, **kwargs: Any) -> Any:
        return self._checked(self._send(method, path, **kwargs), f"{method} {path}", key)

    def _checked(
        self, response: httpx.Response, what: str, key: str | None, *, parse: bool = True
    ) -> Any:
        status = response.status_code
        if status == 401:
            raise self.http.error(
                f"JIRA at {self.url} rejected the credentials (401) for {what}: check "
                f"{self._credentials} (delivery.jira)"
            )
        if status == 404 and key is not None:
            raise self.http.error(
                f"JIRA issue {key} not found at {self.url} (404{_messages(response)}): check the "
                "key, and that the account may see the issue"
            )
        if status == 403:
            raise self.http.error(
                f"JIRA at {self.url} refused {what} (403{_messages(response)}): the account "
                "needs permission to browse the issue, create attachments and add comments"
            )
        if status >= 300:
            raise self.http.error(
                f"JIRA at {self.url} answered {status}{_messages(response)} to {what}"
            )
        if not parse:
            return None
        try:
            return response.json()
        except ValueError:
            raise self.http.error(
                f"JIRA at {self.url} answered {what} with no JSON "
                f"({response.headers.get('content-type', 'no content type')}): "
                "check delivery.jira.url"
            ) from None


def deliver_jira(
    report: Report,
    key: str,
    settings: Settings,
    *,
    comment: bool = False,
    seams: Seams = REAL,
) -> list[str]:
    """Attach the report's files to issue `key` (and comment with --comment); one line per
    thing done or skipped."""
    check_issue_key(key)
    config = settings.delivery.jira
    if config is None:
        raise ConfigError(
            "no JIRA configured: add delivery.jira {url, auth, user_env, token_env} to the config"
        )
    token = settings.delivery_secret(
        config.token_env, key="delivery.jira.token_env", environ=seams.environ
    )
    user = None
    if config.auth == "basic":
        user = settings.delivery_secret(
            config.user_env, key="delivery.jira.user_env", environ=seams.environ
        )
    client = JiraClient(config, user=user, token=token, seams=seams)
    try:
        return _deliver(client, report, key, comment=comment)
    finally:
        client.close()


def _deliver(client: JiraClient, report: Report, key: str, *, comment: bool) -> list[str]:
    existing = client.attachments(key)
    files = report.attachments
    _check_sizes(client, files)
    done: list[str] = []
    names: list[str] = []
    stamp = report.generated_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    for path in files:
        digest, size = sha256_file(path), path.stat().st_size
        name, same = _plan(client, path.name, report.stem, stamp, digest, size, existing)
        names.append(name)
        if same:
            done.append(f"jira {key}: {name} already attached with the same content, skipped")
            continue
        client.attach(key, path, name)
        existing.append(Attachment("", name, size, ""))
        if name == path.name:
            done.append(f"jira {key}: attached {name} ({size:,} bytes)")
        else:
            done.append(
                f"jira {key}: attached {path.name} as {name} ({size:,} bytes): its content "
                f"differs from the {path.name} already attached"
            )
    if comment:
        done.append(_comment(client, report, key, names))
    return done


def _check_sizes(client: JiraClient, files: tuple[Path, ...]) -> None:
    enabled, server_limit = client.upload_limit()
    if not enabled:
        raise client.http.error(
            f"JIRA at {client.url} has attachments disabled: ask its administrator to enable them"
        )
    configured = client.config.max_attachment_size
    limits = [(server_limit, "its upload limit")]
    limits.append((configured, "delivery.jira.max_attachment_size"))
    for path in files:
        size = path.stat().st_size
        for limit, source in limits:
            if limit is not None and size > limit:
                raise client.http.error(
                    f"{path.name} is {size:,} bytes, more than the {limit:,} bytes JIRA at "
                    f"{client.url} accepts ({source}): nothing was attached; raise the limit, "
                    "or publish the report at reports.base_url and deliver the link"
                )


def _plan(
    client: JiraClient,
    filename: str,
    stem: str,
    stamp: str,
    digest: str,
    size: int,
    existing: list[Attachment],
) -> tuple[str, bool]:
    """(the name to attach under, True if an attachment with that name has this content)."""
    rest = filename[len(stem) :]
    candidates = [filename, f"{stem}.{stamp}{rest}"]
    taken = {a.filename for a in existing}
    while candidates[-1] in taken:
        candidates.append(f"{stem}.{stamp}-{len(candidates)}{rest}")
    for attachment in existing:
        if (
            attachment.filename in candidates
            and attachment.size == size
            and attachment.id  # not one attached in this run
            and client.sha256(attachment) == digest
        ):
            return attachment.filename, True
    return next(name for name in candidates if name not in taken), False


def _comment(client: JiraClient, report: Report, key: str, names: list[str]) -> str:
    evidence = report.path(".json")
    marker = f"deploystats evidence {evidence.name} sha256:{sha256_file(evidence)}"
    if any(marker in body for body in client.comment_bodies(key)):
        return f"jira {key}: a comment for this evidence is already there, skipped"
    kind = client.deployment_type()
    cloud = kind == "Cloud"
    body: str | dict[str, Any]
    if cloud:
        body = summary.adf_comment(report, attached=names, marker=marker)
    else:
        body = summary.wiki_comment(report, attached=names, marker=marker)
    client.add_comment(key, body, cloud=cloud)
    form = "Atlassian Document Format" if cloud else "wiki markup"
    return f"jira {key}: comment added with {len(report.items)} items ({form}, JIRA {kind})"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _messages(response: httpx.Response) -> str:
    """`: JIRA's errorMessages and errors` when the body has them, else nothing."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    texts = [str(m) for m in body.get("errorMessages") or []]
    errors = body.get("errors")
    if isinstance(errors, dict):
        texts += [f"{k}: {v}" for k, v in errors.items()]
    text = "; ".join(" ".join(t.split()) for t in texts)
    return f": {text[:300]}" if text else ""
