"""Multi-source training (paper 6.1): datasets to ranks, and a single-process source mixer.

Under DDP each rank serves one dataset, so a batch never mixes label spaces and the heads of other
datasets get zero gradient on that rank; ranks per dataset are roughly proportional to its size
(:func:`assign_datasets_to_ranks`). With fewer ranks than datasets (one CPU process, a small job)
:class:`MixedSourceBatchSampler` gives the same property in one process: every batch comes from a
single source, drawn with probability proportional to its size (or given weights), and carries its
source id.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from torch.utils.data import Sampler


def _check_sizes(sizes: Mapping[str, int]) -> None:
    if not sizes:
        raise ValueError("no datasets given")
    bad = {
        k: v for k, v in sizes.items() if isinstance(v, bool) or not isinstance(v, int | np.integer) or v <= 0
    }
    if bad:
        raise ValueError(f"dataset sizes must be positive ints, got {bad}")


def ranks_per_dataset(sizes: Mapping[str, int], world_size: int) -> dict[str, int]:
    """How many ranks each dataset gets: at least one each, the rest by largest remainder.

    Every dataset starts from its proportional quota ``world_size * size / total``; it gets the
    floor of that (at least 1); leftover ranks go to the largest remainders (ties: larger dataset,
    then the order of ``sizes``); if the minimum of one rank each overshoots, ranks are taken back
    from the datasets most above their quota.

    Raises:
        ValueError: ``world_size`` is smaller than the number of datasets (see
            :func:`assign_dataset_groups_to_ranks` for the fallback), or sizes are not positive.
    """
    _check_sizes(sizes)
    if world_size < len(sizes):
        raise ValueError(
            f"{len(sizes)} datasets need at least {len(sizes)} ranks to give each its own, but world_size is "
            f"{world_size}; use assign_dataset_groups_to_ranks (several datasets per rank, mixed by "
            "MixedSourceBatchSampler) or more ranks"
        )
    names = list(sizes)
    total = sum(sizes.values())
    quota = {n: world_size * sizes[n] / total for n in names}
    count = {n: max(1, math.floor(quota[n])) for n in names}
    order = {n: i for i, n in enumerate(names)}
    while sum(count.values()) < world_size:
        best = max(names, key=lambda n: (quota[n] - count[n], sizes[n], -order[n]))
        count[best] += 1
    while sum(count.values()) > world_size:
        best = max(
            (n for n in names if count[n] > 1), key=lambda n: (count[n] - quota[n], -sizes[n], order[n])
        )
        count[best] -= 1
    return count


def assign_datasets_to_ranks(sizes: Mapping[str, int], world_size: int) -> list[str]:
    """The dataset each rank serves: ``result[rank]``.

    Ranks are given out in contiguous blocks in the order of ``sizes`` (``ranks_per_dataset`` says
    how many each gets). Raises ``ValueError`` when ``world_size < len(sizes)``.
    """
    counts = ranks_per_dataset(sizes, world_size)
    return [name for name, n in counts.items() for _ in range(n)]


def dataset_rank(assignment: Sequence[str], rank: int) -> tuple[str, int, int]:
    """For ``rank``: its dataset, its index among the ranks serving that dataset, and their number.

    A reader on that rank shards its dataset with these two as (rank, world size).
    """
    if not 0 <= rank < len(assignment):
        raise ValueError(f"rank {rank} is outside world size {len(assignment)}")
    name = assignment[rank]
    peers = [r for r, n in enumerate(assignment) if n == name]
    return name, peers.index(rank), len(peers)


def assign_dataset_groups_to_ranks(sizes: Mapping[str, int], world_size: int) -> list[tuple[str, ...]]:
    """The datasets each rank serves, for any ``world_size >= 1``.

    With at least one rank per dataset this is ``assign_datasets_to_ranks`` (one dataset per rank).
    With fewer ranks, datasets are packed onto ranks, largest first onto the least loaded rank, and
    each rank mixes its datasets batch by batch with :class:`MixedSourceBatchSampler`.
    """
    _check_sizes(sizes)
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    if world_size >= len(sizes):
        return [(name,) for name in assign_datasets_to_ranks(sizes, world_size)]
    load = [0] * world_size
    groups: list[list[str]] = [[] for _ in range(world_size)]
    for name in sorted(sizes, key=lambda n: (-sizes[n], list(sizes).index(n))):
        rank = min(range(world_size), key=lambda r: (load[r], r))
        groups[rank].append(name)
        load[rank] += sizes[name]
    order = {n: i for i, n in enumerate(sizes)}
    return [tuple(sorted(g, key=order.__getitem__)) for g in groups]


@dataclass(frozen=True)
class SourceBatch:
    """One batch of a single source: its id (position in ``sizes``), name and local indices."""

    source_id: int
    source: str
    indices: list[int]


class MixedSourceBatchSampler(Sampler[list[int]]):
    """Batches that each come from one source, sources mixed by size or weight (one process).

    Iterating yields lists of *global* indices into the concatenation of the sources in the order of
    ``sizes`` (``torch.utils.data.ConcatDataset`` order), so it plugs into a ``DataLoader`` as
    ``batch_sampler``; :meth:`batches` yields :class:`SourceBatch` with the source id. Each batch's
    source is drawn independently with probability proportional to ``weights`` (default: the sizes);
    within a source, indices follow a random permutation that is redrawn when used up, so every
    sample of a source is seen once before any is repeated. Everything is a function of
    ``(seed, epoch)``; call :meth:`set_epoch` each epoch.

    Args:
        sizes: source name -> number of samples.
        batch_size: samples per batch.
        weights: source name -> sampling weight (need not sum to 1); default proportional to size.
        num_batches: batches per epoch; default ``sum(sizes) // batch_size`` (at least 1).
        seed: base seed.
        shuffle: False walks each source in index order (sources are still drawn at random).
    """

    def __init__(
        self,
        sizes: Mapping[str, int],
        batch_size: int,
        weights: Mapping[str, float] | None = None,
        num_batches: int | None = None,
        seed: int = 0,
        shuffle: bool = True,
    ) -> None:
        _check_sizes(sizes)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.names = list(sizes)
        self.sizes = np.array([sizes[n] for n in self.names], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        if weights is None:
            w = self.sizes.astype(np.float64)
        else:
            unknown = set(weights) - set(self.names)
            if unknown:
                raise ValueError(f"weights name unknown sources {sorted(unknown)} (sources: {self.names})")
            w = np.array([float(weights.get(n, 0.0)) for n in self.names])
            if (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
                raise ValueError(f"weights must be finite, >= 0 and not all 0, got {dict(weights)}")
        self.probabilities = w / w.sum()
        self.batch_size = batch_size
        self.num_batches = (
            num_batches if num_batches is not None else max(1, int(self.sizes.sum()) // batch_size)
        )
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_batches

    def batches(self) -> Iterator[SourceBatch]:
        """This epoch's batches with their source ids and indices local to the source."""
        rng = np.random.default_rng([self.seed, self.epoch])
        choice = rng.choice(len(self.names), size=self.num_batches, p=self.probabilities)
        streams: dict[int, tuple[np.ndarray, int]] = {}

        def take(source: int) -> list[int]:
            out: list[int] = []
            while len(out) < self.batch_size:
                perm, pos = streams.get(source, (np.empty(0, np.int64), 0))
                if pos >= len(perm):
                    size = int(self.sizes[source])
                    perm, pos = (rng.permutation(size) if self.shuffle else np.arange(size)), 0
                n = min(self.batch_size - len(out), len(perm) - pos)
                out += perm[pos : pos + n].tolist()
                streams[source] = (perm, pos + n)
            return out

        for source in choice.tolist():
            yield SourceBatch(source, self.names[source], take(source))

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches():
            offset = int(self.offsets[batch.source_id])
            yield [offset + i for i in batch.indices]
