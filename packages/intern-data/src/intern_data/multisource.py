"""Several sources read together for multi-source training (paper 6.1): one DataModule per source.

Each training batch is a dict ``{source: sub-batch}`` of the sources this rank serves. With at least
as many ranks as sources every rank serves one source, ranks per source roughly proportional to its
size, and the source's shards are split among its ranks (:func:`~intern_data.sampling.
assign_datasets_to_ranks`); with fewer (one CPU process) a rank serves a group of sources and every
batch holds one sub-batch of each, sized by the sources' weights (:func:`~intern_data.sampling.
sub_batch_sizes`). Every source is read with replacement, ``steps_per_epoch`` batches an epoch, so
sources of any size line up step by step. Validation runs every source's own ``val`` split, one loader
per source in the order of ``sources`` (none when a source has no ``val`` split).

Each source's reader position is saved in the checkpoint and recorded when its sub-batch reaches the
training step, so a resumed run continues with the next unseen sub-batch of every source.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import lightning as L
from lightning.pytorch.utilities import CombinedLoader

from intern_data.datamodules import ShardDataModule
from intern_data.sampling import assign_dataset_groups_to_ranks, sub_batch_sizes

__all__ = ["MultiSourceDataModule"]

log = logging.getLogger(__name__)


class MultiSourceDataModule(L.LightningDataModule):
    """Per-source DataModules whose training batches are zipped into ``{source: sub-batch}``.

    Args:
        sources: source name -> its DataModule (any task's ``ShardDataModule``; each reads its own
            shards, transform and collate). Their ``batch_size`` and epoch length are set here.
        batch_size: samples per step on one rank, over all the sources it serves.
        steps_per_epoch: training batches per epoch.
        sizes: source name -> training samples (the rank assignment and the default weights).
        weights: source name -> sub-batch weight in one process; default ``sizes``.
        min_sub_batch: the smallest sub-batch a source gets (2: BatchNorm in a head needs two).
    """

    def __init__(
        self,
        sources: Mapping[str, ShardDataModule],
        *,
        batch_size: int,
        steps_per_epoch: int,
        sizes: Mapping[str, int],
        weights: Mapping[str, float] | None = None,
        min_sub_batch: int = 2,
    ) -> None:
        super().__init__()
        if set(sizes) != set(sources):
            raise ValueError(f"sizes name {sorted(sizes)} but the sources are {sorted(sources)}")
        unknown = sorted(set(weights or {}) - set(sources))
        if unknown:
            raise ValueError(f"weights name unknown sources {unknown} (sources: {list(sources)})")
        self.sources = dict(sources)
        self.batch_size = int(batch_size)
        self.steps_per_epoch = int(steps_per_epoch)
        self.sizes = {name: int(sizes[name]) for name in sources}
        self.weights = {name: float((weights or sizes)[name]) for name in sources}
        self.min_sub_batch = int(min_sub_batch)
        self.served: dict[str, int] = {}  # this rank's sources and their sub-batch sizes

    def layout(self, rank: int, world_size: int) -> tuple[dict[str, int], int, int]:
        """For ``rank``: its sources with their sub-batch sizes, and its place among the ranks that serve
        the same source (index, count), which split that source's shards."""
        groups = assign_dataset_groups_to_ranks(self.sizes, world_size)
        mine = groups[rank]
        peers = [r for r, group in enumerate(groups) if group == mine]
        weights = {name: self.weights[name] for name in mine}
        return sub_batch_sizes(weights, self.batch_size, self.min_sub_batch), peers.index(rank), len(peers)

    def setup(self, stage: str | None = None) -> None:
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        served, peer, peers = self.layout(rank, world)
        if served != self.served:
            for name, size in served.items():
                source = self.sources[name]
                source.batch_size = size
                source.resampled = True
                source.samples_per_epoch = self.steps_per_epoch * size * peers
                source.datasets.pop("train", None)
        self.served = served
        for name, source in self.sources.items():
            source.setup(stage)
            if "train" in source.datasets and name in served:
                source.datasets["train"].set_node(peer, peers)
            for split in ("val", "test"):
                if split in source.datasets:
                    source.datasets[split].set_node(rank, world)
            source.trainer = self.trainer

    def train_dataloader(self) -> CombinedLoader:
        if not self.served:
            self.setup("fit")
        return CombinedLoader(
            {name: self.sources[name].train_dataloader() for name in self.served}, "min_size"
        )

    def val_dataloader(self) -> list[Any]:
        """One loader per source in the order of ``sources`` (a loader's index names its source), or
        none when a source has no validation split: dropping one would shift the others' indices."""
        loaders = [source.val_dataloader() for source in self.sources.values()]
        if any(isinstance(loader, list) for loader in loaders):
            missing = [n for n, loader in zip(self.sources, loaders, strict=True) if isinstance(loader, list)]
            log.warning("sources %s have no validation split: no validation", missing)
            return []
        return loaders

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Record each sub-batch's reader position as it reaches the training step."""
        if isinstance(batch, dict) and set(batch) <= set(self.served) and batch:
            return {name: self.sources[name].on_before_batch_transfer(sub, 0) for name, sub in batch.items()}
        return batch

    def state_dict(self) -> dict[str, Any]:
        readers = {name: source.state_dict().get("reader") for name, source in self.sources.items()}
        return {"readers": {name: state for name, state in readers.items() if state is not None}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Each source continues from its saved position (under DDP, rank zero's checkpoint holds the
        positions of the sources rank zero serves; the others restart their epoch)."""
        for name, position in (state_dict.get("readers") or {}).items():
            if name not in self.sources:
                raise ValueError(f"the checkpoint's reader position names source {name!r}, not read here")
            self.sources[name].load_state_dict({"reader": position})
