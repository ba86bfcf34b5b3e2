"""A rendered report folder as delivery sees it: its files, and the summary in its evidence JSON."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import orjson

from deploystats.errors import DeliveryError

# what every delivery needs; Parquet sidecars travel along when present
REQUIRED_SUFFIXES = (".json", ".html", ".md")
STATUSES = ("met", "at_risk", "missed", "insufficient_data", "manual")
_HINT = "render it again with `deploystats report ... --force`"


@dataclass(frozen=True)
class Item:
    """One row of the summary: an SLO or a success criterion, values already for display."""

    id: str
    name: str
    objective: str
    actual: str
    n: int | None
    status: str


@dataclass(frozen=True)
class Notable:
    text: str
    url: str | None


@dataclass(frozen=True)
class Report:
    """A report folder `reports/<kind>/<period>/` holding `<kind>-<period>.<ext>` files."""

    folder: Path
    kind: str
    period: str
    title: str
    generated_at: datetime
    url: str | None
    window: dict[str, Any]
    items: tuple[Item, ...]
    notable: tuple[Notable, ...]

    @property
    def stem(self) -> str:
        return f"{self.kind}-{self.period}"

    def path(self, suffix: str) -> Path:
        """The report's own file with this suffix, e.g. ".html"."""
        return self.folder / f"{self.stem}{suffix}"

    @cached_property
    def sidecars(self) -> tuple[Path, ...]:
        """Parquet sidecars `<stem>.<name>.parquet`, sorted by name."""
        return tuple(sorted(self.folder.glob(f"{glob_escape(self.stem)}.*parquet")))

    @property
    def attachments(self) -> tuple[Path, ...]:
        """What goes on a JIRA issue: HTML, evidence JSON, Markdown summary, Parquet sidecars."""
        return (self.path(".html"), self.path(".json"), self.path(".md"), *self.sidecars)

    @property
    def location(self) -> str:
        """Where to read the full report: its published URL, else the local HTML path."""
        return self.url or str(self.path(".html").resolve())

    def counts(self) -> dict[str, int]:
        """Items per status, in STATUSES order, statuses without items left out."""
        counts = {status: 0 for status in STATUSES}
        for item in self.items:
            counts[item.status] += 1
        return {status: n for status, n in counts.items() if n}


def load_report(folder: Path) -> Report:
    """Read a report folder; DeliveryError naming what is missing or malformed."""
    if not folder.is_dir():
        raise DeliveryError(
            f"{folder} is not a report folder: pass one such as reports/weekly-slo/2026-W47"
        )
    evidence = sorted(folder.glob("*.json"))
    if len(evidence) != 1:
        found = ", ".join(p.name for p in evidence) or "none"
        raise DeliveryError(
            f"{folder}: expected exactly one evidence file <kind>-<period>.json, found {found}: "
            f"pass the folder `deploystats report` wrote"
        )
    path = evidence[0]
    try:
        data = orjson.loads(path.read_bytes())
        meta = data["report"]
        window = data["window"]
        summary = data["summary"]
        report = Report(
            folder=folder,
            kind=_text(meta["kind"]),
            period=_text(meta["period"]),
            title=_text(meta["title"]),
            generated_at=_when(meta["generated_at"]),
            url=meta.get("url") or None,
            window=dict(window),
            items=tuple(_item(raw) for raw in summary["items"]),
            notable=tuple(
                Notable(text=_text(n["text"]), url=n.get("url") or None)
                for n in summary.get("notable", [])
            ),
        )
        listed = [_text(name) for name in meta["files"]]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        what = f"no key {exc}" if isinstance(exc, KeyError) else str(exc).splitlines()[0]
        raise DeliveryError(f"{path}: not a deploystats evidence file ({what}): {_HINT}") from None
    if path.name != f"{report.stem}.json":
        raise DeliveryError(
            f"{path}: names report {report.kind} {report.period}, so it should be called "
            f"{report.stem}.json: {_HINT}"
        )
    expected = {*listed, *(report.stem + suffix for suffix in REQUIRED_SUFFIXES)}
    missing = sorted(name for name in expected if not (folder / name).is_file())
    if missing:
        raise DeliveryError(f"{folder}: report files missing: {', '.join(missing)}: {_HINT}")
    return report


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def _item(raw: Any) -> Item:
    status = _text(raw["status"])
    if status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    n = raw.get("n")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool)):
        raise ValueError(f"n {n!r} is not an integer")
    return Item(
        id=_text(raw["id"]),
        name=_text(raw["name"]),
        objective=_text(raw["objective"]),
        actual=_text(raw["actual"]),
        n=n,
        status=status,
    )


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{value!r} is not a non-empty string")
    return value


def _when(value: Any) -> datetime:
    parsed = datetime.fromisoformat(_text(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
