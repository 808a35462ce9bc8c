"""The LightningModule shared by every adaptation task: frozen or fine-tuned backbone, optimiser,
warm-up + cosine schedule, and injected torchmetrics.

One switch, ``freeze_backbone``, chooses between the two GV-B adaptation modes on the same module:

- frozen (linear probe / frozen-backbone dense heads): the backbone takes no gradient, stays in eval
  mode (BatchNorm statistics and dropout fixed, see :mod:`.frozen`) and is left out of the optimiser;
- fine-tuning: every parameter trains, the backbone at ``lr * backbone_lr_mult``; ``norm_eval`` keeps
  its BatchNorm statistics fixed for small per-device batches.

Metrics are injected (intern-bench depends on intern-transfer, not the reverse): a torchmetrics
``Metric`` or ``MetricCollection`` (cloned once for validation and once for test), a mapping of names
to metrics, or a zero-argument factory (a Hydra ``_partial_`` config). ``validation_step`` /
``test_step`` update them with predictions in the metric's ``update`` format; at epoch end their
``compute()`` is logged as ``val/<key>`` / ``test/<key>`` (every scalar of a dict result) and kept,
vectors included, in :attr:`AdaptModule.val_results` / :attr:`AdaptModule.test_results`.
torchmetrics syncs the metric states across processes inside ``compute()``, so the logged values are
already global and are logged without ``sync_dist`` (a second reduction would be redundant at best).

Distributed evaluation is exact only if no rank sees a sample twice: Lightning's default
``DistributedSampler`` pads the last round with repeated samples so that every rank gets the same
count. Evaluate with ``Trainer(use_distributed_sampler=False)`` and a sampler that does not pad, e.g.
Lightning's ``lightning.pytorch.overrides.distributed.UnrepeatedDistributedSampler`` built per rank
(in a DataModule's ``val_dataloader``), or with intern-data's shard loaders, which split by rank
themselves. Ranks may then run different numbers of batches, which is safe here: nothing in these
modules communicates per step (the loss is averaged with a ``MeanMetric`` that syncs at epoch end).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal, TypedDict

import lightning as L
import torch
from lightning.pytorch.utilities.warnings import PossibleUserWarning
from torch import Tensor, nn
from torchmetrics import MeanMetric, Metric, MetricCollection

from intern_arch.training import freeze
from intern_data.shards import drop_padding
from intern_transfer.adapt.frozen import keep_frozen_eval, param_groups
from intern_transfer.runs import save_plain_hyperparameters
from intern_transfer.schedules import warmup_cosine, warmup_multistep

MetricLike = Metric | MetricCollection
MetricSpec = MetricLike | Mapping[str, Metric] | Callable[[], MetricLike]
"""What the adaptation modules take as ``metrics``; see the module docstring."""

# The epoch-level metric values logged here come from torchmetrics' compute(), which has synced them
# across processes already; Lightning cannot know that and suggests sync_dist for every tensor.
warnings.filterwarnings(
    "ignore",
    message=r"It is recommended to use `self\.log\('(val|test)/",
    category=PossibleUserWarning,
)


class AdaptSettings(TypedDict, total=False):
    """Keyword settings shared by every adaptation module (see :class:`AdaptModule`)."""

    freeze_backbone: bool
    norm_eval: bool
    normalize: bool
    optimizer: Literal["sgd", "adamw"]
    lr: float
    weight_decay: float
    momentum: float
    nesterov: bool
    backbone_lr_mult: float
    schedule: Literal["cosine", "multistep", "constant"]
    milestones: tuple[float, ...]
    max_steps: int | None
    warmup_steps: int
    min_lr_ratio: float


def build_metrics(spec: MetricSpec | None) -> MetricLike | None:
    """A fresh metric object from ``spec`` (a clone of a given metric, or the factory's result)."""
    if spec is None:
        return None
    if isinstance(spec, Metric | MetricCollection):
        return spec.clone()
    if isinstance(spec, Mapping):
        return MetricCollection(dict(spec)).clone()
    made = spec()
    if not isinstance(made, Metric | MetricCollection):
        raise TypeError(f"the metrics factory returned {type(made).__name__}, not a torchmetrics Metric")
    return made


def flatten_results(result: Any, name: str) -> dict[str, Tensor]:
    """``compute()`` output as ``{key: tensor}``: a tensor under ``name``, a dict by its keys (nested
    keys joined with ``_``)."""
    if not isinstance(result, Mapping):
        return {name: torch.as_tensor(result)}
    out: dict[str, Tensor] = {}
    for key, value in result.items():
        for sub, tensor in flatten_results(value, str(key)).items():
            out[f"{key}_{sub}" if isinstance(value, Mapping) else sub] = tensor
    return out


class AdaptModule(L.LightningModule):
    """Base of the adaptation modules: subclasses build ``self.model`` and define the task's steps.

    An ``auxiliary`` module, when set (e.g. Down-A's sample-based contrastive term), is called as
    ``auxiliary(module, batch)`` in every training step and its loss added to the task's; its trainable
    parameters join the optimiser at the head's settings, and its ``update(module)``, if it has one,
    runs after every optimiser step.

    Subclasses set ``backbone_path`` (where the backbone sits inside ``self.model``) and
    ``metric_name`` (the log key of a metric whose ``compute()`` gives a single tensor), build
    ``self.model`` after ``super().__init__`` and then call :meth:`_setup_backbone`; they implement
    :meth:`training_loss` and :meth:`predict_for_metrics`.

    Args:
        metrics: The evaluation metrics (see the module docstring); ``None`` logs only the loss.
        freeze_backbone: Frozen backbone (probe); otherwise full fine-tuning.
        norm_eval: When fine-tuning, keep the backbone's BatchNorm layers in eval mode.
        normalize: Images arrive in [0, 1] and the module normalises them with the backbone's
            ``pretrained_cfg`` mean and std. ``False`` (default): images arrive normalised, as the
            intern-data DataModules' default transforms give them (ImageNet statistics, which is what
            every intern-arch ``pretrained_cfg`` holds). Detection always takes [0, 1] images.
        optimizer: ``"sgd"`` (momentum, optionally Nesterov) or ``"adamw"``.
        lr: Learning rate of the head (and of the backbone times ``backbone_lr_mult``).
        weight_decay: Weight decay of weight matrices and kernels; biases, norms, 1-D parameters and the
            backbone's ``no_weight_decay()`` take none.
        momentum: SGD momentum.
        nesterov: SGD with Nesterov momentum.
        backbone_lr_mult: Backbone learning-rate multiplier when fine-tuning.
        schedule: ``"cosine"`` (per step, after ``warmup_steps`` of linear warm-up), ``"multistep"``
            (x0.1 at each of ``milestones``, fractions of the run; Down-A's stages) or ``"constant"``.
        milestones: The multistep schedule's steps down, as fractions of ``max_steps``.
        max_steps: Length of the schedule in optimiser steps; ``None`` takes the trainer's
            ``estimated_stepping_batches`` (from its ``max_steps`` or ``max_epochs``).
        warmup_steps: Linear warm-up steps.
        min_lr_ratio: Final LR as a fraction of the initial one.
    """

    backbone_path: ClassVar[str] = "backbone"
    metric_name: ClassVar[str] = "metric"

    def __init__(
        self,
        metrics: MetricSpec | None = None,
        *,
        freeze_backbone: bool = False,
        norm_eval: bool = False,
        normalize: bool = False,
        optimizer: Literal["sgd", "adamw"] = "sgd",
        lr: float = 0.01,
        weight_decay: float = 1e-4,
        momentum: float = 0.9,
        nesterov: bool = False,
        backbone_lr_mult: float = 1.0,
        schedule: Literal["cosine", "multistep", "constant"] = "cosine",
        milestones: tuple[float, ...] = (0.7, 0.9),
        max_steps: int | None = None,
        warmup_steps: int = 0,
        min_lr_ratio: float = 0.0,
    ) -> None:
        super().__init__()
        if optimizer not in ("sgd", "adamw"):
            raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {optimizer!r}")
        if schedule not in ("cosine", "multistep", "constant"):
            raise ValueError(f"schedule must be 'cosine', 'multistep' or 'constant', got {schedule!r}")
        save_plain_hyperparameters(self, ignore=["metrics"])
        self.freeze_backbone = freeze_backbone
        self.norm_eval = norm_eval
        self.normalize = normalize
        self.val_metrics = build_metrics(metrics)
        self.test_metrics = build_metrics(metrics)
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()
        self.val_results: dict[str, Tensor] = {}
        self.test_results: dict[str, Tensor] = {}
        self.auxiliary: nn.Module | None = None

    # -- backbone, freezing, preprocessing

    @property
    def backbone(self) -> nn.Module:
        """The intern-arch backbone inside ``self.model``."""
        return self.model.get_submodule(self.backbone_path)

    def _setup_backbone(self) -> None:
        """Freeze the backbone if asked and set up the input normalisation; call once ``self.model``
        exists."""
        backbone = self.backbone
        if self.freeze_backbone:
            freeze(backbone)
        cfg = getattr(backbone, "pretrained_cfg", {}) or {}
        mean, std = cfg.get("mean", (0.485, 0.456, 0.406)), cfg.get("std", (0.229, 0.224, 0.225))
        self.register_buffer("image_mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("image_std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self.train(self.training)

    def train(self, mode: bool = True) -> AdaptModule:
        super().train(mode)
        if mode and "model" in self._modules:
            keep_frozen_eval(self.backbone, self.freeze_backbone, self.norm_eval)
        return self

    def preprocess(self, images: Tensor) -> Tensor:
        """Normalise [0, 1] images with the backbone's mean and std when ``normalize``, else as is."""
        if not self.normalize:
            return images
        return (images - self.image_mean.to(images.dtype)) / self.image_std.to(images.dtype)

    # -- the task (subclasses)

    def training_loss(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        """The loss to minimise and named parts to log."""
        raise NotImplementedError

    def predict_for_metrics(self, batch: dict[str, Any]) -> tuple[Any, Any, Tensor | None]:
        """``(preds, target, loss)``: the metric's ``update`` arguments, and the loss if the model gives
        one in eval mode (``None`` otherwise)."""
        raise NotImplementedError

    @staticmethod
    def batch_size(batch: dict[str, Any]) -> int:
        return len(batch["image"])

    # -- Lightning steps

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        loss, parts = self.training_loss(batch)
        if self.auxiliary is not None:
            parts = {**parts, "auxiliary": self.auxiliary(self, batch)}
            loss = loss + parts["auxiliary"]
        size = self.batch_size(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        for key, value in parts.items():
            self.log(f"train/{key}", value, batch_size=size)
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.auxiliary is not None and hasattr(self.auxiliary, "update"):
            self.auxiliary.update(self)

    def _eval_step(self, batch: dict[str, Any], stage: str) -> None:
        batch = drop_padding(batch)  # repeats that fill a shard reader's batch never reach a metric
        if self.batch_size(batch) == 0:
            return
        preds, target, loss = self.predict_for_metrics(batch)
        metrics = self.val_metrics if stage == "val" else self.test_metrics
        if metrics is not None:
            metrics.update(preds, target)
        if loss is not None:
            loss_metric = self.val_loss if stage == "val" else self.test_loss
            loss_metric.update(loss.detach(), weight=self.batch_size(batch))
            self.log(f"{stage}/loss", loss_metric, on_step=False, on_epoch=True)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def _log_results(self, stage: str) -> dict[str, Tensor]:
        metrics = self.val_metrics if stage == "val" else self.test_metrics
        if metrics is None:
            return {}
        results = flatten_results(metrics.compute(), self.metric_name)  # synced across ranks here
        metrics.reset()
        for key, value in results.items():
            if value.numel() == 1:
                value = value.reshape(())
                value = value if value.is_floating_point() else value.to(torch.float64)
                self.log(f"{stage}/{key}", value)
        return {key: value.detach().cpu() for key, value in results.items()}

    def on_validation_epoch_end(self) -> None:
        self.val_results = self._log_results("val")

    def on_test_epoch_end(self) -> None:
        self.test_results = self._log_results("test")

    # -- optimisation

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        groups = param_groups(self.model, hp.lr, hp.weight_decay, self.backbone, hp.backbone_lr_mult)
        if self.auxiliary is not None:
            extra = param_groups(self.auxiliary, hp.lr, hp.weight_decay)
            groups += [{**group, "name": group["name"].replace("head", "auxiliary")} for group in extra]
        if not groups:
            raise ValueError("no trainable parameters")
        if hp.optimizer == "sgd":
            optimizer: torch.optim.Optimizer = torch.optim.SGD(
                groups, lr=hp.lr, momentum=hp.momentum, nesterov=hp.nesterov
            )
        else:
            optimizer = torch.optim.AdamW(groups, lr=hp.lr)
        if hp.schedule == "constant":
            return optimizer
        total = hp.max_steps if hp.max_steps is not None else self.trainer.estimated_stepping_batches
        if not math.isfinite(total) or total <= 0:
            raise ValueError(f"the {hp.schedule} schedule needs a finite length, got {total}: set max_steps")
        if hp.schedule == "multistep":
            scheduler = warmup_multistep(optimizer, int(total), hp.milestones, warmup_steps=hp.warmup_steps)
        else:
            scheduler = warmup_cosine(optimizer, int(total), hp.warmup_steps, hp.min_lr_ratio)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
