"""intern_data.sampling: datasets to ranks by size (paper 6.1) and per-source sub-batch sizes."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from intern_data.sampling import (
    assign_dataset_groups_to_ranks,
    assign_datasets_to_ranks,
    dataset_rank,
    ranks_per_dataset,
    sub_batch_sizes,
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


def test_sub_batch_sizes_follow_weights_and_sum_to_the_batch() -> None:
    assert sub_batch_sizes({"a": 600, "b": 300, "c": 100}, 20) == {"a": 12, "b": 6, "c": 2}
    assert sub_batch_sizes({"a": 1, "b": 1, "c": 1}, 10) == {"a": 4, "b": 3, "c": 3}
    sizes = sub_batch_sizes({"a": 1000, "b": 10}, 8, minimum=2)
    assert sizes == {"a": 6, "b": 2} and sum(sizes.values()) == 8
    for batch in range(6, 40):
        split = sub_batch_sizes({"a": 4000, "b": 3000, "c": 500}, batch, minimum=2)
        assert sum(split.values()) == batch and min(split.values()) >= 2
        assert split["a"] >= split["b"] >= split["c"]
    with pytest.raises(ValueError, match="at least 6"):
        sub_batch_sizes({"a": 1, "b": 1, "c": 1}, 5, minimum=2)
    with pytest.raises(ValueError, match="finite and > 0"):
        sub_batch_sizes({"a": 1, "b": 0}, 5)
