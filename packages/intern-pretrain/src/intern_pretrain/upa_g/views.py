"""Up-A-G's training views of an image-text sample: two image views and two caption views.

Image views are MoCo v2's (random-resized crop, colour jitter, greyscale, blur, flip) or, with
``color=False``, the crop and the flip only, views that still match a caption's colour words. The
caption is one of the sample's captions picked at random, and its EDA copy the second text view. Random
draws use torch's global generator, which the shard reader seeds per sample, so a resumed run augments
as an uninterrupted one.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import torch
from torchvision.transforms import v2

from intern_data.shards.transforms import IMAGENET_MEAN, IMAGENET_STD, PickCaption, SampleTransform
from intern_pretrain.upa_g.eda import EDA

__all__ = ["UpaGTransform", "moco_v2_view"]


def moco_v2_view(
    img_size: int, scale: tuple[float, float] = (0.2, 1.0), hflip: float = 0.5, color: bool = True
) -> v2.Compose:
    """MoCo v2's augmentation on uint8 images: random-resized crop, colour jitter 0.4/0.4/0.4/0.1
    (p 0.8), greyscale (p 0.2), Gaussian blur sigma 0.1-2 (p 0.5, kernel ~10% of the side), flip.
    ``color=False`` keeps only the crop and the flip."""
    crop = [v2.RandomResizedCrop(img_size, scale=tuple(scale), antialias=True)]
    if color:
        kernel = max(3, int(0.1 * img_size) // 2 * 2 + 1)
        crop += [
            v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            v2.RandomGrayscale(p=0.2),
            v2.RandomApply([v2.GaussianBlur(kernel, sigma=(0.1, 2.0))], p=0.5),
        ]
    return v2.Compose([*crop, v2.RandomHorizontalFlip(hflip)])


class UpaGTransform:
    """``image`` and ``image2`` (two views), one random caption as ``text`` and its EDA copy as
    ``text_eda``.

    Args:
        img_size: side of the views.
        eda: the caption's augmentation.
        scale: the crop's area range (paper 0.2-1).
        hflip: flip probability.
        color: MoCo v2's colour operations on (the paper's) or off.
        mean, std: normalisation.
    """

    def __init__(
        self,
        img_size: int,
        eda: EDA,
        *,
        scale: Sequence[float] = (0.2, 1.0),
        hflip: float = 0.5,
        color: bool = True,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        self.geometry = moco_v2_view(img_size, (float(scale[0]), float(scale[1])), hflip, color)
        self.first = SampleTransform(self.geometry, mean=mean, std=std, post=[PickCaption(random=True)])
        self.second = SampleTransform(self.geometry, mean=mean, std=std)
        self.eda = eda

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        out = self.first(sample)
        out["image2"] = self.second({"image": sample["image"]})["image"]
        out["text_eda"] = self.eda(out["text"], random.Random(int(torch.randint(2**62, ()))))
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(geometry={self.geometry!r}, eda={self.eda})"
