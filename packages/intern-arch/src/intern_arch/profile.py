"""Parameter, MAC and FLOP counts of a model, on the meta device (no memory, no compute).

Conventions: ``flops`` are torch's ``FlopCounterMode`` counts (2 FLOPs per multiply-add; convolutions,
matmuls and attention only, no element-wise ops); ``macs = flops / 2``, the "GFLOPs" of the paper's
Table 8 and of timm/fvcore. ``train_flops`` is forward + backward, which FlopCounterMode over-counts
for grouped/depthwise convolutions. Attention is counted through the math SDPA kernel so every backend
gives the same numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

if TYPE_CHECKING:
    from .models import MetaNetCfg


@dataclass(frozen=True)
class ModelProfile:
    """Counts for one model at one input size (batch 1)."""

    name: str
    img_size: int
    params: int
    macs: int
    flops: int
    train_flops: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, img_size: int, backward: bool = False) -> int:
    """FLOPs of one forward (and backward, if asked) at batch 1, on the model's own device."""
    device = next(model.parameters()).device
    x = torch.randn(1, 3, img_size, img_size, device=device)
    with sdpa_kernel([SDPBackend.MATH]), FlopCounterMode(display=False) as counter:
        if backward:
            model(x).sum().backward()
        else:
            with torch.no_grad():
                model(x)
    return counter.get_total_flops()


def profile_model(name: str, img_size: int | None = None, training: bool = False) -> ModelProfile:
    """Build ``name`` on the meta device and count it at ``img_size`` (default: its pretrained_cfg size)."""
    from . import create_model

    with torch.device("meta"):
        model = create_model(name)
    return _profile(model, name, img_size or model.pretrained_cfg["input_size"][-1], training)


def profile_metanet(cfg: MetaNetCfg, img_size: int, name: str = "metanet") -> ModelProfile:
    """Count a MetaNet given by its config (a searched or scaled architecture) on the meta device."""
    from .models import MetaNet

    with torch.device("meta"):
        model = MetaNet(cfg)
    return _profile(model, name, img_size, training=False)


def _profile(model: nn.Module, name: str, img_size: int, training: bool) -> ModelProfile:
    model.train(training)
    flops = count_flops(model, img_size)
    train_flops = count_flops(model, img_size, backward=True) if training else None
    return ModelProfile(name, img_size, count_params(model), flops // 2, flops, train_flops)
