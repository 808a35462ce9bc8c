"""Samples/s of the embedded world's generator against reading the same samples back from its shard cache.

For each dataset: ``generate`` (render scenes, captions, boxes, masks, depth) on one core, then
``world_shards`` (generate + encode PNG + write shards), then a read of the cached shards (tar read +
PNG decode), interleaved over ``--repeats`` and best-of. Prints samples/s and the generator's ratio to
the cached read (the peer: how much slower generating is than reading what was generated).

    python benchmarks/world_generation.py
    python benchmarks/world_generation.py --samples 4000 --img-size 64 --datasets world_seg
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from intern_data.shards.codec import decode_sample, iter_tar_samples
from intern_data.shards.index import split_shards
from intern_data.world import generate, world_shards


def measure(name: str, samples: int, img_size: int, seed: int) -> dict[str, float]:
    """Seconds to generate, to generate and cache, and to read back ``samples`` of dataset ``name``."""
    with tempfile.TemporaryDirectory() as tmp:
        seconds = {}
        start = time.perf_counter()
        for _ in generate(name, "train", samples, seed=seed, img_size=img_size):
            pass
        seconds["generate"] = time.perf_counter() - start
        start = time.perf_counter()
        folder = world_shards(name, tmp, ["train"], seed=seed, img_size=img_size, sizes={"train": samples})
        seconds["write"] = time.perf_counter() - start
        start = time.perf_counter()
        for shard in split_shards(folder, "train"):
            for raw in iter_tar_samples(shard.url):
                decode_sample(raw)
        seconds["read"] = time.perf_counter() - start
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--datasets", nargs="+", default=["world_captions", "world_cls_fine", "world_det_a", "world_seg"]
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{args.samples} samples of {args.img_size} px per dataset, 1 thread, best of {args.repeats}")
    print("| dataset | generate samples/s | generate + cache samples/s | read cache samples/s | gen / read |")
    print("|---|---|---|---|---|")
    for name in args.datasets:
        runs = [measure(name, args.samples, args.img_size, seed) for seed in range(args.repeats)]
        rate = {kind: args.samples / min(run[kind] for run in runs) for kind in runs[0]}
        print(
            f"| {name} | {rate['generate']:.0f} | {rate['write']:.0f} | {rate['read']:.0f} "
            f"| {rate['generate'] / rate['read']:.2f} |"
        )


if __name__ == "__main__":
    main()
