"""The search's reward: accuracy traded against compute (INTERN paper, Eq. 6).

Eq. 6 is printed as ``a(m) * (t / f(m)) ** alpha`` with ``alpha = -0.07``, which grows with FLOPs. The
paper follows MnasNet's weighted product (Tan et al., "MnasNet", CVPR 2019, Eq. 2), whose form is
``a(m) * (f(m) / t) ** w`` with ``w = -0.07``: a model over the target loses reward, one under it gains
a little. This is MnasNet's form. ``f`` counts multiply-accumulates (the paper's "FLOPs", Table 8).
"""

from __future__ import annotations

__all__ = ["mnas_reward"]


def mnas_reward(accuracy: float, macs: float, target_macs: float, exponent: float = -0.07) -> float:
    """``accuracy * (macs / target_macs) ** exponent`` (MnasNet's soft constraint; exponent < 0)."""
    if macs <= 0 or target_macs <= 0:
        raise ValueError(f"MACs and the target must be positive, got {macs} and {target_macs}")
    return float(accuracy) * (float(macs) / float(target_macs)) ** exponent
