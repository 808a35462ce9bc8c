"""What a run will cost, said before it starts: its cells, the fits of each and minutes on this machine.

A probe cell's cost is its protocol's fits (paper 9.3): ``linear_probe`` trains one SGD head per
point of its grid (lrs x weight decays x momenta = 56) for ``iterations`` steps (10,000) and refits the
chosen one, and runs the L-BFGS search over C (:func:`lbfgs_fits`: 15 fits of at most ``max_iter``
iterations) and its refit; ``lbfgs`` (and ``fast``) runs the search alone. The minutes come from a short
measurement on random features of the backbone's width with the task's classes: a few SGD steps of the
whole grid (their cost does not depend on the rows), and a short L-BFGS search, scaled to the regime's
rows and the search's fits. Real features may take many more L-BFGS iterations than random ones, so the
estimate is a range whose top has every fit run to ``max_iter``. Feature extraction (once per backbone
and task, then cached) and dense cells are not estimated.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from intern_bench.protocols.linear_probe import lbfgs_search, sgd_grid
from intern_data.splits import SplitRule
from intern_data.tasks import TaskSpec
from intern_transfer.probe import LBFGSSearch, search_regularisation, train_sgd_grid

MEASURE_ROWS = (256, 1024)
"""Training rows of the two timed L-BFGS searches: a fit's time is a fixed part plus a part per row."""
MEASURE_LBFGS_ITER = 50
"""Iterations at most of each timed L-BFGS fit (random features converge in fewer)."""
MEASURE_SGD_SECONDS = 0.25
"""SGD steps are timed in growing batches until one batch takes this long (or 64 steps)."""


def lbfgs_fits(search: LBFGSSearch) -> int:
    """Fits of the L-BFGS search at most: the coarse grid, then two per halving of its step (paper 9.3)."""
    span = math.log10(search.c_max) - math.log10(search.c_min)
    fits = math.floor(span / search.coarse_step + 1e-9) + 1
    step = search.coarse_step
    while step > 1.0 / search.steps_per_decade + 1e-9:
        step /= 2
        fits += 2
    return fits


def training_rows(spec: TaskSpec, rule: str) -> int:
    """About how many training samples regime ``rule`` of ``spec`` keeps (per-class rounding ignored)."""
    parsed = SplitRule.parse(rule)
    if parsed.kind == "percent":
        return parsed.take(spec.train_size)
    return min(spec.train_size, int(parsed.value) * int(spec.num_classes or 1))


@dataclass(frozen=True)
class Timing:
    """Seconds measured at one feature width and class count: an SGD step of the whole grid (0 without
    SGD); an L-BFGS fit on random features, ``lbfgs_fit + lbfgs_fit_per_row`` x rows, and the iterations
    such a fit took (0 without L-BFGS)."""

    sgd_step: float
    lbfgs_fit: float
    lbfgs_fit_per_row: float
    lbfgs_iterations: float


def _random_task(rows: int, width: int, classes: int) -> tuple[Tensor, Tensor]:
    """``rows`` random features of ``width`` labelled by a noisy random linear teacher."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(rows, width, generator=generator)
    teacher = torch.randn(width, classes, generator=generator) / math.sqrt(width)
    return x, (3 * x @ teacher + torch.randn(rows, classes, generator=generator)).argmax(1)


def _search_seconds(search: LBFGSSearch, rows: int, width: int, classes: int) -> tuple[float, float]:
    """(seconds, iterations) per fit of ``search`` on ``rows`` random training rows (and as many for
    validation)."""
    x, y = _random_task(2 * rows, width, classes)
    found = search_regularisation(x[:rows], y[:rows], x[rows:], y[rows:], search=search, num_classes=classes)
    fits = len(found.evaluated)
    return found.seconds / fits, found.total_iterations / fits


def measure(protocol: Mapping[str, Any], width: int, classes: int) -> Timing:
    """Time ``protocol``'s fits on random features of ``width`` with ``classes`` classes (see the module)."""
    strategy = protocol.get("strategy", "both")
    sgd_step = fit = per_row = iterations = 0.0
    if strategy in ("both", "sgd"):
        x, y = _random_task(MEASURE_ROWS[0], width, classes)
        grid, steps = sgd_grid(protocol["sgd"]), 2
        while True:
            start = time.perf_counter()
            train_sgd_grid(x, y, grid=replace(grid, iterations=steps), num_classes=classes)
            seconds = time.perf_counter() - start
            if seconds >= MEASURE_SGD_SECONDS or steps >= 64:
                break
            steps *= 4
        sgd_step = seconds / steps
    if strategy in ("both", "lbfgs"):
        search = lbfgs_search(protocol["lbfgs"])
        search = replace(search, max_iter=min(search.max_iter, MEASURE_LBFGS_ITER))
        (small, _), (large, iterations) = (_search_seconds(search, n, width, classes) for n in MEASURE_ROWS)
        per_row = max(0.0, large - small) / (MEASURE_ROWS[1] - MEASURE_ROWS[0])
        fit = max(0.0, small - per_row * MEASURE_ROWS[0])
    return Timing(sgd_step, fit, per_row, iterations)


def cell_seconds(protocol: Mapping[str, Any], timing: Timing, rows: int) -> tuple[float, float]:
    """(as quick as on random features, every L-BFGS fit to ``max_iter``) seconds of one probe cell on
    ``rows`` training samples: the search on the rows left after the validation carve-out, then refits."""
    strategy = protocol.get("strategy", "both")
    low = high = 0.0
    if strategy in ("both", "sgd"):
        grid = sgd_grid(protocol["sgd"])
        heads = len(grid.settings())
        low = high = timing.sgd_step * grid.iterations * (1 + 1 / heads)  # the search, then one head's refit
    if strategy in ("both", "lbfgs"):
        search = lbfgs_search(protocol["lbfgs"])
        fits = lbfgs_fits(search)
        searched = rows * (1 - float(protocol.get("val_fraction", 0.2)))
        seconds = fits * (timing.lbfgs_fit + timing.lbfgs_fit_per_row * searched)
        seconds += timing.lbfgs_fit + timing.lbfgs_fit_per_row * rows  # the refit
        low += seconds
        high += seconds * search.max_iter / max(1.0, timing.lbfgs_iterations)
    return low, high


def fits_text(protocol: Mapping[str, Any]) -> str:
    """What a cell of ``protocol`` fits, in words."""
    strategy = protocol.get("strategy", "both")
    parts = []
    if strategy in ("both", "sgd"):
        grid = sgd_grid(protocol["sgd"])
        parts.append(f"{len(grid.settings())} SGD heads x {grid.iterations:,} iterations + 1 refit")
    if strategy in ("both", "lbfgs"):
        search = lbfgs_search(protocol["lbfgs"])
        parts.append(
            f"an L-BFGS search of {lbfgs_fits(search)} fits (<= {search.max_iter:,} iterations) + 1 refit"
        )
    return " and ".join(parts)


def duration(low: float, high: float) -> str:
    """``low``-``high`` seconds in seconds under a minute's top, else in minutes."""
    if high < 60:
        return f"{low:.1f}-{high:.1f} s"
    digits = 1 if high < 600 else 0
    return f"{low / 60:.{digits}f}-{high / 60:.{digits}f} min"


@dataclass(frozen=True)
class ProbeCell:
    """A probe cell to estimate: its task, regime and the loaded backbone's feature width."""

    task: TaskSpec
    rule: str
    width: int


def cost_line(
    protocol: Mapping[str, Any], probes: Sequence[ProbeCell], dense_cells: int, dense: Mapping[str, Any]
) -> str:
    """One line: the cells, what each probe cell fits, and the minutes measured here (module docstring);
    ``dense`` is the ``dense`` config of the ``dense_cells`` dense cells."""
    parts = []
    if probes:
        timings: dict[tuple[int, int], Timing] = {}
        low = high = 0.0
        for cell in probes:
            classes = int(cell.task.num_classes or 2)
            if (cell.width, classes) not in timings:
                timings[(cell.width, classes)] = measure(protocol, cell.width, classes)
            cell_low, cell_high = cell_seconds(
                protocol, timings[(cell.width, classes)], training_rows(cell.task, cell.rule)
            )
            low, high = low + cell_low, high + cell_high
        widths = ", ".join(str(w) for w in sorted({c.width for c in probes}))
        parts.append(
            f"{len(probes)} probe cell(s) of protocol {protocol['name']}, each {fits_text(protocol)} "
            f"(paper 9.3); measured here on random features of width {widths}: "
            f"{duration(low, high)} in all, the top if every L-BFGS fit runs to its limit "
            "(feature extraction not included)"
        )
    if dense_cells:
        parts.append(
            f"{dense_cells} dense cell(s) of {dense['epochs']} epoch(s), more for under "
            f"{dense.get('min_steps', 0)} optimiser steps, not estimated"
        )
    return "cost: " + "; ".join(parts)
