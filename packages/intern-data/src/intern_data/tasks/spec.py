"""`TaskSpec`: one downstream task (what it measures, how big it is, where its data come from, and the
constants its protocols need), as its task config (``conf/task/<name>.yaml``) describes it.

``num_classes`` counts what the task's labels index: classification classes; detection object
classes without background (heads add their own); segmentation classes with background (the
classes mIoU averages over); None for depth.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, get_args

from intern_data.world import cache_folder

TaskType = Literal[
    "classification", "detection", "face_detection", "pedestrian_detection", "segmentation", "depth"
]
MetricName = Literal[
    "accuracy", "mean_per_class_accuracy", "ap50", "ap50_easy_medium_hard", "mr2", "miou", "rmse"
]
SourceKind = Literal["reader", "world", "packaged", "shards"]
TASK_TYPES: tuple[str, ...] = get_args(TaskType)
METRICS: tuple[str, ...] = get_args(MetricName)
SOURCE_KINDS: tuple[str, ...] = get_args(SourceKind)


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class DataSource:
    """Where a task's samples come from.

    Attributes:
        kind: ``reader`` (a real dataset the user converts to shards with an intern-data reader),
            ``world`` (an embedded-world dataset, generated and cached), ``packaged`` (an
            intern-data reader over data that ship in installed packages) or ``shards`` (a shard folder
            the user made, described by its ``index.json``).
        name: the intern-data reader (``reader``, ``packaged``), the world dataset (``world``) or the
            shard folder (``shards``).
        layout: the on-disk layout the reader expects under the dataset's root (``reader`` only).
        options: keyword arguments of the reader beyond ``root`` and ``split``.
    """

    kind: SourceKind
    name: str
    layout: str = ""
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ValueError(f"source kind must be one of {SOURCE_KINDS}, got {self.kind!r}")
        object.__setattr__(self, "options", _frozen(self.options))

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True)
class TaskSpec:
    """One benchmark task.

    Attributes:
        name: registry name (``cifar10``, ``gvb_world_det``).
        title: the dataset's name as the paper writes it.
        type: one of ``TASK_TYPES``.
        num_classes: see the module docstring.
        train_size, test_size: samples of the training and test split (Table 31 for GV-B).
        metric: the primary metric, one of ``METRICS``.
        source: where the data come from.
        splits: role (``train``, ``val``, ``test``) -> split name in the shards.
        section: the paper section describing the task.
        notes: what the numbers or the layout need explained.
        suites: tags of the suites the task belongs to.
        protocol: constants of the task's protocols: ``max_depth`` and ``eval_crop`` (depth),
            ``anchor_sizes`` (detection, one per FPN level P2..P6), ``aspp_rates`` (segmentation).
        root: the shard folder, when the task names one (``shards`` tasks); else ``shards_root``'s.
        order: the task's position in the registry (Table 31's order for GV-B).
    """

    name: str
    title: str
    type: TaskType
    num_classes: int | None
    train_size: int
    test_size: int
    metric: MetricName
    source: DataSource
    splits: Mapping[str, str] = field(default_factory=lambda: {"train": "train", "test": "test"}, hash=False)
    section: str = ""
    notes: str = ""
    suites: tuple[str, ...] = ()
    protocol: Mapping[str, Any] = field(default_factory=dict, hash=False)
    root: str | None = None
    order: int = 0

    def __post_init__(self) -> None:
        if self.type not in TASK_TYPES:
            raise ValueError(f"{self.name}: type must be one of {TASK_TYPES}, got {self.type!r}")
        if self.metric not in METRICS:
            raise ValueError(f"{self.name}: metric must be one of {METRICS}, got {self.metric!r}")
        if not {"train", "test"} <= set(self.splits):
            raise ValueError(f"{self.name}: splits needs train and test, got {dict(self.splits)}")
        object.__setattr__(self, "splits", _frozen(self.splits))
        object.__setattr__(self, "protocol", _frozen(self.protocol))

    def shards_root(self, data_root: Path | str) -> Path:
        """The shard folder of this task under ``data_root``.

        ``root`` when the task names its folder; ``<data_root>/<name>`` for real data; for the world,
        the cache folder of its default settings that ``intern_data.world.world_shards(dataset,
        data_root)`` fills.
        """
        if self.root is not None:
            return Path(self.root)
        if self.source.kind == "world":
            return cache_folder(self.source.name, data_root)
        return Path(data_root) / self.name

    def shard_command(
        self, data_root: Path | str = "DATA_ROOT", native_root: Path | str = "ROOT"
    ) -> str | None:
        """The ``python -m intern_data shard`` command writing this task's shards (None for the world and
        for a shard folder the user made).

        Args:
            data_root: where the benchmark's shard folders go.
            native_root: the dataset in its native format (``source.layout``); unused for packaged data.
        """
        if self.source.kind in ("world", "shards"):
            return None
        args = ["python", "-m", "intern_data", "shard", self.source.name]
        if self.source.kind == "reader":
            args.append(str(native_root))
        args += ["--out", str(self.shards_root(data_root))]
        for split in dict.fromkeys(self.splits.values()):
            args += ["--split", split]
        for key, value in self.source.options.items():
            args += ["--option", f"{key}={value}"]
        return shlex.join(args)
