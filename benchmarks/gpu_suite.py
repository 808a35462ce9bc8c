"""One prepared GPU measurement for a lent H100/H200: every GPU figure of issue 16 in one run of at most
5 minutes, written to ``gpu_suite.json`` and ``gpu_suite.md``. ``--dry-run``: the same code paths at
tiny sizes on the CPU (the default test suite runs it).

Run it through ``benchmarks/gpu_suite.sh``, which puts the source tree (and the pure-Python packages
the lent machine lacks, vendored by ``gpu_suite.sh --prepare``) on ``PYTHONPATH``: the lent machine has
its own Python and torch, and nothing is installed on it. Sections, most important first; each is
recorded even when another fails, and a section that would start past ``--budget-s`` is skipped:

- ``arch``: training images/s (AdamW, bf16 autocast, channels_last; ``arch_throughput.measure``) of
  MN-B1/B4/B7 and the timm peers at 224 px, eager; target MN-B4 >= 1.4x ``coatnet_0_rw_224``.
- ``upa``: full Up-A-G against plain CLIP (``upa_step``'s variants: same model, batch, optimiser) and
  the image tower's MFU: forward + backward FLOPs per view from torch's FlopCounterMode, which counts
  a depthwise convolution at its nominal FLOPs although it runs far from the card's matrix peak.
  Targets: full >= 0.55x plain CLIP's samples/s; plain CLIP >= 16% MFU.
- ``mnb15``: MN-B15 (~1B parameters) under FSDP2 on the one GPU (one rank), per-block activation
  checkpointing, bf16 autocast over fp32 weights, AdamW, batch 32 at 224: peak memory, images/s,
  then a sharded checkpoint saved and exported to a hand-over folder.
- ``data``: the batched data path (the reader decodes and draws, ``BatchAugment`` crops, resizes and
  normalises on the device; or the reader only draws and the device also decodes the batch's JPEGs)
  against a bare decode loop and the per-sample CPU path, on smooth 64-224 px JPEGs; and torchvision's
  batched GPU decode alone (``decode_jpeg(..., device="cuda")``).
- ``probe``: intern-transfer's linear probe (SGD grid and L-BFGS) on features on the device.
- ``compile``: MN-B4 and ``coatnet_0_rw_224`` training again under ``torch.compile``.

    bash benchmarks/gpu_suite.sh --out /tmp/suite          # on the lent GPU
    bash benchmarks/gpu_suite.sh --dry-run --out /tmp/suite
"""

from __future__ import annotations

import argparse
import json
import os
import tarfile
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}
"""Dense bf16 peak of the SXM cards (NVIDIA's data sheets)."""
PEER = "coatnet_0_rw_224"


@dataclass(frozen=True)
class Sizes:
    """What each section runs at: the GPU's sizes or the dry run's."""

    img: int
    batch: int
    steps: int
    warmup: int
    arch_models: tuple[str, ...]
    metanet: str
    mnb15: str
    mnb15_batch: int
    data_samples: int
    data_img: int
    probe_n: int
    probe_iterations: int


PEERS = ("resnet50", PEER, "convnext_tiny", "vit_base_patch16_224")
GPU = Sizes(224, 128, 10, 3, ("mnb1", "mnb4", "mnb7", *PEERS), "mnb4", "mnb15", 32, 2000, 224, 20_000, 2000)
DRY = Sizes(64, 2, 1, 1, ("mnb_test", "resnet18"), "mnb_test", "mnb_test", 2, 24, 32, 200, 20)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def arch_section(sizes: Sizes, device: torch.device, compiled: bool = False) -> dict[str, Any]:
    from arch_throughput import measure

    models = (sizes.metanet, PEER) if compiled else sizes.arch_models
    if compiled and device.type != "cuda":
        return {"skipped": "torch.compile is measured on the GPU only"}
    rows = []
    for name in models:
        row = measure(name, sizes.img, sizes.batch, sizes.steps, sizes.warmup, device, compiled=compiled)
        rows.append(row)
    out: dict[str, Any] = {"rows": rows}
    rates = {row["model"]: row["train"] for row in rows}
    if "mnb4" in rates and PEER in rates:
        out["mnb4_over_coatnet_train"] = rates["mnb4"] / rates[PEER]
        out["target_mnb4_over_coatnet"] = 1.4
    return out


def upa_section(sizes: Sizes, device: torch.device, peak: float | None) -> dict[str, Any]:
    from upa_step import image_tower_flops, samples_per_s, warm_variants

    batch_size = min(sizes.batch, 64) if device.type == "cuda" else 4
    bf16 = device.type == "cuda"
    variants, batch = warm_variants(sizes.metanet, sizes.img, batch_size, device, bf16, sizes.warmup)
    rates = {v.name: max(samples_per_s(v, batch, sizes.steps) for _ in range(2)) for v in variants}
    flops = image_tower_flops(sizes.metanet, sizes.img)
    rows = []
    for variant in variants:
        per_sample = flops * variant.views
        mfu = per_sample * rates[variant.name] / (peak * 1e12) if peak else None
        rows.append({"objective": variant.name, "samples_s": rates[variant.name], "views": variant.views,
                     "gflops_per_sample": per_sample / 1e9, "image_tower_mfu": mfu})  # fmt: skip
    return {
        "model": sizes.metanet,
        "batch": batch_size,
        "rows": rows,
        "full_over_clip": rates["full Up-A-G"] / rates["plain CLIP"],
        "target_full_over_clip": 0.55,
        "target_clip_mfu": 0.16,
    }


def mnb15_section(sizes: Sizes, device: torch.device, scratch: Path) -> dict[str, Any]:
    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    import intern_arch
    from intern_arch.sharding import full_state_dict, shard_model

    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, init_method=f"file://{scratch}/pg", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        with torch.device(device):
            model = intern_arch.create_model(sizes.mnb15, num_classes=1000)
        params = sum(p.numel() for p in model.parameters())
        bf16 = device.type == "cuda"
        model = shard_model(model.train(), activation_checkpointing=True)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        x = torch.randn(sizes.mnb15_batch, 3, sizes.img, sizes.img, device=device)  # FSDP2: no channels_last
        y = torch.randint(0, 1000, (sizes.mnb15_batch,), device=device)
        amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

        def step() -> None:
            with amp:
                loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        for _ in range(sizes.warmup):
            step()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        sync(device)
        start = time.perf_counter()
        for _ in range(sizes.steps):
            step()
        sync(device)
        seconds = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
        start = time.perf_counter()
        dcp.save({"model": get_model_state_dict(model)}, checkpoint_id=str(scratch / "sharded"))
        state = full_state_dict(model)
        with torch.device("meta"):
            plain = intern_arch.create_model(sizes.mnb15, num_classes=1000)
        plain.load_state_dict(state, assign=True)
        intern_arch.save_pretrained(plain, scratch / "export")
        loaded = intern_arch.from_pretrained(scratch / "export")
        same = all(torch.equal(v, state[k]) for k, v in loaded.state_dict().items())
        return {
            "model": sizes.mnb15,
            "parameters": params,
            "batch": sizes.mnb15_batch,
            "img": sizes.img,
            "images_s": sizes.mnb15_batch * sizes.steps / seconds,
            "peak_memory_gib": peak,
            "fits_80_gib": peak < 80 if peak is not None else None,
            "checkpoint_and_export_s": time.perf_counter() - start,
            "export_equal": same,
        }
    finally:
        dist.destroy_process_group()


def data_section(sizes: Sizes, device: torch.device, scratch: Path) -> dict[str, Any]:
    from data_throughput import bare_decode, images, pipeline
    from torchvision.io import decode_jpeg

    from intern_data.shards import BatchAugment, CropDraw, classification_transform, write_shards
    from intern_data.shards.batched import DRAW_KEY

    folder = scratch / "shards"
    write_shards(images(sizes.data_samples, "smooth"), folder, "bench", "train", max_shard_bytes=16 << 20)
    shards = sorted(folder.glob("*.tar"))
    augment = BatchAugment(sizes.data_img).to(device)

    def on_device(batch: dict[str, Any]) -> dict[str, Any]:  # what Lightning's transfer does, then the hook
        moved = {k: [v.to(device) if v is not None else None for v in vs] if k == "image" else vs
                 for k, vs in batch.items()}  # fmt: skip
        moved[DRAW_KEY] = batch[DRAW_KEY].to(device)
        out = augment(moved)
        sync(device)
        return out

    runs: dict[str, Callable[[], tuple[int, float]]] = {
        "bare decode (CPU)": lambda: bare_decode(shards),
        "per-sample transform (CPU)": lambda: pipeline(
            folder, classification_transform(sizes.data_img, train=True), 64, 0
        ),
        f"batched transform on {device.type}": lambda: pipeline(
            folder, CropDraw(sizes.data_img), 64, 0, on_device
        ),
        f"batched decode and transform on {device.type}": lambda: pipeline(
            folder, CropDraw(sizes.data_img), 64, 0, on_device, defer=True
        ),
    }
    rates = {name: 0.0 for name in runs}
    for _ in range(2):
        for name, run in runs.items():
            count, seconds = run()
            rates[name] = max(rates[name], count / seconds)
    out: dict[str, Any] = {"samples_s": rates, "img": sizes.data_img, "one_reader_process": True}
    if device.type == "cuda":
        blobs = []
        for path in shards:
            with tarfile.open(path) as tar:
                blobs += [torch.frombuffer(bytearray(tar.extractfile(m).read()), dtype=torch.uint8)
                          for m in tar if m.name.endswith(".jpg")]  # fmt: skip
        decode_jpeg(blobs[:64], device=device)
        sync(device)
        start = time.perf_counter()
        for i in range(0, len(blobs), 256):
            decode_jpeg(blobs[i : i + 256], device=device)
        sync(device)
        out["samples_s"]["batched decode_jpeg on cuda"] = len(blobs) / (time.perf_counter() - start)
    bare = rates["bare decode (CPU)"]
    out["ratios_to_bare_decode"] = {name: rate / bare for name, rate in out["samples_s"].items()}
    return out


def probe_section(sizes: Sizes, device: torch.device) -> dict[str, Any]:
    from intern_transfer.probe import LBFGSSearch, SGDGrid, linear_probe

    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(10, 512, generator=generator) * 2
    labels = torch.randint(0, 10, (sizes.probe_n,), generator=generator)
    feats = centres[labels] + torch.randn(sizes.probe_n, 512, generator=generator) * 4
    half = sizes.probe_n // 2
    out: dict[str, Any] = {"features": sizes.probe_n, "dim": 512}
    for strategy in ("sgd", "lbfgs"):
        sync(device)
        start = time.perf_counter()
        train, test = (feats[:half], labels[:half]), (feats[half:], labels[half:])
        result = linear_probe(
            *(t.to(device) for t in (*train, *test)), strategy=strategy, device=device,
            sgd_grid=SGDGrid(iterations=sizes.probe_iterations), lbfgs_search=LBFGSSearch(),
        )  # fmt: skip
        sync(device)
        out[strategy] = {"seconds": time.perf_counter() - start, "test_accuracy": float(result.test_score)}
    return out


def markdown(results: dict[str, Any]) -> str:
    """The run as Markdown: one table per section, then the targets."""
    lines = [f"# GPU suite: {results['device']}", "", f"torch {results['torch']}, {results['mode']}", ""]
    for name, section in results["sections"].items():
        lines.append(f"## {name} ({section.get('seconds', 0):.0f} s)")
        problem = next((k for k in ("error", "skipped") if k in section), None)
        if problem is not None:
            lines += [f"{problem}: {section[problem]}", ""]
            continue
        rows = section.get("rows")
        if rows:
            keys = list(rows[0])
            lines += ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
            lines += ["| " + " | ".join(_cell(row[k]) for k in keys) + " |" for row in rows]
        rest = {k: v for k, v in section.items() if k not in ("rows", "seconds")}
        lines += [f"- {k}: {_cell(v)}" for k, v in rest.items()]
        lines.append("")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_cell(v)}" for k, v in value.items())
    return str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu_suite_out")))
    parser.add_argument("--budget-s", type=float, default=280.0, help="no section starts after this")
    parser.add_argument("--sections", nargs="+", default=["arch", "upa", "mnb15", "data", "probe", "compile"])
    args = parser.parse_args()
    device = torch.device("cpu" if args.dry_run or not torch.cuda.is_available() else "cuda")
    sizes = DRY if args.dry_run else GPU
    if args.dry_run:
        torch.set_num_threads(1)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"device": name, "torch": torch.__version__, "peak_bf16_tflops": peak,
                               "mode": "dry run" if args.dry_run else "full", "sections": {}}  # fmt: skip
    begin = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        sections: dict[str, Callable[[], dict[str, Any]]] = {
            "arch": lambda: arch_section(sizes, device),
            "upa": lambda: upa_section(sizes, device, peak),
            "mnb15": lambda: mnb15_section(sizes, device, Path(tempfile.mkdtemp(dir=tmp))),
            "data": lambda: data_section(sizes, device, Path(tempfile.mkdtemp(dir=tmp))),
            "probe": lambda: probe_section(sizes, device),
            "compile": lambda: arch_section(sizes, device, compiled=True),
        }
        for section in args.sections:
            if time.perf_counter() - begin > args.budget_s:
                results["sections"][section] = {"skipped": f"past the {args.budget_s:.0f} s budget"}
                continue
            start = time.perf_counter()
            try:
                record = sections[section]()
            except Exception as err:  # noqa: BLE001 - one section's failure is recorded, the others run
                traceback.print_exc()
                record = {"error": f"{type(err).__name__}: {err}"}
            record["seconds"] = time.perf_counter() - start
            results["sections"][section] = record
            print(f"{section}: {record['seconds']:.1f} s", flush=True)
            if device.type == "cuda":
                torch.cuda.empty_cache()
    results["seconds"] = time.perf_counter() - begin
    (args.out / "gpu_suite.json").write_text(json.dumps(results, indent=2))
    (args.out / "gpu_suite.md").write_text(markdown(results))
    print(markdown(results))
    failed = [name for name, section in results["sections"].items() if "error" in section]
    if failed:
        raise SystemExit(f"sections failed: {failed}")


if __name__ == "__main__":
    main()
