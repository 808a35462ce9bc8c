"""Down-A from config: the regime carved, MF's VQ-GAN and reconstructions prepared, the method run.

Both apps call :func:`adapt_to_task`: ``python -m intern_transfer`` (which then exports the adapted
model) and intern-bench's ``protocol=lp|ft|mf`` cells (which store its test metrics as GV-B results).
The ``downa`` config block (``conf/downa/default.yaml``) holds every setting; the metric is injected.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchmetrics import Metric
from torchvision.utils import save_image

from intern_data.regimes import carved_regime
from intern_data.splits import SplitManifest
from intern_data.tasks import TaskSpec
from intern_data.world import world_shards
from intern_transfer.adapt import dense_geometry
from intern_transfer.downa.collapse import ContrastSettings, attach_contrast
from intern_transfer.downa.domains import fd_table, split_images
from intern_transfer.downa.multistage import (
    StageGrid,
    TrainerMaker,
    TransferData,
    TransferOutcome,
    TransferPlan,
    run_transfer,
)
from intern_transfer.downa.reconstruct import reconstruct_split, reconstructed_folder
from intern_transfer.downa.stage1 import trained_vqgan
from intern_transfer.downa.tasks import TASK_TYPES, TransferTask
from intern_transfer.downa.vqgan import VQGAN
from intern_transfer.downa.vqgan_io import load_vqgan, vqgan_fingerprint

__all__ = ["AdaptedTask", "adapt_to_task", "transfer_task", "upstream_vqgan"]

GRID_IMAGES = 8
"""Originals and reconstructions shown side by side in ``reconstructions.png``."""


@dataclass
class AdaptedTask:
    """A finished transfer: its outcome, the regime's manifest and sizes, and for MF the VQ-GAN used
    and the FD scores (its image grid is ``<run_dir>/reconstructions.png``)."""

    outcome: TransferOutcome
    manifest: SplitManifest
    num_train: int
    num_val: int
    vqgan: str | None = None
    fd: dict[str, float] = field(default_factory=dict)


def transfer_task(
    spec: TaskSpec,
    img_size: int,
    metric: tuple[Callable[[], Metric], str],
    detector_kwargs: Mapping[str, Any],
) -> TransferTask:
    """The :class:`TransferTask` of a GV-B task config (anchors and ASPP rates fitted to ``img_size``)."""
    if spec.type not in TASK_TYPES:
        raise ValueError(f"task {spec.name!r} is a {spec.type} task; Down-A adapts {', '.join(TASK_TYPES)}")
    kwargs = dense_geometry(spec, img_size)
    if spec.type == "detection":
        kwargs["detector_kwargs"] = dict(detector_kwargs)
    return TransferTask(spec.type, int(spec.num_classes), img_size, metric[0], metric[1], kwargs)


def _upstream(settings: Mapping[str, Any], cache_dir: Path) -> Path:
    """The upstream shard folder: ``shards`` (a folder), else the world dataset ``data``."""
    if settings.get("shards"):
        return Path(settings["shards"])
    return world_shards(str(settings["data"]), Path(cache_dir) / "world", ["train"], seed=0)


def upstream_vqgan(
    settings: Mapping[str, Any], backbone: nn.Module, backbone_id: str, cache_dir: Path, make: TrainerMaker
) -> tuple[VQGAN, Path]:
    """``downa.vqgan.folder`` when given, else the VQ-GAN trained (once) on the upstream data with the
    adapted backbone as the perceptual loss's feature extractor. The upstream data (for FD too) is
    ``downa.vqgan.shards`` or the world dataset ``downa.vqgan.data``."""
    if settings.get("folder"):
        return load_vqgan(settings["folder"]), Path(settings["folder"])
    upstream = _upstream(settings, cache_dir)
    return trained_vqgan(settings, upstream, "train", backbone, backbone_id, cache_dir, make)


def _save_grid(root: Path, recon: Path, size: int, out: Path) -> Path:
    originals = next(split_images(root, "train", size, GRID_IMAGES))
    rebuilt = next(split_images(recon, "train", size, GRID_IMAGES))
    save_image(torch.cat([originals, rebuilt]), out, nrow=len(originals), padding=1)
    return out


def adapt_to_task(
    cfg: Mapping[str, Any],
    method: str,
    task: TransferTask,
    task_root: Path,
    spec: TaskSpec,
    *,
    rule: str,
    seed: int,
    backbone: nn.Module,
    backbone_id: str,
    cache_dir: Path,
    run_dir: Path,
    make_trainer: TrainerMaker,
) -> AdaptedTask:
    """Adapt ``backbone`` to the task with ``method`` (lp, ft or mf) under ``cfg`` (the ``downa`` block),
    on the regime ``rule`` drawn with ``seed``; resumable in ``run_dir``."""
    plan = TransferPlan(
        method,  # type: ignore[arg-type]
        StageGrid.from_config(cfg["head"], "downa.head"),
        StageGrid.from_config(cfg["full"], "downa.full"),
        cfg.get("stage3_images", "reconstructed"),
    )
    by_class = task.type == "classification"
    fraction = float(cfg["val_fraction"])
    regime = carved_regime(task_root, spec.splits["train"], rule, seed, fraction, by_class=by_class)
    data = TransferData(regime.root, (task_root, spec.splits["test"]))
    extras: dict[str, Any] = {}
    if method == "mf":
        vqgan, folder = upstream_vqgan(cfg["vqgan"], backbone, backbone_id, cache_dir, make_trainer)
        out = reconstructed_folder(cache_dir, vqgan_fingerprint(folder), regime.root)
        data = TransferData(regime.root, data.test, reconstruct_split(vqgan, regime.root, "train", out))
        extras["vqgan"] = str(folder)
        if cfg.get("fd_images"):
            sets = {"fd_original": (regime.root, "train"), "fd_reconstructed": (out, "train")}
            upstream = (_upstream(cfg["vqgan"], cache_dir), "train")
            extras["fd"] = fd_table(backbone, upstream, sets, task.img_size, int(cfg["fd_images"]))
        run_dir.mkdir(parents=True, exist_ok=True)
        _save_grid(regime.root, out, task.img_size, run_dir / "reconstructions.png")
    contrast = dict(cfg.get("contrastive") or {})
    hook = None
    if method == "mf" and contrast.pop("enabled", False):
        settings = ContrastSettings(**contrast)
        hook = lambda module: attach_contrast(module, task.type, task.img_size, settings)  # noqa: E731
    outcome = run_transfer(plan, task, backbone, data, run_dir, make_trainer, seed=seed, contrast=hook)
    return AdaptedTask(outcome, regime.manifest, regime.num_train, regime.num_val, **extras)
