"""The contract every stage's LightningModule and data builder keep with the app.

A stage (``conf/stage/<name>.yaml``) names two targets that Hydra instantiates:

- ``data``: a callable taking the stage's own settings plus ``source`` (the run's data config as a
  plain dict), ``run_dir``, ``seed`` and ``backbone`` (the model the stage starts from), returning a
  :class:`StageData`: the DataModule, and what the data tells the module (a tokenizer trained on the
  captions, label spaces of the sources...).
- ``module``: a :class:`StageModule` subclass with typed constructor arguments; the app adds
  ``backbone`` and the data's ``module_inputs``. Optimiser and scheduler arrive as ``_partial_``
  factories (``optimizer(param_groups)``, ``scheduler(optimizer, total_steps=...)``).

After training the app calls :meth:`StageModule.export`, which writes the hand-over folder: the
backbone and the parts the stage adds (:meth:`StageModule.handover_parts`). Under a sharded strategy
(:class:`~intern_pretrain.core.sharded.ShardedStrategy`) the module shards itself in
:meth:`StageModule.configure_model`; the app exports a plain copy holding the gathered weights.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
from torch import nn

from intern_arch import save_handover
from intern_arch.sharding import is_sharded, shard_model

__all__ = ["StageConfigError", "StageData", "StageModule"]


class StageConfigError(ValueError):
    """A stage config that cannot run; the message names the field."""


@dataclass
class StageData:
    """What a stage's data builder returns.

    Attributes:
        datamodule: the training (and validation) data.
        module_inputs: keyword arguments the module's constructor takes from the data.
    """

    datamodule: L.LightningDataModule
    module_inputs: dict[str, Any] = field(default_factory=dict)


class StageModule(L.LightningModule):
    """Base of the stages' LightningModules: a ``backbone`` attribute and the hand-over export.

    ``carries_parent_parts``: the stage leaves the backbone as it found it (Up-A-L trains on a frozen
    one), so the parts of the hand-over it started from stay valid and are exported again.
    ``parent_parts_used``: parts of the parent hand-over the module starts from (the detection
    expert's neck and box head); the app passes those the parent has as ``parent_parts``.
    """

    backbone: nn.Module
    carries_parent_parts: ClassVar[bool] = False
    parent_parts_used: ClassVar[tuple[str, ...]] = ()

    def configure_model(self) -> None:
        """Under a sharded strategy (a device mesh is set): shard the module with FSDP2, each block and
        then the rest, gathered around ``training_step`` and ``validation_step``. Weights stay fp32
        (``bf16-mixed`` is autocast, as under DDP: FSDP's bf16 weights would give BatchNorm bf16
        parameters beside fp32 statistics). Other strategies: nothing."""
        if self._device_mesh is None or is_sharded(self):
            return
        shard_model(
            self,
            self._device_mesh["data_parallel"],
            activation_checkpointing=getattr(self.trainer.strategy, "activation_checkpointing", False),
            forward_methods=("training_step", "validation_step"),
        )

    def handover_parts(self) -> dict[str, nn.Module]:
        """The parts the stage adds to its hand-over, by part name (``neck``, ``heads/box``, ``text``)."""
        return {}

    def label_spaces(self) -> dict[str, Any] | None:
        """The label spaces the export records; None keeps the parent's."""
        return None

    def export(
        self, folder: str | os.PathLike[str], *, carried: Mapping[str, nn.Module] | None = None, **meta: Any
    ) -> Path:
        """Write the hand-over folder: the backbone, ``carried`` parts, then this stage's own parts.

        ``meta`` goes to :func:`intern_arch.save_handover` (``stage``, ``parent``, ``label_spaces``).
        """
        parts = {**(carried or {}), **self.handover_parts()}
        return save_handover(folder, self.backbone, parts, **meta)
