"""The exception tree: every failure a user can cause or meet is a DeploystatsError.

    DeploystatsError                 one-line message for the CLI; exit code 1
    ├── ConfigError                  deploystats.yml or environment is wrong
    ├── SourceError                  a data source failed
    │   ├── GitHubError              GitHub answered with an error or is unreachable
    │   │   └── RateLimitError       waiting for the rate limit would exceed --max-wait
    │   ├── PrometheusError
    │   └── DumpError                a saved API dump cannot be read
    ├── StoreError                   the DuckDB file cannot be used
    │   └── LockedError              another process holds the file
    ├── BudgetExhausted              --max-requests reached (clean stop at a batch boundary)
    ├── ReportError
    └── DeliveryError

Messages name the input and the fix, and never contain a secret.
"""

from __future__ import annotations


class DeploystatsError(Exception):
    """Base class; str(error) is the one line the CLI shows."""


class ConfigError(DeploystatsError):
    """The configuration file or environment is invalid."""


class SourceError(DeploystatsError):
    """A data source failed."""


class GitHubError(SourceError):
    """GitHub answered with an error, or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None, url: str | None = None):
        super().__init__(message)
        self.status = status
        self.url = url


class RateLimitError(GitHubError):
    """The rate limit resets later than --max-wait allows."""

    def __init__(self, message: str, *, reset_at: float | None = None, url: str | None = None):
        super().__init__(message, status=403, url=url)
        self.reset_at = reset_at


class PrometheusError(SourceError):
    """Prometheus answered with an error, or could not be reached."""


class DumpError(SourceError):
    """A saved API dump is malformed or of an unknown shape."""

    def __init__(self, message: str, *, path: str | None = None):
        super().__init__(message)
        self.path = path


class StoreError(DeploystatsError):
    """The DuckDB file cannot be opened or written."""


class LockedError(StoreError):
    """Another process holds the DuckDB file."""


class BudgetExhausted(DeploystatsError):
    """--max-requests was reached; everything committed so far is complete."""


class ReportError(DeploystatsError):
    """A report could not be rendered."""


class DeliveryError(DeploystatsError):
    """A report could not be delivered."""
