"""What the three experts share (paper 6.1): a shared trunk, heads per output space, per-source losses.

A training batch is ``{source: sub-batch}`` (:class:`~intern_data.multisource.MultiSourceDataModule`);
the loss is the mean over every sample of the batch, so each source weighs by its sub-batch and, under
DDP with one source per rank and equal batches, the all-reduced gradient equals the one-process run's.
A source's samples reach only its own head (natural label spaces): the heads of other sources get
exactly zero gradient from them. Validation reports each source's metric in its own label space
(``val/<metric>/<source>``) and their mean (``val/<metric>``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from intern_arch.training import set_drop_path, weight_decay_groups
from intern_data.labels.merge import MergedLabels
from intern_pretrain.core import StageModule, scheduled
from intern_pretrain.upe.heads import SourceHeads
from intern_transfer.runs import save_plain_hyperparameters

__all__ = ["ExpertModule"]


class ExpertModule(StageModule):
    """Base of the classification, detection and segmentation experts.

    Args:
        backbone: The parent's backbone (Up-A's), trained further.
        labels: The merged label spaces (``MergedLabels.to_json()``, from the stage's data).
        optimizer: Optimiser factory over parameter groups.
        scheduler: ``scheduler(optimizer, total_steps=...)`` stepped every optimiser step, or None.
        head_weight_decay: Weight decay of the heads (paper, segmentation: 1e-3, Table 20); None: the
            optimiser's.
        drop_path_rate: Stochastic depth of the backbone's blocks during training (0: none).
        norm_eval: Keep every BatchNorm in eval mode (running statistics from the parent, affine
            parameters still trained), as detectors fine-tuned with small per-GPU batches do; it also
            makes BatchNorm equal across any split of the batch.
        total_steps: Length of the schedule; None: the trainer's ``estimated_stepping_batches``.
    """

    metric_name: ClassVar[str]
    heads: SourceHeads
    metrics: nn.ModuleDict  # source -> its validation metric

    def __init__(
        self,
        backbone: nn.Module,
        *,
        labels: Mapping[str, Any],
        optimizer: Callable[..., Optimizer],
        scheduler: Callable[..., LRScheduler] | None = None,
        head_weight_decay: float | None = None,
        drop_path_rate: float = 0.0,
        norm_eval: bool = False,
        total_steps: int | None = None,
    ) -> None:
        super().__init__()
        save_plain_hyperparameters(self, ignore=["optimizer", "scheduler"])  # and the modules (parent_parts)
        self.backbone = backbone
        set_drop_path(backbone, drop_path_rate)
        self.labels = MergedLabels.from_json(dict(labels))
        self.sources = self.labels.datasets
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler

    # -- what each expert defines

    def source_losses(self, batch: Mapping[str, Any]) -> dict[str, tuple[Tensor, int]]:
        """Each source's mean loss over its sub-batch and the sub-batch's size."""
        raise NotImplementedError

    def update_metric(self, source: str, batch: Mapping[str, Any]) -> None:
        """Add one validation batch of ``source`` to its metric."""
        raise NotImplementedError

    def compute_metric(self, source: str) -> Tensor:
        """``source``'s metric over the validation epoch, in percent (and reset it)."""
        value = self.metric_value(self.metrics[source].compute()) * 100
        self.metrics[source].reset()
        return value

    def metric_value(self, computed: Any) -> Tensor:
        """The number out of what the source's torchmetrics metric computes."""
        return computed

    def trunk(self) -> list[nn.Module]:
        """The shared modules (the backbone, and a neck where there is one)."""
        return [self.backbone]

    def head_modules(self) -> nn.Module:
        raise NotImplementedError

    # -- training

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        parts = self.source_losses(batch)
        count = sum(n for _, n in parts.values())
        loss = sum(value * n for value, n in parts.values()) / count
        for source, (value, n) in parts.items():
            self.log(f"train/loss/{source}", value, batch_size=n)
        self.log("train/loss", loss, prog_bar=True, batch_size=count)
        return loss

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        self.update_metric(self.sources[dataloader_idx], batch)

    def on_validation_epoch_end(self) -> None:
        values = []
        for source in self.sources:
            value = self.compute_metric(source)
            values.append(value)
            self.log(f"val/{self.metric_name}/{source}", value, add_dataloader_idx=False)
        self.log(
            f"val/{self.metric_name}", sum(values) / len(values), prog_bar=True, add_dataloader_idx=False
        )

    def on_train_start(self) -> None:
        self.train()  # Lightning keeps the modes modules are in: apply norm_eval before the first step

    def train(self, mode: bool = True) -> ExpertModule:
        super().train(mode)
        if mode and self.hparams.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    def total_steps(self) -> int:
        if self.hparams.total_steps is not None:
            return int(self.hparams.total_steps)
        return int(self.trainer.estimated_stepping_batches)

    def configure_optimizers(self) -> Any:
        decay = float(getattr(self.optimizer_factory, "keywords", {}).get("weight_decay", 0.0))
        head_decay = (
            decay if self.hparams.head_weight_decay is None else float(self.hparams.head_weight_decay)
        )
        groups = [g for i, m in enumerate(self.trunk()) for g in weight_decay_groups(m, decay, f"trunk{i}")]
        groups += weight_decay_groups(self.head_modules(), head_decay, "heads")
        return scheduled(self.optimizer_factory(groups), self.scheduler_factory, self.total_steps())

    # -- hand-over

    def handover_parts(self) -> dict[str, nn.Module]:
        """Every head, as ``heads/<source>`` (natural) or ``heads/unified`` / ``heads/partial``."""
        return {f"heads/{name}": head for name, head in self.heads.heads.items()}

    def label_spaces(self) -> dict[str, Any]:
        """What the export records: the merged label spaces, with every source's own."""
        return self.labels.to_json()
