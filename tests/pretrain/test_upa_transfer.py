"""Up-A helps: an Up-A-G run against the same architecture randomly initialised, through intern-bench.

Up-A-G with the stage's defaults (mnb_test, 64 px, every term of L_GS, 800 steps of 64 world image-text
samples) exported as a hand-over folder, then intern-bench's linear probe (L-BFGS, the ``lbfgs``
protocol) on ``gvb_world_cls`` at 10% and 100% for the export and for ``mnb_test`` built with random
weights; then the same for detection (``gvb_world_det``, 10%). Up-A-L is not run: it freezes the
backbone and intern-bench's dense heads start from scratch, so both checks see the same backbone.

Measured on 2 CPU cores, 1 thread (2026-11-27), with the same code path (``run_cell`` after
``torch.manual_seed(0)``): gvb_world_cls accuracy %, 10pct / 100pct: random init 21.8 / 49.8; Up-A-G
seed 0 31.2 / 54.4 (the main job), seed 1 39.4 / 55.8 (``benchmarks/upa_transfer.py``). gvb_world_det
VOC AP50 at 10pct (frozen backbone, Faster R-CNN head, 4 epochs of 100 images): random init 2.0, Up-A-G
seed 0 3.8: both low at this budget, the margin is small. Shorter runs (60-300 steps) and the paper's
MoCo v2 colour views did not beat random init on classification (benchmarks/RESULTS.md, Up-A).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import OmegaConf

PRETRAIN = [  # the stage's defaults; only the in-run validation is off (the bench below measures)
    "stage=upa_g",
    "model=mnb_test",
    "evaluate=null",
    "stage.eval.dataset=null",
    "+trainer.limit_val_batches=0",
    "+trainer.enable_progress_bar=false",
]


@pytest.fixture(scope="module")
def bench(
    compose_app_once: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory, one_thread: None
) -> Callable[[str, Sequence[str]], dict[tuple[str, str], float]]:
    """One Up-A-G run for the module; ``bench(task, splits)`` gives the primary metric of its export
    and of randomly initialised mnb_test for each split, keyed ``(model, split)``."""
    from intern_bench.runner import run_cell
    from intern_pretrain.stages.runner import run_stage
    from intern_transfer.backbones import load_backbone

    root = tmp_path_factory.mktemp("upa_transfer")
    export = run_stage(compose_app_once("pretrain", [*PRETRAIN, f"paths.root_dir={root}"])) / "export"
    overrides = ["protocol=lbfgs", "tsne=false", "progress=false", f"paths.root_dir={root}"]
    cfg = {k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
           for k, v in compose_app_once("bench", overrides).items() if k != "hydra"}  # fmt: skip

    def measure(task: str, splits: Sequence[str]) -> dict[tuple[str, str], float]:
        scores = {}
        for name, spec in (("upa_g", export), ("random init", "mnb_test")):
            torch.manual_seed(0)
            loaded = load_backbone(spec)
            for split in splits:
                result = run_cell(cfg, loaded, name, task, split, root / "bench" / task / name / split)
                scores[name, split] = result.metrics[result.primary_metric]
        print(task, {f"{name}/{split}": round(value, 1) for (name, split), value in scores.items()})
        return scores

    return measure


@pytest.mark.slow
def test_upa_g_backbone_beats_random_init_on_world_classification(bench: Callable[..., Any]) -> None:
    accuracy = bench("gvb_world_cls", ("10pct", "100pct"))
    for split in ("10pct", "100pct"):
        assert accuracy["upa_g", split] > accuracy["random init", split], split


@pytest.mark.slow
def test_upa_g_backbone_beats_random_init_on_world_detection(bench: Callable[..., Any]) -> None:
    """Frozen backbone, Faster R-CNN head trained by intern-bench (4 epochs of the 10% regime)."""
    map50 = bench("gvb_world_det", ("10pct",))
    assert map50["upa_g", "10pct"] > map50["random init", "10pct"]


def test_evaluate_commands_bench_the_export_and_the_random_init_baseline(tmp_path: Path) -> None:
    from intern_pretrain.stages.evaluate import bench_commands

    settings = {"tasks": ["gvb_world_cls"], "splits": ["10pct", "100pct"], "baseline": True,
                "protocol": "lbfgs", "overrides": ["tsne=false"]}  # fmt: skip
    export = tmp_path / "run" / "export"
    commands = bench_commands(export, tmp_path / "run", settings, model="mnb_test", stage="upa")
    (upa_dir, upa), (random_dir, random), (report_dir, report) = commands
    assert upa[1:3] == ["-m", "intern_bench"] and f"checkpoint={export}" in upa
    assert "name='mnb_test (upa)'" in upa and "backbone=mnb_test" in random
    assert {"task=gvb_world_cls", "splits=[10pct,100pct]", "protocol=lbfgs", "tsne=false"} <= set(random)
    assert (
        upa_dir == tmp_path / "run" / "bench" / "gvb_world_cls" / "upa" and f"hydra.run.dir={upa_dir}" in upa
    )
    assert random_dir.name == "random_init" and report_dir == tmp_path / "run" / "bench" / "report"
    assert report[3:5] == ["report", str(tmp_path / "run" / "bench")]
    assert report[-2:] == ["--baseline", "mnb_test (random init)"]
    no_baseline = bench_commands(
        export, tmp_path, {**settings, "baseline": False}, model="mnb_test", stage="upa"
    )
    assert len(no_baseline) == 2 and "--baseline" not in no_baseline[-1][1]


def test_evaluate_is_on_by_default_and_off_with_null(compose_app: Callable[..., Any]) -> None:
    assert compose_app("pretrain", ["stage=upa"]).evaluate.tasks == ["gvb_world_cls"]
    assert compose_app("pretrain", ["stage=upa", "evaluate=null"]).evaluate is None
