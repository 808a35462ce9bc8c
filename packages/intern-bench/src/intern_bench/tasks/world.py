"""The GV-B tasks of the embedded world: shifted domains and new label spaces, generated on the fly.

Type, class count and sizes come from the world's own dataset specs (`intern_data.world`), so the
registry cannot drift from the generator.
"""

from __future__ import annotations

from intern_bench.tasks.spec import DataSource, MetricName, TaskSpec, TaskType
from intern_data.world import WorldDataset, get_dataset

_KINDS: dict[str, tuple[TaskType, MetricName]] = {
    "gvb_world_cls": ("classification", "accuracy"),
    "gvb_world_fine": ("classification", "accuracy"),
    "gvb_world_det": ("detection", "ap50"),
    "gvb_world_seg": ("segmentation", "miou"),
    "gvb_world_depth": ("depth", "rmse"),
}
_TITLES = {
    "gvb_world_cls": "World classification",
    "gvb_world_fine": "World fine-grained",
    "gvb_world_det": "World detection",
    "gvb_world_seg": "World segmentation",
    "gvb_world_depth": "World depth",
}


def world_num_classes(dataset: WorldDataset) -> int | None:
    """Classes of a world dataset as `TaskSpec.num_classes` counts them (no background for boxes)."""
    if dataset.label_space is None:
        return None
    classes = dataset.label_space.classes
    return len(classes) - 1 if dataset.task == "detection" and classes[0] == "background" else len(classes)


def _world_task(name: str) -> TaskSpec:
    dataset = get_dataset(name)
    task_type, metric = _KINDS[name]
    if dataset.task != task_type:
        raise ValueError(f"world dataset {name} is {dataset.task}, the registry expects {task_type}")
    return TaskSpec(
        name=name,
        title=_TITLES[name],
        type=task_type,
        num_classes=world_num_classes(dataset),
        train_size=dataset.sizes["train"],
        test_size=dataset.sizes["test"],
        metric=metric,
        source=DataSource("world", name),
        splits={split: split for split in dataset.sizes},
        section="the embedded world (docs/architecture.md)",
        notes=f"domains {', '.join(dataset.domains)}; {dataset.img_size} px",
        suites=("world",),
    )


WORLD_TASKS: tuple[TaskSpec, ...] = tuple(_world_task(name) for name in _KINDS)
