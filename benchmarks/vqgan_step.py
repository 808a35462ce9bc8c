"""Down-A stage 1's training step: images a second through the VQ-GAN module (generator and
discriminator steps, perceptual loss on a frozen backbone), on random images of one size.

    python benchmarks/vqgan_step.py --size 64 --batch 8                         # the CPU default's shape
    python benchmarks/vqgan_step.py --size 256 --batch 32 --device cuda --bf16 --preset paper
"""

from __future__ import annotations

import argparse
import json
import time

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

import intern_arch
from intern_transfer.downa import VQGANConfig, VQGANModule

PRESETS = {
    "cpu": VQGANConfig(
        channels=16, channel_mult=(1, 2, 4), embed_dim=64, codebook_size=512, disc_channels=32
    ),
    # taming's reference shape (factor 16 at 256 px, 1,024 codes of 256 dims), conf/downa/paper.yaml's
    "paper": VQGANConfig(
        channels=128, channel_mult=(1, 1, 2, 2, 4), num_res_blocks=2, embed_dim=256, codebook_size=1024
    ),
}


class RandomImages(Dataset):
    def __init__(self, count: int, size: int) -> None:
        self.images = torch.rand(count, 3, size, size)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"image": self.images[index]}


class Clock(L.Callback):
    """Wall time of the training steps after ``warmup`` batches."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.batches = warmup, 0.0, 0

    def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
        if self.batches == self.warmup:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        self.batches += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=12, help="timed batches (after 3 of warm-up)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true")
    args = parser.parse_args()
    warmup = 3
    batches = warmup + args.steps
    module = VQGANModule(PRESETS[args.preset], intern_arch.create_model("mnb_test"), disc_start=0)
    loader = DataLoader(RandomImages(batches * args.batch, args.size), batch_size=args.batch)
    clock = Clock(warmup)
    trainer = L.Trainer(
        accelerator="gpu" if args.device == "cuda" else "cpu", devices=1, max_steps=2 * batches,
        precision="bf16-mixed" if args.bf16 else "32-true", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[clock],
    )  # fmt: skip
    trainer.fit(module, loader)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - clock.start
    images = args.steps * args.batch
    report = {**vars(args), "images_per_s": images / seconds, "device_name": _device_name(args.device)}
    print(json.dumps(report))


def _device_name(device: str) -> str:
    return torch.cuda.get_device_name() if device == "cuda" else "cpu"


if __name__ == "__main__":
    main()
