"""Training and inference images/s of MetaNet variants against timm peers, in one run.

CPU (default here): small resolution, fp32. GPU: 224 px, bf16 autocast, channels_last, AdamW (timm's
benchmark settings for peer throughput). Prints a table with each model's MACs, throughput, throughput per
GMAC and its ratio to ``coatnet_0_rw_224`` measured in the same run.

    python benchmarks/arch_throughput.py                      # CPU, 64 px
    python benchmarks/arch_throughput.py --img-size 224 --batch 256   # on a GPU
"""

import argparse
import time

import timm
import torch

import intern_arch  # noqa: F401  (registers the MetaNet names in timm)
from intern_arch.profile import count_flops

PEER = "coatnet_0_rw_224"
DEFAULT_MODELS = ("mnb1", "mnb4", "mnb7", "resnet50", "efficientnet_b3", PEER, "convnext_tiny")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(
    name: str,
    img_size: int,
    batch: int,
    steps: int,
    warmup: int,
    device: torch.device,
    compiled: bool = False,
) -> dict:
    """Images/s of training (AdamW step) and of inference for one model (``compiled``: through
    ``torch.compile``, compiled during the warm-up)."""
    kwargs = {"img_size": img_size} if name.startswith(("coatnet", "vit")) else {}
    model = timm.create_model(name, num_classes=1000, **kwargs)
    macs = count_flops(model.eval(), img_size) / 2
    model = model.to(device, memory_format=torch.channels_last)
    run = torch.compile(model) if compiled else model
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    x = torch.randn(batch, 3, img_size, img_size, device=device).to(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,), device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def train_step() -> None:
        with amp:
            loss = torch.nn.functional.cross_entropy(run(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def infer_step() -> None:
        with amp, torch.no_grad():
            run(x)

    rates = {}
    for mode, step in (("train", train_step), ("infer", infer_step)):
        model.train(mode == "train")
        for _ in range(warmup):
            step()
        _sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(device)
        rates[mode] = batch * steps / (time.perf_counter() - start)
    return {"model": name, "compiled": compiled, "gmacs": macs / 1e9, **rates}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--img-size", type=int, default=None, help="default: 224 on GPU, 64 on CPU")
    parser.add_argument("--batch", type=int, default=None, help="default: 128 on GPU, 16 on CPU")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=None)
    args = parser.parse_args()
    gpu = torch.cuda.is_available()
    device = torch.device("cuda" if gpu else "cpu")
    img_size = args.img_size or (224 if gpu else 64)
    batch = args.batch or (128 if gpu else 16)
    steps = args.steps or (20 if gpu else 3)
    warmup = args.warmup if args.warmup is not None else (5 if gpu else 1)
    if gpu:
        torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name() if gpu else f"CPU ({torch.get_num_threads()} threads)"
    print(f"# {name}, {img_size}px, batch {batch}, {'bf16 autocast' if gpu else 'fp32'}, channels_last")
    rows = [measure(m, img_size, batch, steps, warmup, device) for m in args.models]
    peer = next((r for r in rows if r["model"] == PEER), None)
    print(f"| model | GMACs | train img/s | infer img/s | train img/s x GMACs vs {PEER} |")
    print("|---|---|---|---|---|")
    for r in rows:
        ratio = f"{r['train'] * r['gmacs'] / (peer['train'] * peer['gmacs']):.2f}" if peer else "-"
        print(f"| {r['model']} | {r['gmacs']:.2f} | {r['train']:.1f} | {r['infer']:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
