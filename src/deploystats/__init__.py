"""deploystats: deployment analytics and SLO reporting from GitHub Actions and Prometheus."""

from deploystats.api import Deploystats, open
from deploystats.errors import (
    ConfigError,
    DeploystatsError,
    DumpError,
    GitHubError,
    LockedError,
    StoreError,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "Deploystats",
    "DeploystatsError",
    "DumpError",
    "GitHubError",
    "LockedError",
    "StoreError",
    "__version__",
    "open",
]
