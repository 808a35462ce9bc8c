"""The search's figures: reward over controller updates, and proxy accuracy against MACs with the
Pareto front, the reference models and the scaled family marked. Bare matplotlib ``Figure`` objects
(Agg), written atomically."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, ScalarFormatter

from intern_data.io import atomic_path

__all__ = ["pareto_front", "plot_pareto", "plot_rewards"]


def pareto_front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (cost, value) points no other point beats on both (lower cost, higher value), by cost."""
    front: list[tuple[float, float]] = []
    for cost, value in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or value > front[-1][1]:
            front.append((cost, value))
    return front


def _save(fig: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    return path


def plot_rewards(records: Sequence[dict[str, Any]], path: Path) -> Path:
    """Each architecture's reward (dots) and each update's mean and best (lines) over the updates."""
    by_update: dict[int, list[float]] = defaultdict(list)
    for r in records:
        by_update[r["update"]].append(r["reward"])
    updates = sorted(by_update)
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.scatter(
        [r["update"] for r in records], [r["reward"] for r in records], s=8, alpha=0.4, label="sampled"
    )
    ax.plot(updates, [sum(by_update[u]) / len(by_update[u]) for u in updates], label="mean of update")
    ax.plot(updates, [max(by_update[u]) for u in updates], label="best of update")
    ax.set_xlabel("controller update")
    ax.set_ylabel("reward (MnasNet form)")
    ax.legend()
    return _save(fig, path)


def plot_pareto(
    records: Sequence[dict[str, Any]],
    references: Sequence[dict[str, Any]],
    family: Sequence[dict[str, Any]],
    path: Path,
) -> Path:
    """Proxy accuracy against MACs: sampled architectures, their Pareto front, references and family."""
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    points = [(r["macs"] / 1e6, 100 * r["accuracy"]) for r in records]
    ax.scatter(*zip(*points, strict=True), s=10, alpha=0.5, label="sampled")
    front = pareto_front(points)
    ax.step(*zip(*front, strict=True), where="post", color="black", label="Pareto front")
    for ref in references:
        ax.scatter(ref["macs"] / 1e6, 100 * ref["accuracy"], marker="*", s=120, label=ref["name"])
    if family:
        ax.plot(
            [m["macs"] / 1e6 for m in family],
            [100 * m["accuracy"] for m in family],
            "D-",
            label="scaled family",
        )
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("MMACs at the proxy resolution")
    ax.set_ylabel("proxy accuracy (%)")
    ax.legend(fontsize=7)
    return _save(fig, path)
