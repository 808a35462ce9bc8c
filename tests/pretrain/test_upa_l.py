"""Up-A-L: data and module from an Up-A-G hand-over, a short fit, the hand-over with neck and box head."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf

import intern_arch
from intern_arch import build_faster_rcnn, load_handover
from intern_arch.checkpoint import read_config
from intern_pretrain.upa_l import UpaLModule, local_views_data, momentum_at, proposals_path
from intern_transfer.schedules import warmup_cosine

CONF = Path(__file__).resolve().parents[2] / "conf"
STEPS = 3
SMALL = {"fpn_channels": 32, "head_dim": 64, "proj_hidden": 128, "proj_dim": 32, "pred_hidden": 128}


def build(tmp: Path, backbone: torch.nn.Module) -> tuple[UpaLModule, Any]:
    """The stage's own data and module settings (conf/stage/upa_l.yaml), shrunk, over a tiny world
    image-text set in ``tmp``."""
    stage = OmegaConf.to_container(OmegaConf.load(CONF / "stage" / "upa_l.yaml"))
    source = {"name": "world_captions", "source": "world", "task": "image-text", "splits": ["train"],
              "seed": 0, "img_size": 64, "sizes": {"train": 16}, "cache_dir": str(tmp / "cache")}  # fmt: skip
    settings = {k: v for k, v in stage["data"].items() if k != "_target_"}
    settings.update(batch_size=4, shuffle_buffer=8, samples_per_epoch=8)
    data = local_views_data(source=source, run_dir=tmp, seed=0, backbone=backbone, **settings)
    options = {
        k: v
        for k, v in stage["module"].items()
        if k not in ("_target_", "_convert_", "optimizer", "scheduler")
    }
    module = UpaLModule(
        backbone, **{**options, **SMALL, "seed": 0},
        optimizer=functools.partial(torch.optim.AdamW, lr=1e-3, weight_decay=1e-5),
        scheduler=functools.partial(warmup_cosine, warmup_steps=1),
    )  # fmt: skip
    return module, data.datamodule


class Snapshot(L.Callback):
    """Online and target tensors after the last optimiser step, before the module's momentum update."""

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, *args: Any) -> None:
        model = pl_module.model
        self.online = [p.detach().clone() for p in model.fpn.fpn.parameters()]
        self.online += [p.detach().clone() for p in model.head.parameters()]
        self.target = [p.detach().clone() for p in model.target["fpn"].parameters()]
        self.target += [p.detach().clone() for p in model.target["head"].parameters()]
        self.step = trainer.global_step


def clone_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Build from a fresh random mnb_test hand-over, fit STEPS steps, export."""
    tmp = tmp_path_factory.mktemp("upa_l")
    torch.manual_seed(0)
    intern_arch.save_pretrained(intern_arch.create_model("mnb_test"), tmp / "upa_g", stage="upa_g")
    module, datamodule = build(tmp, load_handover(tmp / "upa_g").backbone)
    before = {
        "backbone": clone_state(module.backbone),
        "fpn": clone_state(module.model.fpn.fpn),
        "head": clone_state(module.model.head),
        "target": clone_state(module.model.target),
    }
    snapshot = Snapshot()
    trainer = L.Trainer(
        max_steps=STEPS,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[snapshot],
    )
    trainer.fit(module, datamodule=datamodule)
    export = module.export(tmp / "export", stage="upa_l", parent=str(tmp / "upa_g"))
    return {
        "tmp": tmp,
        "module": module,
        "datamodule": datamodule,
        "trainer": trainer,
        "before": before,
        "snapshot": snapshot,
        "export": export,
    }


def test_fit_trains_neck_and_head_on_a_frozen_backbone(run: dict[str, Any]) -> None:
    module, before, trainer = run["module"], run["before"], run["trainer"]
    assert trainer.global_step == STEPS
    for name, tensor in module.backbone.state_dict().items():  # weights and BatchNorm statistics
        assert torch.equal(tensor, before["backbone"][name]), name
    assert all(not p.requires_grad for p in module.backbone.parameters())
    for part, online in (("fpn", module.model.fpn.fpn), ("head", module.model.head)):
        changed = [not torch.equal(v, before[part][k]) for k, v in online.state_dict().items()]
        assert all(changed[:1]) and sum(changed) > len(changed) // 2, part
    metrics = trainer.callback_metrics
    assert torch.isfinite(metrics["train/loss"]) and -4 <= metrics["train/loss"].item() <= 4
    assert metrics["train/momentum"].item() == pytest.approx(momentum_at(STEPS - 1, STEPS, 0.99))


def test_target_follows_online_by_the_momentum_schedule(run: dict[str, Any]) -> None:
    module, snapshot, before = run["module"], run["snapshot"], run["before"]
    target = [*module.model.target["fpn"].parameters(), *module.model.target["head"].parameters()]
    moved = module.model.target.state_dict()
    assert any(not torch.equal(moved[k], v) for k, v in before["target"].items())
    assert snapshot.step == STEPS
    momentum = momentum_at(STEPS - 1, STEPS, module.hparams.base_momentum)
    for t0, online, t in zip(snapshot.target, snapshot.online, target, strict=True):
        torch.testing.assert_close(t, momentum * t0 + (1 - momentum) * online)


def test_reader_position_is_in_the_datamodule_state(run: dict[str, Any]) -> None:
    position = run["datamodule"].state_dict()["reader"]
    assert position["epoch"] * len(run["trainer"].train_dataloader) + position["batches"] == STEPS


def test_export_holds_neck_and_box_head_and_starts_a_faster_rcnn(run: dict[str, Any]) -> None:
    module, folder = run["module"], run["export"]
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "heads", "model.safetensors", "neck"]
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".export")]  # no temp left
    config = read_config(folder)
    assert config["stage"] == "upa_l" and config["parent"] == str(run["tmp"] / "upa_g")
    handover = load_handover(folder)
    own = module.backbone.state_dict()
    assert all(torch.equal(v, own[k]) for k, v in handover.backbone.state_dict().items())
    for trained, loaded in (
        (module.model.fpn.fpn, handover.neck.fpn),
        (module.model.head, handover.heads["box"]),
    ):
        for (k, v), (k2, v2) in zip(trained.state_dict().items(), loaded.state_dict().items(), strict=True):
            assert k == k2 and torch.equal(v, v2), k
    assert handover.neck.names == ["P2", "P3", "P4", "P5"]

    detector = build_faster_rcnn(handover.backbone, 5, min_size=64, max_size=64, neck=handover.neck,
                                 box_head=handover.heads["box"]).eval()  # fmt: skip
    loaded = detector.state_dict()
    assert all(
        torch.equal(loaded[f"backbone.fpn.{k}"], v) for k, v in module.model.fpn.fpn.state_dict().items()
    )
    assert all(
        torch.equal(loaded[f"roi_heads.box_head.{k}"], v) for k, v in module.model.head.state_dict().items()
    )
    assert all(torch.equal(loaded[f"backbone.body.backbone.{k}"], v) for k, v in own.items())
    with torch.no_grad():
        (out,) = detector([torch.rand(3, 64, 64)])
    assert set(out) == {"boxes", "labels", "scores"}


def test_proposals_computed_once_and_reused(run: dict[str, Any]) -> None:
    datamodule = run["datamodule"]
    sidecar = proposals_path(datamodule.roots[0], "train")
    assert sidecar.is_file()
    stamp = sidecar.stat().st_mtime_ns
    _, again = build(run["tmp"], run["module"].backbone)
    assert again.roots == datamodule.roots
    assert sidecar.stat().st_mtime_ns == stamp
    assert again.proposals().keys() == datamodule.proposals().keys()


def test_size_levels_follow_each_views_side(run: dict[str, Any]) -> None:
    module = UpaLModule(
        run["module"].backbone,
        optimizer=torch.optim.AdamW,
        fpn_channels=16,
        head_dim=32,
        proj_hidden=32,
        proj_dim=16,
        pred_hidden=32,
        levels="size",
    )
    whole = [
        torch.tensor([[[0.0, 0.0, 64.0, 64.0], [0.0, 0.0, 8.0, 8.0]]]),
        torch.tensor([[[0, 0, 32.0, 32]] * 2]),
    ]
    levels = module.assign_levels(whole, [64, 32])
    assert levels[0].tolist() == [[2, 0]]  # the whole view goes to P4, an eighth of it to P2 (floor(4 - 3))
    assert levels[1].tolist() == [[2, 2]]
