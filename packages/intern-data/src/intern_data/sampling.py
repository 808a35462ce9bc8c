"""Multi-source training (paper 6.1): datasets to ranks, and per-source sub-batches in one process.

Under DDP each rank serves one dataset, so a rank's batch never mixes label spaces and the heads of
other datasets get zero gradient there; ranks per dataset are roughly proportional to its size
(:func:`assign_datasets_to_ranks`). With fewer ranks than datasets (one CPU process, a small job) a
rank serves a group of datasets (:func:`assign_dataset_groups_to_ranks`) and each of its batches is
made of one sub-batch per dataset, sized by :func:`sub_batch_sizes`
(:class:`~intern_data.multisource.MultiSourceDataModule` does both).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np


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
            f"{world_size}; use assign_dataset_groups_to_ranks (several datasets per rank, each batch "
            "made of per-dataset sub-batches) or more ranks"
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
    each of a rank's batches holds one sub-batch per dataset of its group (:func:`sub_batch_sizes`).
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


def sub_batch_sizes(weights: Mapping[str, float], batch_size: int, minimum: int = 1) -> dict[str, int]:
    """Split one batch into per-source sub-batches whose sizes follow ``weights`` (e.g. the sources' sizes).

    Each source's share ``batch_size x weight / total`` is rounded by largest remainder (ties: the
    larger weight, then the order of ``weights``); a source below ``minimum`` (2 keeps BatchNorm-bearing
    heads trainable) then takes samples from the sources most above their share. The sizes sum to
    ``batch_size``.

    Raises:
        ValueError: weights that are not finite and positive, or ``batch_size`` below
            ``minimum x sources`` (the message says the smallest batch that works).
    """
    if not weights:
        raise ValueError("no sources given")
    bad = {k: v for k, v in weights.items() if not (math.isfinite(float(v)) and float(v) > 0)}
    if bad:
        raise ValueError(f"source weights must be finite and > 0, got {bad}")
    names = list(weights)
    if batch_size < minimum * len(names):
        raise ValueError(
            f"batch_size {batch_size} cannot give each of {len(names)} sources {minimum} samples: "
            f"use a batch of at least {minimum * len(names)}"
        )
    total = sum(float(w) for w in weights.values())
    quota = {n: batch_size * float(weights[n]) / total for n in names}
    count = {n: math.floor(quota[n]) for n in names}
    order = {n: i for i, n in enumerate(names)}
    for name in sorted(names, key=lambda n: (count[n] - quota[n], -float(weights[n]), order[n])):
        if sum(count.values()) == batch_size:
            break
        count[name] += 1
    for name in names:
        while count[name] < minimum:
            donor = max(
                (n for n in names if count[n] > minimum), key=lambda n: (count[n] - quota[n], -order[n])
            )
            count[donor] -= 1
            count[name] += 1
    return count
