"""HTTP for delivery: explicit timeouts, retries with backoff honouring Retry-After, one-line
errors that name the endpoint and never a secret.

    429, 503                    retried for every request: the server did not act on it
    500, 502, 504               retried only for idempotent requests (an upload may have landed)
    cannot connect              retried for every request
    timeout, connection lost    retried only for idempotent requests
    anything else               returned to the caller, which knows what the status means

Waits are `Retry-After` (seconds or an HTTP date) when the server sends it, else 1, 2, 4 ... s
(at most MAX_BACKOFF_S); a server asking for more than `max_wait_s` is not waited for.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self

import httpx

from deploystats.errors import DeliveryError

USER_AGENT = "deploystats"
MAX_BACKOFF_S = 30.0
MIN_SECRET_CHARS = 6
ALWAYS_RETRY = frozenset({429, 503})
IDEMPOTENT_RETRY = frozenset({500, 502, 504})


@dataclass(frozen=True)
class Seams:
    """What delivery reads from the world, replaceable in tests: the environment secrets come
    from (None: os.environ), the HTTP transport, sleep and clock for retry waits, and who hears
    of each wait."""

    environ: Mapping[str, str] | None = None
    transport: httpx.BaseTransport | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    on_wait: Callable[[str], None] | None = None


REAL = Seams()  # the environment, the network, real time


class Endpoint:
    """An httpx client for one service (`service` names it in messages, `shown` is its URL as
    messages may show it, `hint` says what to check when it cannot be reached). Text equal to
    any of `secrets` (of MIN_SECRET_CHARS or more; shorter ones would garble every message) is
    replaced by *** in every message. Closing it closes `transport`."""

    def __init__(
        self,
        *,
        service: str,
        shown: str,
        hint: str,
        base_url: str = "",
        auth: httpx.Auth | None = None,
        headers: Mapping[str, str] | None = None,
        secrets: Iterable[str] = (),
        seams: Seams = REAL,
        timeout_s: float = 30,
        max_tries: int = 5,
        max_wait_s: float = 300,
    ) -> None:
        self.service = service
        self.shown = shown
        self.hint = hint
        self.max_tries = max(1, max_tries)
        self.max_wait_s = max_wait_s
        self.requests_made = 0
        self._secrets = [s for s in secrets if len(s) >= MIN_SECRET_CHARS]
        self._sleep = seams.sleep
        self._clock = seams.clock
        self._on_wait = seams.on_wait
        self._client = httpx.Client(
            base_url=base_url,
            auth=auth,
            headers={"User-Agent": USER_AGENT, **(headers or {})},
            timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
            transport=seams.transport,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def request(
        self, method: str, url: str, *, what: str, idempotent: bool, **kwargs: Any
    ) -> httpx.Response:
        """Send until an answer that is not retried; `what` names the request in messages
        (e.g. "GET /rest/api/2/serverInfo")."""
        tries = 0
        while True:
            tries += 1
            self.requests_made += 1
            try:
                response = self._client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                refused = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if not (refused or idempotent) or tries >= self.max_tries:
                    raise self.error(
                        f"cannot reach {self.service} at {self.shown} ({what}): {_describe(exc)}"
                        f" ({tries} {_tries(tries)}): {self.hint}"
                    ) from None
                self._wait(_backoff(tries), f"{_describe(exc)}", tries)
                continue
            status = response.status_code
            if status in ALWAYS_RETRY or (idempotent and status in IDEMPOTENT_RETRY):
                seconds = self._retry_after(response)
                if seconds is not None and seconds > self.max_wait_s:
                    raise self.error(
                        f"{self.service} at {self.shown} answered {status} to {what} and asks to "
                        f"wait {seconds:.0f} s (more than {self.max_wait_s:.0f} s): try later"
                    )
                if tries < self.max_tries:
                    self._wait(_backoff(tries) if seconds is None else seconds, status, tries)
                    continue
                raise self.error(
                    f"{self.service} at {self.shown} answered {status} to {what} "
                    f"{tries} times: try later"
                )
            return response

    def error(self, message: str) -> DeliveryError:
        """A DeliveryError with every secret scrubbed from `message`."""
        for secret in self._secrets:
            message = message.replace(secret, "***")
        return DeliveryError(message)

    def _wait(self, seconds: float, reason: object, tries: int) -> None:
        if self._on_wait is not None:
            self._on_wait(
                f"{self.service}: waiting {seconds:.0f}s after {reason} "
                f"(try {tries + 1} of {self.max_tries})"
            )
        self._sleep(seconds)

    def _retry_after(self, response: httpx.Response) -> float | None:
        value = response.headers.get("Retry-After")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - self._clock())
        except (TypeError, ValueError):
            return None


def _backoff(tries: int) -> float:
    return min(2.0 ** (tries - 1), MAX_BACKOFF_S)


def _tries(n: int) -> str:
    return "try" if n == 1 else "tries"


def _describe(exc: httpx.TransportError) -> str:
    detail = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
