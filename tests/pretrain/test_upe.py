"""Up-E: label-space maps, zero foreign gradients, per-source sub-batches, DDP against one process, resume
after SIGKILL, and one-line errors (paper 6.1-6.4)."""

from __future__ import annotations

import functools
import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file

import intern_arch
from intern_arch import load_handover, save_handover
from intern_arch.heads import BoxHead
from intern_arch.necks import FPN
from intern_data.label_space import LabelSpace
from intern_data.labels import Concept, build_taxonomy
from intern_data.labels.world import world_concepts
from intern_data.world import get_dataset
from intern_data.world.categories import FINES
from intern_pretrain.app.sources import source_configs
from intern_pretrain.core import StageConfigError
from intern_pretrain.upe import (
    ClassificationExpert,
    DetectionExpert,
    SegmentationExpert,
    SourceHeads,
    expert_data,
    merged_labels,
)

from ..conftest import KILLER, app_command, app_processes

pytestmark = pytest.mark.usefixtures("one_thread")

CONF = Path(__file__).resolve().parents[2] / "conf"
SGD = functools.partial(torch.optim.SGD, lr=0.1)
A = LabelSpace("a", ("daisy", "aster", "bangle"))
B = LabelSpace("b", ("bangle", "carp", "flower"))
# A tiny Up-E (C) run: three sources of 24 images at 32 px, 2 epochs of 2 steps of 6 (sub-batches 2 each).
UPE_C_TINY = [
    "stage=upe_c",
    "stage.init_from=null",
    "model.img_size=32",
    "stage.data.batch_size=6",
    "stage.data.steps_per_epoch=2",
    "stage.data.source_overrides.sizes={train: 24, val: 8}",
    "stage.module.drop_path_rate=0.0",
    "trainer.max_epochs=2",
    "trainer.log_every_n_steps=1",
    "evaluate=null",
    "progress=false",
]


# Two sources, equal sub-batches, plain SGD, no random augmentation or validation: the settings under
# which one source per rank must give the one-process weights.
EQUAL_SPLIT = [
    "stage.data.sources=[world_cls_fine_a,world_cls_fine_b]",
    "stage.data.weights={world_cls_fine_a: 1, world_cls_fine_b: 1}",
    "stage.module.optimizer._target_=torch.optim.SGD",
    "stage.module.scheduler=null",
    "stage.data.augment.rand_augment=null",
    "stage.data.augment.random_erasing=0.0",
    "trainer.max_epochs=1",
    "+trainer.limit_val_batches=0",
]


def labelled(spaces: list[LabelSpace], mode: str, dense: bool = False) -> Any:
    return merged_labels({s.name: s for s in spaces}, mode, dense=dense)


# ----------------------------------------------------------------------------------- label spaces


def test_label_space_index_maps_in_each_mode() -> None:
    """natural: a head per source, its own classes; partial: one bank, ``bangle`` shared, each source's
    loss over its own classes with its own labels; unified: the same bank, one softmax over it, labels
    mapped, and ``flower`` a class beside its child ``daisy``."""
    natural = labelled([A, B], "natural")
    heads = SourceHeads(natural, lambda n: torch.nn.Linear(4, n))
    assert set(heads.heads) == {"a", "b"} and natural.index_maps == {"a": (0, 1, 2), "b": (0, 1, 2)}

    partial = labelled([A, B], "partial")
    assert partial.spaces[0].classes == ("daisy", "aster", "bangle", "carp", "flower")
    assert partial.index_maps == {"a": (0, 1, 2), "b": (2, 3, 4)}
    heads = SourceHeads(partial, lambda n: torch.nn.Linear(4, n))
    logits = torch.arange(10.0).reshape(2, 5)
    assert heads.source_logits("b", logits).tolist() == [[2.0, 3.0, 4.0], [7.0, 8.0, 9.0]]
    assert heads.targets("b", torch.tensor([0, 2, 255])).tolist() == [0, 2, 255]

    unified = labelled([A, B], "unified")
    heads = SourceHeads(unified, lambda n: torch.nn.Linear(4, n))
    assert heads.source_logits("b", logits).shape == (2, 5)
    assert heads.targets("b", torch.tensor([0, 2, 255])).tolist() == [2, 4, 255]
    assert heads.own_logits("b", logits).tolist() == [[2.0, 3.0, 4.0], [7.0, 8.0, 9.0]]
    taxonomy = build_taxonomy(
        extra=[Concept("world:flower", "flower"), Concept("world:daisy", "daisy", parents=("world:flower",))],
        use_wordnet=False,
    )
    assert ("unified", "daisy", "flower") in unified.overlaps(taxonomy)


def test_dense_label_spaces_keep_one_background_first() -> None:
    things = LabelSpace("things", ("background", "flower", "ring"))
    scenes = LabelSpace("scenes", ("background", "ring", "tower", "clutter"))
    for mode in ("unified", "partial"):
        merged = labelled([things, scenes], mode, dense=True)
        assert merged.spaces[0].classes == ("background", "flower", "ring", "tower", "clutter")
        assert merged.index_maps["scenes"] == (0, 2, 3, 4)
    with pytest.raises(StageConfigError, match="no 'background' class first"):
        labelled([A, things], "natural", dense=True)
    with pytest.raises(StageConfigError, match=r"label_space='merged' is not a label-space mode"):
        labelled([A, B], "merged")


@pytest.mark.parametrize(
    ("stage", "task"), [("upe_c", "gvb_world_cls"), ("upe_d", "gvb_world_det"), ("upe_s", "gvb_world_seg")]
)
def test_default_sources_complement_each_other(stage: str, task: str) -> None:
    """Each expert's sources (its stage config's): the downstream task's super-categories need more than
    one of them at the task's granularity or finer, in domains none shows; a concept is in two of them,
    under one name (partial merges it) or a finer and a coarser one (a unified head's conflict)."""
    sources = [get_dataset(n) for n in OmegaConf.load(CONF / "stage" / f"{stage}.yaml").data.sources]
    downstream = get_dataset(task)
    needed = {FINES[f].super_id for f in downstream.fines}
    fine_enough = {downstream.grouping, "fine"}  # a fine label names its super-category too
    covering = [{FINES[f].super_id for f in s.fines} for s in sources if s.grouping in fine_enough]
    assert not any(needed <= covered for covered in covering) and needed <= set().union(*covering)
    assert not {d for s in sources for d in s.domains} & set(downstream.domains)
    spaces = {s.name: s.label_space for s in sources}
    dense = stage != "upe_c"
    natural, partial, unified = (merged_labels(spaces, m, dense) for m in ("natural", "partial", "unified"))
    backgrounds = len(sources) - 1 if dense else 0  # one background class in a merged dense head
    shared = sum(len(s) for s in natural.spaces) - len(partial.spaces[0]) - backgrounds
    overlaps = unified.overlaps(build_taxonomy(extra=world_concepts(), use_wordnet=False))
    assert shared > 0 or overlaps  # the same concept in two sources, or a finer and a coarser name
    if stage == "upe_c":
        assert shared == 4 and ("unified", "daisy", "flower") in overlaps


# ----------------------------------------------------------------------------------- gradients


def gradients(module: torch.nn.Module, loss: torch.Tensor) -> dict[str, torch.Tensor | None]:
    module.zero_grad(set_to_none=True)
    loss.backward()
    return {name: p.grad for name, p in module.named_parameters()}


def foreign_and_own(grads: dict[str, Any], own: str, foreign: str) -> tuple[list[Any], list[Any]]:
    pick = lambda name: [g for n, g in grads.items() if f"heads.{name}." in n]  # noqa: E731
    return pick(own), pick(foreign)


@pytest.mark.parametrize("expert", ["classification", "segmentation", "detection"])
def test_foreign_heads_get_exactly_zero_gradient(expert: str) -> None:
    """A batch of one source trains its head and the shared trunk; the other source's head gets none."""
    torch.manual_seed(0)
    backbone = intern_arch.create_model("mnb_test", num_classes=0)
    images = torch.rand(2, 3, 32, 32)
    if expert == "classification":
        module = ClassificationExpert(backbone, labels=labelled([A, B], "natural").to_json(), optimizer=SGD)
        batch = {"a": {"image": images, "label": torch.tensor([0, 2])}}
    elif expert == "segmentation":
        spaces = [LabelSpace("a", ("background", "flower")), LabelSpace("b", ("background", "ring"))]
        module = SegmentationExpert(
            backbone, img_size=32, fuse_channels=8, labels=labelled(spaces, "natural", True).to_json(),
            optimizer=SGD,
        )  # fmt: skip
        batch = {"a": {"image": images, "mask": torch.randint(0, 2, (2, 32, 32))}}
    else:
        spaces = [LabelSpace("a", ("background", "flower")), LabelSpace("b", ("background", "ring"))]
        module = DetectionExpert(
            backbone, img_size=32, init_heads=False, fpn_channels=8,
            box_head={"conv_dim": 8, "num_convs": 1, "fc_dim": 16},
            labels=labelled(spaces, "natural", True).to_json(), optimizer=SGD,
        )  # fmt: skip
        target = {"boxes": torch.tensor([[4.0, 4.0, 20.0, 20.0]]), "labels": torch.tensor([1])}
        batch = {"a": {"image": images, "targets": [target, target]}}
    module.train()
    (loss, count), *_ = module.source_losses(batch).values()
    assert count == 2 and torch.isfinite(loss)
    own, foreign = foreign_and_own(gradients(module, loss), "a", "b")
    assert foreign and all(g is None or not g.any() for g in foreign)
    assert any(g is not None and g.any() for g in own)
    assert any(p.grad is not None and p.grad.any() for p in module.backbone.parameters())


def test_detection_expert_starts_from_the_parents_neck_and_box_head(tmp_path: Path) -> None:
    """``init_heads``: the shared FPN and every source's box head start as the Up-A-L hand-over's; the
    export holds the neck and one detector head per source, loadable with intern-arch alone."""
    torch.manual_seed(0)
    backbone = intern_arch.create_model("mnb_test", num_classes=0)
    neck, box = FPN(backbone, 8), BoxHead(8, 7, 8, 2, 16)
    save_handover(tmp_path / "upa", backbone, {"neck": neck, "heads/box": box}, stage="upa_l")
    parent = load_handover(tmp_path / "upa")
    spaces = [LabelSpace("a", ("background", "flower")), LabelSpace("b", ("background", "ring", "fish"))]
    module = DetectionExpert(
        parent.backbone, img_size=32, parent_parts=parent.parts,
        labels=labelled(spaces, "natural", True).to_json(), optimizer=SGD,
    )  # fmt: skip
    assert module.fpn.out_channels == 8
    assert "parent_parts" not in module.hparams  # modules are not hyper-parameters (logs, checkpoints)
    for name, tensor in neck.fpn.state_dict().items():
        torch.testing.assert_close(module.fpn.fpn.state_dict()[name], tensor)
    for head in module.heads.heads.values():
        for name, tensor in box.state_dict().items():
            torch.testing.assert_close(head.box_head.state_dict()[name], tensor)
    export = module.export(tmp_path / "export", stage="upe_d", label_spaces=module.label_spaces())
    loaded = load_handover(export)
    assert set(loaded.parts) == {"neck", "heads/a", "heads/b"}
    assert loaded.heads["b"].box_predictor.cls_score.out_features == 3
    with pytest.raises(
        StageConfigError, match=r"init_heads=true needs a parent hand-over with \['heads/box'\]"
    ):
        DetectionExpert(
            parent.backbone, img_size=32, parent_parts={"neck": neck},
            labels=labelled(spaces, "natural", True).to_json(), optimizer=SGD,
        )  # fmt: skip


# ----------------------------------------------------------------------------------- data


def test_batches_hold_per_source_sub_batches_sized_by_the_sources(intern_root: Path) -> None:
    """One process serves every source, sub-batches follow the sources' sizes (or weights); with as many
    ranks as sources each rank serves one, whole batch."""
    backbone = intern_arch.create_model("mnb_test", num_classes=0)
    sources = source_configs(
        ["world_cls_fine_a", "world_cls_coarse"], intern_root, {"sizes": {"train": 24, "val": 8}}
    )
    data = expert_data(
        source={}, run_dir=intern_root, seed=0, backbone=backbone, task="classification", sources=sources,
        img_size=32, batch_size=9, steps_per_epoch=2,
        weights={"world_cls_fine_a": 2.0, "world_cls_coarse": 1.0},
    )  # fmt: skip
    datamodule = data.datamodule
    assert datamodule.layout(0, 1)[0] == {"world_cls_fine_a": 6, "world_cls_coarse": 3}
    assert datamodule.layout(1, 2) == ({"world_cls_coarse": 9}, 0, 1)
    datamodule.setup("fit")
    batches = list(datamodule.train_dataloader())
    assert len(batches) == 2
    for batch, *_ in batches:
        assert {name: len(sub["label"]) for name, sub in batch.items()} == datamodule.served
        assert all(set(sub["source"]) == {name} for name, sub in batch.items())
    assert data.module_inputs["labels"]["mode"] == "natural"
    assert len(datamodule.val_dataloader()) == 2  # one per source: a loader's index names its source
    lacking = datamodule.sources["world_cls_fine_a"]
    lacking.splits["val"] = None
    lacking.datasets.pop("val")
    assert datamodule.val_dataloader() == []  # not the other source's loader at index 0


# ----------------------------------------------------------------------------------- runs


def export_tensors(run_dir: Path) -> dict[str, torch.Tensor]:
    export = run_dir / "export"
    tensors = dict(load_file(export / "model.safetensors"))
    for head in sorted((export / "heads").iterdir()):
        tensors.update({f"{head.name}/{k}": v for k, v in load_file(head / "model.safetensors").items()})
    return tensors


def upe_command(run_dir: Path, *overrides: str) -> list[str]:
    return app_command("intern_pretrain", run_dir, *UPE_C_TINY, *overrides)


@pytest.mark.dist
def test_ddp_serves_one_source_per_rank_and_matches_one_process(
    run_pretrain: Callable[..., Any], intern_root: Path, tmp_path: Path
) -> None:
    """``trainer=ddp_sim``: two sources on two ranks, a batch of 4 each, BatchNorm in eval mode
    (``norm_eval``; SyncBatchNorm needs GPUs), plain SGD: the weights after 2 steps equal one process
    training on sub-batches of 4 and 4 (rank assignment, zero foreign gradients, gradient all-reduce)."""
    common = [*EQUAL_SPLIT, "stage.module.norm_eval=true"]
    ddp = upe_command(tmp_path / "ddp", *common, "trainer=ddp_sim", "stage.data.batch_size=4")
    with app_processes([ddp], intern_root, tmp_path, expect=[0]):
        run_pretrain(tmp_path / "one", *common, "stage.data.batch_size=8", tiny=UPE_C_TINY)
    ddp, one = export_tensors(tmp_path / "ddp"), export_tensors(tmp_path / "one")
    assert ddp.keys() == one.keys()
    for name in one:
        torch.testing.assert_close(ddp[name], one[name], rtol=1e-4, atol=1e-6, msg=name)
    assert json.loads((tmp_path / "ddp" / "summary.json").read_text())["steps"] == 2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_synchronised_batchnorm_matches_one_process_on_gpus(intern_root: Path, tmp_path: Path) -> None:
    """``trainer=ddp`` on two GPUs (SyncBatchNorm, BatchNorm in training mode): one source per rank
    gives the weights of one process whose BatchNorm sees both sub-batches at once."""
    common = [*EQUAL_SPLIT, "+trainer.deterministic=true"]
    ddp = upe_command(
        tmp_path / "ddp", *common, "trainer=ddp", "trainer.devices=2", "stage.data.batch_size=4"
    )
    one = upe_command(tmp_path / "one", *common, "trainer=gpu", "stage.data.batch_size=8")
    for command in (ddp, one):  # one after the other: both use GPU 0
        with app_processes([command], intern_root, tmp_path, expect=[0]):
            pass
    ddp_weights, one = export_tensors(tmp_path / "ddp"), export_tensors(tmp_path / "one")
    for name in one:
        torch.testing.assert_close(ddp_weights[name], one[name], rtol=1e-3, atol=1e-5, msg=name)


def test_killed_expert_resumes_to_the_unbroken_run_exactly(
    run_pretrain: Callable[..., Any], intern_root: Path, tmp_path: Path
) -> None:
    """SIGKILL after step 3 (step checkpoints every 2), then a resume: every source's reader continues
    at its saved position, so the exported backbone and heads are ``torch.equal`` to an unbroken run's
    (the killed run in its own process, meanwhile the unbroken run and later the resume in this one)."""
    (tmp_path / "killer.py").write_text(textwrap.dedent(KILLER))
    every = "callbacks.step_checkpoint.every_n_train_steps=2"
    killed = tmp_path / "killed"
    kill = upe_command(killed, every, "+callbacks.kill={_target_: killer.KillAt, step: 3}")
    with app_processes([kill], intern_root, tmp_path, expect=[-9], pythonpath=tmp_path):
        run_pretrain(tmp_path / "unbroken", every, tiny=UPE_C_TINY)
    assert not (killed / "export").exists()
    run_pretrain(killed, every, tiny=UPE_C_TINY)
    assert json.loads((killed / "summary.json").read_text())["resumed_from"] is not None
    unbroken, resumed = export_tensors(tmp_path / "unbroken"), export_tensors(killed)
    assert unbroken.keys() == resumed.keys()
    assert all(torch.equal(unbroken[k], resumed[k]) for k in unbroken), "resumed weights differ"


def test_a_detection_expert_from_parent_parts_resumes(
    run_pretrain: Callable[..., Any], tmp_path: Path
) -> None:
    """Up-E-D started from an Up-A-L hand-over (neck and box head): its checkpoint holds no pickled
    module, so a rerun reads it (``weights_only=True``) and resumes instead of failing."""
    torch.manual_seed(0)
    backbone = intern_arch.create_model("mnb_test", num_classes=0)
    parts = {"neck": FPN(backbone, 8), "heads/box": BoxHead(8, 7, 8, 2, 16)}
    save_handover(tmp_path / "upa_l", backbone, parts, stage="upa_l")
    tiny = [
        *UPE_C_TINY[2:],
        "stage=upe_d",
        f"stage.init_from={tmp_path / 'upa_l'}",
        "stage.data.batch_size=4",
        "+trainer.limit_val_batches=0",
    ]
    run_pretrain(tmp_path / "run", "trainer.max_epochs=1", tiny=tiny)
    run_pretrain(tmp_path / "run", "trainer.max_epochs=2", tiny=tiny)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["resumed_from"] is not None and summary["steps"] == 4


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("stage.data.sources=[world_cls_fine_a,nope]", "stage.data.sources: unknown source 'nope'"),
        ("stage.data.sources=[world_det_a]", "'world_det_a' is a detection source; this expert trains on"),
        ("stage.data.label_space=merged", "stage.data.label_space='merged' is not a label-space mode"),
    ],
)
def test_unknown_source_or_mode_fails_in_one_line(
    python_m: Callable[..., Any], tmp_path: Path, override: str, message: str
) -> None:
    result = python_m("intern_pretrain", *UPE_C_TINY, override, f"paths.root_dir={tmp_path}")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
