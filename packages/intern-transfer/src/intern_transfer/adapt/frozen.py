"""Freezing a backbone and grouping the trainable parameters for the optimiser.

A frozen backbone takes no gradient (``requires_grad=False``), is left out of the optimiser, and
stays in eval mode while the modules on top of it train, so its BatchNorm running statistics, dropout
and drop-path are those of the checkpoint (DINOv2's and GV-B's linear probes). ``nn.Module.train()``
would switch it back to training mode, so a module holding one re-applies :func:`keep_frozen_eval`
in its own ``train()``; that is what :class:`~intern_transfer.adapt.finetune.AdaptModule` does.

``norm_eval`` (mmdet's name) is the fine-tuning variant for small per-device batches: the backbone
trains, but its BatchNorm layers keep their running statistics (they stay in eval mode).
"""

from __future__ import annotations

from typing import Any

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from intern_arch.training import weight_decay_groups


def set_norm_eval(module: nn.Module) -> None:
    """Put every BatchNorm layer of ``module`` in eval mode (running statistics stay fixed)."""
    for layer in module.modules():
        if isinstance(layer, _BatchNorm):
            layer.eval()


def keep_frozen_eval(backbone: nn.Module, frozen: bool, norm_eval: bool = False) -> None:
    """After ``train(True)``: a frozen backbone goes back to eval mode, or only its BatchNorm layers
    when ``norm_eval``."""
    if frozen:
        backbone.eval()
    elif norm_eval:
        set_norm_eval(backbone)


def param_groups(
    module: nn.Module,
    lr: float,
    weight_decay: float,
    backbone: nn.Module | None = None,
    backbone_lr_mult: float = 1.0,
) -> list[dict[str, Any]]:
    """Optimiser parameter groups over the trainable parameters of ``module`` only.

    Four groups at most: (backbone, head) x (decay, no decay), the split of
    :func:`intern_arch.training.weight_decay_groups` (1-D parameters and the ``no_weight_decay()``
    names take none). Backbone parameters (those of ``backbone``, a submodule of ``module``) take
    ``lr * backbone_lr_mult``. Empty groups are left out.
    """
    in_backbone = {id(p) for p in backbone.parameters()} if backbone is not None else set()
    groups = []
    for group in weight_decay_groups(module, weight_decay):
        suffix = "" if group["weight_decay"] else "_no_decay"
        for part, mult in (("backbone", backbone_lr_mult), ("head", 1.0)):
            params = [p for p in group["params"] if (id(p) in in_backbone) == (part == "backbone")]
            if params:
                groups.append({**group, "params": params, "lr": lr * mult, "name": part + suffix})
    return groups
