"""How a benchmark cell runs under a Lightning Trainer: the one the app builds from the ``trainer``,
``precision``, ``logger`` and ``callbacks`` config groups, or :func:`plain_trainer` for library callers.

A dense cell fits and tests its head with the Trainer. A probe cell has no training loop (callbacks do
not apply to it): it takes the Trainer's device, its precision as the autocast dtype of feature
extraction, and its loggers, which receive the probe's numbers. Each cell runs in one process on one
device; a Trainer on several is refused with one line naming the config fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import lightning as L
import torch

AUTOCAST: dict[str, torch.dtype | None] = {
    "32-true": None,
    "bf16-mixed": torch.bfloat16,
    "16-mixed": torch.float16,  # GPU only: on the CPU, Lightning makes it bf16-mixed
}
"""Lightning precision -> the ``torch.autocast`` dtype a probe extracts features under (None: float32)."""


class TrainerFactory(Protocol):
    """Makes the Trainer of the cell whose run folder is ``folder``; ``overrides`` are Trainer arguments."""

    def __call__(self, folder: Path, /, **overrides: Any) -> L.Trainer: ...


def plain_trainer(folder: Path, /, **overrides: Any) -> L.Trainer:
    """A one-device float32 Trainer in ``folder`` without loggers or checkpoints (no app config)."""
    return L.Trainer(
        default_root_dir=folder, devices=1, logger=False, enable_checkpointing=False, **overrides
    )


def require_one_device(trainer: L.Trainer) -> None:
    """Refuse a Trainer on several devices or nodes."""
    if trainer.world_size > 1:
        raise ValueError(
            f"trainer.devices={trainer.num_devices}, trainer.num_nodes={trainer.num_nodes}: intern-bench "
            "runs each cell in one process on one device; choose trainer=cpu or trainer=gpu"
        )


def autocast_dtype(trainer: L.Trainer) -> torch.dtype | None:
    """The autocast dtype of the Trainer's precision, for feature extraction."""
    if trainer.precision not in AUTOCAST:
        raise ValueError(
            f"trainer.precision={trainer.precision}: the linear probe extracts features in one of "
            f"{', '.join(AUTOCAST)}"
        )
    return AUTOCAST[trainer.precision]


def log_cell(trainer: L.Trainer, metrics: Mapping[str, float], hparams: Mapping[str, Any]) -> None:
    """Write a cell's numbers (at step 0) and hyperparameters to the Trainer's loggers and close them."""
    for logger in trainer.loggers:
        logger.log_hyperparams(dict(hparams))
        logger.log_metrics(dict(metrics), step=0)
        logger.finalize("success")
