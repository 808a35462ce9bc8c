"""Depth and width scaling of a searched network (INTERN paper 4.3, "Model Scaling").

Following EfficientNet's compound scaling without resolution (the paper keeps the resolution fixed in
pretraining), a network grows by a depth coefficient and a width coefficient. For one compute target,
each depth coefficient is paired with the width coefficient that reaches the target (bisection on the
counted MACs), so the candidates differ only in how the budget is split; the paper then picks the pair
whose training converges fastest within a short budget (the app's scaling step does that training).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..models.metanet import CONV_OPS, MetaNetCfg
from ..profile import profile_metanet
from .space import attention_inputs, round_width

__all__ = ["ScaledCandidate", "fit_width", "scale_metanet"]


@dataclass(frozen=True)
class ScaledCandidate:
    """A scaled network for a compute target: its coefficients, config and counted MACs."""

    depth_coef: float
    width_coef: float
    cfg: MetaNetCfg
    macs: int
    params: int


def scale_metanet(cfg: MetaNetCfg, depth_coef: float, width_coef: float, conv_divisor: int = 8) -> MetaNetCfg:
    """``cfg`` with every stage ``ceil(depth * depth_coef)`` deep and ``width_coef`` times as wide
    (widths attention reads rounded to the head dim, others to ``conv_divisor``: :func:`round_width`);
    the stem scales with the width, the head keeps its width."""
    stem_attends, attends = attention_inputs([s.op not in CONV_OPS for s in cfg.stages])
    head_dim = cfg.stages[0].head_dim
    stages = tuple(
        replace(
            s,
            depth=math.ceil(s.depth * depth_coef),
            channels=round_width(s.channels * width_coef, attn, s.head_dim, conv_divisor),
        )
        for s, attn in zip(cfg.stages, attends, strict=True)
    )
    return replace(
        cfg,
        stages=stages,
        stem_width=round_width(cfg.stem_width * width_coef, stem_attends, head_dim, conv_divisor),
        source=f"{cfg.source} scaled depth x{depth_coef:g} width x{width_coef:.3g}",
    )


def fit_width(
    cfg: MetaNetCfg,
    depth_coef: float,
    target_macs: float,
    img_size: int,
    conv_divisor: int = 8,
    steps: int = 12,
) -> ScaledCandidate:
    """The width coefficient (bisection over [0.25, 8]) whose network at ``depth_coef`` comes closest
    to ``target_macs`` at ``img_size``."""
    lo, hi = 0.25, 8.0
    best: ScaledCandidate | None = None
    for _ in range(steps):
        mid = math.sqrt(lo * hi)
        scaled = scale_metanet(cfg, depth_coef, mid, conv_divisor)
        prof = profile_metanet(scaled, img_size)
        candidate = ScaledCandidate(depth_coef, mid, scaled, prof.macs, prof.params)
        if best is None or abs(math.log(prof.macs / target_macs)) < abs(math.log(best.macs / target_macs)):
            best = candidate
        lo, hi = (mid, hi) if prof.macs < target_macs else (lo, mid)
    assert best is not None
    return best
