"""Per-task sample transforms on torchvision transforms v2, where boxes, masks and depth move with the image.

A transform here is a callable ``Sample -> Sample``: :class:`SampleTransform` wraps the image and its
spatial targets as tv_tensors (``Image``, ``BoundingBoxes`` for ``boxes`` and ``proposals``, ``Mask``,
and :class:`Depth`), runs a v2 geometric ``Compose`` over them together, and unwraps plain tensors
again. Images come out float32 RGB (scaled to [0, 1], normalised unless ``normalize=False``), masks
stay int64, depth float32.
Random choices use torch's global generator, which the shard reader seeds per sample, so a resumed run
augments exactly like an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from intern_data.schema import IGNORE_INDEX, Sample

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Depth(tv_tensors.Mask):
    """A metric depth map (H x W, metres). It moves like a mask (nearest-neighbour resampling, so no
    depth is invented across edges) but has its own fill value, 0 = invalid."""


_SPATIAL = ("boxes", "box_labels", "proposals", "mask", "depth")


def to_tv_tensors(sample: Sample) -> dict[str, Any]:
    """The image and spatial targets of ``sample`` as tv_tensors (what v2 transforms move).

    ``box_labels`` rides along as a plain tensor (v2 passes it through) so box sanitising can drop
    labels with their boxes; text, labels and keys stay out of the v2 pass.
    """
    out: dict[str, Any] = {"image": tv_tensors.Image(sample["image"])}
    canvas = tuple(sample["image"].shape[-2:])
    for key in ("boxes", "proposals"):
        if key in sample:
            out[key] = tv_tensors.BoundingBoxes(sample[key], format="XYXY", canvas_size=canvas)
    if "box_labels" in sample:
        out["box_labels"] = sample["box_labels"]
    if "mask" in sample:
        out["mask"] = tv_tensors.Mask(sample["mask"])
    if "depth" in sample:
        out["depth"] = Depth(sample["depth"])
    return out


def from_tv_tensors(sample: dict[str, Any]) -> Sample:
    """The sample with every tv_tensor turned back into a plain tensor."""
    return {k: v.as_subclass(Tensor) if isinstance(v, tv_tensors.TVTensor) else v for k, v in sample.items()}


class SampleTransform:
    """Apply a v2 geometric transform to a sample so every spatial target moves with the image, then
    make the image float (scaled to [0, 1]) and normalise it, then run ``post`` steps on the sample.

    Grey images are repeated to three channels first (``rgb``). Only the image and its spatial targets
    go through the v2 pass (an image-only sample as a bare ``Image``): v2 flattens its input at every
    step, and the per-sample Python overhead is what limits a shard reader on small images. Float
    conversion and normalisation touch only the image, so they run as torchvision functionals on it.
    """

    def __init__(
        self,
        geometry: Callable[[Any], Any],
        *,
        normalize: bool = True,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        rgb: bool = True,
        post: Sequence[Callable[[Sample], Sample]] = (),
    ) -> None:
        self.geometry = geometry
        self.normalize = normalize
        self.mean, self.std = list(mean), list(std)
        self.rgb = rgb
        self.post = list(post)

    def __call__(self, sample: Sample) -> Sample:
        sample = dict(sample)
        if self.rgb and sample["image"].shape[0] == 1:
            sample["image"] = sample["image"].expand(3, -1, -1)
        if any(key in sample for key in _SPATIAL):
            sample.update(from_tv_tensors(self.geometry(to_tv_tensors(sample))))
        else:
            sample["image"] = self.geometry(tv_tensors.Image(sample["image"])).as_subclass(Tensor)
        image = F.to_dtype(sample["image"], torch.float32, scale=True)
        sample["image"] = F.normalize(image, self.mean, self.std) if self.normalize else image
        for step in self.post:
            sample = step(sample)
        return sample

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.geometry!r}, normalize={self.normalize}, post={self.post!r})"


class SanitizeBoxes(nn.Module):
    """torchvision's ``SanitizeBoundingBoxes`` on ``boxes``/``box_labels`` only.

    Run on the whole sample, torchvision's transform would also index ``proposals`` and any mask whose
    first dimension happens to equal the number of boxes; this scopes it to the detection targets.
    """

    def __init__(self, min_size: float = 1.0) -> None:
        super().__init__()
        self.sanitize = v2.SanitizeBoundingBoxes(min_size=min_size)

    def forward(self, sample: dict[str, Any]) -> dict[str, Any]:
        if "boxes" not in sample:
            return sample
        out = self.sanitize({"boxes": sample["boxes"], "labels": sample["box_labels"]})
        return {**sample, "boxes": out["boxes"], "box_labels": out["labels"]}


class PickCaption:
    """Reduce ``text`` (a list of captions) to one caption: a random one (training) or the first."""

    def __init__(self, random: bool = True) -> None:
        self.random = random

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        texts = sample.get("text") or [""]
        index = int(torch.randint(len(texts), ())) if self.random else 0
        return {**sample, "text": texts[index]}


def classification_transform(
    img_size: int = 224,
    train: bool = True,
    *,
    scale: tuple[float, float] = (0.08, 1.0),
    crop_pct: float = 0.875,
    hflip: float = 0.5,
    rand_augment: tuple[int, int] | None = None,
    random_erasing: float = 0.0,
    normalize: bool = True,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> SampleTransform:
    """Training: random-resized crop + horizontal flip, then RandAugment (``(num_ops, magnitude)``, e.g.
    timm's ``rand-m9-n2`` is ``(2, 9)``) on the uint8 image and random erasing (probability
    ``random_erasing``) on the normalised one, as in the DeiT / timm recipes. torchvision's v2 versions
    are used because they draw from torch's generator, which the shard reader seeds per sample (timm's
    draw from Python's ``random``, so a resumed run would augment differently). Evaluation: resize to
    ``img_size / crop_pct``, centre crop. Grey images become RGB; then float in [0, 1] and normalisation."""
    post: list[Callable[[Sample], Sample]] = []
    if train:
        steps: list[Any] = [
            v2.RandomResizedCrop(img_size, scale=scale, antialias=True),
            v2.RandomHorizontalFlip(hflip),
        ]
        if rand_augment is not None:
            steps.append(v2.RandAugment(num_ops=int(rand_augment[0]), magnitude=int(rand_augment[1])))
        if random_erasing > 0:
            post.append(EraseImage(random_erasing))
    else:
        steps = [v2.Resize(int(round(img_size / crop_pct)), antialias=True), v2.CenterCrop(img_size)]
    return SampleTransform(v2.Compose(steps), normalize=normalize, mean=mean, std=std, post=post)


class EraseImage:
    """Random erasing of the (normalised) image alone, with normal noise as in timm's ``mode="pixel"``."""

    def __init__(self, probability: float) -> None:
        self.erase = v2.RandomErasing(p=probability, value="random")

    def __call__(self, sample: Sample) -> Sample:
        return {**sample, "image": self.erase(sample["image"])}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.erase.p})"


def detection_transform(
    img_size: int = 512,
    train: bool = True,
    *,
    scale: tuple[float, float] = (0.3, 1.0),
    hflip: float = 0.5,
    min_box_size: float = 1.0,
    normalize: bool = False,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> SampleTransform:
    """Images of ``img_size`` x ``img_size`` with their boxes: training crops at random scale and flips,
    evaluation resizes. Boxes are clamped to the image and degenerate ones dropped with their labels.
    Not normalised by default: torchvision's detection models normalise inside (``normalize=True``
    for other heads)."""
    if train:
        steps: list[Any] = [
            v2.RandomHorizontalFlip(hflip),
            v2.RandomResizedCrop(img_size, scale=scale, ratio=(3 / 4, 4 / 3), antialias=True),
        ]
    else:
        steps = [v2.Resize((img_size, img_size), antialias=True)]
    steps += [v2.ClampBoundingBoxes(), SanitizeBoxes(min_box_size)]
    return SampleTransform(v2.Compose(steps), normalize=normalize, mean=mean, std=std)


def segmentation_transform(
    img_size: int = 512,
    train: bool = True,
    *,
    scale: tuple[float, float] = (0.5, 2.0),
    hflip: float = 0.5,
    ignore_index: int = IGNORE_INDEX,
    normalize: bool = True,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> SampleTransform:
    """Training: shorter side resized to ``img_size`` x a random factor in ``scale``, random
    ``img_size`` crop (padding the mask with ``ignore_index``), flip. Evaluation: resize to
    ``img_size`` x ``img_size``. Masks are resampled nearest-neighbour and stay int64."""
    fill = {tv_tensors.Image: 0, tv_tensors.Mask: ignore_index, Depth: 0, "others": 0}
    if train:
        steps: list[Any] = [
            v2.RandomResize(
                int(img_size * scale[0]),
                max(int(img_size * scale[1]), int(img_size * scale[0]) + 1),
                antialias=True,
            ),
            v2.RandomCrop(img_size, pad_if_needed=True, fill=fill),
            v2.RandomHorizontalFlip(hflip),
        ]
    else:
        steps = [v2.Resize((img_size, img_size), antialias=True)]
    return SampleTransform(v2.Compose(steps), normalize=normalize, mean=mean, std=std)


def depth_transform(
    img_size: int = 256,
    train: bool = True,
    *,
    scale: tuple[float, float] = (0.5, 1.0),
    hflip: float = 0.5,
    normalize: bool = True,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> SampleTransform:
    """Training: random-resized crop (aspect kept near the original) + flip; evaluation: resize. Depth
    values stay metric (resampling changes the field of view, not the distances); 0 stays invalid."""
    if train:
        steps: list[Any] = [
            v2.RandomResizedCrop(img_size, scale=scale, ratio=(0.9, 1.1), antialias=True),
            v2.RandomHorizontalFlip(hflip),
        ]
    else:
        steps = [v2.Resize((img_size, img_size), antialias=True)]
    return SampleTransform(v2.Compose(steps), normalize=normalize, mean=mean, std=std)


def image_text_transform(
    img_size: int = 224,
    train: bool = True,
    *,
    scale: tuple[float, float] = (0.5, 1.0),
    normalize: bool = True,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> SampleTransform:
    """The classification transform (milder crops, no flip: captions say left and right) plus one
    caption per sample: a random one in training, the first in evaluation."""
    if train:
        steps: list[Any] = [v2.RandomResizedCrop(img_size, scale=scale, antialias=True)]
    else:
        steps = [v2.Resize(img_size, antialias=True), v2.CenterCrop(img_size)]
    return SampleTransform(
        v2.Compose(steps), normalize=normalize, mean=mean, std=std, post=[PickCaption(random=train)]
    )
