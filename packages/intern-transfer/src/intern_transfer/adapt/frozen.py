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

from collections.abc import Iterable, Iterator
from typing import Any

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def freeze(module: nn.Module) -> nn.Module:
    """No gradient into ``module`` and eval mode; returns it."""
    module.requires_grad_(False)
    module.eval()
    return module


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


def trainable_parameters(module: nn.Module) -> Iterator[tuple[str, nn.Parameter]]:
    """``(name, parameter)`` of the parameters of ``module`` that take a gradient."""
    return ((name, p) for name, p in module.named_parameters() if p.requires_grad)


def param_groups(
    module: nn.Module,
    lr: float,
    weight_decay: float,
    backbone: nn.Module | None = None,
    backbone_lr_mult: float = 1.0,
    no_weight_decay: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """Optimiser parameter groups over the trainable parameters of ``module`` only.

    Four groups at most: (backbone, rest) x (decay, no decay). Biases, norm weights and other 1-D
    parameters, and the backbone's ``no_weight_decay()`` names, take no weight decay. Backbone
    parameters (those of ``backbone``, a submodule of ``module``) take ``lr * backbone_lr_mult``.
    Empty groups are left out.
    """
    backbone_ids: dict[int, str] = {}
    if backbone is not None:
        backbone_ids = {id(p): name for name, p in backbone.named_parameters()}
    skip = set(no_weight_decay)
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for _, param in trainable_parameters(module):
        in_backbone = id(param) in backbone_ids
        decay = param.ndim > 1 and not (in_backbone and backbone_ids[id(param)] in skip)
        groups.setdefault((in_backbone, decay), []).append(param)
    out = []
    for (in_backbone, decay), params in sorted(groups.items()):
        out.append(
            {
                "params": params,
                "lr": lr * (backbone_lr_mult if in_backbone else 1.0),
                "weight_decay": weight_decay if decay else 0.0,
                "name": f"{'backbone' if in_backbone else 'head'}{'' if decay else '_no_decay'}",
            }
        )
    return out
