"""Saved GitHub API JSON files: detect their shape and kind, hand them to DuckDB's reader.

Accepted shapes: an API page (`{"total_count": n, "workflow_runs": [...]}` or `{"jobs": [...]}`),
pages written one after another (`gh api --paginate`), a JSON list, a single object, JSON Lines,
any of them gzip-compressed. Kinds, detected from the first object: runs (list entries or
`/attempts/{n}`), jobs, deployments, deployment statuses. Python only peeks at the head of the
file; DuckDB reads the bulk.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploystats.errors import DumpError
from deploystats.store.save import Source

ACCEPTED = (
    "GitHub API workflow runs, run attempts, jobs, deployments or deployment statuses, as an API "
    'page ({"workflow_runs": [...]} or {"jobs": [...]}), pages one after another '
    "(gh api --paginate), a JSON list, a single object or JSON Lines, optionally .gz"
)
_PAGE_KEYS = {"workflow_runs": "runs", "jobs": "jobs"}
_HEAD_LIMIT = 256 * 1024 * 1024


CHUNK_BYTES = 64 * 1024 * 1024  # a JSON Lines file is saved in batches of about this size


@dataclass(frozen=True)
class Dump:
    """One file: what it holds and how DuckDB should read it."""

    path: Path
    kind: str  # runs | jobs | deployments | deployment_statuses
    source: Source
    json_lines: bool = False

    def batches(self) -> Iterator[Source]:
        """The file as batches: JSON Lines in chunks of whole lines (bounded memory, each
        chunk committed on its own), any other shape whole through DuckDB's reader."""
        if not self.json_lines:
            yield self.source
            return
        with _open(self.path) as handle:
            while lines := handle.readlines(CHUNK_BYTES):
                yield Source.from_lines([line for line in lines if line.strip()])


def object_kind(obj: Mapping[str, Any]) -> str | None:
    """The kind of one API object from its keys, or None when it is none of ours."""
    if "deployment_url" in obj and "state" in obj:
        return "deployment_statuses"
    if "statuses_url" in obj and "sha" in obj:
        return "deployments"
    if "run_id" in obj and ("steps" in obj or "runner_name" in obj or "run_url" in obj):
        return "jobs"
    if "workflow_id" in obj and "head_sha" in obj:
        return "runs"
    return None


def _open(path: Path) -> Any:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return path.open("rb")


def _first_value(path: Path) -> tuple[Any, bytes, bool]:
    """The first JSON value of the file, the text after it, and whether it is on one line."""
    size = 64 * 1024
    decoder = json.JSONDecoder()
    while True:
        with _open(path) as handle:
            head = handle.read(size)
        text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
        stripped = text.lstrip()
        if not stripped:
            raise DumpError(f"{path}: empty file: expected {ACCEPTED}", path=str(path))
        try:
            value, end = decoder.raw_decode(stripped)
            return value, stripped[end : end + 64].encode(), "\n" not in stripped[:end]
        except json.JSONDecodeError as exc:
            if len(head) < size or size >= _HEAD_LIMIT:
                raise malformed(path) or DumpError(f"{path}: not valid JSON") from exc
            size *= 4


def malformed(path: Path) -> DumpError | None:
    """The first syntax error of the file as a one-line error; None when the file parses."""
    with _open(path) as handle:
        text = handle.read().decode("utf-8", errors="replace")
    decoder = json.JSONDecoder()
    position = 0
    while True:
        while position < len(text) and text[position] in " \t\r\n\ufeff":
            position += 1
        if position >= len(text):
            break
        try:
            _, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            return DumpError(
                f"{path}: not valid JSON at line {exc.lineno} column {exc.colno} ({exc.msg})",
                path=str(path),
            )
    return None


def _unrecognised(path: Path, what: str) -> DumpError:
    return DumpError(f"{path}: unrecognised shape ({what}): expected {ACCEPTED}", path=str(path))


def inspect_dump(path: Path) -> Dump:
    """Detect a file's shape and kind from its first value."""
    if not path.is_file():
        raise DumpError(f"{path}: no such file", path=str(path))
    first, rest, one_line = _first_value(path)
    files = [str(path)]
    if isinstance(first, list):
        if not first:
            return Dump(path, "runs", Source.from_objects([]))
        if not isinstance(first[0], dict):
            raise _unrecognised(path, "a list of non-objects")
        kind = object_kind(first[0])
        if kind is None:
            raise _unrecognised(path, f"a list of objects with keys {_keys(first[0])}")
        if rest.lstrip()[:1] == b"[":  # arrays one after another (gh api --paginate)
            return Dump(path, kind, Source.from_files(files, fmt="unstructured", unnest="$[*]"))
        return Dump(path, kind, Source.from_files(files, fmt="array"))
    if not isinstance(first, dict):
        raise _unrecognised(path, f"a JSON {type(first).__name__}")
    for key, kind in _PAGE_KEYS.items():
        if isinstance(first.get(key), list):
            return Dump(
                path, kind, Source.from_files(files, fmt="unstructured", unnest=f"$.{key}[*]")
            )
    kind = object_kind(first)
    if kind is None:
        raise _unrecognised(path, f"an object with keys {_keys(first)}")
    json_lines = one_line and rest.lstrip(b" \t")[:1] in (b"\n", b"\r", b"")
    fmt = "newline_delimited" if json_lines else "unstructured"
    return Dump(path, kind, Source.from_files(files, fmt=fmt), json_lines=json_lines)


def _keys(obj: Mapping[str, Any]) -> str:
    keys = sorted(obj)
    return ", ".join(keys[:6]) + (", ..." if len(keys) > 6 else "") if keys else "none"
