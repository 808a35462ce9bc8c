"""Linear-probe strategy 1 of the paper (section 9.3): SGD with Nesterov momentum over a grid of
learning rate x weight decay x momentum, all heads trained together.

The G heads of the grid are one weight tensor (stored D x G*C, returned G x D x C). Every step
draws one mini-batch, shared by all heads; the forward pass is one matrix product ``X_b (B x D) @ W
(D x G*C)``, the gradient of each head's mean cross-entropy is computed in closed form
(``(softmax - onehot) / B``, then ``X_b^T @ that``), and the SGD update runs on the whole stack with
per-head learning rate, weight decay and momentum (vectors over the G*C columns). The heads never
interact, so each ends exactly where ``torch.optim.SGD(nesterov=True)`` would take it alone on the
same batches (tested).

Per step, as ``torch.optim.SGD`` does with ``dampening=0`` (weight decay applies to weight and bias,
as it does for ``SGD(linear.parameters())``)::

    g = grad + wd * p;  buf = momentum * buf + g;  g = g + momentum * buf (Nesterov);  p -= lr_t * g

``lr_t`` follows a step schedule (the released gv-benchmark config: x0.1 at 30%, 60% and 90% of
the iterations, ``torch.optim.lr_scheduler.MultiStepLR``). Heads start at zero. Batches: the
training set is reshuffled every epoch (one seeded generator) and cut into consecutive batches of
``batch_size`` across epoch boundaries, so every batch is full and every sample is used equally.

Features are standardised with the training set's mean and std first (:mod:`.heads`), which puts
the paper's learning-rate range on the same footing for every backbone; the returned heads carry
the standardiser, so they apply to raw features.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import product
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from intern_transfer.probe.heads import LinearHeads, Standardizer
from intern_transfer.probe.metrics import Metric, check_metric, score_heads


def log_grid(low: float, high: float, points_per_decade: float = 2) -> tuple[float, ...]:
    """Logarithmically spaced values from ``low`` to ``high`` inclusive, ``points_per_decade`` per decade."""
    if not 0 < low <= high:
        raise ValueError(f"a log grid needs 0 < low <= high, got {low}, {high}")
    steps = round(math.log10(high / low) * points_per_decade)
    if steps == 0:
        return (float(low),)
    return tuple(
        float(10 ** (math.log10(low) + i * math.log10(high / low) / steps)) for i in range(steps + 1)
    )


class SGDSetting(NamedTuple):
    """One head's hyperparameters."""

    lr: float
    weight_decay: float
    momentum: float


@dataclass(frozen=True)
class SGDGrid:
    """The grid and the schedule. Defaults: the paper's ranges (lr in [1e-4, 0.1] at 2 points per
    decade, wd in [1e-6, 1e-3] at 1 per decade, momentum 0.9 and 0.99: 7 x 4 x 2 = 56 heads), 10,000
    iterations of batch 64 (use 100,000 for ImageNet-scale sets) and the released config's steps."""

    lrs: Sequence[float] = field(default_factory=lambda: log_grid(1e-4, 0.1, 2))
    weight_decays: Sequence[float] = field(default_factory=lambda: log_grid(1e-6, 1e-3, 1))
    momenta: Sequence[float] = (0.9, 0.99)
    iterations: int = 10_000
    batch_size: int = 64
    milestones: Sequence[float] = (0.3, 0.6, 0.9)
    gamma: float = 0.1
    nesterov: bool = True

    def settings(self) -> list[SGDSetting]:
        """Every head's setting, learning rate slowest, momentum fastest."""
        return [SGDSetting(*s) for s in product(self.lrs, self.weight_decays, self.momenta)]

    def milestone_steps(self) -> list[int]:
        return sorted(round(f * self.iterations) for f in self.milestones)


@dataclass
class SGDGridResult:
    """Trained heads (G x D x C, in :meth:`SGDGrid.settings` order) and their validation scores.

    ``val_scores`` is None without validation data; a diverged head (non-finite logits) scores NaN.
    """

    settings: list[SGDSetting]
    heads: LinearHeads
    val_scores: Tensor | None
    seconds: float

    @property
    def best_index(self) -> int:
        """The head with the best validation score (the first in grid order on ties)."""
        if self.val_scores is None:
            raise ValueError("no validation scores: pass val_x and val_y to train_sgd_grid")
        scores = torch.nan_to_num(self.val_scores, nan=-math.inf)
        return int(torch.nonzero(scores == scores.max())[0])

    @property
    def best_setting(self) -> SGDSetting:
        return self.settings[self.best_index]


def minibatch_indices(n: int, batch_size: int, iterations: int, seed: int) -> Tensor:
    """iterations x batch_size sample indices: seeded epoch permutations cut into consecutive batches."""
    generator = torch.Generator().manual_seed(seed)
    needed = iterations * batch_size
    perms = [torch.randperm(n, generator=generator) for _ in range(math.ceil(needed / n))]
    return torch.cat(perms)[:needed].view(iterations, batch_size)


@torch.no_grad()
def train_sgd_grid(
    train_x: Tensor,
    train_y: Tensor,
    val_x: Tensor | None = None,
    val_y: Tensor | None = None,
    *,
    grid: SGDGrid | None = None,
    settings: Sequence[SGDSetting] | None = None,
    num_classes: int | None = None,
    metric: Metric = "accuracy",
    seed: int = 0,
    standardize: bool = True,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device | None = None,
) -> SGDGridResult:
    """Train every head of ``grid`` together on ``train_x`` and score each on the validation set.

    Args:
        train_x, train_y: N x D features and N labels.
        val_x, val_y: validation features and labels (optional).
        grid: the grid and schedule (:class:`SGDGrid` defaults when None).
        settings: explicit head settings instead of ``grid``'s product (its schedule still applies),
            e.g. the single chosen setting for a refit.
        num_classes: C; default ``max label + 1``.
        metric: the validation metric (:mod:`.metrics`).
        seed: the batch order.
        standardize: standardise features with the training statistics (module docstring).
        dtype: compute dtype (float32; float64 for exactness checks).
        device: where to train; default ``train_x``'s device.
    """
    check_metric(metric)
    grid = grid or SGDGrid()
    settings = list(settings) if settings is not None else grid.settings()
    if not settings:
        raise ValueError("empty SGD grid")
    start_time = time.perf_counter()
    device = torch.device(device) if device is not None else train_x.device
    num_classes = num_classes or int(train_y.max()) + 1
    n, d = train_x.shape
    g, c, b = len(settings), num_classes, grid.batch_size
    if n < 1 or train_y.shape != (n,):
        raise ValueError(f"train features {tuple(train_x.shape)} and labels {tuple(train_y.shape)} disagree")
    if int(train_y.min()) < 0 or int(train_y.max()) >= c:
        raise ValueError(f"labels must lie in [0, {c})")

    standardizer = Standardizer.fit(train_x) if standardize else Standardizer.identity(d, train_x.dtype)
    x = standardizer(train_x.to(device, dtype))
    y = train_y.to(device)
    batches = minibatch_indices(n, b, grid.iterations, seed).to(device)

    def per_column(values: Sequence[float]) -> Tensor:
        # One value per head, repeated over its C columns: broadcasting along the leading dimension of
        # a D x (G*C) tensor is the fast path (a per-head G axis in the middle is several times slower).
        return torch.tensor(values, dtype=dtype, device=device).repeat_interleave(c)

    weight = torch.zeros(d, g * c, dtype=dtype, device=device)
    bias = torch.zeros(g * c, dtype=dtype, device=device)
    buf_w, buf_b = torch.zeros_like(weight), torch.zeros_like(bias)
    grad_w = torch.empty_like(weight)
    wd = per_column([s.weight_decay for s in settings])
    mom = per_column([s.momentum for s in settings])
    use_momentum = bool((mom != 0).any())

    milestones = grid.milestone_steps()
    # Learning rate of each phase between milestones, multiplied in Python floats as MultiStepLR does.
    phase_lrs = [[s.lr for s in settings]]
    for _ in milestones:
        phase_lrs.append([lr * grid.gamma for lr in phase_lrs[-1]])
    neg_lrs = [-per_column(lrs) for lrs in phase_lrs]

    for step in range(grid.iterations):
        neg_lr = neg_lrs[bisect_right(milestones, step)]
        idx = batches[step]
        xb, yb = x.index_select(0, idx), y.index_select(0, idx)
        logits = torch.addmm(bias, xb, weight).view(b, g, c)
        # Softmax by hand: torch.softmax is slow on CPU for a short last dimension.
        probs = logits.sub_(logits.amax(-1, keepdim=True)).exp_()
        probs.div_(probs.sum(-1, keepdim=True))
        probs.sub_(F.one_hot(yb, c).to(dtype).unsqueeze(1)).div_(b)
        probs = probs.view(b, g * c)
        torch.mm(xb.T, probs, out=grad_w)
        grad_b = probs.sum(0)
        grad_w.addcmul_(weight, wd)
        grad_b.addcmul_(bias, wd)
        if use_momentum:
            buf_w.mul_(mom).add_(grad_w)
            buf_b.mul_(mom).add_(grad_b)
            if grid.nesterov:
                grad_w.addcmul_(buf_w, mom)
                grad_b.addcmul_(buf_b, mom)
            else:
                grad_w.copy_(buf_w)
                grad_b.copy_(buf_b)
        weight.addcmul_(grad_w, neg_lr)
        bias.addcmul_(grad_b, neg_lr)

    heads = LinearHeads(
        weight.view(d, g, c).permute(1, 0, 2).contiguous(), bias.view(g, c).clone(), standardizer
    )
    val_scores = None
    if val_x is not None and val_y is not None:
        preds, finite = heads.predict(val_x.to(device, dtype))
        val_scores = score_heads(preds, val_y, metric, c, finite)
    return SGDGridResult(settings, heads, val_scores, time.perf_counter() - start_time)
