"""The MLM head of Up-A-G's text tower: token states to vocabulary logits."""

from __future__ import annotations

import torch
from torch import nn


class MLMHead(nn.Module):
    """Linear map from token states to vocabulary logits, optionally tied to the token embedding."""

    def __init__(self, width: int, vocab_size: int, tied: nn.Embedding | None = None) -> None:
        super().__init__()
        self.decoder = nn.Linear(width, vocab_size)
        if tied is not None:
            if tied.weight.shape != self.decoder.weight.shape:
                raise ValueError(
                    f"tied embedding is {tuple(tied.weight.shape)}, need ({vocab_size}, {width})"
                )
            self.decoder.weight = tied.weight
        nn.init.zeros_(self.decoder.bias)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        """Logits ``... x vocab_size`` for token states ``... x width``."""
        return self.decoder(states)
