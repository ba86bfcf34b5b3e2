"""Prometheus `warnings` (partial data with status success): recorded and shown, one line each.

Prometheus 2.42 only warns when a remote-read store fails, which the test server cannot do; a
small HTTP peer on 127.0.0.1 answers like a Prometheus behind such a store.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from deploystats.store import connect
from tests.conftest import run_deploystats

T0 = 1_763_251_200  # 2025-11-16T00:00:00Z
WARNINGS = ["remote read: store b unreachable:\n  dial tcp 10.0.0.2:9090: refused", "slow store c"]


class _Peer(BaseHTTPRequestHandler):
    """/api/v1/query of `up[RANGE]` at t: one sample a minute in (t - RANGE, t], with warnings."""

    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path != "/api/v1/query":
            self.send_response(404)
            self.end_headers()
            return
        at = float(params["time"])
        values = [[ts, "1"] for ts in range(T0, int(at) + 1, 60) if ts > at - 6 * 3600]
        body = {
            "status": "success",
            "warnings": WARNINGS,
            "data": {
                "resultType": "matrix",
                "result": [{"metric": {"__name__": "up", "instance": "a"}, "values": values}],
            },
        }
        payload = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def peer() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Peer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def ingest_log(db: Path) -> list[tuple[Any, ...]]:
    con = connect(db, read_only=True)
    try:
        return con.execute(
            "SELECT source, outcome, error FROM ingest_log ORDER BY started_at"
        ).fetchall()
    finally:
        con.close()


def test_sync_shows_each_warning_once_and_logs_the_query_as_partial(
    peer: str, tmp_path: Path
) -> None:
    query = {"expr": "up", "kind": "availability", "step": "60s"}
    config = {"prometheus": {"url": peer, "queries": {"runner_up": query}}}
    (tmp_path / "deploystats.yml").write_text(yaml.safe_dump(config))
    # 7 hours: two 6-hour chunks, both answered with the same two warnings
    done = run_deploystats(
        "--db",
        "db.duckdb",
        "sync",
        "prometheus",
        "--since",
        "2025-11-16T00:00:00Z",
        "--until",
        "2025-11-16T07:00:00Z",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "warning: Prometheus returned partial data: runner_up: remote read: store b "
        "unreachable: dial tcp 10.0.0.2:9090: refused",
        "warning: Prometheus returned partial data: runner_up: slow store c",
    ]
    assert done.stdout.strip() == (
        "synced 1 Prometheus queries: 1 series, 420 samples in 2 chunks, 2 requests"
    )
    assert ingest_log(tmp_path / "db.duckdb") == [
        (
            "prometheus",
            "partial",
            "runner_up: remote read: store b unreachable: dial tcp 10.0.0.2:9090: refused; "
            "runner_up: slow store c",
        )
    ]


def test_import_shows_the_warnings_saved_with_a_response(tmp_path: Path) -> None:
    body = {
        "status": "success",
        "warnings": WARNINGS[:1],
        "data": {
            "resultType": "matrix",
            "result": [{"metric": {"instance": "a"}, "values": [[T0, "1"], [T0 + 60, "0"]]}],
        },
    }
    (tmp_path / "partial.json").write_text(json.dumps(body))
    (tmp_path / "whole.json").write_text(json.dumps({**body, "warnings": []}))
    done = run_deploystats(
        "--db",
        "db.duckdb",
        "import",
        "prometheus",
        "partial.json",
        "whole.json",
        "--query",
        "runner_up",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "warning: Prometheus returned partial data: partial.json: remote read: store b "
        "unreachable: dial tcp 10.0.0.2:9090: refused"
    ]
    assert ingest_log(tmp_path / "db.duckdb") == [
        (
            "import-prometheus",
            "partial",
            "remote read: store b unreachable: dial tcp 10.0.0.2:9090: refused",
        ),
        ("import-prometheus", "ok", None),
    ]
