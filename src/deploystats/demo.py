"""The demo's data: a seeded simulated history, saved as API dumps and Prometheus responses and
loaded the way a user loads theirs (`import github`, `import prometheus --until`); no network."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from deploystats.ingest import import_dumps
from deploystats.prom import import_prometheus
from deploystats.simulate import REPO, Simulation, demo_config, simulate, write_dumps
from deploystats.simulate_prom import simulate_prometheus, write_prometheus
from deploystats.store import Store

KINDS = ("runs", "jobs", "deployments", "deployment_statuses")


@dataclass(frozen=True)
class Demo:
    """What load_demo simulated and loaded."""

    sim: Simulation
    story_end: datetime  # the Monday the story (baseline, improvement, incidents) ends
    config: dict[str, Any]
    config_file: Path
    objects: int  # GitHub objects loaded
    samples: int  # Prometheus samples loaded


def load_demo(store: Store, data_dir: Path, *, seed: int, end: datetime) -> Demo:
    """Simulate a history ending at `end` (the story ends on the Monday of its week; routine
    deploys go on to `end`), write it to `data_dir` with its config, and load it, replacing a
    previous demo's rows and series (repository acme/platform), never mixing two histories.

    The dumps are complete until `end` (nothing is deployed later), and are imported as such:
    the last complete week is never stale, whatever weekday or hour `end` is."""
    story_end = end.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
        days=end.weekday()
    )
    sim = simulate(seed=seed, end=end, story_end=story_end)
    paths = write_dumps(sim, data_dir)
    store.forget_repo(REPO)
    result = import_dumps(store, [paths[kind] for kind in KINDS if kind in paths], until=end)
    simulated = simulate_prometheus(sim, seed=seed)
    store.forget_prometheus(list(simulated.responses))
    prom = write_prometheus(simulated, data_dir / "prometheus")
    samples = sum(
        import_prometheus(store, [path], query=query, until=end).samples
        for query, path in prom.items()
    )
    config = demo_config(sim)
    config_file = data_dir / "deploystats.yml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return Demo(sim, story_end, config, config_file, result.total, samples)
