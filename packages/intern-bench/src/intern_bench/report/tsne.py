"""Figure 12 of the paper: a t-SNE map of features, coloured by label (class or source dataset).

Deterministic for a given input: fixed seed, PCA initialisation, ``learning_rate="auto"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from sklearn.manifold import TSNE
from threadpoolctl import threadpool_limits

from intern_bench.report._figures import colour, save_png


def _as_array(features: Any) -> np.ndarray:
    if hasattr(features, "detach"):  # a torch Tensor, without importing torch here
        features = features.detach().cpu().float().numpy()
    array = np.asarray(features, dtype=np.float32)
    if array.ndim < 2:
        raise ValueError(f"features should be N x D, got shape {array.shape}")
    return array.reshape(len(array), -1)


def tsne_embedding(
    features: Any, *, seed: int = 0, perplexity: float | None = None, num_threads: int | None = 1
) -> np.ndarray:
    """The N x 2 t-SNE embedding of N x D ``features`` (a Tensor or an array).

    ``perplexity`` defaults to 30, lowered to (N - 1) / 3 for small sets (it must stay below N).
    ``num_threads`` caps OpenMP threads (None: no cap). One is the default: a few thousand points take
    seconds on one thread, while OpenMP threads spin-waiting on a busy machine ran 30x slower here.
    """
    array = _as_array(features)
    n = len(array)
    if n < 3:
        raise ValueError(f"t-SNE needs at least 3 samples, got {n}")
    if perplexity is None:
        perplexity = min(30.0, (n - 1) / 3)
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=seed)
    with threadpool_limits(limits=num_threads, user_api="openmp"):
        return tsne.fit_transform(array)


def tsne_figure(
    features: Any,
    labels: Any,
    class_names: Sequence[str] | None,
    title: str,
    *,
    seed: int = 0,
    perplexity: float | None = None,
) -> Figure:
    """A scatter of :func:`tsne_embedding`, one colour per label.

    Args:
        features: N x D features (Tensor or array; more dimensions are flattened).
        labels: N labels: integers indexing ``class_names``, or names themselves.
        class_names: legend names of integer labels (None: the labels are shown as they are).
        title: the figure's title.
    """
    if hasattr(labels, "detach"):
        labels = labels.detach().cpu().numpy()
    labels = np.asarray(labels)
    points = tsne_embedding(features, seed=seed, perplexity=perplexity)
    if len(labels) != len(points):
        raise ValueError(f"{len(points)} feature rows but {len(labels)} labels")
    fig = Figure(figsize=(6.0, 5.5))
    ax = fig.add_subplot()
    for i, label in enumerate(sorted(set(labels.tolist()))):
        chosen = labels == label
        name = class_names[label] if class_names is not None and isinstance(label, int) else str(label)
        ax.scatter(points[chosen, 0], points[chosen, 1], s=14, color=colour(i), label=name, alpha=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    ax.legend(fontsize="small", loc="best", markerscale=1.5)
    return fig


def tsne_plot(
    features: Any,
    labels: Any,
    class_names: Sequence[str] | None,
    title: str,
    path: str | Path,
    *,
    seed: int = 0,
    perplexity: float | None = None,
) -> Path:
    """Write :func:`tsne_figure` as a PNG at ``path``."""
    return save_png(tsne_figure(features, labels, class_names, title, seed=seed, perplexity=perplexity), path)
