"""Small real classification tasks whose data ship in installed packages, no download.

Sizes are those of the intern-data readers (`intern_data.readers.packaged`); ``digits`` and ``lfw``
have no official split, so theirs is the readers' stratified split (seed 0, 20% test per class).
"""

from __future__ import annotations

from intern_bench.tasks.spec import DataSource, TaskSpec

PACKAGED_TASKS: tuple[TaskSpec, ...] = (
    TaskSpec(
        name="fashion_mnist",
        title="Fashion-MNIST",
        type="classification",
        num_classes=10,
        train_size=60_000,
        test_size=10_000,
        metric="accuracy",
        source=DataSource("packaged", "fashion_mnist"),
        notes="Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist); 28 px grey",
        suites=("real_small",),
    ),
    TaskSpec(
        name="digits",
        title="Digits",
        type="classification",
        num_classes=10,
        train_size=1_438,
        test_size=359,
        metric="accuracy",
        source=DataSource("packaged", "digits"),
        notes="scikit-learn load_digits (1,797 scans, 8 px grey), stratified split",
        suites=("real_small",),
    ),
    TaskSpec(
        name="lfw_face",
        title="LFW face / non-face",
        type="classification",
        num_classes=2,
        train_size=160,
        test_size=40,
        metric="accuracy",
        source=DataSource("packaged", "lfw"),
        notes="scikit-image data.lfw_subset() (100 faces, 100 non-faces, 25 px grey), stratified split",
        suites=("real_small",),
    ),
)
