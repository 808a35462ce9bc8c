"""Fidelity run: the paper's claims measured over several seeds, written to ``benchmarks/FIDELITY.md``.

A claim is a :class:`Row`: the paper's statement and its section / table, a GV-B task (splits, metric,
bench overrides), the model that should win and its baseline. A model is an export of a pretraining run
(:class:`Pretrain`, ``python -m intern_pretrain ...`` with its own ``evaluate`` step off) or the
architecture randomly initialised; every number is a ``python -m intern_bench`` cell on it, read back
from its ``result.json``. Runs are shared between rows (one ``stage=upa`` run per seed gives the Up-A-G
and the Up-A-L exports).

Each app process is a job cached under ``--root`` (default ``fidelity/``, git-ignored; it is also the
runs' ``INTERN_ROOT``) in a folder named by its key: a hash of the packages' source trees and ``conf/``,
the job's overrides, its seed and the key of the run it benchmarks. A rerun with nothing changed reuses
every job; a change to the code or the configs reruns them. A job killed half-way resumes (the
pretraining app continues from its last checkpoint).

    python benchmarks/fidelity.py --seeds 0,1                  # every row (about 25 min on 2 CPU cores)
    python benchmarks/fidelity.py --seeds 0 --rows upa_g_vs_clip --out /tmp/FIDELITY.md
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

from intern_bench.results import load_results
from intern_data.io import atomic_write_text, file_sha256
from intern_pretrain.search import read_log

REPO = Path(__file__).resolve().parents[1]
MODEL = "mnb_test"
DONE = "fidelity.json"  # a finished job's marker: its key, command and wall seconds
RULE = (
    "A row **holds** when, on every split, the mean gain over the seeds (model minus baseline) is above 0 "
    "and the model beats the baseline in more than half of the seeds; otherwise it **does not hold**. "
    "**Not measurable yet**: a run it needs failed (the reason is given)."
)


@dataclass(frozen=True)
class Pretrain:
    """A ``python -m intern_pretrain`` run at the stage defaults but ``overrides`` (validation off), from
    the ``parent_export`` of run ``parent`` when there is one (an expert from its seed's Up-A run)."""

    name: str
    overrides: tuple[str, ...]
    parent: Pretrain | None = None
    parent_export: str = "export"


@dataclass(frozen=True)
class Model:
    """A benchmarked model: the ``export`` folder of ``run``, or (``run`` None) ``MODEL`` at random init."""

    label: str
    run: Pretrain | None = None
    export: str = "export"
    bench: tuple[str, ...] = ()  # bench overrides of this model's cells
    run_seed: int | None = None  # the seed of ``run`` whatever the row's seed (default: the row's)

    def upstream_seed(self, seed: int) -> int:
        return seed if self.run_seed is None else self.run_seed


@dataclass(frozen=True)
class Task:
    """A GV-B task's cells: its splits, the ``result.metrics`` key compared and the bench overrides."""

    name: str
    splits: tuple[str, ...]
    metric: str
    protocol: str  # in words, for the table
    bench: tuple[str, ...] = ()


@dataclass(frozen=True)
class Row:
    """One claim of the paper: ``model`` beats ``baseline`` on ``task`` (with ``others``: beats the best
    of ``baseline`` and ``others``, per seed and split)."""

    id: str
    claim: str
    source: str
    task: Task
    model: Model
    baseline: Model
    note: str = ""  # context for the verdict (what limits the measurement here), shown after it
    others: tuple[Model, ...] = ()
    splits: tuple[str, ...] | None = None  # the task's splits the claim reads (default: all)
    lower_is_better: bool = False
    baseline_metric: str | None = None  # the baselines' metric when not the task's (another number)
    gain_shrinks: bool = False  # the claim: the gain at the first split exceeds the gain at the last

    @property
    def claim_splits(self) -> tuple[str, ...]:
        return self.splits or self.task.splits

    @property
    def baselines(self) -> tuple[Model, ...]:
        return (self.baseline, *self.others)


UPA = Pretrain("upa", ("stage=upa", "stage.upa_g.callbacks.probe=null"))
CLIP = Pretrain("clip", ("experiment=clip_baseline", "stage.callbacks.probe=null"))
UPA_G = Model("Up-A-G", UPA, export="upa_g/export")
UPA_L = Model("Up-A-L", UPA, bench=("dense.init_heads=true",))
PLAIN_CLIP = Model("plain CLIP", CLIP)
RANDOM = Model("random init")
CLS = Task("gvb_world_cls", ("10pct", "100pct"), "accuracy", "L-BFGS linear probe", ("protocol=lbfgs",))
DET = Task("gvb_world_det", ("10pct",), "map50", "Faster R-CNN, frozen backbone, fresh FPN and box head")

# Up-E (paper 6): each expert from its seed's Up-A export, at CPU length (C: 150 steps of 64; D, S: 100
# steps of 16); a single-source baseline trains the same steps on one of the sources.
UPE_STEPS = {"upe_c": ("stage.data.steps_per_epoch=15",), "upe_d": ("stage.data.steps_per_epoch=10",),
             "upe_s": ("stage.data.steps_per_epoch=10",)}  # fmt: skip


def expert(stage: str, name: str = "", *overrides: str) -> Pretrain:
    """Up-E run ``stage`` from the seed's Up-A export (its natural label spaces and default sources unless
    ``overrides`` say otherwise)."""
    return Pretrain(f"{stage}{name}", (f"stage={stage}", *UPE_STEPS[stage], *overrides), UPA)


def single(stage: str, source: str) -> Model:
    return Model(f"{source} only", expert(stage, f"_{source}", f"stage.data.sources=[{source}]"))


# Dense cells of the Up-E rows: 100 optimiser steps at least (the bench default is 200), the same for
# both sides of a row.
DENSE_FAST = ("dense.min_steps=100",)
DET_E = Task("gvb_world_det", ("10pct",), "map50", "Faster R-CNN, frozen backbone, fresh FPN and box head, "
             ">= 100 steps", DENSE_FAST)  # fmt: skip
SEG_E = Task("gvb_world_seg", ("10pct",), "miou", "DeepLabv3 head, frozen backbone, >= 100 steps", DENSE_FAST)
UPA_EXPORT = Model("Up-A", UPA)  # the final export: Up-A-L's neck and box head on the Up-A-G backbone
UPE_C = Model("Up-E(C)", expert("upe_c"))
UPE_D = Model("Up-E(D)", expert("upe_d"))
UPE_S = Model("Up-E(S)", expert("upe_s"))
UPE_C_UNIFIED = Model("Up-E(C) unified", expert("upe_c", "_unified", "stage.data.label_space=unified"))
UPE_C_PARTIAL = Model("Up-E(C) partial", expert("upe_c", "_partial", "stage.data.label_space=partial"))

# Down-A (paper 8): every method adapts the seed-0 Up-A export (Up-A-L's neck and box head on the Up-A-G
# backbone; one VQ-GAN trained on its upstream world images with it as perceptual network); the row's
# seed draws the regime, its validation carve-out and every stage's training. Settings: conf/downa.
DOWNA_DENSE = (
    "downa.head.steps=60",
    "downa.full.steps=60",
    "downa.head.batch_size=16",
    "downa.full.batch_size=16",
)


def downa(method: str, label: str, *overrides: str) -> Model:
    """Down-A's ``method`` (a GV-B protocol) on the seed-0 Up-A export."""
    return Model(label, UPA, bench=(f"protocol={method}", *overrides), run_seed=0)


LP, FT, MF = downa("lp", "LP"), downa("ft", "FT"), downa("mf", "MF")
MF_NO_CONTRAST = downa("mf", "MF w/o contrastive", "downa.contrastive.enabled=false")
DOWNA_CLS = Task("gvb_world_cls", ("10pct", "100pct"), "accuracy", "Down-A methods (conf/downa/default.yaml)")
DOWNA_FINE = Task("gvb_world_fine", ("10pct",), "accuracy", "Down-A methods (conf/downa/default.yaml)")
DOWNA_DET = Task("gvb_world_det", ("10pct",), "map50", "Down-A methods, 60-step stages of 16", DOWNA_DENSE)
DOWNA_SEG = Task("gvb_world_seg", ("10pct",), "miou", "Down-A methods, 60-step stages of 16", DOWNA_DENSE)
DOWNA_NOTE = (
    "Stages at CPU length (stage 3: 150 steps of 32 over 4 lrs in [1e-3, 1]; stage 4: 150 steps of 32 "
    "over 2 lrs, the paper's 5,000 steps of 64 over a 5 x 4 grid), on a 41 K-parameter backbone whose "
    "Up-A run saw 800 steps; every method chooses on the same validation carve-out of the regime."
)

# GV-A search (paper 4.3): both arms score 32 architectures of the tiny CPU space (conf/stage/search.yaml)
# with 100 proxy steps of 32 on world_cls_fine at 64 px, scored on its val split, MnasNet's reward at 20M
# MACs; the controller arm also retrains its top 3 (200 steps) and scales the winner (x2, x4; depth x1 or
# x2, 40-step runs). The issue asked for 48 architectures per arm and 150 steps: a proxy run of the
# space's attention-heavy networks takes 20-170 s on one core, and 2 seeds x 2 arms x 48 x 150 steps
# would take about 2.5 hours here, not 90 minutes. A row's number is read from the runs' logs.
SEARCH_BUDGET = (
    "stage=search",
    "stage.search.evaluations=32",
    "stage.proxy.train.steps=100",
    "stage.top_k.steps=200",
    "stage.scaling.depth_coefs=[1.0,2.0]",
    "stage.scaling.steps=40",
)
SEARCH_CONTROLLER = Pretrain("search_controller", (*SEARCH_BUDGET, "stage.search.policy=controller"))
SEARCH_RANDOM = Pretrain(
    "search_random", (*SEARCH_BUDGET, "stage.search.policy=random", "stage.top_k.k=0", "stage.references=[]")
)
SEARCH_TASK = Task("world_cls_fine (proxy)", (), "reward", "GV-A search, 32 architectures per arm")


@dataclass(frozen=True)
class SearchRow(Row):
    """A claim about the search: ``values(controller run, random run)`` gives its per-split pairs."""

    measure_key: str = "best_reward"


SEARCH_NOTE = (
    "32 evaluations per arm (the paper: thousands), 8 controller updates of 4; 100 proxy steps of 32 "
    "(0.8 epoch of 4,000 images; the paper: 5 ImageNet epochs)."
)

ROWS: tuple[Row, ...] = (
    SearchRow(
        "search_controller_vs_random",
        "After the same number of evaluated architectures, the PPO-trained controller's best architecture "
        "has a higher reward than the best of uniform random samples of the space",
        "sec. 4.3-4.4, Eq. 6",
        SEARCH_TASK,
        Model("controller", SEARCH_CONTROLLER),
        Model("random", SEARCH_RANDOM),
        SEARCH_NOTE
        + " Finding: at 8 updates of 4 the policy barely moves (its mean reward rose 0.337 to 0.351 and "
        "0.287 to 0.307 from the first to the last 8 architectures; the random arm's rose 0.001 and 0.040 "
        "by chance), and the best of 32 is set by the spread of proxy accuracies (rewards 0.15-0.45), so "
        "this budget measures luck more than the controller. The same controller needs about 100 updates "
        "of 64 samples to find a known best on a dense synthetic reward (tests/arch/test_search.py); the "
        "paper evaluates thousands. Raise `stage.search.evaluations` and `batch` where a proxy run costs "
        "less than the ~50 s it takes here.",
        measure_key="best_reward",
    ),
    SearchRow(
        "search_family_on_front",
        "The family found by the scaling search is on or above the random samples' Pareto front "
        "(proxy accuracy at each member's MACs)",
        "sec. 4.3 (Model Scaling), Table 8",
        SEARCH_TASK,
        Model("scaled family", SEARCH_CONTROLLER),
        Model("random front", SEARCH_RANDOM),
        "Each member is scored by the search's own proxy; the front is the best random sample at no more "
        "MACs. " + SEARCH_NOTE + " Finding: the winner is above the random front (41.2 vs 36.4), its x2 and "
        "x4 scalings are not: they train the samples' 100 steps, and in 100 steps a network 2-4x larger "
        "learns less. The paper trains its scaled models fully; a fair test gives each member a budget that "
        "grows with its size. The width fit also overshoots small targets (x2 of a 5.9M-MAC winner came out "
        "at 15.3M: widths round to 8 and to the head dim).",
        measure_key="family_vs_front",
    ),
    Row(
        "upa_vs_random",
        "Up-A pretraining beats random init of the same architecture (10% and 100% of the data)",
        "sec. 5, Table 1",
        CLS,
        UPA_G,
        RANDOM,
        "At 10% the probe fits 100 images (about 5 per class of 18), so the 10% draw alone moves a model "
        "by several points (benchmarks/RESULTS.md, Up-A), the size of what an 800-step run of a "
        "41 K-parameter backbone gains there; at 100% the probe fits 1,000 images.",
    ),
    Row(
        "upa_g_vs_clip",
        "Up-A-G's group supervision beats plain CLIP",
        "sec. 5.1.1, Table 10",
        CLS,
        UPA_G,
        PLAIN_CLIP,
        "Table 10's terms (a second image view, SimSiam, MLM, STS) are measured here at CPU scale "
        "(800 steps of 64, 64 px, a 2-layer 64-wide text tower, views kept mild so captions stay true): "
        "single-seed ablations at this scale (benchmarks/RESULTS.md, Up-A) already put plain CLIP level "
        "with or above the full objective, and the 10% probe's spread across draws (first row) is of the "
        "size of the differences between objectives.",
    ),
    Row(
        "upa_l_vs_upa_g_det",
        "Up-A-L (local BYOL, its FPN and box head) beats Up-A-G on detection",
        "sec. 5.1.2, Table 11",
        DET,
        UPA_L,
        UPA_G,
        "Both sides train the FPN and box head for the bench's minimum of 200 optimiser steps (about 29 "
        "epochs of the 10% regime's 100 images at 64 px) with anchors derived from the input size "
        "(12-192 px; 92% of the task's boxes have one at IoU >= 0.5, against 26% with torchvision's "
        "32-512 before); the 100% regime is not run. The two sides' heads differ in size: Up-A-L's "
        "exported FPN (64 channels) and 4-conv + 1-fc box head (fc 256) against torchvision's fresh "
        "256-channel FPN and two-layer MLP head (1024), about 15x the parameters; the row compares the "
        "starts and the capacities together (a fresh head of the export's shape is the fair baseline, "
        "not built yet).",
    ),
    Row(
        "upe_c_vs_upa",
        "The classification expert Up-E(C) beats its Up-A start on classification",
        "sec. 6.2, Table 15a",
        CLS,
        UPE_C,
        UPA_G,
        "At this CPU scale (150 steps of 64 on a 41 K-parameter backbone, each seed pretraining its own "
        "Up-A) one configuration moves by up to 9 points between seeds at 100% (Up-E(C): 52.8 and 61.8; "
        "Up-A: 58.0 and 49.0), more than any gap in the Up-E classification rows."
        " Both 10% draws favour the expert (+0.4, +8.0).",
    ),
    Row(
        "upe_d_vs_upa_l",
        "The detection expert Up-E(D) beats its Up-A-L start on detection (AP50)",
        "sec. 6.3, Table 17a",
        DET_E,
        UPE_D,
        UPA_EXPORT,
        "Both backbones are benchmarked with fresh FPN and box heads on the frozen backbone (Up-A-L's "
        "export carries the Up-A-G backbone unchanged), 105 optimiser steps, AP50 11-18 on both sides. "
        "The expert moved its backbone by 100 steps of 16 images under Faster R-CNN heads; a frozen-"
        "backbone probe of those features does not show the gain Table 17a reports after fine-tuning the "
        "whole detector downstream (not this protocol). Longer expert runs and a fine-tuning protocol are "
        "not measured here.",
    ),
    Row(
        "upe_s_vs_upa",
        "The segmentation expert Up-E(S) beats its Up-A start on segmentation (mIoU)",
        "sec. 6.4",
        SEG_E,
        UPE_S,
        UPA_EXPORT,
        "DeepLabv3 heads trained for 105 steps on the frozen backbones.",
    ),
    Row(
        "upe_c_multi_vs_single",
        "Training on every classification source beats the best single source, for the same steps",
        "sec. 6.2, Table 15b",
        CLS,
        UPE_C,
        single("upe_c", "world_cls_fine_a"),
        others=(single("upe_c", "world_cls_fine_b"), single("upe_c", "world_cls_coarse")),
        note=(
            "The baseline is the best of three single-source runs per seed and split, so it also takes the "
            "luckiest of three noisy draws. "
            "At this CPU scale (150 steps of 64 on a 41 K-parameter backbone, each seed pretraining its own "
            "Up-A) one configuration moves by up to 9 points between seeds at 100% (Up-E(C): 52.8 and 61.8; "
            "Up-A: 58.0 and 49.0), more than any gap in the Up-E classification rows."
            " The world has the structure (each fine source holds half the super-categories, the coarse one "
            "all six at coarse labels); at 150 steps it does not turn into a measurable multi-source gain."
        ),
    ),
    Row(
        "upe_d_multi_vs_single",
        "Training on every detection source beats the best single source, for the same steps",
        "sec. 6.3, Table 17b",
        DET_E,
        UPE_D,
        single("upe_d", "world_det_a"),
        others=(single("upe_d", "world_det_b"),),
    ),
    Row(
        "upe_s_multi_vs_single",
        "Training on every segmentation source beats the best single source, for the same steps",
        "sec. 6.4, Table 19",
        SEG_E,
        UPE_S,
        single("upe_s", "world_seg_things"),
        others=(single("upe_s", "world_seg_scenes"),),
        note=(
            "Every gap is under a point (the two sources alone: 20.2-22.0 mIoU), within the spread of one "
            "configuration across seeds."
        ),
    ),
    Row(
        "upe_c_natural_vs_unified",
        "Natural label spaces (a head per source) beat one unified space",
        "sec. 6.1, Table 15b",
        CLS,
        UPE_C,
        UPE_C_UNIFIED,
        "The unified space keeps a fine class and its super-category as two classes of one softmax "
        "(daisy and flower), the label conflict the paper blames. "
        "At this CPU scale (150 steps of 64 on a 41 K-parameter backbone, each seed pretraining its own "
        "Up-A) one configuration moves by up to 9 points between seeds at 100% (Up-E(C): 52.8 and 61.8; "
        "Up-A: 58.0 and 49.0), more than any gap in the Up-E classification rows.",
    ),
    Row(
        "upe_c_partial_vs_natural",
        "Partially merged label spaces (identical concepts share an output) beat natural ones",
        "sec. 6.1, Table 15b",
        CLS,
        UPE_C_PARTIAL,
        UPE_C,
        "The paper's margin is 0.2 points (73.9 vs 73.7): an order the world's seeds may not resolve. The "
        "merged concepts here are the ring's four fine categories, named alike by both fine sources. "
        "Partial wins both 10% draws (+1.4, +0.2) and loses both at 100% (-1.2, -5.4).",
    ),
    Row(
        "downa_mf_vs_ft_lp_cls",
        "Multi-stage fine-tuning (MF) beats fine-tuning and the linear probe at 10% (classification)",
        "sec. 8.3.1, Table 24",
        DOWNA_CLS,
        MF,
        FT,
        DOWNA_NOTE,
        others=(LP,),
        splits=("10pct",),
    ),
    Row(
        "downa_mf_vs_ft_lp_fine",
        "MF beats fine-tuning and the linear probe at 10% on a fine-grained task",
        "sec. 8.3.1, Table 24",
        DOWNA_FINE,
        MF,
        FT,
        DOWNA_NOTE,
        others=(LP,),
    ),
    Row(
        "downa_mf_gain_shrinks",
        "MF's gain over fine-tuning is larger at 10% than at 100% (low-data regime)",
        "sec. 8, 8.3",
        DOWNA_CLS,
        MF,
        FT,
        "A finding: at this budget FT hardly gains from 10x the data (32-36 at 10% and at 100%), while "
        "MF reaches 49-53 at 100%: stage 4's 150 steps from fresh task layers underfit 1,000 images, and "
        "MF's stage-3 head (the linear probe alone gets 48 at 100%) is worth most where the fixed "
        "stage-4 budget covers the least of the data. With the paper's 5,000-step stages FT would not be "
        "budget-bound at 100%; not run here. " + DOWNA_NOTE,
        gain_shrinks=True,
    ),
    Row(
        "downa_mf_vs_ft_det",
        "MF beats fine-tuning on detection at 10% (AP50)",
        "sec. 8.3.2, Tables 25-26",
        DOWNA_DET,
        MF,
        FT,
        DOWNA_NOTE,
    ),
    Row(
        "downa_mf_vs_ft_seg",
        "MF beats fine-tuning on segmentation at 10% (mIoU)",
        "sec. 8.3.2, Tables 25-26",
        DOWNA_SEG,
        MF,
        FT,
        DOWNA_NOTE,
    ),
    Row(
        "downa_fd_reconstructed",
        "Reconstructed downstream images are closer to the upstream data than the originals (FD score)",
        "sec. 8.4, Table 28",
        Task(
            "gvb_world_fine",
            ("10pct",),
            "fd_reconstructed",
            "FD of Up-A features, upstream vs training images",
        ),
        MF,
        MF,
        "The model side is FD(upstream, reconstructed), the baseline FD(upstream, original), both over the "
        "500 upstream and the regime's training images with the adapted Up-A backbone as feature extractor.",
        lower_is_better=True,
        baseline_metric="fd_original",
    ),
    Row(
        "downa_contrastive",
        "MF with the sample-based contrastive term beats MF without it",
        "sec. 8.2, Table 29",
        DOWNA_FINE,
        MF,
        MF_NO_CONTRAST,
        DOWNA_NOTE,
    ),
)


# ---- jobs: keys, folders, command lines, the cache ----


@dataclass(frozen=True)
class Job:
    """One app process: its cache key, its folder (named by the key) and its command line."""

    key: str
    folder: Path
    argv: tuple[str, ...]


@dataclass(frozen=True)
class Done:
    """A finished job: its wall seconds when it ran, and whether this invocation reused it."""

    seconds: float
    cached: bool


class JobFailed(RuntimeError):
    """An app process that exited non-zero; the message names it, its last output line and its log."""


Outcome = Done | JobFailed
"""A job's fate in this invocation."""


def tree_hash(repo: Path) -> str:
    """SHA-256 over the path and content of every file of ``packages/*/src`` and ``conf/``."""
    roots = [*sorted((repo / "packages").glob("*/src")), repo / "conf"]
    files = sorted(
        path
        for root in roots
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and ".egg-info" not in str(path)
    )
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(repo)}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def cache_key(tree: str, spec: Sequence[str], seed: int, upstream: str | None = None) -> str:
    """The key of a job: the source tree's hash, its overrides, its seed and its upstream job's key."""
    payload = json.dumps({"tree": tree, "spec": list(spec), "seed": seed, "upstream": upstream})
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def pretrain_job(run: Pretrain, seed: int, tree: str, root: Path) -> Job:
    """The pretraining run of ``run`` at ``seed`` (its ``evaluate`` off: the rows bench its exports)."""
    overrides = (
        f"model={MODEL}",
        *run.overrides,
        "evaluate=null",
        "+trainer.limit_val_batches=0",
        "+trainer.enable_progress_bar=false",
    )
    parent = pretrain_job(run.parent, seed, tree, root) if run.parent else None
    key = cache_key(tree, ("intern_pretrain", *overrides), seed, parent.key if parent else None)
    folder = root / "runs" / f"{run.name}-seed{seed}-{key}"
    start = (f"stage.init_from={parent.folder / run.parent_export}",) if parent else ()
    argv = (sys.executable, "-m", "intern_pretrain", *overrides, *start, f"seed={seed}")
    return Job(key, folder, (*argv, f"hydra.run.dir={folder}"))


def pretrain_chain(run: Pretrain) -> list[Pretrain]:
    """``run`` and the runs it starts from, the first first."""
    return [*pretrain_chain(run.parent), run] if run.parent else [run]


def bench_job(model: Model, task: Task, seed: int, tree: str, root: Path) -> Job:
    """The bench cells of ``model`` on ``task`` (every split) at ``seed``."""
    upstream = pretrain_job(model.run, model.upstream_seed(seed), tree, root) if model.run else None
    backbone = f"checkpoint={upstream.folder / model.export}" if upstream else f"backbone={MODEL}"
    slug = re.sub(r"[^a-z0-9]+", "_", model.label.lower()).strip("_")
    overrides = (
        f"name={slug}",
        f"task={task.name}",
        f"splits=[{','.join(task.splits)}]",
        "tsne=false",
        "progress=false",
        *task.bench,
        *model.bench,
    )
    spec = ("intern_bench", model.export if upstream else "random_init", *overrides)
    key = cache_key(tree, spec, seed, upstream.key if upstream else None)
    folder = root / "bench" / f"{task.name}-{slug}-seed{seed}-{key}"
    argv = (
        sys.executable,
        "-m",
        "intern_bench",
        backbone,
        *overrides,
        f"seed={seed}",
        f"hydra.run.dir={folder}",
    )
    return Job(key, folder, argv)


def row_jobs(row: Row, seed: int, tree: str, root: Path) -> list[Job]:
    """Every job ``row`` needs at ``seed``, upstream runs first, then the model's bench cells and the
    baselines' (a search row: its two search runs)."""
    if isinstance(row, SearchRow):
        return [pretrain_job(m.run, seed, tree, root) for m in (row.model, row.baseline) if m.run]
    models = (row.model, *row.baselines)
    chains = [(run, m.upstream_seed(seed)) for m in models if m.run for run in pretrain_chain(m.run)]
    runs = {chain: pretrain_job(chain[0], chain[1], tree, root) for chain in chains}
    return [*runs.values(), *(bench_job(m, row.task, seed, tree, root) for m in models)]


def row_key(row: Row, seed: int, tree: str, root: Path) -> str:
    """The key of a row's result at ``seed``: the keys of its jobs (each holds the tree and its overrides)."""
    return cache_key(tree, [job.key for job in row_jobs(row, seed, tree, root)], seed)


def run_job(job: Job, env: Mapping[str, str]) -> Done:
    """Run ``job`` unless its folder holds a finished marker; its output goes to ``fidelity.log`` there.

    Raises:
        JobFailed: the process exited non-zero.
    """
    marker = job.folder / DONE
    if marker.is_file():
        return Done(float(json.loads(marker.read_text())["seconds"]), cached=True)
    job.folder.mkdir(parents=True, exist_ok=True)
    log = job.folder / "fidelity.log"
    started = time.perf_counter()
    with log.open("w") as handle:
        code = subprocess.run(
            list(job.argv), env=dict(env), stdout=handle, stderr=subprocess.STDOUT
        ).returncode
    seconds = time.perf_counter() - started
    if code != 0:
        lines = [line for line in log.read_text().splitlines() if line.strip()]
        last = lines[-1] if lines else "no output"
        raise JobFailed(f"`{' '.join(job.argv[1:4])} ...` exited {code}: {last} (log: {log})")
    record = {"key": job.key, "argv": list(job.argv), "seconds": round(seconds, 1), "finished": _now()}
    atomic_write_text(marker, json.dumps(record, indent=2))
    return Done(seconds, cached=False)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# ---- measuring a row ----


@dataclass
class Measured:
    """A row's numbers: ``values[split][seed] = (model, baseline)``; ``error`` when a run failed."""

    row: Row
    seeds: tuple[int, ...]
    values: dict[str, dict[int, tuple[float, float]]] = field(default_factory=dict)
    setup: str = ""
    seconds: float = 0.0  # wall seconds of its jobs when they ran (a job shared by two rows counts in both)
    cached: bool = True  # every job reused
    error: str | None = None


def cell_value(folder: Path, task: Task, split: str, metric: str | None = None) -> float:
    """``metric`` (default ``task.metric``) of the bench result for ``split`` under ``folder``."""
    found = [r for r in load_results(folder) if r.task == task.name and r.split == split]
    if not found:
        raise JobFailed(f"no {task.name} {split} result under {folder}")
    return float(found[-1].metrics[metric or task.metric])


def shrinking_gain(
    values: dict[str, dict[int, tuple[float, float]]],
) -> dict[str, dict[int, tuple[float, float]]]:
    """The gain (model minus baseline) at the first split against the gain at the last, per seed."""
    first, last = list(values)[0], list(values)[-1]
    pairs = {
        seed: (a - b, values[last][seed][0] - values[last][seed][1]) for seed, (a, b) in values[first].items()
    }
    return {f"gain at {first} vs gain at {last}": pairs}


def describe_run(folder: Path) -> str:
    """A pretraining run in words from its phases' summaries and configs: steps, batch, model, size."""
    phases = [*sorted(p.parent for p in folder.glob("*/summary.json")), folder]
    said = []
    for phase in phases:
        summary = json.loads((phase / "summary.json").read_text())
        batch = yaml.safe_load((phase / "config.yaml").read_text())["stage"]["data"]["batch_size"]
        said.append(f"{summary['stage']} {summary['steps']} steps of {batch}")
    model = yaml.safe_load((folder / "config.yaml").read_text())["model"]
    return f"{' + '.join(said)}; {model['name']} at {model['img_size']} px"


def search_values(row: SearchRow, ours: Path, theirs: Path) -> dict[str, tuple[float, float]]:
    """A search row's (model, baseline) per split, from the controller run ``ours`` and the random run
    ``theirs``: best rewards (x100), or each family member's accuracy against the random front's (%)."""
    random_log = read_log(theirs)
    if row.measure_key == "best_reward":
        controller_log = read_log(ours)
        best = [100 * max(r["reward"] for r in log) for log in (controller_log, random_log)]
        return {"best reward x100": (best[0], best[1])}
    family = json.loads((ours / "summary.json").read_text())["family"]
    values = {}
    for member in family:
        below = [r["accuracy"] for r in random_log if r["macs"] <= member["macs"]]
        values[f"{member['name']} accuracy (%)"] = (100 * member["accuracy"], 100 * max(below, default=0.0))
    return values


def describe_search(folder: Path) -> str:
    """A search run in words from its config."""
    stage = yaml.safe_load((folder / "config.yaml").read_text())["stage"]
    search, proxy = stage["search"], stage["proxy"]["train"]
    said = (
        f"{search['evaluations']} architectures ({search['policy']}, {search['batch']} per update), "
        f"{proxy['steps']} proxy steps of {proxy['batch_size']} at {search['img_size']} px, "
        f"target {search['target_macs'] / 1e6:g}M MACs"
    )
    if stage["top_k"]["k"]:
        said += (
            f"; top {stage['top_k']['k']} retrained {stage['top_k']['steps']} steps; scaled "
            f"x{', x'.join(f'{m:g}' for m in stage['scaling']['multiples'])} over depth coefficients "
            f"{stage['scaling']['depth_coefs']} by {stage['scaling']['steps']}-step training loss"
        )
    return said


def measure(
    row: Row, seeds: Sequence[int], tree: str, root: Path, env: Mapping[str, str], done: dict[str, Outcome]
) -> Measured:
    """Run (or reuse) every job of ``row`` for ``seeds`` and read its numbers; ``done`` memoises jobs."""
    measured = Measured(row, tuple(seeds))
    for seed in seeds:
        jobs = row_jobs(row, seed, tree, root)
        try:
            for job in jobs:
                finished = outcome(job, env, done)
                measured.seconds += finished.seconds
                measured.cached = measured.cached and finished.cached
            if isinstance(row, SearchRow):
                for split, pair in search_values(row, jobs[0].folder, jobs[1].folder).items():
                    measured.values.setdefault(split, {})[seed] = pair
                continue
            ours, *theirs = jobs[-1 - len(row.baselines) :]
            pick = min if row.lower_is_better else max
            for split in row.claim_splits:
                best = pick(cell_value(job.folder, row.task, split, row.baseline_metric) for job in theirs)
                measured.values.setdefault(split, {})[seed] = (cell_value(ours.folder, row.task, split), best)
        except JobFailed as err:
            measured.error = str(err)
            return measured
    if row.gain_shrinks:
        measured.values = shrinking_gain(measured.values)
    measured.setup = setup_text(row, seeds[0], tree, root)
    return measured


def outcome(job: Job, env: Mapping[str, str], done: dict[str, Outcome]) -> Done:
    """``job``'s run, once per invocation: a job shared by rows (or one that failed) is not run again.

    Raises:
        JobFailed: the job failed, now or earlier in this invocation.
    """
    if job.key not in done:
        try:
            done[job.key] = finished = run_job(job, env)
            state = "cached" if finished.cached else "ran"
            print(f"  {job.folder.name}: {state}, {finished.seconds:.0f} s", flush=True)
        except JobFailed as err:
            done[job.key] = err
            print(f"  {job.folder.name}: failed", flush=True)
    found = done[job.key]
    if isinstance(found, JobFailed):
        raise found
    return found


def setup_text(row: Row, seed: int, tree: str, root: Path) -> str:
    """What was run: each pretraining run of the row in words (from its ``seed`` run), then the bench
    protocol and the models' own bench overrides."""
    models = (row.model, *row.baselines)
    if isinstance(row, SearchRow):
        jobs = row_jobs(row, seed, tree, root)
        return "<br>".join(
            f"{m.label}: {describe_search(j.folder)}" for m, j in zip(models, jobs, strict=True)
        )
    runs = dict.fromkeys(
        (run, m.upstream_seed(seed)) for m in models if m.run for run in pretrain_chain(m.run)
    )
    said = [
        f"`{' '.join(run.overrides)}` (seed {run_seed}): "
        f"{describe_run(pretrain_job(run, run_seed, tree, root).folder)}"
        for run, run_seed in runs
    ]
    bench = [f"{m.label}: `{' '.join(m.bench)}`" for m in (row.model, *row.baselines) if m.bench]
    protocol = f"{row.task.protocol}, {', '.join(row.task.splits)}"
    return "<br>".join([*said, "; ".join([protocol, *bench])])


# ---- verdicts and the Markdown ----


def split_verdict(pairs: Mapping[int, tuple[float, float]], sign: int = 1) -> tuple[bool, float, int]:
    """(holds, mean gain, seeds won) of one split: see ``RULE`` (``sign`` -1: lower is better)."""
    gains = [sign * (ours - theirs) for ours, theirs in pairs.values()]
    wins = sum(gain > 0 for gain in gains)
    mean = statistics.fmean(gains)
    return mean > 0 and wins > len(gains) / 2, mean, wins


def verdict(measured: Measured) -> str:
    """``holds`` or ``does not hold`` (with the splits that failed), then the row's note; or ``not
    measurable yet`` with the reason."""
    if measured.error:
        return f"**not measurable yet**: {measured.error}"
    failed = []
    for split, pairs in measured.values.items():
        holds, mean, wins = split_verdict(pairs, -1 if measured.row.lower_is_better else 1)
        if not holds:
            failed.append(f"{split}: mean gain {mean:+.1f}, won {wins} of {len(pairs)} seeds")
    said = f"**does not hold** ({'; '.join(failed)})." if failed else "**holds**."
    return f"{said} {measured.row.note}".strip()


def values_text(measured: Measured) -> str:
    """Per split: model vs baseline per seed, then the means and the mean gain."""
    lines = []
    for split, pairs in measured.values.items():
        seeds = ", ".join(f"s{seed} {a:.1f} vs {b:.1f}" for seed, (a, b) in pairs.items())
        ours = statistics.fmean(a for a, _ in pairs.values())
        theirs = statistics.fmean(b for _, b in pairs.values())
        lines.append(f"{split}: {seeds}; mean {ours:.1f} vs {theirs:.1f} ({ours - theirs:+.1f})")
    return "<br>".join(lines) or "-"


def render_row(measured: Measured) -> str:
    """One Markdown table row of a claim."""
    row = measured.row
    against = row.baseline.label if not row.others else "best of " + ", ".join(m.label for m in row.baselines)
    metric = row.task.metric + (f" vs {row.baseline_metric}" if row.baseline_metric else "")
    models = f"{row.model.label} vs {against}, {row.task.name}" + (
        "" if isinstance(row, SearchRow) else f" {metric}"
    )
    cells = [
        f"{row.claim} (`{row.id}`)",
        row.source,
        measured.setup or "-",
        ", ".join(map(str, measured.seeds)),
        f"{models}:<br>{values_text(measured)}",
        verdict(measured),
    ]
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def kept_rows(out: Path, measured: Iterable[str]) -> dict[str, str]:
    """The table lines of ``out`` (an earlier FIDELITY.md) of the rows not measured now, by row id."""
    if not out.is_file():
        return {}
    skip, kept = set(measured), {}
    for line in out.read_text().splitlines():
        found = re.match(r"\| .*?\(`([a-z0-9_]+)`\) \|", line)
        if found and found.group(1) not in skip and found.group(1) in {r.id for r in ROWS}:
            kept[found.group(1)] = line
    return kept


def render(measured: Iterable[Measured], header: Mapping[str, str], kept: Mapping[str, str]) -> str:
    """The whole FIDELITY.md: how it was made, the rule, the table (rows not measured now as ``kept``
    has them), the notes."""
    fresh = {m.row.id: render_row(m) for m in measured}
    table = [fresh.get(row.id) or kept[row.id] for row in ROWS if row.id in fresh or row.id in kept]
    note = (
        f" Rows kept from the file's previous version (not run by this command): {', '.join(kept)}."
        if kept
        else ""
    )
    lines = [
        "# Fidelity: the paper's claims, measured",
        "",
        f"Generated by `{header['command']}` on {header['date']} ({header['machine']}); do not edit by hand.",
        f"Total cost: {header['cost']}.{note} {RULE}",
        "",
        "| Claim | Paper | What was run | Seeds | Measured (model vs baseline, per seed; mean) | Verdict |",
        "|---|---|---|---|---|---|",
        *table,
        "",
        "Up-A-G's numbers in every row come from the `upa_g` phase of the seed's `stage=upa` run (its",
        "`upa_g/export`); the Up-A-L row benchmarks the same run's final export. Up-A-L trains only the",
        "FPN and box head on the frozen Up-A-G backbone, so Up-A's classification probe is Up-A-G's.",
        "Pretraining runs use the stage defaults with validation off (`+trainer.limit_val_batches=0`, no",
        "downstream probe callback) and their own `evaluate` off; each bench cell runs",
        "`python -m intern_bench` at the row's seed (the seed draws the 10% regime, the head's training",
        "and the random-init weights).",
        "",
        "The Up-E rows start each expert from its seed's `stage=upa` export (`stage.init_from`), at CPU",
        "length (classification 150 steps of 64 over its three sources, detection and segmentation 100",
        "steps of 16 over their two); a single-source baseline trains the same steps on one source, and",
        "the row compares the expert with the best of them per seed and split. Their dense cells train",
        "the task head for at least 100 optimiser steps (`dense.min_steps=100`), both sides alike.",
        "",
        "The search rows run `python -m intern_pretrain stage=search` twice per seed, the controller arm",
        "and the uniform random arm (`stage.search.policy=random`), with the same budget and proxy; both",
        "read the same proxy cache, so an architecture drawn by both arms is trained once per seed.",
        "",
        "The Down-A rows adapt the seed-0 `stage=upa` export with each method (`protocol=lp|ft|mf`, the",
        "`conf/downa/default.yaml` settings); the row's seed draws the regime, its validation carve-out",
        "and every stage's training. One VQ-GAN (stage 1) serves every MF cell: trained on the upstream",
        "world images (`world_captions`) with the Up-A backbone as its perceptual network.",
        "",
    ]
    return "\n".join(lines)


# ---- the command line ----


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1", help="comma-separated seeds (default 0,1)")
    parser.add_argument("--rows", default=",".join(r.id for r in ROWS), help="comma-separated row ids")
    parser.add_argument("--root", type=Path, default=REPO / "fidelity", help="job cache and INTERN_ROOT")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "FIDELITY.md")
    args = parser.parse_args(argv)
    known = {r.id: r for r in ROWS}
    if unknown := sorted(set(args.rows.split(",")) - set(known)):
        parser.error(f"unknown rows {unknown}; choose from {', '.join(known)}")
    args.rows = [known[name] for name in args.rows.split(",")]
    args.seeds = [int(s) for s in args.seeds.split(",")]
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    root = args.root.resolve()
    tree = tree_hash(REPO)
    env = {**os.environ, "INTERN_ROOT": str(root)}
    started = time.perf_counter()
    done: dict[str, Outcome] = {}
    results = []
    for row in args.rows:
        keys = ", ".join(row_key(row, seed, tree, root) for seed in args.seeds)
        print(f"{row.id} (seeds {args.seeds}; row keys {keys})", flush=True)
        measured = measure(row, args.seeds, tree, root, env, done)
        state = "cached" if measured.cached else "ran"
        print(f"{row.id}: {measured.seconds:.0f} s of runs ({state}); {verdict(measured)}", flush=True)
        results.append(measured)
    total = sum(d.seconds for d in done.values() if isinstance(d, Done))
    spent = time.perf_counter() - started
    command = ["benchmarks/fidelity.py", *(sys.argv[1:] if argv is None else argv)]
    header = {
        "command": "python " + shlex.join(command),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{len(os.sched_getaffinity(0))} CPU cores, OMP_NUM_THREADS="
        + os.environ.get("OMP_NUM_THREADS", "unset"),
        "cost": f"{total / 60:.1f} min of runs ({len(done)} jobs), {spent / 60:.1f} min in this invocation",
    }
    kept = kept_rows(args.out, [m.row.id for m in results])
    atomic_write_text(args.out, render(results, header, kept))
    print(f"{args.out}: {total:.0f} s of runs, {spent:.0f} s in this invocation")


if __name__ == "__main__":
    main()
