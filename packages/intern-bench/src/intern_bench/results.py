"""GV-B results on disk: one ``result.json`` per evaluated (model, task, split, draw, protocol) run.

A result holds the numbers (``metrics``, scores in percent), which of them the tables use
(``primary_metric``) and in which direction it improves, what was measured (the model's fingerprint,
the split manifest's hash, the run's seed and the seed of the regime's draw) and the full resolved
run config, so a table cell can always be traced back to the run that made it. Results are written
atomically, so a report reading a run folder while a run finishes sees the old file or the new one,
never half of one.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from intern_data.io import atomic_write_text

RESULT_FILE = "result.json"

# Metrics that improve downwards: depth errors, CityPersons MR^-2, FPR at a fixed recall.
_LOWER_IS_BETTER = frozenset(
    {"rmse", "rmse_log", "abs_rel", "sq_rel", "log10", "silog", "mr2", "mr-2", "miss_rate", "lamr"}
)


class ResultFileError(ValueError):
    """A ``result.json`` that cannot be read as a :class:`BenchResult`; the message names the file."""


def metric_higher_is_better(name: str) -> bool:
    """Whether the metric ``name`` improves upwards (False for depth errors, MR^-2 and ``fpr@...``)."""
    key = name.strip().lower()
    return not (key in _LOWER_IS_BETTER or key.startswith(("fpr", "mr2", "mr-2")) or key.endswith("rmse"))


def now_iso() -> str:
    """The current time as an ISO 8601 timestamp in UTC (microseconds, so runs order exactly)."""
    return datetime.now(UTC).isoformat()


def parse_created(stamp: str) -> datetime:
    """An ISO timestamp as an aware datetime; a naive one is read as UTC."""
    moment = datetime.fromisoformat(stamp)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class BenchResult:
    """One evaluated run of GV-B (see the module docstring).

    Args:
        model: display name of the model, the row of the tables.
        model_fingerprint: hash of the weights and architecture that were evaluated.
        task: task name, a column group of the tables.
        task_type: ``classification``, ``detection``, ``segmentation``, ``depth``, ...
        split: data regime rule of the training data, e.g. ``10pct``, ``100pct``, ``4shot``.
        split_hash: hash of the split manifest's keys (which samples were trained on).
        seed: the run's ``seed`` (a random-init model's initialisation).
        protocol: ``linear_probe``, ``frozen_dense``, ``finetune``, ...
        metrics: every number the run measured, e.g. ``{"accuracy": 81.2, "fpr@0.95": 0.12}``.
        primary_metric: the key of ``metrics`` the tables and plots use.
        higher_is_better: direction of the primary metric (False for rmse, MR^-2).
        config: the full resolved run config.
        created: ISO 8601 timestamp of the run's end.
        duration_s: wall time of the run in seconds.
        curve: optional extra series (e.g. a precision-recall curve), kept as written.
        precision: Lightning's precision of the run (``32-true``, ``bf16-mixed``, ``16-mixed``);
            results written before it was recorded read as ``32-true``.
        devices: how many devices the run used (1 in results written before it was recorded).
        split_seed: seed of the regime's draw, its validation carve-out and the head's training (one of
            ``split_seeds``); results written before it was recorded drew with ``seed``, and read so.
    """

    model: str
    model_fingerprint: str
    task: str
    task_type: str
    split: str
    split_hash: str
    seed: int
    protocol: str
    metrics: dict[str, float]
    primary_metric: str
    higher_is_better: bool
    config: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=now_iso)
    duration_s: float = 0.0
    curve: dict[str, Any] | None = None
    precision: str = "32-true"
    devices: int = 1
    split_seed: int | None = None

    def __post_init__(self) -> None:
        if self.split_seed is None:
            object.__setattr__(self, "split_seed", self.seed)
        if self.primary_metric not in self.metrics:
            raise ValueError(
                f"primary metric {self.primary_metric!r} is not among the metrics {sorted(self.metrics)}"
            )
        parse_created(self.created)

    @property
    def value(self) -> float:
        """The primary metric's value."""
        return self.metrics[self.primary_metric]

    @property
    def key(self) -> tuple[str, str, str, str, int | None]:
        """(model, task, split, protocol, split seed): what :func:`latest` keeps one result of."""
        return (self.model, self.task, self.split, self.protocol, self.split_seed)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any, origin: str = "result") -> BenchResult:
        """Read a result written by :meth:`to_json`, checking every field's type; errors name ``origin``."""
        if not isinstance(data, dict):
            raise ResultFileError(f"{origin}: expected a JSON object, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
        missing = sorted(required - data.keys())
        if missing:
            raise ResultFileError(f"{origin}: missing field(s) {missing}")
        unknown = sorted(data.keys() - names)
        if unknown:
            raise ResultFileError(f"{origin}: unknown field(s) {unknown}")
        try:
            values = dict(data)
            for name in _STR_FIELDS:
                values[name] = _typed(values[name], str, name)
            values["seed"] = _typed(values["seed"], int, "seed")
            values["higher_is_better"] = _typed(values["higher_is_better"], bool, "higher_is_better")
            metrics = _typed(values["metrics"], dict, "metrics")
            values["metrics"] = {str(k): _number(v, f"metrics[{k!r}]") for k, v in metrics.items()}
            if "config" in values:
                values["config"] = _typed(values["config"], dict, "config")
            if "created" in values:
                values["created"] = _typed(values["created"], str, "created")
            if "duration_s" in values:
                values["duration_s"] = _number(values["duration_s"], "duration_s")
            if "precision" in values:
                values["precision"] = _typed(values["precision"], str, "precision")
            for name in ("devices", "split_seed"):
                if name in values:
                    values[name] = _typed(values[name], int, name)
            return cls(**values)
        except (TypeError, ValueError) as err:
            raise ResultFileError(f"{origin}: {err}") from err


_STR_FIELDS = (
    "model",
    "model_fingerprint",
    "task",
    "task_type",
    "split",
    "split_hash",
    "protocol",
    "primary_metric",
)


def _typed(value: Any, kind: type, name: str) -> Any:
    # bool is an int subclass: a seed of `true` is as wrong as a direction of `1`.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"field {name!r} should be {kind.__name__}, got {value!r}")
    return value


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} should be a number, got {value!r}")
    return float(value)


def save(result: BenchResult, folder: str | Path) -> Path:
    """Write ``result`` as ``folder/result.json``, atomically (temporary file renamed into place)."""
    return atomic_write_text(Path(folder) / RESULT_FILE, json.dumps(result.to_json(), indent=1) + "\n")


def load_result(path: str | Path) -> BenchResult:
    """Read one ``result.json``; a malformed file raises :class:`ResultFileError` naming it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ResultFileError(f"{path}: not valid JSON ({err})") from err
    return BenchResult.from_json(data, origin=str(path))


def load_results(root: str | Path) -> list[BenchResult]:
    """Every ``result.json`` anywhere under ``root``, in path order (``root`` may be one such file).

    Raises:
        FileNotFoundError: ``root`` does not exist.
        ResultFileError: a result file is malformed (the message names it).
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"results folder {root} does not exist")
    if root.is_file():
        return [load_result(root)]
    return [load_result(path) for path in sorted(root.rglob(RESULT_FILE)) if path.is_file()]


def latest(results: list[BenchResult]) -> list[BenchResult]:
    """The newest result (by ``created``) per (model, task, split, protocol, split seed), in first-seen
    order: a rerun replaces its draw's result, other draws of the regime stay.

    Of results created at the same moment, the one later in ``results`` wins.
    """
    newest: dict[tuple[str, str, str, str, int | None], BenchResult] = {}
    for result in results:
        kept = newest.get(result.key)
        if kept is None or parse_created(result.created) >= parse_created(kept.created):
            newest[result.key] = result
    return list(newest.values())
