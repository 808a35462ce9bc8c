"""Up-A-L building blocks: proposals and their sidecar, views, level assignment, local BYOL."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import intern_arch
from intern_data.shards import decode_sample, iter_tar_samples, split_shards, write_shards
from intern_data.world import generate
from intern_pretrain.upa_l import (
    FALLBACK_STAGES,
    LEVEL_PROBS,
    AttachProposals,
    LocalBYOL,
    LocalViews,
    StaleProposalsError,
    byol_loss,
    collate_views,
    compute_proposals,
    filter_mask,
    filter_proposals,
    load_proposals,
    momentum_at,
    proposal_settings,
    random_levels,
    selective_search,
    size_levels,
    write_proposals,
)

DATASET = "world_det_a"
SETTINGS = {"min_size": 8, "max_proposals": 32}  # the paper's 32 px is half of a 64 px world image


@pytest.fixture(scope="module")
def world() -> list[dict]:
    return list(generate(DATASET, "train", count=4))


@pytest.fixture
def shards(tmp_path: Path, world: list[dict]) -> Path:
    write_shards(world, tmp_path, DATASET, "train")
    return tmp_path


def shard_samples(folder: Path) -> list[dict]:
    return [
        decode_sample(raw) for shard in split_shards(folder, "train") for raw in iter_tar_samples(shard.url)
    ]


# ------------------------------------------------------------------------------------------ proposals


def test_selective_search_gives_boxes_inside_the_image(world: list[dict]) -> None:
    for sample in world:
        height, width = sample["image"].shape[-2:]
        boxes = selective_search(sample["image"])
        assert boxes.dtype == torch.float32 and boxes.ndim == 2 and boxes.shape[1] == 4 and len(boxes)
        assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
        assert (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all()
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    image = world[0]["image"]
    assert torch.equal(selective_search(image.permute(1, 2, 0).numpy()), selective_search(image))
    shrunk = selective_search(image, search_size=32)
    assert (shrunk[:, 2:] <= 64).all() and len(shrunk)


def test_filters_keep_only_boxes_meeting_every_rule() -> None:
    size = (200, 200)
    boxes = torch.tensor(
        [
            [0, 0, 100, 100],  # passes: 100 x 100, aspect 1, sqrt area ratio 0.5
            [0, 0, 30, 60],  # width < 32
            [0, 0, 40, 130],  # aspect 40/130 < 1/3
            [0, 0, 40, 40],  # sqrt area ratio 0.2 < 0.3
            [0, 0, 180, 180],  # sqrt area ratio 0.9 > 0.8
            [10, 20, 130, 80],  # passes: 120 x 60, aspect 2, ratio ~0.42
            [0, 0, 100, 100],  # duplicate of the first
        ],
        dtype=torch.float32,
    )
    kept, stage = filter_proposals(boxes, size, return_stage=True)
    assert stage == 0
    assert kept.tolist() == [[0, 0, 100, 100], [10, 20, 130, 80]]
    w, h = kept[:, 2] - kept[:, 0], kept[:, 3] - kept[:, 1]
    assert (w >= 32).all() and (h >= 32).all()
    assert ((w / h >= 1 / 3) & (w / h <= 3)).all()
    ratio = torch.sqrt(w * h / (200 * 200))
    assert ((ratio >= 0.3) & (ratio <= 0.8)).all()
    # each rule alone
    assert filter_mask(boxes, size, ("size",)).tolist() == [True, False, True, True, True, True, True]
    assert filter_mask(boxes, size, ("aspect",)).tolist() == [True, True, False, True, True, True, True]
    assert filter_mask(boxes, size, ("area",)).tolist() == [True, False, True, False, False, True, True]


def test_filters_fall_back_to_looser_rules_then_the_whole_image() -> None:
    size = (200, 300)
    too_small_area = torch.tensor([[0.0, 0.0, 40.0, 40.0]])
    kept, stage = filter_proposals(too_small_area, size, return_stage=True)
    assert stage == 1 and kept.tolist() == too_small_area.tolist()
    too_thin = torch.tensor([[0.0, 0.0, 40.0, 150.0]])
    assert filter_proposals(too_thin, size, return_stage=True)[1] == 2
    for boxes in (torch.tensor([[0.0, 0.0, 10.0, 10.0]]), torch.zeros(0, 4)):
        kept, stage = filter_proposals(boxes, size, return_stage=True)
        assert stage == len(FALLBACK_STAGES)
        assert kept.tolist() == [[0.0, 0.0, 300.0, 200.0]]


def test_proposals_written_and_loaded_back_equal(shards: Path) -> None:
    path = write_proposals(shards, "train", **SETTINGS)
    assert path == shards / "proposals-train.json"
    loaded = load_proposals(shards, "train", settings=proposal_settings(**SETTINGS))
    expected = compute_proposals(shard_samples(shards), **SETTINGS)
    assert sorted(loaded) == sorted(expected) and len(loaded) == 4
    for key, boxes in expected.items():
        assert torch.equal(loaded[key], boxes)
        assert 1 <= len(boxes) <= SETTINGS["max_proposals"]

    # resume: a partial sidecar is completed, not redone
    data = json.loads(path.read_text())
    dropped = sorted(data["proposals"])[:2]
    for key in dropped:
        del data["proposals"][key]
    data["complete"] = False
    path.write_text(json.dumps(data))
    with pytest.raises(StaleProposalsError, match="incomplete"):
        load_proposals(shards, "train")
    write_proposals(shards, "train", **SETTINGS)
    resumed = load_proposals(shards, "train")
    assert all(torch.equal(resumed[key], expected[key]) for key in expected)


def test_stale_proposals_are_refused(shards: Path, world: list[dict]) -> None:
    path = write_proposals(shards, "train", **SETTINGS)
    with pytest.raises(StaleProposalsError, match="settings"):
        load_proposals(shards, "train", settings=proposal_settings(min_size=16))
    with pytest.raises(StaleProposalsError, match="settings"):
        write_proposals(shards, "train", min_size=16)
    write_shards(world[:3], shards, DATASET, "train", overwrite=True)  # new content, new content hash
    with pytest.raises(StaleProposalsError, match="proposals-train.json.*other shard content"):
        load_proposals(shards, "train")
    with pytest.raises(StaleProposalsError, match=str(path)):
        write_proposals(shards, "train", **SETTINGS)
    write_proposals(shards, "train", overwrite=True, **SETTINGS)
    assert len(load_proposals(shards, "train")) == 3


# ---------------------------------------------------------------------------------------------- views


def test_views_move_the_same_proposals_with_each_view(world: list[dict]) -> None:
    sample = {**world[0], "proposals": torch.tensor([[0.0, 0.0, 32.0, 32.0], [16.0, 8.0, 48.0, 60.0]])}
    views = LocalViews(64, 32, num_proposals=5, flip_p=0.0, jitter_p=0.0, grayscale_p=0.0)(sample)
    assert [tuple(v.shape) for v in views["views"]] == [(3, 64, 64), (3, 64, 64), (3, 32, 32)]
    first, second, third = views["boxes"]
    assert first.shape == (5, 4) and torch.equal(first, second) and torch.allclose(third, first / 2)
    assert {tuple(b) for b in first.tolist()} == {tuple(b) for b in sample["proposals"].tolist()}

    torch.manual_seed(0)
    flipped = LocalViews(64, 64, num_proposals=2, flip_p=1.0)(sample)["boxes"][0]
    torch.manual_seed(0)
    straight = LocalViews(64, 64, num_proposals=2, flip_p=0.0)(sample)["boxes"][0]
    assert torch.equal(flipped[:, [0, 2]], 64 - straight[:, [2, 0]])

    attach = AttachProposals({world[1]["__key__"]: torch.tensor([[1.0, 2.0, 30.0, 40.0]])})
    batch = collate_views([LocalViews(64, 32, 8)(attach(world[1])), LocalViews(64, 32, 8)(attach(world[1]))])
    assert batch["views"][0].shape == (2, 3, 64, 64) and batch["boxes"][2].shape == (2, 8, 4)
    with pytest.raises(KeyError, match="no proposals"):
        attach(world[2])


# --------------------------------------------------------------------------------------------- levels


def test_random_levels_follow_the_probabilities_and_the_seed() -> None:
    draws = random_levels(10_000, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=4).double() / 10_000
    for observed, expected in zip(freq.tolist(), LEVEL_PROBS, strict=True):
        assert abs(observed - expected) < 4 * math.sqrt(expected * (1 - expected) / 10_000)
    again = random_levels(10_000, generator=torch.Generator().manual_seed(0))
    other = random_levels(10_000, generator=torch.Generator().manual_seed(1))
    assert torch.equal(draws, again) and not torch.equal(draws, other)
    assert random_levels((2, 8)).shape == (2, 8)


def test_size_levels_follow_the_fpn_rule() -> None:
    sides = torch.tensor([16.0, 56.0, 111.0, 112.0, 223.0, 224.0, 448.0, 2000.0])
    boxes = torch.stack([torch.zeros(8), torch.zeros(8), sides, sides], dim=1)
    # k = floor(4 + log2(side / 224)) clamped to [2, 5], as indices k - 2 (0 = P2)
    assert size_levels(boxes).tolist() == [0, 0, 0, 1, 1, 2, 3, 3]
    assert size_levels(boxes.reshape(2, 4, 4)).shape == (2, 4)


# ----------------------------------------------------------------------------------------------- BYOL


def test_momentum_schedule_endpoints() -> None:
    assert momentum_at(0, 100) == pytest.approx(0.99)
    assert momentum_at(100, 100) == pytest.approx(1.0)
    assert momentum_at(50, 100) == pytest.approx(0.995)
    assert momentum_at(0, 10, base=0.996) == pytest.approx(0.996)


def test_byol_loss_range() -> None:
    x = torch.randn(6, 8)
    assert byol_loss(x, x).item() == pytest.approx(-2.0)
    assert byol_loss(x, -x).item() == pytest.approx(2.0)


@pytest.fixture
def local_byol() -> LocalBYOL:
    torch.manual_seed(0)
    backbone = intern_arch.create_model("mnb_test")
    return LocalBYOL(backbone, fpn_channels=32, head_dim=64, proj_hidden=128, proj_dim=32, pred_hidden=128)


def test_local_byol_trains_only_the_online_branch(local_byol: LocalBYOL, world: list[dict]) -> None:
    model = local_byol.train()
    assert not model.backbone.training and model.fpn.training and model.target["head"].training
    proposals = compute_proposals(world, **SETTINGS)
    transform = LocalViews(64, 32, num_proposals=4)
    batch = collate_views([transform(AttachProposals(proposals)(sample)) for sample in world])
    levels = torch.arange(4).repeat(4, 1)  # every level in use, so every FPN output conv gets gradient
    loss = model(batch["views"], batch["boxes"], levels)
    assert torch.isfinite(loss) and -4.0 <= loss.item() <= 4.0
    loss.backward()
    for name, module in (("fpn", model.fpn.fpn), ("head", model.head), ("predictor", model.predictor)):
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None for g in grads), name
        assert sum(g.abs().sum() for g in grads) > 0, name
    assert all(p.grad is None and not p.requires_grad for p in model.backbone.parameters())
    assert all(p.grad is None and not p.requires_grad for p in model.target.parameters())


def test_update_target_moves_toward_online(local_byol: LocalBYOL) -> None:
    model = local_byol
    assert all(
        torch.equal(o, t)
        for o, t in zip(model.head.parameters(), model.target["head"].parameters(), strict=True)
    )
    with torch.no_grad():
        for param in [*model.fpn.fpn.parameters(), *model.head.parameters(), *model.projector.parameters()]:
            param.add_(torch.randn_like(param))
    pairs = [(model.fpn.fpn, model.target["fpn"]), (model.head, model.target["head"])]
    pairs.append((model.projector, model.target["projector"]))
    before = [[t.clone() for t in target.parameters()] for _, target in pairs]
    model.update_target(0.9)
    for (online, target), old in zip(pairs, before, strict=True):
        for o, t, t0 in zip(online.parameters(), target.parameters(), old, strict=True):
            torch.testing.assert_close(t, 0.9 * t0 + 0.1 * o)
    model.update_target(1.0)  # momentum 1 leaves the target alone
    after = [t.clone() for t in model.target.parameters()]
    model.update_target(1.0)
    assert all(torch.equal(a, b) for a, b in zip(after, model.target.parameters(), strict=True))


def test_local_byol_defaults_are_the_papers() -> None:
    model = LocalBYOL(intern_arch.create_model("mnb_test"))
    assert model.fpn.out_channels == 256 and model.strides == (4, 8, 16, 32)
    convs = [m for m in model.head.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 4 and all(c.kernel_size == (3, 3) for c in convs)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.head.modules()) == 4
    linears = [
        (m.in_features, m.out_features)
        for part in (model.head, model.projector, model.predictor)
        for m in part.modules()
        if isinstance(m, torch.nn.Linear)
    ]
    assert linears == [(256 * 7 * 7, 1024), (1024, 4096), (4096, 256), (256, 4096), (4096, 256)]
    assert not hasattr(model.target, "predictor") and "predictor" not in model.target
