"""Down-A stage 2 (paper 8.1): the downstream training images re-represented through the frozen VQ-GAN.

Every sample of a split is read in shard order, its image passed through the VQ-GAN (at its own size,
padded to the VQ-GAN's factor and cropped back) and written with its labels, boxes or mask unchanged
as PNG shards. The folder is keyed by the VQ-GAN's fingerprint and the source folder, so a VQ-GAN
serves every task and a retrained one never reuses stale reconstructions; the shard writer makes a
killed pass resume and a finished one a no-op.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import torch

from intern_data.label_space import LabelSpace
from intern_data.schema import IMAGE_BYTES, Sample
from intern_data.shards import ShardDataset, load_index, write_shards
from intern_transfer.downa.vqgan import VQGAN

__all__ = ["reconstructed_folder", "reconstruct_split"]


def reconstructed_folder(cache_dir: Path, vqgan_fingerprint: str, source: Path) -> Path:
    """Where the reconstructions of the shard folder ``source`` by the VQ-GAN ``vqgan_fingerprint`` live."""
    tag = hashlib.sha256(str(Path(source).resolve()).encode()).hexdigest()[:12]
    return Path(cache_dir) / "downa" / "reconstructed" / vqgan_fingerprint / f"{Path(source).name}-{tag}"


def _reconstructed(vqgan: VQGAN, samples: Iterator[Sample]) -> Iterator[Sample]:
    device = next(vqgan.parameters()).device
    for sample in samples:
        image = sample["image"]
        rgb = image.expand(3, -1, -1) if image.shape[0] == 1 else image
        with torch.no_grad():
            out = vqgan.reconstruct(rgb[None].to(device).float() / 255)[0]
        rebuilt = {key: value for key, value in sample.items() if key != IMAGE_BYTES}
        rebuilt["image"] = (out * 255).round().clamp(0, 255).to(torch.uint8).cpu()
        yield rebuilt


def reconstruct_split(vqgan: VQGAN, source: Path, split: str, out: Path) -> Path:
    """Write ``split`` of the shard folder ``source`` reconstructed by ``vqgan`` to ``out`` (same split
    name, same keys in the same order); returns ``out``."""
    index = load_index(source)
    if split in (load_index(out)["splits"] if (out / "index.json").is_file() else {}):
        return out
    space = index.get("label_space")
    vqgan.eval()
    write_shards(
        _reconstructed(vqgan, ShardDataset(source, split=split, batch_size=1).scan()),
        out,
        index["dataset"],
        split,
        label_space=LabelSpace.from_json(space) if space else None,
        image_format="png",
        total=index["splits"][split]["count"],
    )
    return out
