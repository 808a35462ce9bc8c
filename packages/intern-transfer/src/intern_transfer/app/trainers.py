"""Trainers from an app's config groups, one per run folder (a GV-B cell, a Down-A grid point)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig

__all__ = ["trainer_factory"]


def _instances(group: DictConfig | None) -> list[Any]:
    """The objects of a group of ``_target_`` configs (``logger``, ``callbacks``)."""
    return [instantiate(node) for node in (group or {}).values() if node is not None]


def trainer_factory(cfg: DictConfig) -> Any:
    """``make(folder, **overrides)``: a Trainer of ``cfg.trainer`` with the loggers of ``cfg.logger`` and
    the callbacks of ``cfg.callbacks``, all made anew per call: ``folder`` stands in for
    ``paths.output_dir``, so its logs and checkpoints stay in it. Lightning checkpoints only if a
    callback asks to."""

    def make(folder: Path, /, **overrides: Any) -> L.Trainer:
        cell = copy.deepcopy(cfg)
        cell.paths.output_dir = str(folder)
        callbacks = _instances(cell.get("callbacks"))
        trainer = instantiate(cell.trainer, _partial_=True)
        return trainer(
            logger=_instances(cell.get("logger")) or False,
            callbacks=callbacks,
            enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
            **overrides,
        )

    return make
