"""Multi-stage fine-tuning (MF, paper 8.1 and 8.3) and the two methods it is compared with.

========  =====================================================================================
method    stages (each a grid of settings, chosen on the regime's validation part)
========  =====================================================================================
``lp``    linear probe: the backbone frozen, the new task layers trained on the original images
``ft``    fine-tuning: every parameter trained on the original images from fresh task layers
``mf``    stage 3, the task layers on the frozen backbone with the VQ-GAN's reconstructions
          (``stage3_images``), then stage 4, everything fine-tuned on the original images from
          stage 3's chosen task layers, with the sample-based contrastive term when enabled
========  =====================================================================================

Every stage trains with SGD, Nesterov momentum 0.9 and a multistep schedule (x0.1 at fractions of the
run), as paper 8.3 gives both stages; its grid is ``lrs`` x ``weight_decays``. Each point of a grid
runs in its own folder (``<run>/<stage>/lr<lr>_wd<wd>``): a finished point leaves ``point.json`` and
its weights and is never rerun; an unfinished one resumes from the newest checkpoint its Trainer wrote
(the app's default callbacks checkpoint every few steps). Once a grid is done, the weights of every
point but the chosen one are deleted. The chosen model is tested once; the test split never chooses.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import lightning as L
from safetensors.torch import load_model, save_model
from torch import nn

from intern_data.io import atomic_write_bytes
from intern_transfer.adapt import AdaptModule
from intern_transfer.downa.tasks import TransferTask
from intern_transfer.runs import newest_checkpoint

__all__ = ["METHODS", "StageGrid", "TransferData", "TransferOutcome", "TransferPlan", "run_transfer"]

METHODS = ("lp", "ft", "mf")
"""Linear probe, fine-tuning, multi-stage fine-tuning (paper Tables 24-26)."""

ContrastHook = Callable[[AdaptModule], None]
"""Attaches the sample-based contrastive term to a stage-4 module (:mod:`.collapse`)."""


class TrainerMaker(Protocol):
    """Makes the Trainer of a grid point whose folder is ``folder``; ``overrides`` are Trainer arguments."""

    def __call__(self, folder: Path, /, **overrides: Any) -> L.Trainer: ...


def _values(spec: Sequence[float], name: str) -> tuple[float, ...]:
    values = tuple(float(v) for v in spec)
    if not values or min(values) <= 0:
        raise ValueError(f"{name}: give one or more positive values, got {list(spec)}")
    return values


@dataclass(frozen=True)
class StageGrid:
    """One stage's training: its length, batch and the grid of settings it chooses from."""

    steps: int
    batch_size: int
    lrs: tuple[float, ...]
    weight_decays: tuple[float, ...]
    milestones: tuple[float, ...] = (0.6, 0.8)
    momentum: float = 0.9

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], name: str) -> StageGrid:
        """From a config block (``name`` is its place, for errors)."""
        return cls(
            steps=int(cfg["steps"]),
            batch_size=int(cfg["batch_size"]),
            lrs=_values(cfg["lrs"], f"{name}.lrs"),
            weight_decays=_values(cfg["weight_decays"], f"{name}.weight_decays"),
            milestones=tuple(float(m) for m in cfg.get("milestones", (0.6, 0.8))),
            momentum=float(cfg.get("momentum", 0.9)),
        )

    def points(self) -> list[tuple[float, float]]:
        return [(lr, wd) for lr in self.lrs for wd in self.weight_decays]


@dataclass(frozen=True)
class TransferPlan:
    """A method and its stages: ``head`` is stage 3 (``lp``'s only stage), ``full`` stage 4 (``ft``'s only
    stage); ``stage3_images`` is Table 27's delivering data."""

    method: Literal["lp", "ft", "mf"]
    head: StageGrid
    full: StageGrid
    stage3_images: Literal["reconstructed", "original"] = "reconstructed"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r} (choose from: {', '.join(METHODS)})")
        if self.stage3_images not in ("reconstructed", "original"):
            raise ValueError(f"stage3_images must be reconstructed or original, got {self.stage3_images!r}")

    @property
    def stages(self) -> tuple[str, ...]:
        return {"lp": ("head",), "ft": ("full",), "mf": ("head", "full")}[self.method]


@dataclass(frozen=True)
class TransferData:
    """The shard folders a transfer reads: the regime's ``train`` / ``val`` splits, the reconstructed
    ``train`` split (MF with reconstructed stage-3 images) and the test split."""

    regime: Path
    test: tuple[Path, str]
    reconstructed: Path | None = None


@dataclass(frozen=True)
class PointResult:
    """One grid point: its setting, validation metrics and optimiser steps."""

    stage: str
    lr: float
    weight_decay: float
    val: dict[str, float]
    steps: int
    folder: str


@dataclass
class TransferOutcome:
    """The chosen model, its test metrics, the chosen point of each stage and every point."""

    module: AdaptModule
    test: dict[str, float]
    chosen: dict[str, PointResult]
    points: list[PointResult]


def _point_folder(run_dir: Path, stage: str, lr: float, wd: float) -> Path:
    return run_dir / stage / f"lr{lr:.3g}_wd{wd:.3g}"


def _scalars(results: Mapping[str, Any]) -> dict[str, float]:
    return {key: float(value) for key, value in results.items() if getattr(value, "numel", lambda: 1)() == 1}


class _Runner:
    """Runs the grid points of one transfer (the state shared by its stages)."""

    def __init__(
        self,
        task: TransferTask,
        backbone: nn.Module,
        data: TransferData,
        run_dir: Path,
        make_trainer: TrainerMaker,
        seed: int,
        contrast: ContrastHook | None,
    ) -> None:
        self.task, self.backbone, self.data, self.run_dir = task, backbone, data, run_dir
        self.make_trainer, self.seed, self.contrast = make_trainer, seed, contrast

    def module(self, grid: StageGrid, lr: float, wd: float, *, frozen: bool) -> AdaptModule:
        return self.task.adapter(
            copy.deepcopy(self.backbone), freeze_backbone=frozen, optimizer="sgd", nesterov=True,
            momentum=grid.momentum, lr=lr, weight_decay=wd, schedule="multistep",
            milestones=grid.milestones, max_steps=grid.steps,
        )  # fmt: skip

    def point(
        self, stage: str, grid: StageGrid, lr: float, wd: float, images: Path, start: Path | None
    ) -> PointResult:
        """Train one setting (or read its finished result) and validate it on the original images."""
        folder = _point_folder(self.run_dir, stage, lr, wd)
        done = folder / "point.json"
        if done.is_file():
            return PointResult(**json.loads(done.read_text()))
        folder.mkdir(parents=True, exist_ok=True)
        L.seed_everything(self.seed, workers=True)
        module = self.module(grid, lr, wd, frozen=stage == "head")
        if start is not None:
            load_model(module.model, str(start))
        if stage == "full" and self.contrast is not None:
            self.contrast(module)
        train = self.task.datamodule(images, train="train", batch_size=grid.batch_size, seed=self.seed)
        val = self.task.datamodule(self.data.regime, val="val", batch_size=grid.batch_size)
        trainer = self.make_trainer(
            folder, max_steps=grid.steps, max_epochs=-1, num_sanity_val_steps=0, enable_model_summary=False
        )
        trainer.fit(module, datamodule=train, ckpt_path=newest_checkpoint(folder / "checkpoints"))
        trainer.validate(module, datamodule=val, verbose=False)
        save_model(module.model, str(folder / "model.safetensors"))
        result = PointResult(
            stage, lr, wd, _scalars(module.val_results), int(trainer.global_step), str(folder)
        )
        atomic_write_bytes(done, json.dumps(asdict(result), indent=1).encode())
        shutil.rmtree(folder / "checkpoints", ignore_errors=True)
        return result

    def stage(self, stage: str, grid: StageGrid, images: Path, start: Path | None) -> list[PointResult]:
        """Every point of ``grid``; the weights of all but the chosen one are deleted."""
        results = [self.point(stage, grid, lr, wd, images, start) for lr, wd in grid.points()]
        best = choose(results, self.task.metric_key)
        for result in results:
            if result is not best:
                (Path(result.folder) / "model.safetensors").unlink(missing_ok=True)
        return results


def choose(results: Sequence[PointResult], key: str) -> PointResult:
    """The point with the highest validation ``key`` (the first of equals, in grid order)."""
    missing = [r.folder for r in results if key not in r.val]
    if missing:
        have = ", ".join(sorted(results[0].val))
        raise ValueError(f"validation gave no {key!r} (it gave: {have}) in {missing[0]}")
    finite = [r for r in results if math.isfinite(r.val[key])]
    return max(finite or results, key=lambda r: r.val[key])


def run_transfer(
    plan: TransferPlan,
    task: TransferTask,
    backbone: nn.Module,
    data: TransferData,
    run_dir: Path,
    make_trainer: TrainerMaker,
    *,
    seed: int = 0,
    contrast: ContrastHook | None = None,
) -> TransferOutcome:
    """Adapt ``backbone`` to ``task`` with ``plan``'s method in ``run_dir`` (resumable) and test it once.

    ``contrast`` attaches the sample-based contrastive term to MF's stage-4 modules."""
    if plan.method == "mf" and plan.stage3_images == "reconstructed" and data.reconstructed is None:
        raise ValueError("MF with reconstructed stage-3 images needs the reconstructed training split")
    runner = _Runner(
        task, backbone, data, run_dir, make_trainer, seed, contrast if plan.method == "mf" else None
    )
    points: list[PointResult] = []
    chosen: dict[str, PointResult] = {}
    start: Path | None = None
    for stage in plan.stages:
        grid = plan.head if stage == "head" else plan.full
        reconstructed = plan.method == "mf" and stage == "head" and plan.stage3_images == "reconstructed"
        images = data.reconstructed if reconstructed else data.regime
        results = runner.stage(stage, grid, images, start)
        points += results
        chosen[stage] = choose(results, task.metric_key)
        start = Path(chosen[stage].folder) / "model.safetensors"
    final = chosen[plan.stages[-1]]
    grid = plan.head if plan.stages[-1] == "head" else plan.full
    module = runner.module(grid, final.lr, final.weight_decay, frozen=plan.method == "lp")
    load_model(module.model, str(start))
    test_root, test_split = data.test
    test = task.datamodule(test_root, test=test_split, batch_size=grid.batch_size)
    make_trainer(run_dir / "test").test(module, datamodule=test, verbose=False)
    return TransferOutcome(module, _scalars(module.test_results), chosen, points)
