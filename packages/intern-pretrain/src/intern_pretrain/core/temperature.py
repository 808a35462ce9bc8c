"""Learnable softmax temperature for contrastive losses, CLIP style (a log-scale parameter)."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["LogitScale"]


class LogitScale(nn.Module):
    """`exp(log_scale)` with the log-scale clamped to `[log(min_scale), log(max_scale)]`.

    The temperature is `tau = 1 / scale`; the paper initialises `tau = 0.07` and trains it (its learning
    rate 0.1x the rest: give `log_scale` its own parameter group). The clamp is applied in `forward`,
    so a saturated scale gets no gradient, and can also be written back into the parameter with
    `clamp_()` after an optimiser step, as open_clip does. `log_scale` holds one element in a 1-D tensor
    (FSDP2 shards no 0-dim parameter); state dicts with the former 0-dim entry still load.

    Args:
        init_temperature: Initial `tau` (scale `1 / tau`).
        max_scale: Upper bound of the scale (100: CLIP's and DeCLIP's cap).
        min_scale: Lower bound of the scale (1: log-scale >= 0).
        learnable: Whether `log_scale` is a trainable parameter.
    """

    def __init__(
        self,
        init_temperature: float = 0.07,
        max_scale: float = 100.0,
        min_scale: float = 1.0,
        learnable: bool = True,
    ) -> None:
        super().__init__()
        if not 0 < min_scale <= max_scale:
            raise ValueError(f"need 0 < min_scale <= max_scale, got {min_scale}, {max_scale}")
        self.log_min = math.log(min_scale)
        self.log_max = math.log(max_scale)
        init = torch.tensor([math.log(1.0 / init_temperature)])
        self.log_scale = nn.Parameter(init, requires_grad=learnable)

    def forward(self) -> torch.Tensor:
        """The current (clamped) scale, a 0-dim tensor."""
        return self.log_scale.clamp(self.log_min, self.log_max).exp().squeeze(0)

    def _load_from_state_dict(self, state_dict: dict[str, torch.Tensor], prefix: str, *args: object) -> None:
        key = f"{prefix}log_scale"
        if key in state_dict and state_dict[key].dim() == 0:
            state_dict[key] = state_dict[key].reshape(1)
        super()._load_from_state_dict(state_dict, prefix, *args)

    @torch.no_grad()
    def clamp_(self) -> None:
        """Clamp the stored log-scale in place."""
        self.log_scale.clamp_(self.log_min, self.log_max)

    @property
    def temperature(self) -> float:
        """`1 / scale` as a Python float, for logging."""
        return float(1.0 / self.forward().detach())

    def extra_repr(self) -> str:
        return f"scale={float(self.forward().detach()):.3f}, max_scale={math.exp(self.log_max):.1f}"
