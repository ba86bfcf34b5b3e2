"""Reports: papermill notebooks rendered to HTML, Markdown, JIRA markup and JSON evidence."""

from deploystats.reports.render import NOTEBOOKS, Rendered, ReportError, render

__all__ = ["NOTEBOOKS", "Rendered", "ReportError", "render"]
