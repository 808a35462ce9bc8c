"""MN-B15's training memory on one GPU, estimated on the CPU (no GPU needed; mark the result an estimate).

MN-B15 (paper Table 8, ~1B parameters) is counted on the meta device. Training state under bf16-mixed
AdamW is 16 bytes a parameter (fp32 weights, fp32 gradients, two fp32 moments), whole on one GPU or
divided by the ranks under FSDP. Activations are what autograd saves in the forward pass, measured on
the CPU with ``saved_tensors_hooks`` under bf16 autocast on MN-B15-shaped models narrower by ``k``
(every width and head dim / k; same depths and operators) at small resolutions, block by block:

- per image = saved(batch 2) - saved(batch 1) (the difference drops the weights' bf16 copies);
- scaled to full width (x k) and to the target resolution (x pixels), both checked by measuring two
  widths and two resolutions (the script prints the ratios: 2.0 and 2.25 mean the scaling holds);
- with activation checkpointing per block: the blocks' inputs plus the largest block's own saved
  tensors (its recomputation during the backward pass), per image.

Not counted: the stem's and the classifier head's activations (outside the blocks), temporary buffers,
the CUDA context, allocator fragmentation, and what a GPU attention kernel saves instead of CPU math.

    python benchmarks/mnb15_memory.py                     # 224 px, batch 32, 1 and 8 GPUs
    python benchmarks/mnb15_memory.py --img-size 256 --batch 32 --json mnb15_memory.json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor, nn

from intern_arch import MetaNet, metanet_cfgs
from intern_arch.models.metanet import MetaNetCfg
from intern_arch.profile import profile_model

GIB = 1024**3
STATE_BYTES_PER_PARAM = 16  # bf16-mixed AdamW: fp32 weight + fp32 grad + exp_avg + exp_avg_sq


def narrow(cfg: MetaNetCfg, k: int) -> MetaNetCfg:
    """``cfg`` with every width and head dim divided by ``k`` (the head count and depths kept)."""
    stages = tuple(replace(s, channels=s.channels // k, head_dim=max(1, s.head_dim // k)) for s in cfg.stages)
    return replace(cfg, stages=stages, stem_width=cfg.stem_width // k, head_width=cfg.head_width // k)


def saved_per_block(model: MetaNet, batch: int, img_size: int) -> tuple[list[int], list[int]]:
    """Bytes autograd saves inside each block, and each block's input bytes, for one forward pass."""
    blocks = [block for stage in model.stages for block in stage]
    saved, inputs = [0] * len(blocks), [0] * len(blocks)
    current = [-1]
    seen: set[tuple[int, int]] = set()

    def enter(index: int):  # noqa: ANN202
        def hook(_: nn.Module, args: tuple[Tensor, ...]) -> None:
            current[0] = index
            inputs[index] = args[0].numel() * 2  # kept in bf16 between blocks under autocast

        return hook

    def pack(t: Tensor) -> Tensor:
        key = (t.untyped_storage().data_ptr(), t.numel())
        if current[0] >= 0 and key not in seen:
            seen.add(key)
            saved[current[0]] += t.numel() * t.element_size()
        return t

    handles = [b.register_forward_pre_hook(enter(i)) for i, b in enumerate(blocks)]
    x = torch.randn(batch, 3, img_size, img_size)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.autocast("cpu", torch.bfloat16):
        model(x)
    for handle in handles:
        handle.remove()
    return saved, inputs


def per_image(cfg: MetaNetCfg, img_size: int) -> dict[str, float]:
    """Per-image saved bytes of ``cfg`` at ``img_size``: all blocks, block inputs, the largest block."""
    torch.manual_seed(0)
    model = MetaNet(cfg, num_classes=1000).train()
    one, inputs_one = saved_per_block(model, 1, img_size)
    two, inputs_two = saved_per_block(model, 2, img_size)
    blocks = [b - a for a, b in zip(one, two, strict=True)]
    return {
        "all": float(sum(blocks)),
        "inputs": float(sum(b - a for a, b in zip(inputs_one, inputs_two, strict=True))),
        "largest_block": float(max(blocks)),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32, help="images per GPU")
    parser.add_argument("--gpus", type=int, nargs="+", default=[1, 8], help="FSDP ranks to divide state by")
    parser.add_argument("--widths", type=int, nargs=2, default=[8, 4], help="the two narrowing factors k")
    parser.add_argument("--sizes", type=int, nargs=2, default=[64, 96], help="the two measured resolutions")
    parser.add_argument("--json", type=Path, default=None)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    params = profile_model("mnb15", args.img_size).params
    full = metanet_cfgs["mnb15"]
    (k_small, k_big), (r_small, r_big) = args.widths, args.sizes
    base = per_image(narrow(full, k_small), r_small)
    wider = per_image(narrow(full, k_big), r_small)
    larger = per_image(narrow(full, k_small), r_big)
    width_ratio = wider["all"] / base["all"]
    size_ratio = larger["all"] / base["all"]
    # Scale the narrowest, smallest measurement to full width and the target resolution.
    scale = k_small * (args.img_size / r_small) ** 2
    act = {key: value * scale for key, value in base.items()}
    state = params * STATE_BYTES_PER_PARAM
    rows = []
    for gpus in args.gpus:
        sharded = state / gpus
        rows.append(
            {
                "gpus": gpus,
                "state_gib": sharded / GIB,
                "no_checkpointing_gib": (sharded + args.batch * act["all"]) / GIB,
                "checkpointing_gib": (sharded + args.batch * (act["inputs"] + act["largest_block"])) / GIB,
            }
        )
    result = {
        "estimate": True,
        "params": params,
        "img_size": args.img_size,
        "batch_per_gpu": args.batch,
        "activation_mib_per_image": {k: v / 2**20 for k, v in act.items()},
        "width_scaling_check": {"measured": width_ratio, "linear": k_small / k_big},
        "resolution_scaling_check": {"measured": size_ratio, "linear": (r_big / r_small) ** 2},
        "per_gpu": rows,
    }
    print(json.dumps(result, indent=2))
    setting = f"bf16-mixed AdamW, {args.img_size} px, batch {args.batch}/GPU"
    print(f"\nMN-B15 (estimate), {params / 1e9:.2f}B parameters, {setting}")
    print("| GPUs (FSDP) | state GiB | + activations GiB | with checkpointing GiB |")
    print("|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['gpus']} | {row['state_gib']:.1f} | {row['no_checkpointing_gib']:.1f} | "
            f"{row['checkpointing_gib']:.1f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
