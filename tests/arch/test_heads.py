"""Necks and task heads on intern-arch backbones: shapes, losses and where gradients go."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import intern_arch
from intern_arch.heads import (
    DeepLabV3,
    DepthModel,
    LinearClassifier,
    build_face_detector,
    build_faster_rcnn,
    segmentation_loss,
    silog_loss,
)
from intern_arch.necks import FPN, PyramidAdapter


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _assert_grads_reach(backbone: nn.Module) -> None:
    """The stem (first parameter) and every parameter of the C5 stage got a non-zero gradient."""
    stem = next(backbone.parameters())
    assert stem.grad is not None and stem.grad.abs().sum() > 0
    c5 = backbone.get_submodule(backbone.feature_info[-1]["module"])
    assert all(p.grad is not None for p in c5.parameters())
    assert sum(p.grad.abs().sum() for p in c5.parameters()) > 0


def _detection_batch(labels: tuple[list[int], list[int]]) -> tuple[list[torch.Tensor], list[dict]]:
    images = [torch.rand(3, 64, 64), torch.rand(3, 64, 48)]
    boxes = [
        torch.tensor([[4.0, 6.0, 30.0, 40.0], [20.0, 10.0, 60.0, 58.0]]),
        torch.tensor([[2.0, 3.0, 18.0, 20.0]]),
    ]
    targets = [{"boxes": b, "labels": torch.tensor(lab)} for b, lab in zip(boxes, labels, strict=True)]
    return images, targets


def _assert_detections(detections: list[dict], images: list[torch.Tensor], num_classes: int) -> None:
    assert len(detections) == len(images)
    for det, image in zip(detections, images, strict=True):
        k = det["boxes"].shape[0]
        assert det["boxes"].shape == (k, 4) and det["scores"].shape == (k,) and det["labels"].shape == (k,)
        assert ((det["scores"] >= 0) & (det["scores"] <= 1)).all()
        assert ((det["labels"] >= 0) & (det["labels"] < num_classes)).all()
        h, w = image.shape[-2:]
        assert (det["boxes"][:, 0::2] <= w).all() and (det["boxes"][:, 1::2] <= h).all()
        assert (det["boxes"][:, 2:] >= det["boxes"][:, :2]).all()


def test_pyramid_adapter_returns_chosen_levels() -> None:
    backbone = intern_arch.create_model("mnb_test")
    adapter = PyramidAdapter(backbone, ("C3", "C5"))
    out = adapter(torch.randn(2, 3, 64, 64))
    assert list(out) == ["C3", "C5"]
    assert adapter.out_channels == [24, 48]
    assert [t.shape[1] for t in out.values()] == adapter.out_channels
    assert [t.shape[-1] for t in out.values()] == [64 // 8, 64 // 32]
    with pytest.raises(ValueError, match="subsequence"):
        PyramidAdapter(backbone, ("C5", "C3"))


@pytest.mark.parametrize("extra_max_pool", [True, False])
def test_fpn_levels_strides_and_channels(extra_max_pool: bool) -> None:
    fpn = FPN(intern_arch.create_model("mnb_test"), out_channels=32, extra_max_pool=extra_max_pool)
    out = fpn(torch.randn(2, 3, 64, 128))
    strides = {"P2": 4, "P3": 8, "P4": 16, "P5": 32} | ({"P6": 64} if extra_max_pool else {})
    assert list(out) == list(strides)
    for name, stride in strides.items():
        assert out[name].shape == (2, fpn.out_channels, 64 // stride, 128 // stride), name
    assert fpn.out_channels == 32


def test_faster_rcnn_trains_and_detects() -> None:
    backbone = intern_arch.create_model("mnb_test")
    model = build_faster_rcnn(backbone, num_classes=3, min_size=64, max_size=64, fpn_channels=32)
    images, targets = _detection_batch(([1, 2], [2]))
    model.train()
    losses = model(images, targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    _assert_grads_reach(backbone)
    assert all(p.grad is not None for p in model.backbone.fpn.parameters())
    assert all(p.grad is not None for p in model.rpn.parameters())

    model.eval()
    with torch.no_grad():
        detections = model(images)
    _assert_detections(detections, images, num_classes=3)
    assert all(len(d["boxes"]) > 0 and (d["labels"] >= 1).all() for d in detections)  # 0 is background


def test_faster_rcnn_anchors_one_size_per_level() -> None:
    model = build_faster_rcnn(
        intern_arch.create_model("mnb_test"), 2, 64, 64, anchor_sizes=(8, 16, 32, 64, 128)
    )
    assert model.rpn.anchor_generator.sizes == ((8,), (16,), (32,), (64,), (128,))
    assert model.rpn.anchor_generator.num_anchors_per_location() == [3] * 5
    assert model.roi_heads.box_roi_pool.featmap_names == ["P2", "P3", "P4", "P5"]
    with pytest.raises(ValueError, match="one anchor size per level"):
        build_faster_rcnn(intern_arch.create_model("mnb_test"), 2, 64, 64, anchor_sizes=(32, 64))


def test_face_detector_trains_and_detects() -> None:
    backbone = intern_arch.create_model("mnb_test")
    model = build_face_detector(backbone, min_size=64, max_size=64, fpn_channels=32, score_thresh=0.0)
    images, targets = _detection_batch(([1, 1], [1]))
    model.train()
    losses = model(images, targets)
    assert set(losses) == {"classification", "bbox_regression"}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    _assert_grads_reach(backbone)
    assert all(p.grad is not None for p in model.backbone.fpn.parameters())

    model.eval()
    with torch.no_grad():
        detections = model(images)
    _assert_detections(detections, images, num_classes=2)
    assert all(len(d["boxes"]) > 0 for d in detections)  # score_thresh 0 keeps the top candidates


def test_face_anchors_are_small_and_square() -> None:
    model = build_face_detector(intern_arch.create_model("mnb_test"), min_size=840, max_size=840)
    sizes = model.anchor_generator.sizes
    assert len(sizes) == 5 and sizes[0][0] == 16 and round(sizes[-1][-1]) == 406  # RetinaFace: 16..406 px
    assert model.anchor_generator.aspect_ratios == ((1.0,),) * 5


@pytest.mark.parametrize("model_name", ["mnb_test", "r50"])
def test_deeplabv3_logits_at_input_size_and_loss(model_name: str) -> None:
    backbone = intern_arch.create_model(model_name)
    model = DeepLabV3(backbone, num_classes=5, fuse_channels=64)
    x = torch.randn(2, 3, 64, 48)
    mask = torch.randint(0, 5, (2, 64, 48))
    mask[:, :8] = 255
    logits = model(x)
    assert logits.shape == (2, 5, 64, 48)
    loss = segmentation_loss(logits, mask)
    assert torch.isfinite(loss)
    loss.backward()
    _assert_grads_reach(backbone)


def test_segmentation_loss_ignores_255() -> None:
    logits = torch.randn(2, 4, 8, 8)
    mask = torch.randint(0, 4, (2, 8, 8))
    mask[0, :3] = 255
    labelled = mask != 255
    expected = F.cross_entropy(logits.permute(0, 2, 3, 1)[labelled], mask[labelled])
    assert torch.allclose(segmentation_loss(logits, mask), expected)
    changed = logits.clone()
    changed[0, :, :3] = 100.0
    assert torch.allclose(segmentation_loss(changed, mask), expected)

    logits.requires_grad_(True)
    empty = segmentation_loss(logits, torch.full_like(mask, 255))
    empty.backward()
    assert empty.item() == 0.0 and torch.equal(logits.grad, torch.zeros_like(logits))


def test_depth_model_range_and_loss() -> None:
    backbone = intern_arch.create_model("mnb_test")
    model = DepthModel(backbone, max_depth=10.0, decoder_channels=16)
    x = torch.randn(2, 3, 64, 48)
    pred = model(x)
    assert pred.shape == (2, 64, 48)
    assert (pred > 0).all() and (pred <= 10.0).all()
    target = torch.rand(2, 64, 48) * 9.0 + 0.5
    target[:, ::3] = 0.0
    loss = silog_loss(pred, target)
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    _assert_grads_reach(backbone)
    assert all(p.grad is not None for p in model.decoder.parameters())


def test_silog_loss_counts_only_valid_pixels() -> None:
    target = torch.rand(2, 16, 16) * 5.0 + 0.1
    target[:, :4] = 0.0
    pred = torch.rand(2, 16, 16) * 5.0 + 0.1
    loss = silog_loss(pred, target)
    changed = pred.clone()
    changed[:, :4] = 7.0
    assert torch.allclose(silog_loss(changed, target), loss)

    d = pred[target > 0].log() - target[target > 0].log()
    assert torch.allclose(loss, 10 * torch.sqrt((d**2).mean() - 0.85 * d.mean() ** 2))
    scale_invariant = silog_loss(pred, target, variance_focus=1.0)
    assert torch.allclose(silog_loss(pred * 3.0, target, variance_focus=1.0), scale_invariant)

    crop = torch.zeros_like(target, dtype=torch.bool)
    crop[:, 8:] = True
    changed[:, :8] = 0.5
    assert torch.allclose(silog_loss(changed, target, crop), silog_loss(pred, target, crop))
    assert silog_loss(pred, torch.zeros_like(target)).item() == 0.0


def test_linear_classifier_trains_backbone() -> None:
    backbone = intern_arch.create_model("mnb_test")
    model = LinearClassifier(backbone, num_classes=7, pool="catavgmax")
    assert model.fc.in_features == 2 * backbone.num_features
    logits = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 7)
    F.cross_entropy(logits, torch.tensor([0, 6])).backward()
    _assert_grads_reach(backbone)
    assert model.fc.weight.grad is not None


def test_frozen_backbone_probe() -> None:
    backbone = intern_arch.create_model("mnb_test")
    model = LinearClassifier(backbone, num_classes=4, freeze_backbone=True).train()
    assert model.training and not backbone.training
    stats = {k: v.clone() for k, v in backbone.state_dict().items() if "running_mean" in k}
    F.cross_entropy(model(torch.randn(2, 3, 32, 32)), torch.tensor([1, 3])).backward()
    assert all(p.grad is None for p in backbone.parameters())
    assert model.fc.weight.grad is not None and model.fc.weight.grad.abs().sum() > 0
    assert stats and all(torch.equal(v, backbone.state_dict()[k]) for k, v in stats.items())


def test_frozen_backbone_dense_head() -> None:
    backbone = intern_arch.create_model("mnb_test")
    fpn = FPN(backbone, out_channels=16, freeze_backbone=True).train()
    assert not backbone.training and fpn.fpn.training
    sum(level.mean() for level in fpn(torch.randn(2, 3, 64, 64)).values()).backward()
    assert all(p.grad is None for p in backbone.parameters())
    assert all(p.grad is not None for p in fpn.fpn.parameters())
