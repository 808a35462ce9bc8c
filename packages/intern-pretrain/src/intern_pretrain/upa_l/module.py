"""Up-A-L (paper Sec. 5.1.2): local representation on the frozen Up-A-G backbone, after SoCo.

An FPN (P2-P5) and a box head are trained by local BYOL (:class:`~intern_pretrain.upa_l.byol.LocalBYOL`)
on selective-search proposals seen in three views; the backbone stays frozen. The hand-over adds the
online branch's FPN as ``neck`` and its box head as ``heads/box`` (torchvision's ``FastRCNNConvFCHead``,
so ``intern_arch.build_faster_rcnn(..., neck=..., box_head=...)`` starts a detector from them), and
carries the Up-A-G text side over: the backbone it belongs to is unchanged.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from intern_arch.training import weight_decay_groups
from intern_pretrain.core import StageModule, scheduled
from intern_pretrain.upa_l.byol import LocalBYOL, momentum_at
from intern_pretrain.upa_l.levels import LEVEL_PROBS, LEVELS, assign_levels
from intern_transfer.runs import save_plain_hyperparameters

__all__ = ["UpaLModule"]


class UpaLModule(StageModule):
    """Local BYOL on the frozen backbone: the online FPN + box head + projector + predictor learn, the
    target follows by momentum after every optimiser step.

    Args:
        backbone: The Up-A-G backbone (intern-arch contract); frozen here.
        optimizer: Optimiser factory over the trainable parameters (paper / SoCo: LARS; here AdamW or
            momentum SGD); biases and normalisation weights get no weight decay.
        scheduler: ``scheduler(optimizer, total_steps=...)``, stepped every optimiser step; None: none.
        fpn_channels, head_dim, proj_hidden, proj_dim, pred_hidden, roi_size, sampling_ratio, pairs:
            :class:`~intern_pretrain.upa_l.byol.LocalBYOL` (paper: 256, 1024, 4096, 256, 4096, 7, 2,
            view 1 with views 2 and 3).
        levels: FPN level of each proposal: ``"random"`` (Up-A-L, ``level_probs``) or ``"size"`` (SoCo).
        level_probs: Probabilities of P2..P5 (paper 0.1/0.2/0.3/0.4).
        canonical_size: For ``"size"``: the box side that goes to P4; ``None`` is each view's side (SoCo's
            224 on 224 px views).
        base_momentum: Target momentum at step 0, rising to 1 on a cosine (BYOL; paper 0.99).
        total_steps: Length of the momentum and LR schedules; ``None``: the trainer's
            ``estimated_stepping_batches``.
        seed: Seed of the random level draws (one draw per step and batch, so a resumed run repeats them).
    """

    carries_parent_parts = True

    def __init__(
        self,
        backbone: nn.Module,
        *,
        optimizer: Callable[..., Optimizer],
        scheduler: Callable[..., LRScheduler] | None = None,
        fpn_channels: int = 256,
        head_dim: int = 1024,
        proj_hidden: int = 4096,
        proj_dim: int = 256,
        pred_hidden: int = 4096,
        roi_size: int = 7,
        sampling_ratio: int = 2,
        pairs: Sequence[Sequence[int]] = ((0, 1), (0, 2)),
        levels: str = "random",
        level_probs: Sequence[float] = LEVEL_PROBS,
        canonical_size: float | None = None,
        base_momentum: float = 0.99,
        total_steps: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if levels not in ("random", "size"):
            raise ValueError(f"levels must be 'random' or 'size', got {levels!r}")
        if len(level_probs) != len(LEVELS):
            raise ValueError(f"level_probs needs one probability per level {LEVELS}, got {list(level_probs)}")
        save_plain_hyperparameters(self, ignore=["optimizer", "scheduler"])
        self.model = LocalBYOL(
            backbone,
            fpn_channels=fpn_channels,
            head_dim=head_dim,
            proj_hidden=proj_hidden,
            proj_dim=proj_dim,
            pred_hidden=pred_hidden,
            roi_size=roi_size,
            sampling_ratio=sampling_ratio,
            pairs=tuple((int(i), int(j)) for i, j in pairs),
        )
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self._momentum_step = -1  # the optimiser step whose target update was done

    @property
    def backbone(self) -> nn.Module:  # type: ignore[override]
        return self.model.backbone

    def total_steps(self) -> int:
        """Length of the schedules: ``total_steps`` or the trainer's estimate."""
        if self.hparams.total_steps is not None:
            return int(self.hparams.total_steps)
        return int(self.trainer.estimated_stepping_batches)

    def assign_levels(
        self, boxes: Sequence[Tensor], view_sides: Sequence[int], batch_idx: int = 0
    ) -> Tensor | list[Tensor]:
        """Level indices (0 = P2) of the proposals: one B x K draw shared by every view (``"random"``,
        seeded by seed, step, batch index and rank, so a resumed run repeats it) or one per view by box
        size (``"size"``, the box side ``canonical_size`` or else the view's side going to P4)."""
        hp = self.hparams
        if hp.levels == "size":
            return [
                assign_levels(
                    view_boxes, "size", hp.level_probs, canonical_size=float(hp.canonical_size or side)
                )
                for view_boxes, side in zip(boxes, view_sides, strict=True)
            ]
        rank = self.trainer.global_rank if self._trainer is not None else 0
        key = f"{hp.seed}/{self.global_step}/{batch_idx}/{rank}".encode()
        generator = torch.Generator().manual_seed(zlib.crc32(key))
        return assign_levels(boxes[0], "random", hp.level_probs, generator=generator).to(boxes[0].device)

    def forward(self, views: Sequence[Tensor], boxes: Sequence[Tensor], levels: Any) -> Tensor:
        """The local BYOL loss (see :meth:`LocalBYOL.forward`)."""
        return self.model(views, boxes, levels)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        views, boxes = batch["views"], batch["boxes"]
        levels = self.assign_levels(boxes, [view.shape[-1] for view in views], batch_idx)
        loss = self.model(views, boxes, levels)
        self.log("train/loss", loss, prog_bar=True, batch_size=views[0].shape[0])
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Move the target toward the online branch once per optimiser step (BYOL's cosine momentum)."""
        step = self.global_step
        if step == 0 or step == self._momentum_step:  # no optimiser step yet, or accumulating
            return
        self._momentum_step = step
        momentum = momentum_at(step - 1, self.total_steps(), self.hparams.base_momentum)
        self.model.update_target(momentum)
        self.log("train/momentum", momentum, batch_size=1)

    def configure_optimizers(self) -> Any:
        weight_decay = float(getattr(self.optimizer_factory, "keywords", {}).get("weight_decay", 0.0))
        optimizer = self.optimizer_factory(weight_decay_groups(self.model, weight_decay))
        return scheduled(optimizer, self.scheduler_factory, self.total_steps())

    def handover_parts(self) -> dict[str, nn.Module]:
        """The online branch's FPN and box head."""
        return {"neck": self.model.fpn, "heads/box": self.model.head}
