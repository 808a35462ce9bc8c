"""The GV-B task registry: every benchmark task as a frozen `TaskSpec`, grouped into suites.

=============  ======================================================================================
suite          tasks
=============  ======================================================================================
``world``       the five embedded-world tasks (``gvb_world_cls`` ... ``gvb_world_depth``), no download
``real_small``  real data shipped in packages: ``fashion_mnist``, ``digits``, ``lfw_face``
``gvb``         the 26 datasets of the paper's Table 31, from shards the user makes
``gvb_cls``     its 20 classification datasets
``gvb_dense``   its 6 dense tasks (detection, face, pedestrian, segmentation, 2 x depth)
=============  ======================================================================================

>>> spec = get_task("pets")
>>> spec.metric, spec.num_classes
('mean_per_class_accuracy', 37)
>>> spec.shard_command("/data/gvb", "/raw/pets")
'python -m intern_data shard image_folder /raw/pets --out /data/gvb/pets --split train --split test'

``python -m intern_bench list [--suite S]`` prints the table.
"""

from intern_bench.tasks.registry import (
    SUITES,
    TASKS,
    UnknownSuiteError,
    UnknownTaskError,
    get_suite,
    get_task,
    list_tasks,
)
from intern_bench.tasks.spec import METRICS, SOURCE_KINDS, TASK_TYPES, DataSource, TaskSpec

__all__ = [
    "METRICS",
    "SOURCE_KINDS",
    "SUITES",
    "TASKS",
    "TASK_TYPES",
    "DataSource",
    "TaskSpec",
    "UnknownSuiteError",
    "UnknownTaskError",
    "get_suite",
    "get_task",
    "list_tasks",
]
