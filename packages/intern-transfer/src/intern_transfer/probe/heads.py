"""Feature standardisation and a stack of linear heads, shared by both probe strategies.

The SGD strategy trains on standardised features: ``(x - mean) / std`` with the mean and (biased)
standard deviation of each feature over the training set it is fitted on; a constant feature keeps
std 1 (it becomes 0), as scikit-learn's ``StandardScaler`` does. The L-BFGS strategy only centres them
(std 1; :mod:`.lbfgs` says why). Validation and test features are transformed with the training
statistics. A :class:`LinearHeads` keeps its standardiser, so it applies to raw features, and
:meth:`LinearHeads.as_linear` folds the standardisation into a plain ``nn.Linear`` to put on top of
the backbone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class Standardizer:
    """Per-feature ``(x - mean) / std``; :meth:`fit` computes the statistics in float64."""

    mean: Tensor
    std: Tensor

    @classmethod
    def fit(cls, x: Tensor) -> Standardizer:
        x64 = x.to(torch.float64)
        mean = x64.mean(0)
        std = x64.std(0, correction=0)
        std = torch.where(std > 0, std, torch.ones_like(std))
        return cls(mean.to(x.dtype), std.to(x.dtype))

    @classmethod
    def identity(cls, dim: int, dtype: torch.dtype = torch.float32) -> Standardizer:
        return cls(torch.zeros(dim, dtype=dtype), torch.ones(dim, dtype=dtype))

    def __call__(self, x: Tensor) -> Tensor:
        return (x - self.mean.to(x)) / self.std.to(x)


@dataclass
class LinearHeads:
    """G linear classifiers on standardised features: ``logits[g] = standardize(x) @ weight[g] + bias[g]``.

    Attributes:
        weight: G x D x C.
        bias: G x C.
        standardizer: applied to raw features first.
    """

    weight: Tensor
    bias: Tensor
    standardizer: Standardizer

    @property
    def num_heads(self) -> int:
        return self.weight.shape[0]

    @torch.no_grad()
    def logits(self, x: Tensor, chunk_size: int = 8192) -> Tensor:
        """G x N x C logits of raw features ``x`` (N x D), computed ``chunk_size`` rows at a time."""
        g, d, c = self.weight.shape
        w = self.weight.to(x.device).permute(1, 0, 2).reshape(d, g * c)
        out = []
        for start in range(0, x.shape[0], chunk_size):
            z = self.standardizer(x[start : start + chunk_size].to(w.dtype))
            out.append((z @ w).view(-1, g, c).permute(1, 0, 2) + self.bias.to(x.device)[:, None, :])
        return torch.cat(out, 1) if out else x.new_zeros(g, 0, c)

    @torch.no_grad()
    def predict(self, x: Tensor, chunk_size: int = 8192) -> tuple[Tensor, Tensor]:
        """Arg-max classes (G x N) of raw features ``x``, and per head whether all its logits were finite."""
        preds, finite = [], torch.ones(self.num_heads, dtype=torch.bool)
        for start in range(0, x.shape[0], chunk_size):
            logits = self.logits(x[start : start + chunk_size], chunk_size)
            finite &= torch.isfinite(logits).flatten(1).all(1).cpu()
            preds.append(logits.argmax(-1).cpu())
        return torch.cat(preds, 1), finite

    def select(self, index: int) -> LinearHeads:
        """Head ``index`` alone, as a one-head stack."""
        return LinearHeads(
            self.weight[index : index + 1].clone(), self.bias[index : index + 1].clone(), self.standardizer
        )

    @torch.no_grad()
    def as_linear(self, index: int = 0) -> nn.Linear:
        """Head ``index`` as an ``nn.Linear`` on raw features (standardisation folded in)."""
        w = self.weight[index].to(torch.float64) / self.standardizer.std.to(torch.float64)[:, None]
        b = self.bias[index].to(torch.float64) - self.standardizer.mean.to(torch.float64) @ w
        linear = nn.Linear(w.shape[0], w.shape[1])
        linear.weight.copy_(w.T)
        linear.bias.copy_(b)
        return linear
