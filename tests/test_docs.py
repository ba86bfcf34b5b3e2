"""docs/metrics.md and docs/metrics.schema.json hold: the worked examples run, the JSON validates.

(a) Every ```yaml deploystats-example``` block of docs/metrics.md is a compact history
(tests/factories.py) whose `expect` was worked out by hand in the prose around it. It is built,
written as API JSON files, imported like `deploystats import github` does, and computed for its
window with its target; every `expect` key must match. Keys `data_as_of`, `provisional` and
`stale` are checked against the result's `window` object, every other key against the target's
metrics. (b) The demo's `metrics --format json` and `slo --format json` validate against the
schema. (c) Every key the engine emits is documented in docs/metrics.md.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import deploystats
from deploystats.config import Settings, Target
from deploystats.ingest import import_dumps
from deploystats.metrics.windows import Window
from deploystats.store import Store
from tests.conftest import run_deploystats
from tests.factories import History, history_from_spec, load_spec

DOCS = Path(__file__).resolve().parents[1] / "docs"
METRICS_MD = DOCS / "metrics.md"
SCHEMA = DOCS / "metrics.schema.json"

EXAMPLE_BLOCK = re.compile(r"^```yaml deploystats-example\n(.*?)^```", re.MULTILINE | re.DOTALL)
EXAMPLE_HEADING = re.compile(r"^#+ Example: (.+)$", re.MULTILINE)
WINDOW_KEYS = {"data_as_of", "provisional", "stale"}

# Examples that follow DESIGN §5 where the engine does not yet: title -> what differs.
ENGINE_DISAGREES: dict[str, str] = {}


def examples() -> list[tuple[str, str]]:
    """(title, YAML) of each example block, titled by the nearest `Example:` heading above it."""
    text = METRICS_MD.read_text(encoding="utf-8")
    found = []
    for block in EXAMPLE_BLOCK.finditer(text):
        headings = list(EXAMPLE_HEADING.finditer(text, 0, block.start()))
        assert headings, f"example block at offset {block.start()} has no 'Example:' heading"
        found.append((headings[-1].group(1).strip(), block.group(1)))
    return found


def example_params() -> list[Any]:
    return [
        pytest.param(
            body,
            id=title,
            marks=[pytest.mark.xfail(strict=True, reason=ENGINE_DISAGREES[title])]
            if title in ENGINE_DISAGREES
            else [],
        )
        for title, body in examples()
    ]


def import_history(history: History, folder: Path) -> Path:
    """Write the history as API JSON files and import them into a fresh database."""
    folder.mkdir()
    files = []
    for kind in ("runs", "jobs", "deployments", "deployment_statuses"):
        objects = getattr(history, kind)
        if objects:
            path = folder / f"{kind}.json"
            path.write_text(json.dumps(objects), encoding="utf-8")
            files.append(path)
    db = folder / "deploystats.duckdb"
    import_dumps(Store(db), files)
    return db


def approx(value: Any) -> Any:
    if isinstance(value, float):
        return pytest.approx(value, rel=1e-9, abs=1e-9)
    if isinstance(value, list):
        return [approx(item) for item in value]
    return value


def test_docs_have_the_examples_and_unique_titles() -> None:
    titles = [title for title, _ in examples()]
    assert len(titles) >= 10
    assert len(set(titles)) == len(titles), "example titles name the tests: keep them unique"
    assert set(ENGINE_DISAGREES) <= set(titles)


@pytest.mark.parametrize("body", example_params())
def test_worked_example_matches_the_engine(body: str, tmp_path: Path) -> None:
    spec = load_spec(body)
    history = history_from_spec(spec)
    assert history.window is not None, "an example names its window"
    assert history.expect, "an example states the values it expects"
    db = import_history(history, tmp_path / "example")
    settings = Settings(targets=[Target.model_validate(history.target)])
    window = Window(history.window[0], history.window[1], "example", "UTC")
    result = deploystats.open(db, config=settings).metrics(window=window)

    got_window = result["window"]
    got = result["targets"][history.target["name"]]
    expected = dict(history.expect)
    if history.data_as_of is not None:
        expected.setdefault("data_as_of", history.data_as_of.isoformat())
    unknown = set(expected) - set(got) - WINDOW_KEYS
    assert not unknown, f"expect names keys the engine does not emit: {sorted(unknown)}"
    actual = {k: (got_window if k in WINDOW_KEYS else got)[k] for k in expected}
    assert actual == {k: approx(v) for k, v in expected.items()}


# ----- the JSON contract -------------------------------------------------------------------------
def run_cli(folder: Path, *args: str) -> str:
    done = run_deploystats(*args, cwd=folder)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("demo")
    run_cli(folder, "demo", "--no-reports")
    return folder


GLOBAL = ("--db", "data/deploystats.duckdb", "--config", "data/sample/deploystats.yml")


def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return loaded


def validator(ref: str | None = None) -> jsonschema.Draft202012Validator:
    full = schema()
    jsonschema.Draft202012Validator.check_schema(full)
    if ref is None:
        return jsonschema.Draft202012Validator(full)
    return jsonschema.Draft202012Validator({"$ref": ref, "$defs": full["$defs"]})


@pytest.mark.parametrize(
    "args",
    [
        pytest.param((), id="last-week"),
        pytest.param(("--group-by", "team"), id="group-by-team"),
        pytest.param(("--since", "2020-01-06", "--until", "2020-01-13"), id="no-data"),
    ],
)
def test_demo_metrics_json_validates_against_the_schema(
    demo_folder: Path, args: tuple[str, ...]
) -> None:
    out = json.loads(run_cli(demo_folder, *GLOBAL, "metrics", *args, "--format", "json"))
    assert out["targets"], "the demo has a target"
    validator().validate(out)


@pytest.fixture(scope="module")
def config_with_availability(demo_folder: Path) -> Path:
    """The demo config plus availability SLOs of every other aggregate."""
    config = yaml.safe_load((demo_folder / GLOBAL[3]).read_text(encoding="utf-8"))
    config["slos"] += [
        {"name": f"runner-{how}", "metric": "availability", "target": "runner_up",
         "aggregate": how, "op": ">=", "objective": 0.995, "window": "week"}
        for how in ("each", "mean", "pooled")
    ]  # fmt: skip
    path = demo_folder / "with-availability.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "args",
    [
        pytest.param((), id="last-week"),
        pytest.param(("--since", "2020-01-06", "--until", "2020-01-13"), id="no-data"),
    ],
)
def test_demo_slo_json_validates_against_the_schema(
    demo_folder: Path, config_with_availability: Path, args: tuple[str, ...]
) -> None:
    options = ("--db", GLOBAL[1], "--config", str(config_with_availability))
    out = json.loads(run_cli(demo_folder, *options, "slo", *args, "--format", "json"))
    assert {slo["name"] for slo in out["slos"]} >= {
        "deploy-success",
        "runner-availability",
        "runner-each",
    }
    validator("#/$defs/slo_report").validate(out)


def test_schema_rejects_a_renamed_key(demo_folder: Path) -> None:
    out = json.loads(run_cli(demo_folder, *GLOBAL, "metrics", "--format", "json"))
    target = next(iter(out["targets"].values()))
    target["mttr_seconds"] = target.pop("mttr_s")
    assert not validator().is_valid(out)
    slos = json.loads(run_cli(demo_folder, *GLOBAL, "slo", "--format", "json"))
    slos["slos"][0]["burn"] = slos["slos"][0].pop("burn_rate")
    assert not validator("#/$defs/slo_report").is_valid(slos)


def emitted_keys(value: Any) -> set[str]:
    """Every object key in a JSON value, except the map keys of `targets` and `prometheus`
    (target and query names) and of `labels` (Prometheus label names)."""
    keys: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("targets", "prometheus"):
                for metrics in item.values():
                    keys |= emitted_keys(metrics)
                keys.add(key)
                continue
            if key == "labels":
                keys.add(key)
                continue
            keys.add(key)
            keys |= emitted_keys(item)
    elif isinstance(value, list):
        for item in value:
            keys |= emitted_keys(item)
    return keys


def test_every_emitted_key_is_documented(demo_folder: Path) -> None:
    metrics = json.loads(run_cli(demo_folder, *GLOBAL, "metrics", "--format", "json"))
    slos = json.loads(run_cli(demo_folder, *GLOBAL, "slo", "--format", "json"))
    text = METRICS_MD.read_text(encoding="utf-8")
    missing = sorted(k for k in emitted_keys(metrics) | emitted_keys(slos) if f"`{k}`" not in text)
    assert not missing, f"keys emitted but not documented in docs/metrics.md: {missing}"


def test_every_schema_property_is_documented() -> None:
    text = METRICS_MD.read_text(encoding="utf-8")
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            names.update(node.get("properties", {}))
            for item in node.values():
                walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(schema())
    missing = sorted(name for name in names if f"`{name}`" not in text)
    assert not missing, f"schema properties not documented in docs/metrics.md: {missing}"
