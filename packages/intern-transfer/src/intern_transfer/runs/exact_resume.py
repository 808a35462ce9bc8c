"""What a checkpoint must carry for a resumed run to continue exactly as the unbroken run would have.

The random-number states: torch (CPU and every CUDA device), NumPy and Python's ``random`` are saved
under ``rng_states`` and restored when training resumes; with several processes, every rank's (gathered
when the checkpoint is made: each rank draws its own dropout and drop-path masks), each restored to
its rank. Data workers derive their seeds from the base
seed, the epoch and the worker (Lightning's ``seed_everything(workers=True)``, the shard reader's
per-sample seeds), which the checkpoint's loop and reader positions already restore. Saved as tensors
and plain values, so the checkpoint still loads with ``torch.load(weights_only=True)``.

The logs: every logger is flushed when a checkpoint is written, so the log on disk holds every step the
checkpoint holds (a resumed run then drops the later steps: ``ResumableCSVLogger``'s and TensorBoard's
``purge_step``) and none logged before the checkpoint is lost with a kill.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.distributed as dist

__all__ = ["ExactResume"]

log = logging.getLogger(__name__)

KEY = "rng_states"


def collect() -> dict[str, Any]:
    """This process's random-number states as tensors and plain values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, state, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },  # fmt: skip
        "python": {"version": version, "state": list(state), "gauss": gauss},
    }


def restore(states: dict[str, Any]) -> None:
    """Set this process's random-number states from :func:`collect`'s output."""
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    numpy = states["numpy"]
    keys = numpy["keys"].numpy().astype(np.uint32)
    np.random.set_state((numpy["kind"], keys, numpy["pos"], numpy["has_gauss"], numpy["cached"]))
    python = states["python"]
    random.setstate((python["version"], tuple(python["state"]), python["gauss"]))


class ExactResume(L.Callback):
    """Saves the random-number states with every checkpoint (and flushes the logs) and restores the
    states on resume."""

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        states = collect()
        if dist.is_available() and dist.is_initialized() and trainer.world_size > 1:
            every: list[Any] = [None] * trainer.world_size  # every rank makes the checkpoint's contents
            dist.all_gather_object(every, states)
            checkpoint[KEY] = {"ranks": every}
        else:
            checkpoint[KEY] = states
        for logger in trainer.loggers:
            logger.save()

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        states = checkpoint.get(KEY)
        if states is None:
            return
        if "ranks" in states:
            ranks = states["ranks"]
            if len(ranks) != trainer.world_size:
                log.warning(
                    "the checkpoint holds the random-number states of %d ranks, this run has %d: "
                    "every rank continues from rank 0's",
                    len(ranks),
                    trainer.world_size,
                )
            states = ranks[trainer.global_rank] if len(ranks) == trainer.world_size else ranks[0]
        restore(states)
