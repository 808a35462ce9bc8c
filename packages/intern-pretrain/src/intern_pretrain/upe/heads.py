"""One head per output space of the merged labels, and each source's view of it (paper 6.1, Table 15b).

``natural``: every source has a head of its own classes; ``partial``: one head over the merged class
bank, and a source's logits are the bank's at its classes (its softmax runs over those alone, so
equivalent classes share weights and no other source's class is a negative); ``unified``: one head
over the whole space, each source's labels mapped into it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from intern_data.labels.merge import MergedLabels
from intern_data.schema import IGNORE_INDEX

__all__ = ["IndexedPredictor", "SourceHeads"]


class SourceHeads(nn.Module):
    """The heads of ``labels`` (one per output space) built by ``make(num_classes)``.

    Args:
        labels: The merged label spaces of the sources.
        make: Builds one head with that many outputs.
    """

    def __init__(self, labels: MergedLabels, make: Callable[[int], nn.Module]) -> None:
        super().__init__()
        self.labels = labels
        self.heads = nn.ModuleDict({space.name: make(len(space)) for space in labels.spaces})
        self._index = {s: torch.tensor(labels.index_maps[s], dtype=torch.long) for s in labels.datasets}
        self._lookup = {}
        for source, index in self._index.items():
            table = torch.full((IGNORE_INDEX + 1,), IGNORE_INDEX, dtype=torch.long)
            table[: len(index)] = torch.arange(len(index)) if labels.per_dataset_softmax else index
            self._lookup[source] = table

    def head(self, source: str) -> nn.Module:
        """The module ``source``'s samples train."""
        return self.heads[self.labels.head_of[source]]

    def own_classes(self, source: str, device: torch.device | None = None) -> Tensor:
        """Head output of each of ``source``'s classes, in its class order."""
        return self._index[source].to(device)

    def source_logits(self, source: str, logits: Tensor) -> Tensor:
        """The logits ``source``'s loss uses (dim 1): its own classes (natural, partial) or all (unified)."""
        return logits if self.labels.mode == "unified" else self.own_logits(source, logits)

    def targets(self, source: str, labels: Tensor) -> Tensor:
        """``source``'s labels as targets of :meth:`source_logits` (the ignore label stays)."""
        return self._lookup[source].to(labels.device)[labels]

    def own_logits(self, source: str, logits: Tensor) -> Tensor:
        """The logits of ``source``'s own classes in its order (evaluation in its own label space)."""
        if self.labels.mode == "natural":
            return logits
        return logits.index_select(1, self.own_classes(source, logits.device))


class IndexedPredictor(nn.Module):
    """A Faster R-CNN box predictor seen through one source's classes: class scores and box deltas
    of ``index`` (background first) out of a predictor over the merged class bank (``partial``)."""

    def __init__(self, bank: nn.Module, index: Tensor) -> None:
        super().__init__()
        self.bank = bank
        self.index = index.clone()

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        scores, deltas = self.bank(x)
        index = self.index.to(scores.device)
        deltas = deltas.reshape(deltas.shape[0], -1, 4).index_select(1, index)
        return scores.index_select(1, index), deltas.reshape(deltas.shape[0], -1)
