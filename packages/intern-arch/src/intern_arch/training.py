"""What every trainer of an intern-arch model shares: freezing a module, the weight-decay split and
stochastic depth set after loading.

A frozen module takes no gradient and stays in eval mode, so BatchNorm statistics, dropout and drop
path are the checkpoint's (DINOv2's and GV-B's linear probes); a module holding one puts it back in
eval mode after ``train()`` (:class:`intern_arch.necks.BackboneHolder` does).

The weight-decay split is timm's (``timm.optim.param_groups_weight_decay``: biases and other 1-D
parameters take none), extended to honour the ``no_weight_decay()`` of every submodule that has one
(the backbone contract), wherever it sits in the module tree.
"""

from __future__ import annotations

from typing import Any, TypeVar

from timm.layers import DropPath
from timm.optim import param_groups_weight_decay
from torch import nn

__all__ = ["freeze", "no_weight_decay_names", "set_drop_path", "weight_decay_groups"]

ModuleT = TypeVar("ModuleT", bound=nn.Module)


def freeze(module: ModuleT) -> ModuleT:
    """No gradient into ``module`` and eval mode; returns it."""
    module.requires_grad_(False)
    module.eval()
    return module


def no_weight_decay_names(module: nn.Module) -> set[str]:
    """Parameter names (relative to ``module``) that a submodule's ``no_weight_decay()`` exempts."""
    names: set[str] = set()
    for prefix, sub in module.named_modules():
        exempt = getattr(sub, "no_weight_decay", None)
        if callable(exempt):
            names |= {f"{prefix}.{name}" if prefix else name for name in exempt()}
    return names


def weight_decay_groups(module: nn.Module, weight_decay: float, name: str = "", **options: Any) -> list[dict]:
    """Optimiser groups over the trainable parameters of ``module``: ``<name>`` with ``weight_decay``,
    ``<name>_no_decay`` with none (1-D parameters, biases and the ``no_weight_decay()`` names).

    ``options`` (``lr``, ...) are set on both groups; empty groups are left out.
    """
    groups = param_groups_weight_decay(
        module, weight_decay, no_weight_decay_list=no_weight_decay_names(module)
    )
    for group in groups:
        group["name"] = name if group["weight_decay"] else f"{name}_no_decay".lstrip("_")
        group.update(options)
    return groups


def set_drop_path(model: nn.Module, rate: float) -> int:
    """Stochastic depth on an already built model: every block with a ``drop_path`` (a timm ``DropPath``
    or the ``nn.Identity`` that stands for rate 0) gets ``DropPath`` at a rate rising linearly from 0
    to ``rate`` over the blocks in order, as timm and MetaNet's ``drop_path_rate`` set it at build
    time. It has no parameters, so checkpoints are unaffected. Returns the number of blocks set.
    """
    blocks = [m for m in model.modules() if isinstance(getattr(m, "drop_path", None), DropPath | nn.Identity)]
    for i, block in enumerate(blocks):
        block.drop_path = DropPath(rate * i / max(len(blocks) - 1, 1)) if rate > 0 else nn.Identity()
    return len(blocks)
