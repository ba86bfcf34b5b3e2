"""Render a report notebook with papermill into reports/<kind>/<period>/ (DESIGN §7).

The notebook runs in the deploystats kernel (this interpreter), writes the evidence JSON into
a staging folder beside the target; then the executed notebook becomes a self-contained HTML,
the evidence gives the Markdown and JIRA summaries, and the staging folder is renamed into
place. A failed render keeps its partial notebook as `<stem>.failed-<ts>.ipynb`; an existing
report folder is kept unless `force`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from deploystats.errors import DeploystatsError
from deploystats.reports import formats
from deploystats.reports.kernel import ensure_kernel

NOTEBOOKS = {
    "weekly-slo": "weekly_slo.ipynb",
    "epic-closure": "epic_closure.ipynb",
}


class ReportError(DeploystatsError):
    """A report that cannot be rendered."""


@dataclass(frozen=True)
class Rendered:
    kind: str
    period: str
    folder: Path
    files: list[str]
    seconds: float

    @property
    def html(self) -> Path:
        return self.folder / f"{self.kind}-{self.period}.html"

    @property
    def evidence(self) -> Path:
        return self.folder / f"{self.kind}-{self.period}.json"


def notebook_path(name: str) -> Path:
    return Path(str(resources.files("deploystats") / "notebooks" / name))


def _writable(base: Path) -> None:
    """Fail before anything runs when the output folder cannot be written."""
    try:
        base.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as exc:
        raise ReportError(
            f"cannot write reports into {base}: {exc.strerror or exc}; "
            "pass --out with a folder you can write to"
        ) from None


def render(
    kind: str,
    period: str,
    parameters: dict[str, Any],
    *,
    out: Path | str = "reports",
    force: bool = False,
) -> Rendered:
    """Run the notebook of `kind` with `parameters`; write the report for `period`."""
    started = time.monotonic()
    stem = f"{kind}-{period}"
    base = Path(out) / kind
    folder = base / period
    if folder.exists() and any(folder.iterdir()) and not force:
        raise ReportError(
            f"{folder} already holds a report; evidence may be attached somewhere, so it is "
            "kept: pass --force to replace it"
        )
    _writable(base)
    staging = Path(tempfile.mkdtemp(dir=base, prefix=f".{period}.rendering-"))
    try:
        executed = staging / f"{stem}.ipynb"
        _execute(kind, stem, parameters | {"output": str(staging)}, executed, base)
        evidence_path = staging / f"{stem}.json"
        evidence = json.loads(evidence_path.read_text(encoding="utf-8"))
        (staging / f"{stem}.html").write_text(
            _html(executed, evidence["report"]["title"]), encoding="utf-8"
        )
        (staging / f"{stem}.md").write_text(formats.markdown(evidence), encoding="utf-8")
        (staging / f"{stem}.jira.txt").write_text(formats.jira(evidence), encoding="utf-8")
        files = sorted(p.name for p in staging.iterdir())
        evidence["report"]["files"] = files
        text = json.dumps(evidence, indent=1, allow_nan=False)
        tmp = evidence_path.with_suffix(".json.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(evidence_path)
        _move_into_place(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Rendered(kind, period, folder, files, time.monotonic() - started)


def _execute(kind: str, stem: str, parameters: dict[str, Any], executed: Path, base: Path) -> None:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    source = notebook_path(NOTEBOOKS[kind])
    try:
        papermill.execute_notebook(
            str(source),
            str(executed),
            parameters=parameters,
            kernel_name=ensure_kernel(),
            progress_bar=False,
            log_output=False,
            cwd=str(Path.cwd()),
        )
    except PapermillExecutionError as exc:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        failed = base / f"{stem}.failed-{stamp}.ipynb"
        if executed.exists():
            shutil.copyfile(executed, failed)
        reason = (exc.evalue or exc.ename).strip().splitlines()
        raise ReportError(
            f"report {kind} failed in cell {_source_cell(source, exc.cell_index)} ({exc.ename}: "
            f"{reason[-1] if reason else ''}); partial notebook kept: {failed}"
        ) from None


def _source_cell(source: Path, index: int) -> int:
    """1-based number in the notebook as shipped of the cell papermill reports as `index`
    (papermill runs an `injected-parameters` cell right after the `parameters` cell)."""
    import nbformat

    cells = nbformat.read(source, as_version=4).cells  # type: ignore[no-untyped-call]
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", [])]
    return index if tagged and index > tagged[0] else index + 1


def _html(executed: Path, title: str) -> str:
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(executed, as_version=4)  # type: ignore[no-untyped-call]
    nb.metadata["title"] = title
    templates = Path(str(resources.files("deploystats") / "reports" / "templates"))
    exporter = HTMLExporter(  # type: ignore[no-untyped-call]
        template_name="deploystats",
        extra_template_basedirs=[str(templates)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    body, _ = exporter.from_notebook_node(nb)
    return str(body)


def _move_into_place(staging: Path, folder: Path) -> None:
    """Rename the finished staging folder into place (replacing an old one only now)."""
    staging.chmod(0o777 & ~_umask())  # mkdtemp made it private; a report folder is not
    old = None
    if folder.exists():
        old = folder.with_name(f".{folder.name}.replaced-{os.getpid()}")
        folder.rename(old)
    try:
        staging.rename(folder)
    except OSError:
        if old is not None:
            old.rename(folder)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
