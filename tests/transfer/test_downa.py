"""Down-A's methods on a small world task: stage 3 leaves the backbone bit for bit, the reconstructed
split keeps every label, a killed stage-4 point resumes to the unbroken result, the contrastive term
trains its projector and moves its momentum copy by EMA, and the export rebuilds with intern-arch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from safetensors.torch import load_file

import intern_arch
from intern_data.regimes import CarvedRegime, carved_regime
from intern_data.shards import ShardDataset, write_shards
from intern_data.world.datasets import generate, get_dataset
from intern_transfer.downa import (
    VQGAN,
    ContrastSettings,
    StageGrid,
    TransferData,
    TransferPlan,
    TransferTask,
    VQGANConfig,
    attach_contrast,
    default_metric,
    export_adapted,
    run_transfer,
)
from intern_transfer.downa.reconstruct import reconstruct_split
from intern_transfer.runs import ExactResume

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = 32


def world_split(root: Path, name: str, split: str, count: int) -> None:
    write_shards(
        generate(name, split, count=count), root, name, split, label_space=get_dataset(name).label_space
    )


@pytest.fixture(scope="module")
def cls_task(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CarvedRegime]:
    root = tmp_path_factory.mktemp("cls") / "gvb_world_cls"
    world_split(root, "gvb_world_cls", "train", 54)
    world_split(root, "gvb_world_cls", "test", 16)
    return root, carved_regime(root, "train", "100pct", 0, 0.25, by_class=True)


def classification() -> TransferTask:
    return TransferTask("classification", 18, SIZE, *default_metric("classification", 18))


class Killed(Exception):
    """The interruption :class:`Interrupt` raises."""


class Interrupt(L.Callback):
    """Stands in for a kill: raises after optimiser step ``step``, before that step's checkpoint."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step == self.step:
            raise Killed


def trainers(*extra: L.Callback) -> Any:
    def make(folder: Path, /, **overrides: Any) -> L.Trainer:
        every_step = ModelCheckpoint(dirpath=folder / "checkpoints", filename="step", every_n_train_steps=1)
        callbacks = [every_step, ExactResume(), *extra]
        return L.Trainer(
            default_root_dir=folder, logger=False, enable_progress_bar=False, callbacks=callbacks, **overrides
        )

    return make


def test_stage3_trains_the_new_layers_on_reconstructions_and_stage4_everything(
    cls_task: tuple[Path, CarvedRegime], tmp_path: Path
) -> None:
    root, regime = cls_task
    vqgan = VQGAN(VQGANConfig(channels=8, channel_mult=(1, 2), embed_dim=8, codebook_size=16))
    recon = reconstruct_split(vqgan, regime.root, "train", tmp_path / "recon")
    original = list(ShardDataset(regime.root, split="train", batch_size=1).scan())
    rebuilt = list(ShardDataset(recon, split="train", batch_size=1).scan())
    assert [(s["__key__"], s["label"]) for s in rebuilt] == [(s["__key__"], s["label"]) for s in original]
    assert not torch.equal(rebuilt[0]["image"], original[0]["image"])

    backbone = intern_arch.create_model("mnb_test", num_classes=0)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    head = StageGrid(steps=3, batch_size=8, lrs=(0.01, 0.1), weight_decays=(1e-5,))
    full = StageGrid(steps=3, batch_size=8, lrs=(0.01,), weight_decays=(1e-5,))
    plan = TransferPlan("mf", head, full)
    data = TransferData(regime.root, (root, "test"), recon)
    outcome = run_transfer(plan, classification(), backbone, data, tmp_path / "run", trainers())

    assert set(outcome.chosen) == {"head", "full"} and len(outcome.points) == 3
    assert 0 <= outcome.test["accuracy"] <= 1
    stage3 = load_file(Path(outcome.chosen["head"].folder) / "model.safetensors")
    assert all(torch.equal(stage3[f"backbone.{k}"], v) for k, v in before.items())  # bit for bit
    stage4 = load_file(Path(outcome.chosen["full"].folder) / "model.safetensors")
    assert not all(
        torch.equal(stage4[f"backbone.{k}"], v) for k, v in before.items() if v.is_floating_point()
    )
    unchosen = [p for p in outcome.points if p is not outcome.chosen["head"] and p.stage == "head"]
    assert not (Path(unchosen[0].folder) / "model.safetensors").exists()  # only the chosen point's weights


def test_a_killed_stage4_point_resumes_to_the_unbroken_result(
    cls_task: tuple[Path, CarvedRegime], tmp_path: Path
) -> None:
    root, regime = cls_task
    grid = StageGrid(steps=6, batch_size=8, lrs=(0.05,), weight_decays=(1e-4,), milestones=(0.5,))
    plan = TransferPlan("ft", grid, grid)
    data = TransferData(regime.root, (root, "test"))

    def run(folder: Path, *extra: L.Callback) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        backbone = intern_arch.create_model("mnb_test")
        outcome = run_transfer(plan, classification(), backbone, data, folder, trainers(*extra), seed=3)
        return load_file(Path(outcome.chosen["full"].folder) / "model.safetensors")

    unbroken = run(tmp_path / "unbroken")
    with pytest.raises(Killed):
        run(tmp_path / "broken", Interrupt(4))  # mid-epoch: 34 images of 8 a batch
    assert not list((tmp_path / "broken").rglob("point.json"))
    resumed = run(tmp_path / "broken")
    assert unbroken.keys() == resumed.keys()
    assert all(torch.equal(unbroken[k], resumed[k]) for k in unbroken)


@pytest.mark.parametrize(
    ("task_type", "name", "classes"),
    [
        ("classification", "gvb_world_cls", 18),
        ("segmentation", "gvb_world_seg", 8),
        ("detection", "gvb_world_det", 4),
    ],
)
def test_contrastive_term_trains_its_projector_and_moves_its_momentum_copy_by_ema(
    tmp_path: Path, task_type: str, name: str, classes: int
) -> None:
    world_split(tmp_path, name, "train", 8)
    kwargs = {"atrous_rates": (1, 2, 3)} if task_type == "segmentation" else {}
    task = TransferTask(task_type, classes, SIZE, *default_metric(task_type, classes), kwargs)
    module = task.adapter(intern_arch.create_model("mnb_test"), freeze_backbone=False, max_steps=4)
    settings = ContrastSettings(queue_size=64, momentum=0.9)
    attach_contrast(module, task_type, SIZE, settings)
    term = module.auxiliary
    optimizer = torch.optim.SGD([p for p in module.parameters() if p.requires_grad], lr=0.1)
    data = task.datamodule(tmp_path, train="train", batch_size=4)
    data.setup("fit")
    batches = list(data.train_dataloader())
    for batch in batches:
        optimizer.zero_grad()
        contrast = term(module, batch)
        contrast.backward()
        momentum_before = [p.clone() for p in term.momentum.parameters()]
        optimizer.step()
        module.on_train_batch_end(None, batch, 0)
    assert contrast > 0  # the second batch has the first one's keys as negatives
    assert all(p.grad is None for p in term.momentum.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in term.projector.parameters())
    online = [*term.online_encoder(module).parameters(), *term.projector.parameters()]
    after = list(term.momentum.parameters())
    torch.testing.assert_close(after[-1], 0.9 * momentum_before[-1] + 0.1 * online[-1], rtol=0, atol=1e-7)


def test_export_rebuilds_the_adapted_classifier_with_intern_arch_alone(
    cls_task: tuple[Path, CarvedRegime], tmp_path: Path
) -> None:
    module = classification().adapter(intern_arch.create_model("mnb_test"), freeze_backbone=False)
    torch.nn.init.normal_(module.model.fc.weight)
    folder = export_adapted(
        module, "classification", "gvb_world_cls", tmp_path / "export", parent="x", extra={}
    )
    handover = intern_arch.load_handover(folder)
    images = torch.rand(2, 3, SIZE, SIZE)
    module.eval()
    pooled = handover.backbone.forward_head(
        handover.backbone.forward_features(module.preprocess(images)), True
    )
    torch.testing.assert_close(handover.parts["heads/gvb_world_cls"](pooled), module(images))
