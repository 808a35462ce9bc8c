"""Down-A stage 1 (paper 8.1): a VQ-GAN trained once on upstream images, cached, reused by every task.

The VQ-GAN's folder is keyed by everything that shapes it: its settings, the upstream shards' content
hash and the fingerprint of the frozen backbone its perceptual loss reads (no VGG or LPIPS weights can
be downloaded, so the perceptual features are the project's own backbone's). Training runs under the
caller's Trainer in ``<folder>/run`` and resumes from its newest checkpoint; the folder's
``config.json`` is written last, so a folder that has one holds a finished VQ-GAN.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
from torch import nn

from intern_data.datamodules import ShardDataModule
from intern_data.shards import classification_transform, load_index
from intern_transfer.downa.multistage import TrainerMaker
from intern_transfer.downa.vqgan import VQGAN, VQGANConfig
from intern_transfer.downa.vqgan_io import load_vqgan, save_vqgan
from intern_transfer.downa.vqgan_module import VQGANModule
from intern_transfer.runs import newest_checkpoint

__all__ = ["trained_vqgan", "vqgan_folder"]

TRAINING_KEYS = (
    "steps",
    "batch_size",
    "img_size",
    "lr",
    "perceptual_weight",
    "disc_weight",
    "disc_start",
    "seed",
)


def vqgan_folder(
    cache_dir: Path, settings: Mapping[str, Any], upstream: Path, split: str, perceptual_id: str
) -> Path:
    """``<cache_dir>/downa/vqgan/<key>``, the key hashing the settings, data and perceptual backbone."""
    content = load_index(upstream)["splits"][split]["content_hash"]
    record = {
        "model": dict(settings["model"]),
        **{key: settings[key] for key in TRAINING_KEYS},
        "data": content,
        "perceptual": perceptual_id,
    }
    key = hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Path(cache_dir) / "downa" / "vqgan" / key


def trained_vqgan(
    settings: Mapping[str, Any],
    upstream: Path,
    split: str,
    perceptual: nn.Module | None,
    perceptual_id: str,
    cache_dir: Path,
    make_trainer: TrainerMaker,
) -> tuple[VQGAN, Path]:
    """The VQ-GAN of ``settings`` trained on ``split`` of the shard folder ``upstream`` (loaded when its
    folder is finished); returns it in eval mode with its folder.

    ``settings``: ``model`` (:class:`VQGANConfig` fields), ``steps`` (batches), ``batch_size``,
    ``img_size`` (random crops of the upstream images), ``lr``, ``perceptual_weight``, ``disc_weight``,
    ``disc_start`` (batches before the discriminator joins) and ``seed``."""
    folder = vqgan_folder(cache_dir, settings, upstream, split, perceptual_id)
    if (folder / "config.json").is_file():
        return load_vqgan(folder), folder
    config = VQGANConfig.from_dict(dict(settings["model"]))
    size = int(settings["img_size"])
    if size % config.downsample:
        raise ValueError(
            f"downa.vqgan.img_size={size} is not a multiple of the VQ-GAN's factor {config.downsample}"
        )
    L.seed_everything(int(settings["seed"]), workers=True)
    module = VQGANModule(
        config,
        copy.deepcopy(perceptual) if perceptual is not None else None,
        lr=float(settings["lr"]),
        perceptual_weight=float(settings["perceptual_weight"]),
        disc_weight=float(settings["disc_weight"]),
        disc_start=int(settings["disc_start"]),
    )
    data = ShardDataModule(
        str(upstream), train_split=split, val_split=None, batch_size=int(settings["batch_size"]),
        num_workers=0, img_size=size, seed=int(settings["seed"]), drop_last=True,
        train_transform=classification_transform(size, True, scale=(0.5, 1.0), normalize=False),
    )  # fmt: skip
    steps, start = int(settings["steps"]), min(int(settings["disc_start"]), int(settings["steps"]))
    run = folder / "run"
    # under manual optimisation max_steps counts optimiser steps: two a batch once the discriminator trains
    trainer = make_trainer(run, max_steps=start + 2 * (steps - start), max_epochs=-1, num_sanity_val_steps=0)
    trainer.fit(module, datamodule=data, ckpt_path=newest_checkpoint(run / "checkpoints"))
    save_vqgan(module.vqgan.cpu(), folder)
    return load_vqgan(folder), folder
