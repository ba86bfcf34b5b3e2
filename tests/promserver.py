"""A real Prometheus server for tests: fixture series backfilled with promtool, served on 127.0.0.1.

The series are written as OpenMetrics text, turned into TSDB blocks with `promtool tsdb
create-blocks-from openmetrics`, and served by Debian's `prometheus` 2.42 with no scrape configs.
promtool silently drops samples that are out of order or repeat a timestamp (for example when two
`Series` have the same name and labels), so `start()` counts every series on the server and fails
when a count differs from what was written.

Facts of 2.42 the tests rely on: overlapping blocks load without a flag (a warning in the log;
`--storage.tsdb.allow-overlapping-blocks` is a deprecated no-op since 2.39); range selectors are
closed on both sides (`x[1m]` at t returns the samples in [t-1m, t]); time retention is measured
back from the newest block, not from the wall clock.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx
import pytest

RETENTION_DAYS = 3650
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
CONFIG = "global:\n  scrape_interval: 1m\n  evaluation_interval: 1m\nscrape_configs: []\n"
INSTALL_HINT = "install it with `apt-get install -y prometheus` (Debian 2.42)"
_LISTENING = re.compile(r'msg="Listening on" address=\S*:(\d+)')
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

Labels = frozenset[tuple[str, str]]


class PrometheusFixtureError(RuntimeError):
    """The test server could not be built or started, or lost samples while backfilling."""


@dataclass(frozen=True)
class Sample:
    ts: float  # seconds since the epoch; Prometheus keeps milliseconds
    value: float  # NaN and ±Inf allowed


@dataclass
class Series:
    name: str
    labels: dict[str, str]
    samples: list[Sample]


def write_openmetrics(series: Iterable[Series], path: Path) -> int:
    """Write `series` as OpenMetrics text for promtool and return the number of samples written.

    One `# TYPE name gauge` per metric family with all its series under it, each series' samples
    sorted by time, timestamps in seconds rounded to the millisecond, `NaN`/`+Inf`/`-Inf` as
    such, and the closing `# EOF`. Series are written as given, not merged: two `Series` with
    the same name and labels end up as one series whose samples promtool partly drops, which
    `PrometheusServer.start()` detects.
    """
    families: dict[str, list[Series]] = {}
    for s in series:
        _check_names(s)
        families.setdefault(s.name, []).append(s)
    written = 0
    with path.open("w", encoding="utf-8") as out:
        for name, members in families.items():
            out.write(f"# TYPE {name} gauge\n")
            for s in members:
                selector = name + _label_text(s.labels)
                for sample in sorted(s.samples, key=lambda x: x.ts):
                    out.write(f"{selector} {_value_text(sample.value)} {_ts_text(sample.ts)}\n")
                written += len(s.samples)
        out.write("# EOF\n")
    return written


class PrometheusServer:
    """A `prometheus` process serving `series` from backfilled blocks under `workdir`."""

    url: str

    def __init__(
        self,
        series: Iterable[Series],
        *,
        workdir: Path,
        binary: str = "prometheus",
        promtool: str = "promtool",
    ) -> None:
        self.series = list(series)
        self.workdir = workdir
        self.binary = binary
        self.promtool = promtool
        self.log_path = workdir / "prometheus.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> PrometheusServer:
        """Backfill, start, wait until ready and check that every written sample is served."""
        if self._process is not None:
            raise PrometheusFixtureError(f"{self!r} was already started")
        try:
            data = self._backfill()
            self._launch(data)
            self._verify_counts()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Terminate the server (SIGKILL after 10 s) and close its log; idempotent."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """SIGKILL the server and reap it: Prometheus disappears mid-conversation."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        """`/api/v1/query` of `expr` at `at` (seconds): the `data.result` list."""
        return self._get("/api/v1/query", {"query": expr, "time": _ts_text(at)})

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = getattr(self, "url", "not started")
        return f"PrometheusServer({where}, workdir={self.workdir})"

    def _backfill(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        openmetrics = self.workdir / "fixture.om"
        blocks = self.workdir / "blocks"
        data = self.workdir / "data"
        for folder in (blocks, data):
            shutil.rmtree(folder, ignore_errors=True)
        data.mkdir()
        times = [x.ts for s in self.series for x in s.samples]
        if times and max(times) - min(times) >= RETENTION_DAYS * 86400:
            raise PrometheusFixtureError(
                f"fixture spans more than the server's {RETENTION_DAYS}-day retention"
            )
        if self._write_openmetrics(openmetrics) == 0:
            return data
        command = [self.promtool, "tsdb", "create-blocks-from", "openmetrics"]
        # --max-block-duration is hidden from 2.42's --help but accepted
        command += ["--max-block-duration=24h", "--quiet", str(openmetrics), str(blocks)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise PrometheusFixtureError(
                f"promtool failed on {openmetrics} (exit {done.returncode}): "
                f"{(done.stderr or done.stdout).strip()}"
            )
        for block in blocks.iterdir():
            shutil.copytree(block, data / block.name)
        return data

    def _write_openmetrics(self, path: Path) -> int:
        """The fixture file for promtool; a subclass may stream a large one itself."""
        return write_openmetrics(self.series, path)

    def _launch(self, data: Path) -> None:
        config = self.workdir / "prometheus.yml"
        config.write_text(CONFIG)
        command = [
            self.binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            f"--storage.tsdb.retention.time={RETENTION_DAYS}d",
            "--web.listen-address=127.0.0.1:0",
            "--query.lookback-delta=5m",  # the default, stated because tests depend on it
            "--log.level=info",  # the port is only known from the info line "Listening on"
        ]
        self._log = self.log_path.open("wb")
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        port = self._wait(deadline, self._port, "log the port it listens on")
        self.url = f"http://127.0.0.1:{port}"
        self._wait(deadline, self._ready, "answer /-/ready with 200")

    def _wait(self, deadline: float, probe: Callable[[], Any], what: str) -> Any:
        while True:
            assert self._process is not None
            if (found := probe()) is not None:
                return found
            if self._process.poll() is not None:
                raise PrometheusFixtureError(
                    f"prometheus exited with {self._process.returncode} before it could {what}; "
                    f"log tail:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise PrometheusFixtureError(
                    f"prometheus did not {what} within {START_TIMEOUT_S:.0f} s; "
                    f"log tail:\n{self.log_tail()}"
                )
            time.sleep(0.02)

    def _port(self) -> int | None:
        found = _LISTENING.search(self.log_path.read_text(errors="replace"))
        return int(found.group(1)) if found else None

    def _ready(self) -> bool | None:
        try:
            response = httpx.get(f"{self.url}/-/ready", timeout=1.0, trust_env=False)
        except httpx.TransportError:
            return None
        return True if response.status_code == 200 else None

    def _verify_counts(self) -> None:
        """Count every series over the whole fixture range and compare with what was written."""
        written: Counter[tuple[str, Labels]] = Counter()
        for s in self.series:
            if s.samples:
                written[(s.name, _identity(s.labels))] += len(s.samples)
        if not written:
            return
        first_ms = min(_ms(x.ts) for s in self.series for x in s.samples)
        last_ms = max(_ms(x.ts) for s in self.series for x in s.samples)
        served: Counter[tuple[str, Labels]] = Counter()
        for name in {name for name, _ in written}:
            # ranges are closed in 2.42; the extra millisecond also covers a left-open edge
            for row in self.query(
                f"count_over_time({name}[{last_ms - first_ms + 1}ms])", last_ms / 1000
            ):
                served[(name, _identity(row["metric"]))] = int(row["value"][1])
        lost = [
            f"{name}{_label_text(dict(sorted(labels)))}: {written[(name, labels)]} written, "
            f"{served[(name, labels)]} served"
            for name, labels in sorted(written.keys() | served.keys())
            if written[(name, labels)] != served[(name, labels)]
        ]
        if lost:
            raise PrometheusFixtureError(
                "promtool dropped samples (out of order or a repeated timestamp: are two Series "
                "the same name and labels, or do timestamps repeat at millisecond resolution?): "
                + "; ".join(lost)
            )

    def _get(self, path: str, params: dict[str, str]) -> Any:
        response = httpx.get(f"{self.url}{path}", params=params, timeout=10.0, trust_env=False)
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise PrometheusFixtureError(f"{path} {params} -> {response.status_code}: {body}")
        return body["data"]["result"]


def prometheus_available(binary: str = "prometheus", promtool: str = "promtool") -> str | None:
    """None when both programs are on PATH, else why not."""
    missing = [name for name in (binary, promtool) if shutil.which(name) is None]
    if missing:
        return f"{' and '.join(missing)} not found on PATH: {INSTALL_HINT}"
    return None


def require_prometheus() -> None:
    """Skip the test when Prometheus is missing, except in CI (CI=true), where that fails it."""
    reason = prometheus_available()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must have Prometheus: {reason}")
    pytest.skip(reason)


@contextmanager
def prometheus_servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[Iterable[Series]], PrometheusServer]]:
    """Yield `start(series) -> PrometheusServer`, each in its own workdir; stop them all after."""
    require_prometheus()
    started: list[PrometheusServer] = []

    def start(series: Iterable[Series]) -> PrometheusServer:
        server = PrometheusServer(series, workdir=tmp_path_factory.mktemp("prometheus"))
        started.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in started:
            server.stop()


def _check_names(s: Series) -> None:
    if not _METRIC_NAME.fullmatch(s.name):
        raise ValueError(f"invalid metric name {s.name!r}")
    for label in s.labels:
        if not _LABEL_NAME.fullmatch(label) or label == "__name__":
            raise ValueError(f"invalid label name {label!r} on {s.name}")


def _label_text(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    escape = {ord("\\"): "\\\\", ord('"'): '\\"', ord("\n"): "\\n"}
    return "{" + ",".join(f'{k}="{v.translate(escape)}"' for k, v in labels.items()) + "}"


def _value_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _ms(ts: float) -> int:
    return round(ts * 1000)


def _ts_text(ts: float) -> str:
    """Seconds that promtool (Go: `int64(seconds * 1000)`) reads as the intended millisecond."""
    ms = _ms(ts)
    seconds = ms / 1000
    while int(seconds * 1000) < ms:
        seconds = math.nextafter(seconds, math.inf)
    return repr(seconds)


def _identity(labels: dict[str, str]) -> Labels:
    """A series' identity in Prometheus: the name aside, labels with empty values do not exist."""
    return frozenset((k, v) for k, v in labels.items() if v != "" and k != "__name__")
