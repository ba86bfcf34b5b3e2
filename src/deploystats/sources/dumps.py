"""Saved GitHub API JSON files: detect their shape and kind, hand them to DuckDB's reader.

Accepted shapes: an API page (`{"total_count": n, "workflow_runs": [...]}` or `{"jobs": [...]}`),
pages written one after another (`gh api --paginate`), a JSON list, a single object, JSON Lines,
any of them gzip-compressed. Kinds, detected from the first object: runs (list entries or
`/attempts/{n}`), jobs, deployments, deployment statuses. Python only peeks at the head of the
file and cuts JSON Lines into chunks of whole lines; DuckDB parses every object.
"""

from __future__ import annotations

import gzip
import json
import mmap
import os
import threading
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from queue import Full, Queue
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from deploystats.errors import DumpError
from deploystats.store.save import Source, line_offsets
from deploystats.store.schema import ROW_GROUP_SIZE

_T = TypeVar("_T")

ACCEPTED = (
    "GitHub API workflow runs, run attempts, jobs, deployments or deployment statuses, as an API "
    'page ({"workflow_runs": [...]} or {"jobs": [...]}), pages one after another '
    "(gh api --paginate), a JSON list, a single object or JSON Lines, optionally .gz"
)
_PAGE_KEYS = {"workflow_runs": "runs", "jobs": "jobs"}
# A page of the API holds at most 100 objects, far less than this: a list that does not end
# within it is one list, not pages one after another (gh api --paginate).
_PAGE_LIMIT = 8 * 1024 * 1024


CHUNK_BYTES = 128 * 1024 * 1024  # a file is saved in batches of about this size
_JSON_MAX_OBJECT = 64 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"
_READER_MEMORY_LIMIT = "512MB"  # the reader only streams, beside the writer's buffer pool


@dataclass(frozen=True)
class Dump:
    """One file: what it holds and how to read it."""

    path: Path
    kind: str  # runs | jobs | deployments | deployment_statuses
    fmt: str  # json_lines, empty, or a format of DuckDB's read_json_objects
    unnest: str | None = None  # JSON path of a page's list

    @property
    def json_lines(self) -> bool:
        return self.fmt == "json_lines"

    def batches(self) -> Iterator[Source]:
        """The file in batches of about CHUNK_BYTES of whole objects (bounded memory, each
        batch committed on its own). JSON Lines are split here and read in place; any other
        shape is unwrapped by DuckDB's JSON reader."""
        if self.json_lines:
            yield from json_lines_batches(self.path)
        elif self.fmt != "empty":
            yield from _duckdb_batches(self)


_Chunk = tuple[Any, int, int, bool]  # text, start, end of its whole lines, whether the last


def json_lines_batches(
    path: Path, *, chunk_bytes: int = CHUNK_BYTES, multiple: int = ROW_GROUP_SIZE
) -> Iterator[Source]:
    """A JSON Lines file in batches of whole lines, about `chunk_bytes` each; every batch but
    the last holds a multiple of `multiple` lines (whole row groups are written to the file in
    one pass, see store.schema.ROW_GROUP_SIZE), widened up to 4 * chunk_bytes to hold that
    many."""
    if path.suffix == ".gz":
        # read into memory of our own, not mapped from the page cache: half the size keeps
        # the peak as low as a mapped file's (measured on 100,000 runs and their jobs:
        # 820 MiB against 1,050 MiB)
        chunks = _read_chunks(path, chunk_bytes // 2)
    else:
        chunks = _mapped_chunks(path, chunk_bytes)
    chunk = next(chunks, None)
    first = True
    while chunk is not None:
        data, start, end, last = chunk
        if first and data[start : start + len(_BOM)] == _BOM:
            start += len(_BOM)
        offsets = line_offsets(data, start, end, multiple=1 if last else multiple)
        if not last and len(offsets) <= multiple and end - start < 4 * chunk_bytes:
            chunk = chunks.send(-1)  # objects larger than usual: take a wider chunk
            continue
        first = False
        if len(offsets) > 1:
            yield Source.from_json_lines(data, offsets)
        chunk = chunks.send(offsets[-1]) if not last else None


def _mapped_chunks(
    path: Path, chunk_bytes: int
) -> Generator[tuple[Any, int, int, bool], int, None]:
    """Whole lines of a plain file, mapped rather than read: no copy of the text (measured:
    1.7 s of CPU for 1.4 GB of runs read, 0.4 s mapped). Yields (text, start, end, last) and
    is sent where the batch taken from it ends. A window is unmapped once its batch is saved
    and dropped."""
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        position = 0
        window = chunk_bytes // 2  # a smaller first batch: saving starts sooner
        while position < size:
            base = position - position % mmap.ALLOCATIONGRANULARITY
            length = min(size - base, position - base + window)
            view = mmap.mmap(handle.fileno(), length, access=mmap.ACCESS_READ, offset=base)
            last = base + length >= size
            end = length if last else view.rfind(b"\n", position - base) + 1
            if end <= position - base:  # a line longer than the window: widen it
                window *= 2
                continue
            taken = yield view, position - base, end, last
            if taken < 0:
                window *= 2
                continue
            position, window = base + taken, chunk_bytes


def _read_chunks(path: Path, chunk_bytes: int) -> Generator[_Chunk, int, None]:
    """Whole lines of a compressed file, in fresh buffers (the last batch may still use one);
    yields and is sent as `_mapped_chunks`."""
    rest = b""
    with _open(path) as handle:
        while True:
            # the chunk starts with the lines the last batch left
            data = bytearray(len(rest) + chunk_bytes)
            data[: len(rest)] = rest
            read = handle.readinto(memoryview(data)[len(rest) :])
            size = len(rest) + read
            end = data.rfind(b"\n", 0, size) + 1 if read else size
            if read and not end:  # a line longer than a chunk: read on
                rest = bytes(data[:size])
                continue
            taken = yield data, 0, end, not read
            rest = bytes(data[taken:size] if taken >= 0 else data[:size])


def prefetched(items: Iterator[_T]) -> Generator[_T, None, None]:
    """The items, each next one produced in a thread while the caller works on the current
    one: reading and splitting the next batch of a file (Python, one core) overlaps DuckDB
    saving this one. Errors of the producer are raised here, in order."""
    queue: Queue[tuple[str, Any]] = Queue(maxsize=1)
    stop = threading.Event()

    def put(kind: str, value: Any) -> bool:
        while not stop.is_set():
            try:
                queue.put((kind, value), timeout=0.05)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put("item", item):
                    return
            put("end", None)
        except BaseException as exc:  # handed to the consumer
            put("error", exc)

    thread = threading.Thread(target=produce, name="deploystats-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        thread.join()


def _duckdb_batches(dump: Dump) -> Iterator[Source]:
    """Objects of any other shape, unwrapped by DuckDB's reader and streamed in batches."""
    reader = "read_json_objects($file, format := $fmt, maximum_object_size := $max)"
    params: dict[str, Any] = {"file": str(dump.path), "fmt": dump.fmt, "max": _JSON_MAX_OBJECT}
    sql = f"SELECT json AS j FROM {reader}"
    if dump.unnest is not None:
        sql = f"SELECT unnest(json_extract(json, $path)) AS j FROM {reader}"
        params["path"] = dump.unnest
    con = duckdb.connect(config={"memory_limit": _READER_MEMORY_LIMIT})
    try:
        query = con.sql(f"SELECT j::VARCHAR AS j FROM ({sql})", params=params)
        batches = query.to_arrow_reader(4096)
        pending: list[pa.Array] = []
        size = 0
        for batch in batches:
            pending.append(batch.column(0))
            size += batch.nbytes
            if size >= CHUNK_BYTES // 2:  # memory of our own, as a compressed file's
                yield Source.from_arrow(pa.chunked_array(pending, pa.string()))
                pending, size = [], 0
        if pending:
            yield Source.from_arrow(pa.chunked_array(pending, pa.string()))
    finally:
        con.close()


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


def _head(path: Path, size: int) -> tuple[str, bool]:
    """The first `size` bytes of the file as text, without a byte order mark or leading
    whitespace, and whether that is the whole file."""
    with _open(path) as handle:
        head = handle.read(size)
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff").lstrip()
    return text, len(head) < size


def _first_value(path: Path) -> tuple[Any, str, bool]:
    """The first JSON value of the file, the text after it, and whether it is on one line.
    Read from the head of the file, up to the largest object DuckDB's reader takes."""
    size = 64 * 1024
    decoder = json.JSONDecoder()
    while True:
        text, whole = _head(path, size)
        if not text:
            raise DumpError(f"{path}: empty file: expected {ACCEPTED}", path=str(path))
        try:
            value, end = decoder.raw_decode(text)
            return value, text[end : end + 64], "\n" not in text[:end]
        except json.JSONDecodeError as exc:
            if whole:
                raise malformed(path) or DumpError(f"{path}: not valid JSON") from exc
            if size >= _JSON_MAX_OBJECT:
                raise _too_large(path) from exc
            size *= 4


def _too_large(path: Path) -> DumpError:
    return DumpError(
        f"{path}: a JSON object larger than {_JSON_MAX_OBJECT // 2**20} MB: write it as JSON "
        "Lines (one object per line, e.g. jq -c '.workflow_runs[]')",
        path=str(path),
    )


def _inspect_list(path: Path) -> Dump:
    """A file that starts with a list: its kind from its first object; one list, or lists one
    after another (gh api --paginate). Only the head of the file is read, however long."""
    text, whole = _head(path, _PAGE_LIMIT)
    body = text[1:].lstrip()
    if body.startswith("]"):
        return Dump(path, "runs", "empty")
    decoder = json.JSONDecoder()
    try:
        first, _ = decoder.raw_decode(body)
    except json.JSONDecodeError as exc:
        if whole:
            raise malformed(path) or DumpError(f"{path}: not valid JSON") from exc
        raise _too_large(path) from exc
    if not isinstance(first, dict):
        raise _unrecognised(path, "a list of non-objects")
    kind = object_kind(first)
    if kind is None:
        raise _unrecognised(path, f"a list of objects with keys {_keys(first)}")
    try:
        _, end = decoder.raw_decode(text)
    except json.JSONDecodeError as exc:
        if whole:
            raise malformed(path) or DumpError(f"{path}: not valid JSON") from exc
        return Dump(path, kind, "array")  # longer than any page: one list
    if text[end:].lstrip()[:1] == "[":
        return Dump(path, kind, "unstructured", unnest="$[*]")
    return Dump(path, kind, "array")


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
    if _head(path, 64 * 1024)[0].startswith("["):
        return _inspect_list(path)
    first, rest, one_line = _first_value(path)
    if not isinstance(first, dict):
        raise _unrecognised(path, f"a JSON {type(first).__name__}")
    for key, page_kind in _PAGE_KEYS.items():
        if isinstance(first.get(key), list):
            return Dump(path, page_kind, "unstructured", unnest=f"$.{key}[*]")
    kind = object_kind(first)
    if kind is None:
        raise _unrecognised(path, f"an object with keys {_keys(first)}")
    json_lines = one_line and rest.lstrip(" \t")[:1] in ("\n", "\r", "")
    return Dump(path, kind, "json_lines" if json_lines else "unstructured")


def _keys(obj: Mapping[str, Any]) -> str:
    keys = sorted(obj)
    return ", ".join(keys[:6]) + (", ..." if len(keys) > 6 else "") if keys else "none"
