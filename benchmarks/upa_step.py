"""Training samples/s of full Up-A-G (all losses, STS queue) against plain CLIP on the same model and batch.

Both are :class:`~intern_pretrain.upa_g.UpaGModule` instantiated from the app's composed config as the
stage does: ``full`` the stage's defaults (two image views, the EDA text view, SimSiam, MLM, STS with a
full queue), ``clip`` with ``experiment=clip_baseline`` (the one CLIP term). One training step is the module's
``training_step`` (tokenising, MLM masking, both towers, the loss), backward, the configured optimiser's
step and the logit-scale clamp, on one fixed batch of world image-text samples already augmented (data
loading is not timed). The two are interleaved over ``--repeats`` and the best of each is kept.

On a GPU the MFU of the image tower is printed too: forward + backward FLOPs of the backbone per image
view (torch's FlopCounterMode through ``intern_arch.profile.count_flops``) x views per sample x
samples/s, over ``--peak-tflops`` (dense bf16 of the card; H100 SXM: 989). On the CPU it is "n/a".

    python benchmarks/upa_step.py                               # mnb_test, batch 16, CPU, 1 thread
    python benchmarks/upa_step.py --model mnb4 --img-size 224 --batch 256 --precision bf16 --peak-tflops 989
"""

from __future__ import annotations

import argparse
import contextlib
import time
import warnings
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig

import intern_arch
from intern_app import config_dir
from intern_arch.profile import count_flops
from intern_arch.text import train_tokenizer
from intern_data.world import generate
from intern_pretrain.upa_g import EDA, UpaGTransform


def stage_config(img_size: int, clip: bool) -> DictConfig:
    """The pretrain app's ``stage`` (Up-A-G) at ``img_size``; ``clip``: ``experiment=clip_baseline``."""
    overrides = ["stage=upa_g", f"model.img_size={img_size}"] + (["experiment=clip_baseline"] if clip else [])
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose("pretrain", overrides=overrides).stage


def make_batch(stage: DictConfig, batch: int, img_size: int, seed: int) -> tuple[dict[str, Any], list[str]]:
    """One augmented world image-text batch with both image and text views, and captions for the BPE."""
    data = stage.data
    eda = EDA(alpha=data.eda_alpha, operations=tuple(data.eda_operations))
    transform = UpaGTransform(img_size, eda, scale=tuple(data.scale), hflip=data.hflip, color=data.color)
    torch.manual_seed(seed)
    samples = list(generate("world_captions", "train", max(batch, 512), seed=seed, img_size=img_size))
    captions = [text for sample in samples for text in sample["text"]]
    views = [transform(sample) for sample in samples[:batch]]
    out = {
        "image": torch.stack([v["image"] for v in views]),
        "image2": torch.stack([v["image2"] for v in views]),
        "text": [v["text"] for v in views],
        "text_eda": [v["text_eda"] for v in views],
    }
    return out, captions


class Variant:
    """A module, its optimiser and a step on a fixed batch."""

    def __init__(
        self, name: str, model: str, stage: DictConfig, tokenizer: Any, device: torch.device, bf16: bool
    ) -> None:
        torch.manual_seed(0)
        backbone = intern_arch.create_model(model, num_classes=0)
        self.name = name
        self.module = instantiate(stage.module, backbone=backbone, tokenizer=tokenizer).to(device).train()
        weight_decay = float(stage.module.optimizer.weight_decay)
        groups = self.module.param_groups(weight_decay, weight_decay)
        scale = {"params": [self.module.logit_scale.log_scale], "weight_decay": 0.0}
        self.optimizer = self.module.optimizer_factory(groups["image"] + groups["text"] + [scale])
        self.views = self.module.objective.image_views
        self.device = device
        self.bf16 = bf16
        for term in self.module.objective.terms.values():
            queue = getattr(getattr(term, "loss", None), "queue", None)
            if queue is not None:  # steady state: a full STS queue
                queue.enqueue(torch.randn(queue.size, queue.features.shape[1], device=device))

    def step(self, batch: dict[str, Any]) -> None:
        autocast = (
            torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()
        )
        with autocast:
            loss = self.module.training_step(batch, 0)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.module.on_train_batch_end(None, batch, 0)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def samples_per_s(variant: Variant, batch: dict[str, Any], steps: int) -> float:
    sync(variant.device)
    start = time.perf_counter()
    for _ in range(steps):
        variant.step(batch)
    sync(variant.device)
    return steps * len(batch["text"]) / (time.perf_counter() - start)


def warm_variants(
    model: str, img_size: int, batch_size: int, device: torch.device, bf16: bool, warmup: int
) -> tuple[list[Variant], dict[str, Any]]:
    """Full Up-A-G and plain CLIP on the same model, BPE and batch (on ``device``), each stepped
    ``warmup`` times."""
    full = stage_config(img_size, clip=False)
    batch, captions = make_batch(full, batch_size, img_size, seed=0)
    tokenizer = train_tokenizer(captions, vocab_size=int(full.data.vocab_size))
    batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    variants = [
        Variant("full Up-A-G", model, full, tokenizer, device, bf16),
        Variant("plain CLIP", model, stage_config(img_size, clip=True), tokenizer, device, bf16),
    ]
    for variant in variants:
        for _ in range(warmup):
            variant.step(batch)
    return variants, batch


def image_tower_flops(model: str, img_size: int) -> int:
    """Forward + backward FLOPs of the backbone on one image view (counted on the meta device)."""
    with torch.device("meta"):
        backbone = intern_arch.create_model(model, num_classes=0)
    return count_flops(backbone.train(), img_size, backward=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="mnb_test")
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per repeat")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="bf16: autocast")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the GPU's peak dense bf16 TFLOP/s")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*self.log.*")
    device = torch.device(args.device)

    variants, batch = warm_variants(args.model, args.img_size, args.batch, device, args.precision == "bf16",
                                    args.warmup)  # fmt: skip
    rates: dict[str, list[float]] = {v.name: [] for v in variants}
    for _ in range(args.repeats):
        for variant in variants:
            rates[variant.name].append(samples_per_s(variant, batch, args.steps))
    best = {name: max(values) for name, values in rates.items()}

    flops = image_tower_flops(args.model, args.img_size)
    on_gpu = device.type == "cuda" and args.peak_tflops
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {args.threads} thread(s)"
    print(
        f"{args.model}, {args.img_size} px, batch {args.batch}, {args.precision}, {where}; "
        f"{args.steps} steps x {args.repeats} repeats (interleaved, best of), {args.warmup} warm-up"
    )
    print("| objective | samples/s | image views | image-tower GFLOPs / sample (fwd+bwd) | image-tower MFU |")
    print("|---|---|---|---|---|")
    for variant in variants:
        per_sample = flops * variant.views
        mfu = f"{per_sample * best[variant.name] / (args.peak_tflops * 1e12):.1%}" if on_gpu else "n/a"
        rate = best[variant.name]
        print(f"| {variant.name} | {rate:.1f} | {variant.views} | {per_sample / 1e9:.3f} | {mfu} |")
    print(f"\nfull Up-A-G / plain CLIP samples/s: {best['full Up-A-G'] / best['plain CLIP']:.2f}")


if __name__ == "__main__":
    main()
