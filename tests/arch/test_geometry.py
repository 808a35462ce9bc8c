"""Dense heads fitted to the input size: anchors no smaller than their grid allows, ASPP rates that fit
the map."""

import pytest
import torch

import intern_arch
from intern_arch.heads import DeepLabV3, build_face_detector, build_faster_rcnn
from intern_arch.heads.geometry import (
    DEEPLAB_ATROUS_RATES,
    FACE_ANCHOR_SIZES,
    FPN_ANCHOR_SIZES,
    anchor_coverage,
    detector_anchors,
    scaled_anchor_sizes,
    scaled_atrous_rates,
)


@pytest.mark.parametrize("size", [256, 513, 840, 1333])
def test_large_inputs_keep_the_published_settings(size: int) -> None:
    assert scaled_anchor_sizes(size) == FPN_ANCHOR_SIZES
    assert scaled_anchor_sizes(size, FACE_ANCHOR_SIZES) == FACE_ANCHOR_SIZES
    assert scaled_atrous_rates(max(size, 513)) == DEEPLAB_ATROUS_RATES


def test_small_inputs_get_anchors_no_smaller_than_three_strides_and_distinct_rates() -> None:
    assert scaled_anchor_sizes(64) == (12, 24, 48, 96, 192)
    assert scaled_anchor_sizes(128) == (16, 32, 64, 128, 256)
    assert scaled_atrous_rates(64) == (1, 2, 3)
    assert scaled_atrous_rates(256) == (3, 6, 9)


def test_detectors_derive_their_anchors_from_min_size() -> None:
    backbone = intern_arch.create_model("mnb_test")
    faster = build_faster_rcnn(backbone, 3, min_size=64, max_size=64)
    assert faster.rpn.anchor_generator.sizes == tuple((size,) for size in scaled_anchor_sizes(64))
    face = build_face_detector(backbone, min_size=64, max_size=64)
    assert face.anchor_generator.sizes[0][0] == 12


def test_detector_anchors_restore_every_module_mode() -> None:
    model = build_faster_rcnn(intern_arch.create_model("mnb_test"), 3, min_size=64, max_size=64)
    model.train()
    model.backbone.body.eval()  # a frozen backbone stays in eval mode under a training detector
    modes = [module.training for module in model.modules()]
    anchors = detector_anchors(model, 64)
    assert [module.training for module in model.modules()] == modes
    # P2..P6 grids of 16, 8, 4, 2, 1 cells x 3 aspect ratios
    assert anchors.shape == (3 * (16**2 + 8**2 + 4**2 + 2**2 + 1), 4)


def test_anchor_coverage_counts_boxes_reached_at_iou_half() -> None:
    anchors = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 40.0, 40.0]])
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [22.0, 22.0, 40.0, 40.0], [0.0, 0.0, 4.0, 4.0]])
    assert anchor_coverage(anchors, boxes) == pytest.approx(2 / 3)  # IoU 1, 0.81, 0.16
    with pytest.raises(ValueError, match="at least one box"):
        anchor_coverage(anchors, torch.zeros(0, 4))


def test_deeplab_head_takes_the_scaled_rates() -> None:
    model = DeepLabV3(
        intern_arch.create_model("mnb_test"), 3, fuse_channels=16, atrous_rates=scaled_atrous_rates(64)
    )
    dilations = [
        m.dilation for m in model.head.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)
    ]
    assert dilations[:3] == [(1, 1), (2, 2), (3, 3)]
