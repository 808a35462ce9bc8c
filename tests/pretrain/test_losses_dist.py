"""Contrastive losses on 2 gloo processes give the numbers and gradients of one process.

Gradient convention: each rank's loss is the mean over its local rows against the gathered columns, so
the one-process loss on the whole batch is the *mean* of the per-rank losses. DDP averages parameter
gradients over ranks, which therefore equals the one-process parameter gradient. The gradient that
reaches a rank's *inputs* is not averaged: the all-gather's backward sums what every rank's loss sends
to these rows, i.e. it is the gradient of the *sum* of the per-rank losses, `world_size` times the
one-process input gradient.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from intern_pretrain.core import LogitScale
from intern_pretrain.upa_g import Objective, StepOutputs, TowerDims
from intern_pretrain.upa_g.terms import ClipLoss, ContrastiveTerm, MaskedLanguageTerm

from ..conftest import run_ranks

pytestmark = pytest.mark.dist

WORLD = 2
BATCH = 8  # global; each rank holds BATCH // WORLD rows


class _ClipModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.img = nn.Linear(6, 4)
        self.txt = nn.Linear(5, 4)
        self.scale = LogitScale()
        self.loss = ClipLoss(normalize=True)

    def forward(self, x_img: torch.Tensor, x_txt: torch.Tensor) -> torch.Tensor:
        return self.loss(self.img(x_img), self.txt(x_txt), self.scale())


class _GroupModel(nn.Module):
    """Up-A-G's objective with two views of each and MLM (SimSiam is off: its BatchNorm statistics are
    per process, SyncBatchNorm needs CUDA; STS queues are per process by design)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.img = nn.Linear(6, 4)
        self.txt = nn.Linear(5, 4)
        self.scale = LogitScale()
        dims = TowerDims(feature_dim=6, embed_dim=4, text_width=5, vocab_size=11)
        self.mlm = MaskedLanguageTerm(dims)
        self.objective = Objective(
            {"cl": ContrastiveTerm(dims, image_views=2, text_views=2), "mlm": self.mlm}
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        unit = torch.nn.functional.normalize
        out = StepOutputs(
            image_features=[batch["img0"], batch["img1"]],
            image_embeds=[unit(self.img(batch["img0"]), dim=-1), unit(self.img(batch["img1"]), dim=-1)],
            text_embeds=[unit(self.txt(batch["txt0"]), dim=-1), unit(self.txt(batch["txt1"]), dim=-1)],
            logit_scale=self.scale(),
            text_copies={id(self.mlm): (batch["tokens"], batch["labels"])},
        )
        return self.objective(out)[0]


def _data() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(42)
    labels = torch.full((BATCH, 3), -100)
    labels[:3, :] = torch.randint(0, 11, (3, 3), generator=g)  # rank 0 masks 9 tokens, rank 1 only 2
    labels[5, 1], labels[7, 0] = 3, 9
    return {
        "img0": torch.randn(BATCH, 6, generator=g),
        "img1": torch.randn(BATCH, 6, generator=g),
        "txt0": torch.randn(BATCH, 5, generator=g),
        "txt1": torch.randn(BATCH, 5, generator=g),
        "tokens": torch.randn(BATCH, 3, 5, generator=g),
        "labels": labels,
    }


def _run(model: nn.Module, batch: dict[str, torch.Tensor], clip: bool) -> tuple[torch.Tensor, dict, dict]:
    """Loss, parameter gradients and input gradients of one forward-backward."""
    inputs = {k: (v.clone().requires_grad_(True) if v.is_floating_point() else v) for k, v in batch.items()}
    loss = model(inputs["img0"], inputs["txt0"]) if clip else model(inputs)
    loss.backward()
    module = model.module if isinstance(model, DDP) else model
    params = {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}
    grads = {k: v.grad.clone() for k, v in inputs.items() if v.grad is not None}
    return loss.detach(), params, grads


def _max_diff(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> float:
    return max(float((got[k] - want[k]).abs().max()) for k in got)


def _worker(rank: int, init: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    data = _data()
    refs = {
        name: _run(cls(), data, name == "clip")
        for name, cls in (("clip", _ClipModel), ("group", _GroupModel))
    }

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=WORLD)
    try:
        local = slice(rank * BATCH // WORLD, (rank + 1) * BATCH // WORLD)
        shard = {k: v[local] for k, v in data.items()}
        report = {}
        for name, cls in (("clip", _ClipModel), ("group", _GroupModel)):
            ref_loss, ref_params, ref_inputs = refs[name]
            loss, params, inputs = _run(DDP(cls()), shard, name == "clip")
            mean_loss = loss.clone()
            dist.all_reduce(mean_loss)
            torch.testing.assert_close(mean_loss / WORLD, ref_loss, msg=f"{name}: loss")
            assert set(params) == set(ref_params)
            for n, g in params.items():
                torch.testing.assert_close(g, ref_params[n], msg=f"{name}: grad of {n}")
            assert set(inputs) == set(ref_inputs) and inputs
            for k, g in inputs.items():
                torch.testing.assert_close(g / WORLD, ref_inputs[k][local], msg=f"{name}: grad of input {k}")
            ref_local = {k: ref_inputs[k][local] for k in inputs}
            report[name] = {
                "loss": float((mean_loss / WORLD - ref_loss).abs()),
                "params": _max_diff(params, ref_params),
                "inputs": _max_diff({k: g / WORLD for k, g in inputs.items()}, ref_local),
                "compared": len(params) + len(inputs),
            }
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(report))
    finally:
        dist.destroy_process_group()


def test_clip_and_objective_match_one_process(tmp_path: Path) -> None:
    run_ranks(_worker, (f"file://{tmp_path}/init", str(tmp_path)), world=WORLD)
    for rank in range(WORLD):  # each rank's largest difference from the one-process reference
        report = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert set(report) == {"clip", "group"}
        for name, diffs in report.items():
            assert diffs["compared"] > 2, name
            assert max(diffs["loss"], diffs["params"], diffs["inputs"]) < 1e-5, (rank, name, diffs)
