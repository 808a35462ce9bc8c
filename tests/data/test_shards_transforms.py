"""intern_data.shards.transforms: boxes, masks and depth move with the image; fills; captions; collation."""

from __future__ import annotations

import pytest
import torch

from intern_data.shards import (
    classification_transform,
    collate_samples,
    depth_transform,
    detection_collate,
    detection_transform,
    image_text_transform,
    segmentation_transform,
)


def painted_sample(h: int = 48, w: int = 64) -> dict:
    """A grey image with one red rectangle; the box, the mask (class 3) and the depth (2 m) mark it."""
    x0, y0, x1, y1 = 10, 8, 30, 24
    image = torch.full((3, h, w), 128, dtype=torch.uint8)
    image[:, y0:y1, x0:x1] = torch.tensor([255, 0, 0], dtype=torch.uint8)[:, None, None]
    mask = torch.zeros(h, w, dtype=torch.int64)
    mask[y0:y1, x0:x1] = 3
    depth = torch.full((h, w), 5.0)
    depth[y0:y1, x0:x1] = 2.0
    return {
        "__key__": "k",
        "source": "toy",
        "image": image,
        "label": 3,
        "label_space": "toy",
        "text": ["first caption", "second caption"],
        "boxes": torch.tensor([[x0, y0, x1, y1], [60.0, 40.0, 61.0, 40.5]]),  # the second is degenerate
        "box_labels": torch.tensor([3, 4]),
        "mask": mask,
        "depth": depth,
    }


def iou(a: torch.Tensor, b: torch.Tensor) -> float:
    union = float((a | b).sum())
    return float((a & b).sum()) / union if union else 1.0


def red(image: torch.Tensor) -> torch.Tensor:
    return (image[0] > 0.8) & (image[1] < 0.3)


@pytest.mark.parametrize("seed", range(4))
def test_detection_boxes_mask_and_depth_follow_the_image(seed: int) -> None:
    torch.manual_seed(seed)
    out = detection_transform(40, train=True, scale=(0.5, 1.0))(painted_sample())
    assert out["image"].shape == (3, 40, 40) and out["image"].dtype == torch.float32
    assert len(out["boxes"]) == len(out["box_labels"]) and type(out["boxes"]) is torch.Tensor
    assert 4 not in out["box_labels"].tolist()  # degenerate box dropped with its label
    region = red(out["image"])
    if len(out["boxes"]):
        x0, y0, x1, y1 = out["boxes"][0].round().int().tolist()
        box = torch.zeros_like(region)
        box[y0:y1, x0:x1] = True
        assert iou(box, region) > 0.8
    assert out["mask"].dtype == torch.int64
    assert iou(out["mask"] == 3, region) > 0.8 and iou(out["depth"] == 2.0, region) > 0.8
    assert set(out["depth"].unique().tolist()) <= {2.0, 5.0}  # nearest: no invented depths


def test_detection_eval_resize_scales_boxes() -> None:
    out = detection_transform(32, train=False)(painted_sample(h=48, w=64))
    assert torch.allclose(out["boxes"][0], torch.tensor([10 * 0.5, 8 * 32 / 48, 30 * 0.5, 24 * 32 / 48]))


def test_segmentation_pads_mask_with_ignore_and_depth_with_invalid() -> None:
    torch.manual_seed(0)
    out = segmentation_transform(32, train=True, scale=(0.25, 0.25))(painted_sample(h=48, w=64))
    assert out["image"].shape == (3, 32, 32) and out["mask"].shape == (32, 32)
    padded = out["mask"] == 255
    assert padded.any() and (out["depth"][padded] == 0).all()
    assert set(out["mask"].unique().tolist()) <= {0, 3, 255}


def test_depth_and_classification_shapes_and_grey_to_rgb() -> None:
    sample = painted_sample()
    sample["image"] = sample["image"][:1]
    out = classification_transform(24, train=False)(sample)
    assert out["image"].shape == (3, 24, 24) and abs(float(out["image"].mean())) < 3
    out = depth_transform(24, train=True)(painted_sample())
    assert out["image"].shape == (3, 24, 24) and out["depth"].shape == (24, 24)


def test_transforms_are_reproducible_from_the_seed() -> None:
    transform = classification_transform(24, train=True)
    torch.manual_seed(7)
    a = transform(painted_sample())["image"]
    torch.manual_seed(7)
    b = transform(painted_sample())["image"]
    assert torch.equal(a, b)


def test_image_text_picks_one_caption() -> None:
    assert image_text_transform(16, train=False)(painted_sample())["text"] == "first caption"
    picks = set()
    for seed in range(12):
        torch.manual_seed(seed)
        picks.add(image_text_transform(16, train=True)(painted_sample())["text"])
    assert picks == {"first caption", "second caption"}


def test_collate_stacks_tensors_and_lists_the_rest() -> None:
    samples = [classification_transform(16, train=False)(painted_sample()) for _ in range(3)]
    batch = collate_samples(samples)
    assert batch["image"].shape == (3, 3, 16, 16) and batch["label"].tolist() == [3, 3, 3]
    assert batch["__key__"] == ["k"] * 3 and isinstance(batch["boxes"], list)
    detection = detection_collate(samples)
    assert [set(t) for t in detection["targets"]] == [{"boxes", "labels"}] * 3 and "boxes" not in detection
