"""A task from its config (``conf/task/<name>.yaml``, or the ``task`` node an app composed), and from a
shard folder's ``index.json`` for a user's own shards (``source: shards``).

A config holds everything about its task: ``name``, ``title``, ``type``, ``metric``, ``num_classes``,
``train_size``, ``test_size``, ``source`` (``world``, ``packaged``, ``reader`` or ``shards``) with
``dataset`` (world) or ``reader`` and its ``layout`` / ``options``, ``splits`` (role -> split name),
``protocol`` (constants of its protocols), ``suites``, ``order``, ``section``, ``notes`` and ``root``.
For ``source: shards`` only ``root`` is needed: type, classes, splits and sizes are read from the
folder's index; any key the config sets wins over what the index says.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from intern_data.shards.index import index_path, load_index
from intern_data.tasks.spec import METRICS, TASK_TYPES, DataSource, TaskSpec

__all__ = ["DEFAULT_METRICS", "TaskConfigError", "task_from_config", "task_from_shards"]

DEFAULT_METRICS = {
    "classification": "accuracy",
    "detection": "ap50",
    "face_detection": "ap50_easy_medium_hard",
    "pedestrian_detection": "mr2",
    "segmentation": "miou",
    "depth": "rmse",
}
"""The metric a task of each type reports unless its config names another."""

_FIELD_TYPES = (
    ("depth", "depth"),
    ("mask", "segmentation"),
    ("boxes", "detection"),
    ("label", "classification"),
)


class TaskConfigError(ValueError):
    """A task config that cannot describe a task; the message names the key."""


def task_from_config(node: Mapping[str, Any]) -> TaskSpec:
    """The task a config describes.

    Raises:
        TaskConfigError: a missing or invalid key (the message names it), or a ``shards`` task whose
            folder holds no ``index.json``.
    """
    config = dict(node)
    if config.get("source") == "shards":
        root = config.get("root")
        if not root or root == "???":
            raise TaskConfigError("task.root: a shards task needs the shard folder (task.root=<folder>)")
        given = {k: v for k, v in config.items() if v is not None and not (k == "name" and v == "shards")}
        config = {**_from_index(Path(root)), **given}
    for key in ("name", "type", "source"):
        if not config.get(key):
            raise TaskConfigError(f"task.{key} is missing")
    task_type = config["type"]
    if task_type not in TASK_TYPES:
        raise TaskConfigError(f"task.type={task_type!r}; choose from {', '.join(TASK_TYPES)}")
    metric = config.get("metric") or DEFAULT_METRICS[task_type]
    if metric not in METRICS:
        raise TaskConfigError(f"task.metric={metric!r}; choose from {', '.join(METRICS)}")
    kind = config["source"]
    source_name = config.get("dataset") if kind == "world" else config.get("reader")
    if kind == "shards":
        source_name = str(config["root"])
    try:
        return TaskSpec(
            name=str(config["name"]),
            title=str(config.get("title") or config["name"]),
            type=task_type,
            num_classes=config.get("num_classes"),
            train_size=int(config.get("train_size") or 0),
            test_size=int(config.get("test_size") or 0),
            metric=metric,
            source=DataSource(
                kind,
                str(source_name or config["name"]),
                config.get("layout") or "",
                dict(config.get("options") or {}),
            ),  # fmt: skip
            splits=dict(config.get("splits") or {"train": "train", "test": "test"}),
            section=str(config.get("section") or ""),
            notes=str(config.get("notes") or ""),
            suites=tuple(config.get("suites") or ()),
            protocol=dict(config.get("protocol") or {}),
            root=str(config["root"]) if config.get("root") not in (None, "???") else None,
            order=int(config.get("order") or 0),
        )
    except ValueError as err:
        raise TaskConfigError(f"task {config['name']!r}: {err}") from err


def task_from_shards(root: str | Path, name: str | None = None) -> TaskSpec:
    """The task a user's shard folder describes (see the module docstring)."""
    return task_from_config({"source": "shards", "root": str(root), "name": name})


def _from_index(root: Path) -> dict[str, Any]:
    """What a shard folder's ``index.json`` tells about its task, as config keys."""
    if not index_path(root).is_file():
        raise TaskConfigError(
            f"task.root={str(root)!r} holds no index.json: make shards with python -m intern_data shard ..."
        )
    index = load_index(root)
    splits = index["splits"]
    fields = {field for split in splits.values() for field, count in split.get("fields", {}).items() if count}
    task_type = next((kind for field, kind in _FIELD_TYPES if field in fields), None)
    if task_type is None:
        raise TaskConfigError(
            f"{index_path(root)}: samples hold none of label, boxes, mask, depth; set task.type"
        )
    classes = list((index.get("label_space") or {}).get("classes") or [])
    num_classes = len(classes) or None
    if task_type == "detection" and classes[:1] == ["background"]:
        num_classes = len(classes) - 1
    roles = {"train": "train", "test": "test" if "test" in splits else "val"}
    if roles["test"] == "test" and "val" in splits:
        roles["val"] = "val"
    missing = [split for split in roles.values() if split not in splits]
    if missing:
        raise TaskConfigError(f"{index_path(root)} has no split {missing}; it has {sorted(splits)}")
    return {
        "name": root.name,
        "title": root.name,
        "type": task_type,
        "num_classes": None if task_type == "depth" else num_classes,
        "train_size": splits[roles["train"]]["count"],
        "test_size": splits[roles["test"]]["count"],
        "source": "shards",
        "splits": roles,
        "suites": [],
        "notes": f"shards in {root}",
    }
