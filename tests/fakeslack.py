"""A Slack incoming-webhook receiver on 127.0.0.1: checks the JSON payload as Slack does (text
fallback, Block Kit limits) and answers `ok`, or Slack's error strings."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import orjson

from tests.localhttp import LocalHTTP, Reply, Request

WEBHOOK_PATH = "/services/T0001/B0002/s3cr3tW3bh00kT0k3n"
BLOCK_TYPES = {"header", "section", "context", "divider", "actions", "image"}


@dataclass
class FakeSlack:
    """Payloads accepted go to `messages`; malformed ones are answered 400 invalid_payload
    and listed in `unexpected`. `fail(status, times, headers)` injects answers."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._faults: list[tuple[int, str, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._http = LocalHTTP(self._serve, name="fakeslack")

    def __enter__(self) -> FakeSlack:
        self._http.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._http.stop()
        self.unexpected += self._http.crashes

    @property
    def webhook_url(self) -> str:
        return self._http.url + WEBHOOK_PATH

    def fail(
        self, status: int, text: str, *, times: int = 1, headers: dict[str, str] | None = None
    ) -> None:
        self._faults += [(status, text, dict(headers or {}))] * times

    def _serve(self, request: Request) -> Reply:
        with self._lock:
            reply = self._answer(request)
            self.statuses.append(reply.status)
            return reply

    def _answer(self, request: Request) -> Reply:
        if request.method != "POST" or request.path != WEBHOOK_PATH:
            return Reply(404, "no_service")
        if self._faults:
            status, text, headers = self._faults.pop(0)
            return Reply(status, text, headers)
        if not request.headers.get("Content-Type", "").startswith("application/json"):
            self.unexpected.append(f"Content-Type {request.headers.get('Content-Type')}")
            return Reply(400, "invalid_payload")
        try:
            payload = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            self.unexpected.append("body is not JSON")
            return Reply(400, "invalid_payload")
        problem = _problem(payload)
        if problem is not None:
            self.unexpected.append(problem)
            return Reply(400, "invalid_blocks")
        self.messages.append(payload)
        return Reply(200, "ok")


def _problem(payload: Any) -> str | None:
    if not isinstance(payload, dict) or not isinstance(payload.get("text"), str):
        return "no plain-text `text` fallback"
    blocks = payload.get("blocks", [])
    if not isinstance(blocks, list) or len(blocks) > 50:
        return "blocks must be a list of at most 50"
    for block in blocks:
        kind = block.get("type")
        if kind not in BLOCK_TYPES:
            return f"unknown block type {kind!r}"
        if kind == "header":
            text = block["text"]
            if text.get("type") != "plain_text" or not 0 < len(text["text"]) <= 150:
                return "a header needs plain_text of 1..150 characters"
        if kind == "section":
            text = block.get("text", {})
            if (
                text.get("type") not in ("mrkdwn", "plain_text")
                or not 0 < len(text.get("text", "")) <= 3000
            ):
                return "a section text must be 1..3000 characters"
        if kind == "context":
            elements = block.get("elements", [])
            if not 0 < len(elements) <= 10:
                return "a context needs 1..10 elements"
    return None
