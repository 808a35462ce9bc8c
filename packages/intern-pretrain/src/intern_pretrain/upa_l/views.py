"""The three augmented views of an image and its proposals, for Up-A-L's local BYOL (after SoCo).

Views 1 and 2 are the whole image resized to ``size`` x ``size`` with independent flips and BYOL's
asymmetric colour augmentations; view 3 is resized to ``view3_size``. SoCo makes view 3 by downsampling
view 2 (224 -> 112) so the pair (1, 3) teaches scale invariance; Up-A-L keeps view 3 at 448 like the
other two (paper Sec. 5.1.2), where a downsampled copy of view 2 would be view 2 itself, so by default view 3
draws its own flip and colour augmentation (``view3_from_view2=True`` gives SoCo's copy of view 2).
Box jitter is not used (harmful in Up-A-L, paper Sec. 5.2.1), and views are not cropped, so every
proposal stays whole in every view.

``K`` proposals (paper: 8) are drawn per image without replacement, padded with repeats when the image
has fewer; the same proposals, moved with each view's geometry, appear in every view in the same order.
Random draws use torch's global generator, which the shard reader seeds per sample.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from intern_data.schema import Sample
from intern_data.shards.transforms import IMAGENET_MEAN, IMAGENET_STD


def sample_proposals(proposals: Tensor, num: int, image_size: tuple[int, int]) -> Tensor:
    """``num`` proposals drawn without replacement, padded with repeats of a random order when fewer;
    an image without proposals gets the whole image ``num`` times."""
    proposals = proposals.reshape(-1, 4).float()
    if len(proposals) == 0:
        height, width = image_size
        return torch.tensor([[0.0, 0.0, float(width), float(height)]]).expand(num, 4).clone()
    order = torch.randperm(len(proposals))
    repeats = -(-num // len(proposals))
    return proposals[order.repeat(repeats)[:num]]


def color_augmentation(
    size: int,
    blur_p: float,
    solarize_p: float,
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.2, 0.1),
    jitter_p: float = 0.8,
    grayscale_p: float = 0.2,
) -> v2.Compose:
    """BYOL's colour augmentation of one view (uint8 in, uint8 out); the blur kernel is ~10% of ``size``."""
    kernel = max(3, int(0.1 * size) // 2 * 2 + 1)
    return v2.Compose(
        [
            v2.RandomApply([v2.ColorJitter(*jitter)], p=jitter_p),
            v2.RandomGrayscale(p=grayscale_p),
            v2.RandomApply([v2.GaussianBlur(kernel, sigma=(0.1, 2.0))], p=blur_p),
            v2.RandomSolarize(threshold=128, p=solarize_p),
        ]
    )


class LocalViews:
    """Sample -> ``{"__key__", "views": [3 x C x S x S] * 3, "boxes": [K x 4] * 3}`` for Up-A-L.

    The sample needs ``image`` (uint8 C x H x W) and ``proposals`` (M x 4 xyxy pixels, from the shards
    or attached by :class:`AttachProposals`). Boxes come out in each view's pixels.

    Args:
        size: Side of views 1 and 2 (paper: 448).
        view3_size: Side of view 3 (paper: 448; SoCo: half of ``size``).
        num_proposals: Proposals per image, ``K`` (paper: 8).
        view3_from_view2: Make view 3 by resizing view 2 (SoCo) instead of augmenting afresh.
        flip_p: Horizontal flip probability of each view.
        blur_p: Gaussian blur probability of views 1, 2, 3 (BYOL's asymmetric 1.0 / 0.1).
        solarize_p: Solarisation probability of views 1, 2, 3 (BYOL's 0.0 / 0.2).
        jitter: Colour jitter brightness, contrast, saturation, hue.
        jitter_p: Colour jitter probability.
        grayscale_p: Grey conversion probability.
        normalize: Normalise with ``mean`` and ``std`` after scaling to [0, 1].
        mean: Normalisation mean (the backbone's ``pretrained_cfg``).
        std: Normalisation std.
    """

    def __init__(
        self,
        size: int = 448,
        view3_size: int = 448,
        num_proposals: int = 8,
        *,
        view3_from_view2: bool = False,
        flip_p: float = 0.5,
        blur_p: Sequence[float] = (1.0, 0.1, 0.5),
        solarize_p: Sequence[float] = (0.0, 0.2, 0.0),
        jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.2, 0.1),
        jitter_p: float = 0.8,
        grayscale_p: float = 0.2,
        normalize: bool = True,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        if num_proposals < 1:
            raise ValueError(f"num_proposals must be positive, got {num_proposals}")
        if len(blur_p) != 3 or len(solarize_p) != 3:
            raise ValueError("blur_p and solarize_p give one probability per view (three)")
        self.sizes = (size, size, view3_size)
        self.num_proposals = num_proposals
        self.view3_from_view2 = view3_from_view2
        self.normalize = normalize
        self.mean, self.std = list(mean), list(std)
        self.geometry = [
            v2.Compose([v2.Resize((s, s), antialias=True), v2.RandomHorizontalFlip(flip_p)])
            for s in self.sizes
        ]
        self.color = [
            color_augmentation(s, blur_p[i], solarize_p[i], jitter, jitter_p, grayscale_p)
            for i, s in enumerate(self.sizes)
        ]

    def _view(self, index: int, image: Tensor, boxes: Tensor) -> tuple[Tensor, Tensor]:
        canvas = tuple(image.shape[-2:])
        out = self.geometry[index](
            {
                "image": tv_tensors.Image(image),
                "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=canvas),
            }
        )
        view = self.color[index](out["image"])
        return view.as_subclass(Tensor), out["boxes"].as_subclass(Tensor)

    def _finish(self, image: Tensor) -> Tensor:
        image = F.to_dtype(image, torch.float32, scale=True)
        return F.normalize(image, self.mean, self.std) if self.normalize else image

    def __call__(self, sample: Sample) -> dict[str, Any]:
        if "proposals" not in sample:
            raise KeyError(
                f"sample {sample.get('__key__')!r} has no 'proposals'; attach them with AttachProposals "
                "(from load_proposals) or write them into the shards"
            )
        image = sample["image"]
        if image.shape[0] == 1:
            image = image.expand(3, -1, -1)
        boxes = sample_proposals(sample["proposals"], self.num_proposals, tuple(image.shape[-2:]))
        views, view_boxes = [], []
        for index in range(3):
            if index == 2 and self.view3_from_view2:
                size = self.sizes[2]
                scale = size / views[1].shape[-1]
                view = F.resize(views[1], [size, size], antialias=True)
                views.append(view)
                view_boxes.append(view_boxes[1] * scale)
                continue
            view, moved = self._view(index, image, boxes)
            views.append(view)
            view_boxes.append(moved)
        return {
            "__key__": sample.get("__key__"),
            "views": [self._finish(view) for view in views],
            "boxes": view_boxes,
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(sizes={self.sizes}, num_proposals={self.num_proposals}, "
            f"view3_from_view2={self.view3_from_view2})"
        )


class AttachProposals:
    """Sample -> sample with ``proposals`` taken from a ``{key: boxes}`` map (:func:`load_proposals`).

    Args:
        proposals: Proposals by sample key.
        missing: ``"error"`` (default) for a key without proposals, or ``"whole"`` for the whole image.
    """

    def __init__(self, proposals: Mapping[str, Tensor], missing: str = "error") -> None:
        if missing not in ("error", "whole"):
            raise ValueError(f"missing must be 'error' or 'whole', got {missing!r}")
        self.proposals = proposals
        self.missing = missing

    def __call__(self, sample: Sample) -> Sample:
        key = sample["__key__"]
        if key in self.proposals:
            return {**sample, "proposals": self.proposals[key]}
        if self.missing == "error":
            raise KeyError(f"no proposals for sample {key!r}; were they written for these shards?")
        height, width = sample["image"].shape[-2:]
        return {**sample, "proposals": torch.tensor([[0.0, 0.0, float(width), float(height)]])}


def collate_views(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch :class:`LocalViews` outputs: ``views`` and ``boxes`` become lists of three stacked tensors
    (B x 3 x S x S and B x K x 4)."""
    return {
        "__key__": [sample["__key__"] for sample in samples],
        "views": [torch.stack([s["views"][i] for s in samples]) for i in range(3)],
        "boxes": [torch.stack([s["boxes"][i] for s in samples]) for i in range(3)],
    }
