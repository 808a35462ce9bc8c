"""Down-A's cost: the wall time of multi-stage fine-tuning (MF) against fine-tuning (FT) on the same
task, regime and stage-4 grid, measured in one process, alternating the two (these machines are shared).

MF's extra work per task is stage 2 (the training images through the VQ-GAN, written as shards; the FD
scores on top) and stage 3 (the task layers on the frozen backbone over its lr grid); stage 1, the
VQ-GAN, is trained once for every task and is timed on its own. Settings are conf/downa/default.yaml's
unless overridden (``--set head.steps=50``).

    python benchmarks/downa_cost.py                                  # gvb_world_cls at 10%, mnb_test
    python benchmarks/downa_cost.py --checkpoint runs/upa/.../export --repeats 2 --json cost.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import OmegaConf

from intern_app import config_dir
from intern_data.regimes import task_shards
from intern_data.tasks import load_tasks
from intern_transfer.backbones import load_backbone
from intern_transfer.downa import adapt_to_task, default_metric, transfer_task
from intern_transfer.downa.pipeline import upstream_vqgan


def quiet_trainer(folder: Path, /, **overrides: Any) -> L.Trainer:
    return L.Trainer(
        default_root_dir=folder, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        **{"enable_model_summary": False, **overrides},
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="gvb_world_cls")
    parser.add_argument("--split", default="10pct")
    parser.add_argument("--checkpoint", default="mnb_test", help="hand-over folder or backbone name")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--root", type=Path, default=None, help="cache folder (default: a temporary one)")
    parser.add_argument("--set", nargs="*", default=[], help="downa overrides, e.g. head.steps=50")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)

    cfg: dict[str, Any] = OmegaConf.to_container(  # type: ignore[assignment]
        OmegaConf.merge(
            OmegaConf.load(config_dir() / "downa" / "default.yaml"), OmegaConf.from_dotlist(args.set)
        )
    )
    root = args.root or Path(tempfile.mkdtemp(prefix="downa_cost_"))
    spec = load_tasks(config_dir() / "task")[args.task]
    task_root = task_shards(spec, data_root=root / "shards", cache_dir=root / "cache")
    loaded = load_backbone(args.checkpoint)
    metric = default_metric(spec.type, int(spec.num_classes or 0))
    task = transfer_task(spec, loaded.input_size, metric, cfg["detector_kwargs"])

    start = time.perf_counter()
    upstream_vqgan(cfg["vqgan"], loaded.backbone, loaded.fingerprint, root / "cache", quiet_trainer)
    stage1 = time.perf_counter() - start

    seconds: dict[str, list[float]] = {"ft": [], "mf": []}
    for repeat in range(args.repeats):
        for method in ("ft", "mf"):
            shutil.rmtree(root / "cache" / "downa" / "reconstructed", ignore_errors=True)  # stage 2 each time
            run_dir = root / "runs" / f"{method}-{repeat}"
            start = time.perf_counter()
            adapt_to_task(
                cfg, method, task, task_root, spec, rule=args.split, seed=repeat, backbone=loaded.backbone,
                backbone_id=loaded.fingerprint, cache_dir=root / "cache", run_dir=run_dir,
                make_trainer=quiet_trainer,
            )  # fmt: skip
            seconds[method].append(time.perf_counter() - start)
    ft, mf = statistics.fmean(seconds["ft"]), statistics.fmean(seconds["mf"])
    report = {
        "task": args.task, "split": args.split, "backbone": args.checkpoint, "repeats": args.repeats,
        "ft_s": seconds["ft"], "mf_s": seconds["mf"], "mf_over_ft": mf / ft, "vqgan_training_s": stage1,
        "head_grid": cfg["head"], "full_grid": cfg["full"],
    }  # fmt: skip
    print(json.dumps(report, indent=1))
    print(
        f"| {args.task} {args.split} | {args.checkpoint} | FT {ft:.0f} s | MF {mf:.0f} s | "
        f"MF / FT {mf / ft:.2f} | VQ-GAN (once) {stage1:.0f} s |"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
