"""Samples/s of the full shard pipeline against a bare JPEG decode loop over the same bytes, in one run.

Generates its own shards (JPEG q95, 64-224 px a side by default, classification labels) in a temporary folder,
for two kinds of content: ``noise`` (random pixels: slow to decode, like detailed photos at high
quality) and ``smooth`` (smooth colour fields with mild noise: fast to decode). For each it measures,
on one core unless stated, best of ``--repeats``, interleaved so machine noise hits all alike:

- ``bare decode``: read every ``.jpg`` member straight from the tars with ``tarfile`` and
  ``torchvision.io.decode_jpeg`` it (the peer: nothing but reading and decoding);
- ``pipeline, no transform``: ``make_pipeline`` in the main process (read, group, shuffle buffer,
  decode, schema check, batch): what the pipeline itself adds to decoding;
- ``pipeline + transform``: the same with ``classification_transform(--img-size, train=True)``
  (random-resized crop, flip, float, normalise), seeded per sample, images stacked into batches;
- ``pipeline + batched transform``: the reader draws each sample's crop and flip and keeps the
  decoded uint8 image (``CropDraw``); ``BatchAugment`` crops, resizes, flips and normalises each batch
  (here on the CPU; on a GPU only the decode stays in the reader). The same pixels as the line above;
- ``reader of the batched path``: that path's reader alone (the pixel work left to the device);
- ``pipeline + batched decode and transform``: the reader leaves the JPEGs it wrote undecoded
  (``defer_jpeg``) and ``BatchAugment`` decodes each batch with torchvision's batched ``decode_jpeg``
  (here on the CPU) before the pixel work;
- ``reader, JPEG decoding left to the batch``: that reader alone (what stays on the CPU when a GPU
  decodes and augments: reading, checks, the draws);
- ``pipeline + transform, xN workers``: through N DataLoader workers, samples/s divided by N.

Prints samples/s and the ratio to ``bare decode`` (targets: the pipeline without transform >= 0.9 per
core, with augmentation >= 0.8).

    python benchmarks/data_throughput.py
    python benchmarks/data_throughput.py --samples 4000 --img-size 128 --workers 2
    python benchmarks/data_throughput.py --sizes 320 640 --img-size 224   # photo-sized images
"""

from __future__ import annotations

import argparse
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torchvision.io import decode_jpeg

from intern_data.shards import BatchAugment, CropDraw, classification_transform, make_pipeline, write_shards


def images(n: int, content: str, sizes: tuple[int, int] = (64, 224), seed: int = 0) -> Iterator[dict]:
    """``n`` labelled samples with sides in ``sizes``, random ``noise`` or ``smooth`` colour fields."""
    g = torch.Generator().manual_seed(seed)
    for i in range(n):
        h, w = (int(v) for v in torch.randint(sizes[0], sizes[1] + 1, (2,), generator=g))
        if content == "noise":
            image = torch.rand(3, h, w, generator=g)
        else:
            coarse = torch.rand(1, 3, 6, 6, generator=g)
            image = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)[0]
            image = image + 0.08 * torch.randn(3, h, w, generator=g)
        yield {
            "__key__": f"img{i:06d}",
            "source": "bench",
            "image": (image.clamp(0, 1) * 255).to(torch.uint8),
            "label": i % 100,
            "label_space": "bench",
        }


def bare_decode(shards: list[Path]) -> tuple[int, float]:
    start = time.perf_counter()
    count = 0
    for path in shards:
        with tarfile.open(path, "r|") as tar:
            for member in tar:
                if member.name.endswith(".jpg"):
                    data = tar.extractfile(member).read()
                    decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8))
                    count += 1
    return count, time.perf_counter() - start


def pipeline(
    folder: Path, transform: Any, batch_size: int, workers: int, on_batch: Any = None, defer: bool = False
) -> tuple[int, float]:
    loader = make_pipeline(
        folder,
        batch_size=batch_size,
        num_workers=workers,
        shuffle_buffer=500,
        transform=transform,
        defer_jpeg=defer,
        rank=0,
        world_size=1,
    )
    start = time.perf_counter()
    count = sum(len((on_batch(batch) if on_batch else batch)["__key__"]) for batch in loader)
    return count, time.perf_counter() - start


def measure(content: str, args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        write_shards(
            images(args.samples, content, tuple(args.sizes)),
            folder,
            "bench",
            "train",
            max_shard_bytes=16 << 20,
        )
        shards = sorted(folder.glob("*.tar"))
        size = sum(p.stat().st_size for p in shards) / 2**20
        print(
            f"{content}: {args.samples} images, {len(shards)} shards, {size:.1f} MiB, "
            f"written in {time.perf_counter() - t0:.1f} s"
        )
        per_sample = classification_transform(args.img_size, train=True)
        draw, augment = CropDraw(args.img_size), BatchAugment(args.img_size)
        runs = {
            "bare decode": lambda: bare_decode(shards),
            "pipeline, no transform": lambda: pipeline(folder, None, args.batch_size, 0),
            "pipeline + transform": lambda: pipeline(folder, per_sample, args.batch_size, 0),
            "pipeline + batched transform": lambda: pipeline(folder, draw, args.batch_size, 0, augment),
            "reader of the batched path": lambda: pipeline(folder, draw, args.batch_size, 0),
            "pipeline + batched decode and transform": lambda: pipeline(
                folder, draw, args.batch_size, 0, augment, defer=True
            ),
            "reader, JPEG decoding left to the batch": lambda: pipeline(
                folder, draw, args.batch_size, 0, defer=True
            ),
        }
        if args.workers > 1:
            runs[f"pipeline + transform, x{args.workers} workers"] = lambda: pipeline(
                folder, per_sample, args.batch_size, args.workers
            )
        rates: dict[str, float] = {}
        for _ in range(args.repeats):
            for name, run in runs.items():
                count, seconds = run()
                cores = args.workers if "workers" in name else 1
                rates[name] = max(rates.get(name, 0.0), count / seconds / cores)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1500)
    parser.add_argument("--img-size", type=int, default=64, help="output side of the training transform")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--workers", type=int, default=2, help="also measure with this many DataLoader workers"
    )
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs each")
    parser.add_argument(
        "--sizes", type=int, nargs=2, default=[64, 224], help="smallest and largest image side"
    )
    parser.add_argument("--content", nargs="+", default=["noise", "smooth"], choices=["noise", "smooth"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {content: measure(content, args) for content in args.content}
    print(
        f"\nimages {args.sizes[0]}-{args.sizes[1]} px; transform: classification_transform({args.img_size}, "
        f"train=True); batch {args.batch_size}; samples/s per core"
    )
    print(f"{'':40s} " + " ".join(f"{c + ' /s':>11s} {'ratio':>6s}" for c in results))
    for name in next(iter(results.values())):
        cells = [
            f"{rates[name]:11.0f} {rates[name] / rates['bare decode']:6.2f}" for rates in results.values()
        ]
        print(f"{name:40s} " + " ".join(cells))


if __name__ == "__main__":
    main()
