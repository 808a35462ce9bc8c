"""Up-A helps: an Up-A-G run against the same architecture randomly initialised, through intern-bench.

Up-A-G with the stage's defaults (mnb_test, 64 px, every term of L_GS, 800 steps of 64 world image-text
samples) exported as a hand-over folder, then intern-bench's linear probe (L-BFGS, the ``lbfgs``
protocol) on ``gvb_world_cls`` at 10% and 100% for the export and for ``mnb_test`` built with random
weights. Up-A-L is not run: it freezes the backbone, so the classification check is the same.

Measured on 2 CPU cores, 1 thread (2026-11-27), accuracy % on gvb_world_cls, 10pct / 100pct: random
init 21.8 / 49.8; Up-A-G seed 0 31.2 / 54.4 (the main job), seed 1 39.4 / 55.8
(``benchmarks/upa_transfer.py``). Shorter runs (60-300 steps) and the paper's MoCo v2 colour views did
not beat random init (benchmarks/RESULTS.md, Up-A). Detection (``gvb_world_det``, frozen-backbone
Faster R-CNN) is measured in RESULTS.md, not here: it does not fit the test budget.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import OmegaConf

TASK, SPLITS = "gvb_world_cls", ("10pct", "100pct")
PRETRAIN = [  # the stage's defaults; only the in-run validation is off (the bench below measures)
    "stage=upa_g",
    "model=mnb_test",
    "evaluate=null",
    "stage.eval.dataset=null",
    "+trainer.limit_val_batches=0",
    "+trainer.enable_progress_bar=false",
]


@pytest.mark.slow
def test_upa_g_backbone_beats_random_init_on_world_classification(
    compose_app: Callable[..., Any], tmp_path: Path, one_thread: None
) -> None:
    from intern_bench.runner import run_cell
    from intern_pretrain.stages.runner import run_stage
    from intern_transfer.backbones import load_backbone

    cfg = compose_app("pretrain", [*PRETRAIN, f"paths.root_dir={tmp_path}"])
    run_dir = run_stage(cfg)
    bench = compose_app(
        "bench", ["protocol=lbfgs", "tsne=false", "progress=false", f"paths.root_dir={tmp_path}"]
    )
    bench_cfg = {k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
                 for k, v in bench.items() if k != "hydra"}  # fmt: skip
    accuracy: dict[tuple[str, str], float] = {}
    for name, spec in (("upa_g", run_dir / "export"), ("random init", "mnb_test")):
        torch.manual_seed(0)
        loaded = load_backbone(spec)
        for split in SPLITS:
            result = run_cell(bench_cfg, loaded, name, TASK, split, tmp_path / "bench" / name / split)
            accuracy[name, split] = result.metrics[result.primary_metric]
    print({f"{name}/{split}": round(value, 1) for (name, split), value in accuracy.items()})
    for split in SPLITS:
        assert accuracy["upa_g", split] > accuracy["random init", split], split


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
