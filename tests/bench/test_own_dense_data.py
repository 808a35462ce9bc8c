"""A user's own dense data through the CLI as the README shows it: a COCO-style detection set and a
label-PNG segmentation set the test writes, sharded with ``python -m intern_data shard``, benchmarked with
``python -m intern_bench task=shards task.root=...`` and named with ``python -m intern_bench task new``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from intern_bench.results import load_results

QUICK = ["split=100pct", "dense.epochs=1", "dense.min_steps=0", "dense.batch_size=4", "progress=false"]


def _scene(
    rng: np.random.Generator, size: int = 64
) -> tuple[np.ndarray, list[tuple[int, int, int, int, int]]]:
    """A noisy image with one to three filled rectangles; returns (pixels, [(class, x, y, w, h)])."""
    image = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
    objects = []
    for _ in range(rng.integers(1, 4)):
        kind = int(rng.integers(2))
        w, h = (int(v) for v in rng.integers(12, 28, 2))
        x, y = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
        image[y : y + h, x : x + w] = (230, 40, 40) if kind == 0 else (40, 200, 230)
        objects.append((kind, x, y, w, h))
    return image, objects


def write_coco(root: Path, counts: dict[str, int]) -> None:
    """COCO 2017's layout: ``annotations/instances_<split>.json`` and ``<split>/*.png``."""
    rng = np.random.default_rng(0)
    (root / "annotations").mkdir(parents=True)
    for split, count in counts.items():
        (root / split).mkdir()
        images, annotations = [], []
        for index in range(count):
            pixels, objects = _scene(rng)
            Image.fromarray(pixels).save(root / split / f"{index:03d}.png")
            images.append({"id": index, "file_name": f"{index:03d}.png", "width": 64, "height": 64})
            for kind, x, y, w, h in objects:
                annotations.append(
                    {"id": len(annotations), "image_id": index, "category_id": 10 + kind,
                     "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0}
                )  # fmt: skip
        categories = [{"id": 10, "name": "red_box"}, {"id": 11, "name": "blue_box"}]
        payload = {"images": images, "annotations": annotations, "categories": categories}
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(payload))


def write_label_pngs(root: Path, counts: dict[str, int]) -> None:
    """seg_png's ``folder`` layout: ``images/<split>/<stem>.png`` + ``labels/<split>/<stem>.png``."""
    rng = np.random.default_rng(1)
    for split, count in counts.items():
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for index in range(count):
            pixels, objects = _scene(rng)
            mask = np.zeros((64, 64), np.uint8)
            for kind, x, y, w, h in objects:
                mask[y : y + h, x : x + w] = kind + 1
            Image.fromarray(pixels).save(root / "images" / split / f"{index:03d}.png")
            Image.fromarray(mask).save(root / "labels" / split / f"{index:03d}.png")


def test_a_coco_detection_set_is_benchmarked_from_its_shards(
    python_m: Callable[..., Any], tmp_path: Path
) -> None:
    write_coco(tmp_path / "boxes", {"train": 8, "val": 4})
    shards = tmp_path / "shards" / "boxes"
    run = python_m("intern_data", "shard", "coco", str(tmp_path / "boxes"), "--out", str(shards),
                   "--split", "train", "--split", "val")  # fmt: skip
    assert run.returncode == 0, run.stderr
    run = python_m("intern_bench", "task=shards", f"task.root={shards}", *QUICK, f"paths.root_dir={tmp_path}")
    assert run.returncode == 0, run.stderr
    (result,) = load_results(next((tmp_path / "runs" / "bench" / "shards").rglob("result.json")))
    assert (result.task, result.task_type, result.primary_metric) == ("boxes", "detection", "map50")
    assert result.metrics["anchor_coverage"] >= 90  # 12-27 px boxes at 64 px
    assert result.metrics["num_train_images"] == 8 and result.metrics["num_optimizer_steps"] == 2


def test_a_label_png_segmentation_set_gets_a_task_config_of_its_own(
    python_m: Callable[..., Any], tmp_path: Path
) -> None:
    write_label_pngs(tmp_path / "masks", {"train": 8, "test": 4})
    shards = tmp_path / "shards" / "masks"
    run = python_m("intern_data", "shard", "seg_png", str(tmp_path / "masks"), "--out", str(shards),
                   "--option", "classes=[background,red_box,blue_box]")  # fmt: skip
    assert run.returncode == 0, run.stderr
    run = python_m(
        "intern_bench", "task", "new", "my_masks", "--root", str(shards), "--out", str(tmp_path / "conf")
    )
    assert run.returncode == 0, run.stderr
    assert "segmentation, 3 classes" in run.stdout
    searchpath = f"hydra.searchpath=[file://{tmp_path / 'conf'}]"
    assert searchpath in run.stdout  # the printed command is the one that works
    run = python_m("intern_bench", "task=my_masks", searchpath, *QUICK, f"paths.root_dir={tmp_path}")
    assert run.returncode == 0, run.stderr
    (result,) = load_results(next((tmp_path / "runs" / "bench" / "my_masks").rglob("result.json")))
    assert (result.task, result.task_type, result.primary_metric) == ("my_masks", "segmentation", "miou")
    assert 0 <= result.metrics["miou"] <= 100
    run = python_m(
        "intern_bench", "task", "new", "my_masks", "--root", str(shards), "--out", str(tmp_path / "conf")
    )
    assert run.returncode == 2 and "exists; pass --force" in run.stderr


def test_shards_without_a_test_split_are_refused_naming_the_index(
    python_m: Callable[..., Any], tmp_path: Path
) -> None:
    write_label_pngs(tmp_path / "masks", {"train": 2})
    shards = tmp_path / "shards"
    run = python_m("intern_data", "shard", "seg_png", str(tmp_path / "masks"), "--out", str(shards),
                   "--split", "train", "--option", "classes=[background,red_box,blue_box]")  # fmt: skip
    assert run.returncode == 0, run.stderr
    run = python_m("intern_bench", "task=shards", f"task.root={shards}", f"paths.root_dir={tmp_path}")
    assert run.returncode == 2
    assert "index.json has no split" in run.stderr and len(run.stderr.strip().splitlines()) == 1


@pytest.fixture(autouse=True)
def _fast_torch(one_thread: None) -> None:
    """Torch on one thread for these CLI runs."""
