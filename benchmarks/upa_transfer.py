"""What Up-A-G buys on the embedded world: GV-B linear-probe accuracy of its backbone against the same
model randomly initialised, for the stage's objective and ablations of it.

Each variant is one run of the app, ``python -m intern_pretrain stage=upa_g ...`` with the stage's
defaults except the run length (``--steps`` of ``--batch``) and the variant's overrides; the app's own
``evaluate`` step then benchmarks the export with intern-bench (L-BFGS probe, ``gvb_world_cls`` at 10%
and 100%), and the first variant of each seed also benchmarks the random-init baseline. The script
reads the ``result.json`` files back and prints one Markdown table (accuracy %, gain over random init).

    python benchmarks/upa_transfer.py                                # full Up-A-G, 800 x 64, seed 0
    python benchmarks/upa_transfer.py --variants full,clip,no_sts,no_mlm,paper_views --seeds 0,1
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from intern_bench.results import load_results

TASK = "gvb_world_cls"
SPLITS = ("10pct", "100pct")
TERMS = "stage/upa_g_terms@stage.module.objective"  # the objective's term list (conf/stage/upa_g_terms/)
VARIANTS: dict[str, list[str]] = {
    "full": [],
    "clip": ["experiment=clip_baseline"],
    "no_sts": [f"{TERMS}=[multi_view_clip,simsiam,mlm]"],
    "no_mlm": [f"{TERMS}=[multi_view_clip,simsiam,sts]"],
    "no_simsiam": [f"{TERMS}=[multi_view_clip,mlm,sts]"],
    "paper_views": ["stage.data.scale=[0.2,1.0]", "stage.data.color=true"],
    "mixed_optimizer": ["experiment=upa_g_mixed_optimizer"],
}


def run_variant(name: str, seed: int, steps: int, batch: int, root: Path, baseline: bool) -> Path:
    """Run the app for one variant and seed; return its run folder."""
    run_dir = root / "runs" / f"{name}-seed{seed}"
    command = [
        sys.executable, "-m", "intern_pretrain", "stage=upa_g", f"seed={seed}",
        f"stage.data.batch_size={batch}", f"stage.data.samples_per_epoch={steps * batch}",
        "trainer.max_epochs=1",
        "stage.callbacks.probe=null", "+trainer.limit_val_batches=0", "+trainer.enable_progress_bar=false",
        f"evaluate.tasks=[{TASK}]", f"evaluate.splits=[{','.join(SPLITS)}]", f"evaluate.baseline={baseline}",
        *VARIANTS[name], f"hydra.run.dir={run_dir}",
    ]  # fmt: skip
    started = time.perf_counter()
    env = {**os.environ, "INTERN_ROOT": str(root)}
    result = subprocess.run(command, env=env, text=True, capture_output=True)
    if result.returncode != 0:
        raise SystemExit(f"{name} (seed {seed}) failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    print(f"{name} seed {seed}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return run_dir


def accuracies(run_dir: Path) -> dict[tuple[str, str], float]:
    """``{(model, split): accuracy}`` of every bench result of a run folder."""
    return {
        (r.model, r.split): r.metrics[r.primary_metric]
        for r in load_results(run_dir / "bench")
        if r.task == TASK
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default="full", help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--root", type=Path, default=Path("upa_transfer"), help="INTERN_ROOT of the runs")
    args = parser.parse_args()
    variants = args.variants.split(",")
    if unknown := set(variants) - set(VARIANTS):
        parser.error(f"unknown variants {sorted(unknown)}; choose from {', '.join(VARIANTS)}")

    rows: dict[tuple[str, int], dict[str, float]] = {}
    for seed in map(int, args.seeds.split(",")):
        for i, name in enumerate(variants):
            found = accuracies(run_variant(name, seed, args.steps, args.batch, args.root.resolve(), i == 0))
            for (model, split), value in found.items():
                row = "random init" if model.endswith("(random init)") else name
                rows.setdefault((row, seed), {})[split] = value

    print(f"\n{TASK}, L-BFGS probe accuracy %, Up-A-G {args.steps} steps of {args.batch} (mnb_test, 64 px)\n")
    print("| variant | seed | " + " | ".join(SPLITS) + " | gain " + " | gain ".join(SPLITS) + " |")
    print("|---|---|" + "---|" * (2 * len(SPLITS)))
    for (row, seed), values in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0] != "random init")):
        base = rows.get(("random init", seed), {})
        cells = [f"{values.get(s, float('nan')):.1f}" for s in SPLITS]
        gains = [f"{values.get(s, float('nan')) - base.get(s, float('nan')):+.1f}" for s in SPLITS]
        print(f"| {row} | {seed} | " + " | ".join(cells + gains) + " |")


if __name__ == "__main__":
    main()
