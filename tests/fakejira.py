"""A fake JIRA REST API (Cloud or Server/Data Center) on 127.0.0.1, enforcing what JIRA enforces.

Implemented: serverInfo (deploymentType), attachment meta (upload limit), an issue's attachment
list (`?fields=attachment`), attachment upload (`X-Atlassian-Token: no-check`, multipart field
`file`, 413 above the limit), attachment content (Server: /secure/attachment/{id}/{name}; Cloud:
/rest/api/3/attachment/content/{id} redirecting to a media URL), comments (v2 wiki strings;
v3 Atlassian Document Format on Cloud only), basic or bearer auth (401), unknown issues (404),
and injected faults such as 429 with Retry-After. Requests it does not implement, and requests a
real JIRA would refuse for their form, are listed in `unexpected`, which tests assert is empty.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import itertools
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import orjson

from tests.localhttp import LocalHTTP, Reply, Request

NOT_AUTHENTICATED = "You are not authenticated. Authentication required to perform this operation."
NO_ISSUE = "Issue does not exist or you do not have permission to see it."
ADF_NODES = {
    "doc",
    "paragraph",
    "text",
    "table",
    "tableRow",
    "tableHeader",
    "tableCell",
    "bulletList",
    "listItem",
    "heading",
    "hardBreak",
}
ADF_CHILDREN = {
    "table": {"tableRow"},
    "tableRow": {"tableHeader", "tableCell"},
    "bulletList": {"listItem"},
    "paragraph": {"text", "hardBreak"},
}
ADF_MARKS = {"strong", "em", "code", "link"}


@dataclass(frozen=True)
class Logged:
    method: str
    path: str
    query: dict[str, str]
    status: int


@dataclass
class StoredAttachment:
    id: int
    filename: str
    data: bytes
    mime_type: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class StoredComment:
    id: int
    body: Any  # a wiki markup string (v2) or an ADF document (v3)
    api: int


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    times: int
    headers: dict[str, str]


@dataclass
class FakeJira:
    """JIRA holding `issues`; credentials `user`/`token` (basic) or `token` (bearer).

    `base_url_setting` is the base URL JIRA believes it has (used in `content` and `self` links);
    by default the real address, set it to another host to check that clients do not follow it.
    """

    deployment_type: str = "Server"
    auth: str = "basic"
    user: str = "sre-bot@example.com"
    token: str = "jira-secret-token-0123"
    issues: tuple[str, ...] = ("INFRA-472",)
    upload_limit: int = 10_485_760
    attachments_enabled: bool = True
    base_url_setting: str | None = None
    requests: list[Logged] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    attachments: dict[str, list[StoredAttachment]] = field(default_factory=dict)
    comments: dict[str, list[StoredComment]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._ids = itertools.count(10_000)
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._http = LocalHTTP(self._serve, name="fakejira")
        for key in self.issues:
            self.attachments.setdefault(key, [])
            self.comments.setdefault(key, [])

    def __enter__(self) -> FakeJira:
        self._http.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._http.stop()
        self.unexpected += self._http.crashes

    @property
    def url(self) -> str:
        return self._http.url

    @property
    def public_url(self) -> str:
        return self.base_url_setting or self.url

    def fail(
        self,
        method: str,
        path_pattern: str,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next `times` matching requests with `status` (after the auth check)."""
        self._faults.append(
            _Fault(method, re.compile(path_pattern), status, times, dict(headers or {}))
        )

    def add_attachment(self, key: str, filename: str, data: bytes) -> StoredAttachment:
        stored = StoredAttachment(next(self._ids), filename, data, "application/octet-stream")
        self.attachments[key].append(stored)
        return stored

    def calls(self, method: str | None = None, prefix: str = "") -> list[str]:
        """`METHOD path` of each logged request (optionally filtered)."""
        return [
            f"{r.method} {r.path}"
            for r in self.requests
            if (method is None or r.method == method) and r.path.startswith(prefix)
        ]

    # -- serving ---------------------------------------------------------------------------

    def _serve(self, request: Request) -> Reply:
        with self._lock:
            reply = self._dispatch(request)
            self.requests.append(Logged(request.method, request.path, request.query, reply.status))
        return reply

    def _dispatch(self, request: Request) -> Reply:
        path, method = request.path, request.method
        media = re.fullmatch(r"/media/(\d+)", path)
        if media and method == "GET":
            return self._media(request, int(media.group(1)))
        if not self._authenticated(request):
            return Reply(401, {"errorMessages": [NOT_AUTHENTICATED], "errors": {}})
        for fault in self._faults:
            if fault.times > 0 and fault.method == method and fault.pattern.fullmatch(path):
                fault.times -= 1
                return Reply(fault.status, {"errorMessages": ["injected"]}, fault.headers)
        routes = [
            ("GET", r"/rest/api/2/serverInfo", self._server_info),
            ("GET", r"/rest/api/2/attachment/meta", self._meta),
            ("GET", r"/rest/api/2/issue/(?P<key>[^/]+)", self._issue),
            ("POST", r"/rest/api/2/issue/(?P<key>[^/]+)/attachments", self._upload),
            ("GET", r"/rest/api/2/issue/(?P<key>[^/]+)/comment", self._list_comments),
            ("POST", r"/rest/api/(?P<api>[23])/issue/(?P<key>[^/]+)/comment", self._comment),
            ("GET", r"/secure/attachment/(?P<id>\d+)/(?P<name>[^/]+)", self._server_content),
            ("GET", r"/rest/api/3/attachment/content/(?P<id>\d+)", self._cloud_content),
        ]
        for route_method, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if match and route_method == method:
                return handler(request, **match.groupdict())
        self.unexpected.append(f"{method} {path}: route not implemented")
        return Reply(404, {"errorMessages": ["null for uri"], "errors": {}})

    def _authenticated(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        if self.auth == "bearer":
            return bool(header == f"Bearer {self.token}")
        expected = base64.b64encode(f"{self.user}:{self.token}".encode()).decode()
        return bool(header == f"Basic {expected}")

    def _server_info(self, request: Request) -> Reply:
        cloud = self.deployment_type == "Cloud"
        return Reply(
            200,
            {
                "baseUrl": self.public_url,
                "version": "1001.0.0-SNAPSHOT" if cloud else "9.12.15",
                "versionNumbers": [1001, 0, 0] if cloud else [9, 12, 15],
                "deploymentType": self.deployment_type,
                "buildNumber": 100282 if cloud else 9120015,
                "serverTitle": "Jira",
            },
        )

    def _meta(self, request: Request) -> Reply:
        return Reply(200, {"enabled": self.attachments_enabled, "uploadLimit": self.upload_limit})

    def _issue(self, request: Request, key: str) -> Reply:
        if key not in self.attachments:
            return Reply(404, {"errorMessages": [NO_ISSUE], "errors": {}})
        if request.query.get("fields") != "attachment":
            self.unexpected.append(f"GET issue {key} without fields=attachment")
        listed = [self._attachment_json(a) for a in self.attachments[key]]
        return Reply(200, {"id": "10472", "key": key, "fields": {"attachment": listed}})

    def _attachment_json(self, stored: StoredAttachment) -> dict[str, Any]:
        if self.deployment_type == "Cloud":
            content = f"{self.public_url}/rest/api/3/attachment/content/{stored.id}"
        else:
            content = f"{self.public_url}/secure/attachment/{stored.id}/{stored.filename}"
        return {
            "self": f"{self.public_url}/rest/api/2/attachment/{stored.id}",
            "id": str(stored.id),
            "filename": stored.filename,
            "author": {"name": "sre-bot", "displayName": "SRE bot"},
            "created": "2026-11-24T06:01:00.000+0000",
            "size": len(stored.data),
            "mimeType": stored.mime_type,
            "content": content,
        }

    def _upload(self, request: Request, key: str) -> Reply:
        if request.headers.get("X-Atlassian-Token") != "no-check":
            self.unexpected.append(f"upload to {key} without X-Atlassian-Token: no-check")
            return Reply(403, "XSRF check failed")
        if key not in self.attachments:
            return Reply(404, {"errorMessages": [NO_ISSUE], "errors": {}})
        parts = _multipart(request)
        if parts is None or not parts:
            self.unexpected.append(f"upload to {key}: not multipart/form-data")
            return Reply(415, {"errorMessages": ["Unsupported Media Type"]})
        created = []
        for field_name, filename, mime_type, data in parts:
            if field_name != "file" or not filename:
                self.unexpected.append(f"upload to {key}: multipart field {field_name!r}")
                return Reply(400, {"errorMessages": ["no file field"], "errors": {}})
            if len(data) > self.upload_limit:
                message = (
                    f"The field file exceeds its maximum permitted size of "
                    f"{self.upload_limit} bytes."
                )
                return Reply(413, {"errorMessages": [message], "errors": {}})
            stored = StoredAttachment(next(self._ids), filename, data, mime_type)
            self.attachments[key].append(stored)
            created.append(self._attachment_json(stored))
        return Reply(200, created)

    def _list_comments(self, request: Request, key: str) -> Reply:
        if key not in self.comments:
            return Reply(404, {"errorMessages": [NO_ISSUE], "errors": {}})
        start = int(request.query.get("startAt", 0))
        size = min(int(request.query.get("maxResults", 50)), 100)
        every = self.comments[key]
        page = [{"id": str(c.id), "body": _as_wiki(c.body)} for c in every[start : start + size]]
        return Reply(
            200, {"startAt": start, "maxResults": size, "total": len(every), "comments": page}
        )

    def _comment(self, request: Request, key: str, api: str) -> Reply:
        if api == "3" and self.deployment_type != "Cloud":
            self.unexpected.append("POST comment through API v3 on JIRA Server")
            return Reply(404, {"errorMessages": ["null for uri"], "errors": {}})
        if key not in self.comments:
            return Reply(404, {"errorMessages": [NO_ISSUE], "errors": {}})
        try:
            body = orjson.loads(request.body)["body"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.unexpected.append(f"comment on {key}: no JSON body")
            return Reply(400, {"errorMessages": ["Unexpected character"], "errors": {}})
        problem = _adf_problem(body) if api == "3" else _wiki_problem(body)
        if problem is not None:
            self.unexpected.append(f"comment on {key} (API v{api}): {problem}")
            return Reply(400, {"errorMessages": [], "errors": {"comment": problem}})
        comment = StoredComment(next(self._ids), body, int(api))
        self.comments[key].append(comment)
        return Reply(201, {"id": str(comment.id), "body": body})

    def _server_content(self, request: Request, id: str, name: str) -> Reply:
        stored = self._find(int(id))
        if stored is None or stored.filename != name:
            return Reply(404, "attachment not found")
        return Reply(200, stored.data, {"Content-Type": stored.mime_type})

    def _cloud_content(self, request: Request, id: str) -> Reply:
        if self._find(int(id)) is None:
            return Reply(404, {"errorMessages": ["attachment not found"]})
        token = hashlib.sha256(f"media{id}".encode()).hexdigest()[:16]
        return Reply(303, None, {"Location": f"{self.url}/media/{id}?token={token}"})

    def _media(self, request: Request, id: int) -> Reply:
        stored = self._find(id)
        token = hashlib.sha256(f"media{id}".encode()).hexdigest()[:16]
        if stored is None or request.query.get("token") != token:
            return Reply(404, "no such media")
        return Reply(200, stored.data, {"Content-Type": stored.mime_type})

    def _find(self, id: int) -> StoredAttachment | None:
        for stored in itertools.chain.from_iterable(self.attachments.values()):
            if stored.id == id:
                return stored
        return None


def _multipart(request: Request) -> list[tuple[str, str, str, bytes]] | None:
    """(field name, filename, content type, data) of each part, or None if not multipart."""
    content_type = request.headers.get("Content-Type", "")
    if not content_type.startswith("multipart/form-data"):
        return None
    parser = email.parser.BytesParser(policy=email.policy.HTTP)
    message = parser.parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + request.body)
    parts = []
    for part in message.iter_parts():
        disposition = part.get("Content-Disposition", "")
        params = part["Content-Disposition"].params if disposition else {}
        data = part.get_payload(decode=True)
        parts.append(
            (
                params.get("name", ""),
                params.get("filename", ""),
                part.get_content_type(),
                data if isinstance(data, bytes) else b"",
            )
        )
    return parts


def _wiki_problem(body: Any) -> str | None:
    if not isinstance(body, str) or not body.strip():
        return "Comment body can not be empty! (API v2 wants a wiki markup string)"
    return None


def _adf_problem(node: Any, parent: str | None = None) -> str | None:
    """Why `node` is not valid Atlassian Document Format (the subset deploystats writes)."""
    if not isinstance(node, dict) or node.get("type") not in ADF_NODES:
        return f"not an ADF node: {str(node)[:80]}"
    kind = node["type"]
    if parent is None and (kind != "doc" or node.get("version") != 1):
        return "the body must be a doc node of version 1"
    allowed = ADF_CHILDREN.get(parent or "")
    if allowed is not None and kind not in allowed:
        return f"{kind} inside {parent}"
    if kind == "text":
        if not isinstance(node.get("text"), str) or not node["text"]:
            return "a text node without text"
        for mark in node.get("marks", []):
            if mark.get("type") not in ADF_MARKS:
                return f"unknown mark {mark}"
        return None
    children = node.get("content")
    if not isinstance(children, list) or not children:
        return f"{kind} without content"
    for child in children:
        if (problem := _adf_problem(child, kind)) is not None:
            return problem
    return None


def _as_wiki(body: Any) -> str:
    """How API v2 shows a comment: ADF documents flattened to their text."""
    if isinstance(body, str):
        return body
    texts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "text":
                texts.append(node["text"])
            for child in node.get("content", []):
                walk(child)

    walk(body)
    return " ".join(texts)
