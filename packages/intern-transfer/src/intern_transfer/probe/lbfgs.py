"""Linear-probe strategy 2 of the paper (section 9.3, CLIP's protocol): multinomial logistic regression
fitted with L-BFGS (at most 1,000 iterations), its L2 strength searched on a log scale.

Objective, on full-batch features (computed in chunks of rows when ``chunk_size`` is set, so the
N x C logits never need to fit at once)::

    mean_i CE(x_i @ W + b, y_i) + (l2 / 2) * ||W||^2,     l2 = 1 / (C * N)

with the bias unpenalised. This is scikit-learn's ``LogisticRegression(C=C)`` objective
``C * sum_i CE_i + ||W||^2 / 2`` divided by ``C * N`` (scikit-learn itself minimises this scaled
form), so a given ``C`` means the same model here and there, and the gradient tolerance means the
same too (scikit-learn's default ``tol=1e-4`` is the default ``tolerance_grad``). W and b start at
zero unless warm-started. The optimiser is ``torch.optim.LBFGS`` with a strong-Wolfe line search and
the gradient computed in closed form (no autograd graph).

Regularisation search (CLIP's "parametric binary search", Radford et al. 2021, appendix A.3): C on a
coarse log grid from 1e-6 to 1e6 two decades apart, then repeatedly halve the step and try both
neighbours of the best C so far, down to 8 steps per decade: 7 + 4 x 2 = 15 fits. Each fit starts
from the solution at the nearest C already fitted (the problem is convex, so the start changes the
cost, not the optimum). The best C has the best validation metric; accuracy on a validation part of
a few dozen or hundred samples ties often, and ties go to the lower validation cross-entropy, then
to the smaller C.

Features are fitted as extracted, as CLIP fits scikit-learn's ``LogisticRegression`` on them
(appendix A.3), only centred on the training mean: with an unpenalised bias that is the same model
(the bias absorbs the shift; scikit-learn's lbfgs solver leaves the intercept unpenalised too, per
its ``LogisticRegression`` documentation) and L-BFGS needs fewer iterations. Scaling each feature to
unit variance (``LBFGSSearch(standardize=True)``) is a different prior: it lifts near-dead channels
(ReLU features, constant border pixels) to the weight of informative ones. With it and accuracy ties
going to the smaller C (the search before), the probe fell 3.0 test points below the scikit-learn
peer on EfficientNet-Lite0 features of digits at 10% of the training data and 1.1 at 100%
(``benchmarks/RESULTS.md``, ``probe_speed.py --peer``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from intern_transfer.probe.heads import LinearHeads, Standardizer
from intern_transfer.probe.metrics import Metric, check_metric, score


def l2_strength(C: float, num_samples: int) -> float:
    """The ``l2`` of this module's mean-loss objective equivalent to scikit-learn's ``C`` on N samples."""
    return 1.0 / (C * num_samples)


@dataclass
class LBFGSFit:
    """One fitted model: ``weight`` D x C, ``bias`` C, on the features it was fitted on."""

    weight: Tensor
    bias: Tensor
    C: float
    l2: float
    loss: float
    iterations: int
    evaluations: int
    converged: bool


def logistic_loss_grad(
    x: Tensor, y: Tensor, weight: Tensor, bias: Tensor, l2: float, chunk_size: int | None = None
) -> tuple[float, Tensor, Tensor]:
    """The objective (module docstring) and its gradients with respect to ``weight`` and ``bias``.

    ``weight`` is C x D here, as in ``nn.Linear``: on the CPU both products (``x @ W^T`` and
    ``(P - Y)^T @ x``) then read ``x`` row-major, about 3x faster than with a D x C weight.
    """
    n = x.shape[0]
    chunk = chunk_size or n
    loss = torch.zeros((), dtype=torch.float64, device=x.device)
    grad_w, grad_b = torch.zeros_like(weight), torch.zeros_like(bias)
    for start in range(0, n, chunk):
        xs, ys = x[start : start + chunk], y[start : start + chunk]
        logits = torch.addmm(bias, xs, weight.T)
        lse = torch.logsumexp(logits, 1)
        loss += (lse - logits.gather(1, ys[:, None]).squeeze(1)).sum(dtype=torch.float64)
        probs = torch.exp(logits.sub_(lse[:, None]))
        probs[torch.arange(xs.shape[0], device=x.device), ys] -= 1
        grad_w.addmm_(probs.T, xs)
        grad_b += probs.sum(0)
    grad_w.div_(n).add_(weight, alpha=l2)
    grad_b.div_(n)
    total = float(loss) / n + 0.5 * l2 * float(weight.double().square().sum())
    return total, grad_w, grad_b


@torch.no_grad()
def fit_logistic_lbfgs(
    x: Tensor,
    y: Tensor,
    *,
    C: float,
    num_classes: int | None = None,
    max_iter: int = 1000,
    tolerance_grad: float = 1e-4,
    tolerance_change: float = 1e-9,
    history_size: int = 10,
    init: tuple[Tensor, Tensor] | None = None,
    chunk_size: int | None = 4096,
) -> LBFGSFit:
    """Fit multinomial logistic regression with scikit-learn's ``C`` (module docstring) by L-BFGS.

    Args:
        x, y: N x D features (used as given: standardise them first) and N labels.
        C: inverse regularisation strength, scikit-learn's convention.
        num_classes: C classes; default ``max label + 1``.
        max_iter: L-BFGS iterations at most (function evaluations at most 1.25x that).
        tolerance_grad: stop when the largest gradient component is at most this.
        tolerance_change: stop when the objective or the step changes less than this.
        history_size: L-BFGS memory (scikit-learn / SciPy use 10).
        init: starting ``(weight D x C, bias C)``; zeros when None.
        chunk_size: rows per chunk in the objective; None: all at once.
    """
    n, d = x.shape
    c = num_classes or int(y.max()) + 1
    l2 = l2_strength(C, n)
    if init is None:
        weight = torch.zeros(c, d, dtype=x.dtype, device=x.device)
        bias = torch.zeros(c, dtype=x.dtype, device=x.device)
    else:
        weight = init[0].detach().to(x.device, x.dtype).T.contiguous()
        bias = init[1].detach().to(x.device, x.dtype).clone()
    weight.requires_grad_(True)
    bias.requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1,
        max_iter=max_iter,
        tolerance_grad=tolerance_grad,
        tolerance_change=tolerance_change,
        history_size=history_size,
        line_search_fn="strong_wolfe",
    )

    def closure() -> float:
        with torch.no_grad():
            loss, weight.grad, bias.grad = logistic_loss_grad(x, y, weight, bias, l2, chunk_size)
        return loss

    optimizer.step(closure)
    state = optimizer.state[optimizer._params[0]]
    iterations, evaluations = int(state.get("n_iter", 0)), int(state.get("func_evals", 0))
    loss, grad_w, grad_b = logistic_loss_grad(x, y, weight, bias, l2, chunk_size)
    converged = max(float(grad_w.abs().max()), float(grad_b.abs().max())) <= tolerance_grad or (
        iterations < max_iter
    )
    return LBFGSFit(
        weight.detach().T.contiguous(),
        bias.detach(),
        float(C),
        l2,
        loss,
        iterations,
        evaluations,
        bool(converged),
    )


@dataclass(frozen=True)
class LBFGSSearch:
    """The regularisation search and the solver settings (module docstring for the procedure).

    ``standardize`` scales each feature to unit variance before fitting; by default the features are
    only centred (module docstring)."""

    c_min: float = 1e-6
    c_max: float = 1e6
    coarse_step: float = 2.0
    steps_per_decade: int = 8
    max_iter: int = 1000
    tolerance_grad: float = 1e-4
    history_size: int = 10
    warm_start: bool = True
    chunk_size: int | None = 4096
    standardize: bool = False

    def coarse_exponents(self) -> list[float]:
        lo, hi = math.log10(self.c_min), math.log10(self.c_max)
        count = math.floor((hi - lo) / self.coarse_step + 1e-9)
        return [round(lo + i * self.coarse_step, 9) for i in range(count + 1)]

    def standardizer(self, x: Tensor) -> Standardizer:
        """What the features are fitted on: centred with ``x``'s mean, and scaled if ``standardize``."""
        fitted = Standardizer.fit(x)
        return fitted if self.standardize else Standardizer(fitted.mean, torch.ones_like(fitted.std))


@dataclass
class LBFGSSearchResult:
    """The search's evaluations (C, validation score) in order, the best fit as a one-head stack, and
    every fit and its validation cross-entropy by its C."""

    evaluated: list[tuple[float, float]]
    best_fit: LBFGSFit
    heads: LinearHeads
    seconds: float
    total_iterations: int = 0
    fits: dict[float, LBFGSFit] = field(default_factory=dict, repr=False)
    val_losses: dict[float, float] = field(default_factory=dict, repr=False)

    @property
    def best_C(self) -> float:
        return self.best_fit.C


@torch.no_grad()
def search_regularisation(
    train_x: Tensor,
    train_y: Tensor,
    val_x: Tensor,
    val_y: Tensor,
    *,
    search: LBFGSSearch | None = None,
    num_classes: int | None = None,
    metric: Metric = "accuracy",
    dtype: torch.dtype = torch.float32,
    device: str | torch.device | None = None,
) -> LBFGSSearchResult:
    """Fit L-BFGS logistic regression over CLIP's C search and pick C by the validation ``metric``
    (ties: the lower validation cross-entropy, then the smaller C)."""
    check_metric(metric)
    search = search or LBFGSSearch()
    start_time = time.perf_counter()
    device = torch.device(device) if device is not None else train_x.device
    c = num_classes or int(train_y.max()) + 1
    standardizer = search.standardizer(train_x)
    x = standardizer(train_x.to(device, dtype))
    xv = standardizer(val_x.to(device, dtype))
    y, yv = train_y.to(device), val_y.to(device)
    fits: dict[float, LBFGSFit] = {}
    scores: dict[float, float] = {}
    losses: dict[float, float] = {}
    evaluated: list[tuple[float, float]] = []

    def evaluate(exponent: float) -> None:
        init = None
        if search.warm_start and fits:
            nearest = min(fits, key=lambda e: (abs(e - exponent), e))
            init = (fits[nearest].weight, fits[nearest].bias)
        fit = fit_logistic_lbfgs(
            x,
            y,
            C=10.0**exponent,
            num_classes=c,
            max_iter=search.max_iter,
            tolerance_grad=search.tolerance_grad,
            history_size=search.history_size,
            init=init,
            chunk_size=search.chunk_size,
        )
        logits = torch.addmm(fit.bias, xv, fit.weight)
        finite = bool(torch.isfinite(logits).all())
        fits[exponent] = fit
        scores[exponent] = score(logits, yv, metric, c) if finite else math.nan
        losses[exponent] = float(F.cross_entropy(logits.double(), yv)) if finite else math.inf
        evaluated.append((fit.C, scores[exponent]))

    def best() -> float:
        # Accuracy on a few hundred samples ties often; cross-entropy orders the tied models by how
        # well they fit the validation labels, then the smaller C wins (max keeps the first).
        return max(
            sorted(scores),
            key=lambda e: (-math.inf if math.isnan(scores[e]) else scores[e], -losses[e]),
        )

    for exponent in search.coarse_exponents():
        evaluate(exponent)
    lo, hi = math.log10(search.c_min), math.log10(search.c_max)
    step = search.coarse_step
    while step > 1.0 / search.steps_per_decade + 1e-9:
        step /= 2
        centre = best()
        for exponent in (round(centre - step, 9), round(centre + step, 9)):
            if lo - 1e-9 <= exponent <= hi + 1e-9 and exponent not in fits:
                evaluate(exponent)
    best_fit = fits[best()]
    heads = LinearHeads(best_fit.weight[None].clone(), best_fit.bias[None].clone(), standardizer)
    return LBFGSSearchResult(
        evaluated,
        best_fit,
        heads,
        time.perf_counter() - start_time,
        sum(f.iterations for f in fits.values()),
        {f.C: f for f in fits.values()},
        {fits[e].C: loss for e, loss in losses.items()},
    )
