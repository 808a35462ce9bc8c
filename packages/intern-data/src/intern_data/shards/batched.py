"""Training augmentation in two halves: the random draws per sample in the reader, the pixels per batch
on the device that trains (a GPU when there is one).

:class:`CropDraw` runs in the reader as a sample transform: it draws a sample's random-resized crop and
flip from torch's generator, which the reader seeds per sample, exactly as
:func:`~intern_data.shards.transforms.classification_transform` would (same calls, same order), and
keeps the decoded uint8 image as it is. :class:`BatchAugment` takes the collated batch (uint8 images
of any sizes and their draws) wherever it is, crops, resizes (antialiased, on uint8), flips, then
converts and normalises the whole batch at once. Both paths read the same samples in the same order,
resume at the same place and skip and count the same corrupt images (all that is the reader's), and
give the same pixels: on the CPU the batched path equals the per-sample one bit for bit.

What moves off the reader is the float work (conversion and normalisation of every pixel) and
torchvision v2's per-sample wrapping; on a GPU, the crop and resize too, so the reader only decodes.
With the reader's ``defer_jpeg`` it does not even decode the JPEGs it wrote: their draws take the size
from the header and :class:`BatchAugment` decodes the batch's bytes where it runs (torchvision's
batched ``decode_jpeg``, nvJPEG on a GPU). The reader still checks every sample (crc32, header, label)
and decodes any other image itself, so samples, order, resume and skip counts stay the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from intern_data.schema import IMAGE_BYTES, Sample
from intern_data.shards.transforms import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["DRAW_KEY", "BatchAugment", "CropDraw"]

DRAW_KEY = "crop_draw"
"""Per-sample ``[top, left, height, width, flip]`` (int64) that :class:`CropDraw` adds."""


class CropDraw:
    """Draw a sample's random-resized crop and horizontal flip; the image stays decoded uint8 (grey made
    RGB). ``img_size``, ``scale`` and ``hflip`` as in ``classification_transform``."""

    def __init__(
        self, img_size: int, *, scale: tuple[float, float] = (0.08, 1.0), hflip: float = 0.5
    ) -> None:
        self.crop = v2.RandomResizedCrop(img_size, scale=scale, antialias=True)
        self.hflip = hflip

    def __call__(self, sample: Sample) -> Sample:
        image = sample["image"]
        if image.shape[0] == 1:
            image = image.expand(3, -1, -1)
        box = self.crop.make_params([image])
        flip = bool(torch.rand(1) < self.hflip)  # v2's random-apply draw: applied when rand < p
        draw = torch.tensor([box["top"], box["left"], box["height"], box["width"], flip], dtype=torch.int64)
        if IMAGE_BYTES in sample:  # a deferred JPEG: ``image`` only declared its shape
            return {k: v for k, v in sample.items() if k != "image"} | {DRAW_KEY: draw}
        return {**sample, "image": image, DRAW_KEY: draw}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.crop.size}, scale={self.crop.scale}, hflip={self.hflip})"


class BatchAugment(nn.Module):
    """Crop, resize and flip each image of a batch by its draw, then make the batch float in [0, 1] and
    normalise it, on the device the batch is on. A batch without draws passes through.

    Args:
        img_size: output side (the draws' crop is resized to ``img_size`` x ``img_size``).
        mean, std: normalisation; ``normalize=False`` leaves the images in [0, 1].
    """

    def __init__(
        self,
        img_size: int,
        *,
        normalize: bool = True,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        self.size = [img_size, img_size]
        self.normalize = normalize
        self.mean, self.std = list(mean), list(std)

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        if DRAW_KEY not in batch:
            return batch
        draws = batch[DRAW_KEY].tolist()
        images = batch["image"] if IMAGE_BYTES not in batch else _decoded(batch, batch[DRAW_KEY].device)
        crops = []
        for image, (top, left, height, width, flip) in zip(images, draws, strict=True):
            crop = F.resized_crop(image, top, left, height, width, self.size, antialias=True)
            crops.append(crop.flip(-1) if flip else crop)
        images = F.to_dtype(torch.stack(crops), torch.float32, scale=True)
        images = F.normalize(images, self.mean, self.std) if self.normalize else images
        return {**{k: v for k, v in batch.items() if k not in (DRAW_KEY, IMAGE_BYTES)}, "image": images}


def _decoded(batch: dict[str, Any], device: torch.device) -> list[Tensor]:
    """The batch's images: its deferred JPEGs decoded together on ``device`` (RGB, as the per-sample path
    makes grey images), the others as the reader decoded them."""
    data = batch[IMAGE_BYTES]
    deferred = [i for i, d in enumerate(data) if d is not None]
    decoded = decode_jpeg(
        [torch.frombuffer(bytearray(data[i]), dtype=torch.uint8) for i in deferred],
        mode=ImageReadMode.RGB,
        device=device,
    )
    images = list(batch["image"]) if "image" in batch else [None] * len(data)
    for i, image in zip(deferred, decoded, strict=True):
        images[i] = image
    return images
