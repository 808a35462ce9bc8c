"""intern_data.sampling: datasets to ranks by size (paper 6.1) and the one-process source mixer."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import ConcatDataset, DataLoader, TensorDataset

from intern_data.sampling import (
    MixedSourceBatchSampler,
    assign_dataset_groups_to_ranks,
    assign_datasets_to_ranks,
    dataset_rank,
    ranks_per_dataset,
)


def test_ranks_are_proportional_to_size() -> None:
    sizes = {"imagenet21k": 13_000, "inat": 2_700, "places": 1_800, "dogs": 500}
    assignment = assign_datasets_to_ranks(sizes, 32)
    assert len(assignment) == 32
    counts = Counter(assignment)
    assert set(counts) == set(sizes)
    total = sum(sizes.values())
    for name, size in sizes.items():
        quota = 32 * size / total
        assert counts[name] >= 1 and abs(counts[name] - quota) < 1  # largest remainder: within one rank
    # Ranks come in contiguous blocks in the order of `sizes`.
    assert assignment == sorted(assignment, key=list(sizes).index)
    assert assign_datasets_to_ranks(sizes, 32) == assignment


def test_every_dataset_gets_a_rank_even_when_tiny() -> None:
    counts = ranks_per_dataset({"big": 1_000_000, "tiny": 1, "small": 10}, 4)
    assert counts == {"big": 2, "tiny": 1, "small": 1}
    assert ranks_per_dataset({"a": 5, "b": 5}, 2) == {"a": 1, "b": 1}
    assert ranks_per_dataset({"a": 5, "b": 5}, 3) == {"a": 2, "b": 1}  # tie: order of sizes


@pytest.mark.parametrize("seed", range(20))
def test_rank_counts_brute_force(seed: int) -> None:
    """Against an independent definition: among all ways to give each dataset >= 1 rank, the
    assignment minimises the largest |ranks - quota| (checked exhaustively on small cases)."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 5))
    sizes = {f"d{i}": int(rng.integers(1, 1000)) for i in range(k)}
    world = int(rng.integers(k, 9))
    counts = ranks_per_dataset(sizes, world)
    assert sum(counts.values()) == world and min(counts.values()) >= 1
    total = sum(sizes.values())
    quota = {n: world * s / total for n, s in sizes.items()}

    def worst(c: dict[str, int]) -> float:
        return max(abs(c[n] - quota[n]) for n in sizes)

    options = [
        dict(zip(sizes, combo, strict=True))
        for combo in itertools.product(range(1, world + 1), repeat=k)
        if sum(combo) == world
    ]
    assert worst(counts) <= min(worst(o) for o in options) + 1e-9


def test_too_few_ranks_is_an_error_with_a_fallback() -> None:
    sizes = {"a": 100, "b": 60, "c": 50, "d": 10}
    with pytest.raises(ValueError, match="assign_dataset_groups_to_ranks"):
        assign_datasets_to_ranks(sizes, 3)
    groups = assign_dataset_groups_to_ranks(sizes, 2)
    assert sorted(itertools.chain.from_iterable(groups)) == sorted(sizes)
    assert groups == [("a", "d"), ("b", "c")]  # largest first onto the least loaded rank
    assert assign_dataset_groups_to_ranks(sizes, 1) == [("a", "b", "c", "d")]
    assert assign_dataset_groups_to_ranks(sizes, 5) == [(n,) for n in assign_datasets_to_ranks(sizes, 5)]
    with pytest.raises(ValueError, match="positive ints"):
        assign_datasets_to_ranks({"a": 0}, 2)


def test_dataset_rank_shards_each_dataset_among_its_ranks() -> None:
    assignment = assign_datasets_to_ranks({"a": 300, "b": 100}, 4)
    assert assignment == ["a", "a", "a", "b"]
    assert [dataset_rank(assignment, r) for r in range(4)] == [
        ("a", 0, 3),
        ("a", 1, 3),
        ("a", 2, 3),
        ("b", 0, 1),
    ]
    with pytest.raises(ValueError, match="outside"):
        dataset_rank(assignment, 4)


def test_mixed_batches_are_single_source_and_deterministic() -> None:
    sizes = {"a": 50, "b": 30, "c": 7}
    sampler = MixedSourceBatchSampler(sizes, batch_size=4, seed=3)
    assert len(sampler) == 87 // 4
    batches = list(sampler.batches())
    assert batches == list(MixedSourceBatchSampler(sizes, batch_size=4, seed=3).batches())
    assert batches != list(MixedSourceBatchSampler(sizes, batch_size=4, seed=4).batches())
    offsets = {"a": 0, "b": 50, "c": 80}
    for batch, global_batch in zip(batches, sampler, strict=True):
        assert len(batch.indices) == 4 and all(0 <= i < sizes[batch.source] for i in batch.indices)
        assert batch.source == list(sizes)[batch.source_id]
        assert global_batch == [offsets[batch.source] + i for i in batch.indices]
    sampler.set_epoch(1)
    assert list(sampler.batches()) != batches


def test_each_source_is_walked_without_repeats_until_used_up() -> None:
    sampler = MixedSourceBatchSampler({"a": 12, "b": 9}, batch_size=3, num_batches=40, seed=0)
    seen: dict[str, list[int]] = {"a": [], "b": []}
    for batch in sampler.batches():
        seen[batch.source] += batch.indices
    for name, size in (("a", 12), ("b", 9)):
        stream = seen[name]
        for start in range(0, len(stream) - size + 1, size):
            assert sorted(stream[start : start + size]) == list(range(size))


def test_source_frequencies_follow_sizes_or_weights() -> None:
    sizes = {"a": 600, "b": 300, "c": 100}
    n = 4000
    by_size = Counter(b.source for b in MixedSourceBatchSampler(sizes, 2, num_batches=n, seed=0).batches())
    weights = {"a": 1.0, "b": 1.0, "c": 2.0}
    by_weight = Counter(
        b.source for b in MixedSourceBatchSampler(sizes, 2, weights=weights, num_batches=n, seed=0).batches()
    )
    for counts, p in (
        (by_size, {"a": 0.6, "b": 0.3, "c": 0.1}),
        (by_weight, {"a": 0.25, "b": 0.25, "c": 0.5}),
    ):
        for name, prob in p.items():
            sd = (n * prob * (1 - prob)) ** 0.5
            assert abs(counts[name] - n * prob) < 5 * sd
    zero = Counter(
        b.source for b in MixedSourceBatchSampler(sizes, 2, weights={"a": 1}, num_batches=50).batches()
    )
    assert set(zero) == {"a"}
    with pytest.raises(ValueError, match="unknown sources"):
        MixedSourceBatchSampler(sizes, 2, weights={"z": 1.0})
    with pytest.raises(ValueError, match="not all 0"):
        MixedSourceBatchSampler(sizes, 2, weights={"a": 0.0})


def test_mixed_sampler_drives_a_dataloader_over_concat_dataset() -> None:
    sources = [torch.full((10, 1), float(i)) for i in range(3)]
    data = ConcatDataset([TensorDataset(s) for s in sources])
    sampler = MixedSourceBatchSampler({"s0": 10, "s1": 10, "s2": 10}, batch_size=5, seed=1)
    loader = DataLoader(data, batch_sampler=sampler)
    for (values,), batch in zip(loader, sampler.batches(), strict=True):
        assert torch.all(values == batch.source_id)
