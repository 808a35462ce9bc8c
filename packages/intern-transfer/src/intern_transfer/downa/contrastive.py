"""Sample-based contrastive learning of Down-A (paper section 8.2), MoCo-style.

Against supervision collapse (after CrossTransformers' SimCLR episodes): two augmentations of a sample
give ``x_q`` and ``x_k``; ``x_q`` goes through the trained network to ``f_q``, ``x_k`` through its
momentum copy (:class:`MomentumEncoder`) to ``f_k``; InfoNCE of ``f_q`` against ``f_k`` and a queue of past
keys (:class:`FeatureQueue`) is optimised beside the task loss (:class:`SampleContrast`).

What a sample and the network are, per task:

- classification: the image; the whole network, then :class:`ImageProjector` on pooled features;
- detection: an instance box; backbone + neck, RoIAlign, then :class:`RoIProjector` (one MLP layer);
- segmentation: the pixels of one class; backbone, then :class:`PixelProjector` (two 1x1 convs), then
  :func:`class_pixel_instances` to average each class's pixel embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torchvision.ops import MultiScaleRoIAlign

EMPTY = -1
"""Queue label of a slot never written: excluded from the negatives."""
UNLABELLED = -2
"""Queue label of a key enqueued without a class: a negative for every query."""


class FeatureQueue(nn.Module):
    """Ring buffer of the last ``size`` L2-normalised keys, with their class labels.

    Buffers (all in ``state_dict``, so a resumed run continues with the same queue): ``features``
    (size x dim), ``labels`` (size, long: :data:`EMPTY` for unwritten slots, :data:`UNLABELLED` for keys
    enqueued without labels, else the class) and ``pointer`` (the next slot to write; the oldest entry
    once the queue is full). Labels let :func:`info_nce` skip same-class negatives (per-class
    segmentation instances, where another image's instance of the same class is not a true negative).

    Under DDP, gather keys across ranks before :meth:`enqueue` (as MoCo does) so that every rank holds
    the same queue; otherwise DDP's default buffer broadcast overwrites each rank's queue with rank 0's.
    """

    features: Tensor
    labels: Tensor
    pointer: Tensor

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("features", torch.zeros(size, dim))
        self.register_buffer("labels", torch.full((size,), EMPTY, dtype=torch.long))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))

    @property
    def size(self) -> int:
        return self.features.shape[0]

    @torch.no_grad()
    def enqueue(self, keys: Tensor, labels: Tensor | None = None) -> None:
        """Write ``keys`` (N x dim, normalised here) after the newest entry, overwriting the oldest."""
        n = keys.shape[0]
        if labels is None:
            labels = torch.full((n,), UNLABELLED, dtype=torch.long, device=keys.device)
        kept = min(n, self.size)
        start = int(self.pointer) + n - kept
        slots = (start + torch.arange(kept, device=self.features.device)) % self.size
        self.features[slots] = F.normalize(keys[n - kept :].detach(), dim=1).to(self.features)
        self.labels[slots] = labels[n - kept :].to(self.labels)
        self.pointer.fill_((int(self.pointer) + n) % self.size)


def info_nce(
    q: Tensor, k: Tensor, queue: FeatureQueue, temperature: float, labels: Tensor | None = None
) -> Tensor:
    """MoCo's InfoNCE: cross-entropy of ``[q.k, q.queue] / temperature`` with target 0 (the positive).

    ``q`` and ``k`` (N x dim) are L2-normalised here; ``k`` is used as given (detach it, or take it from
    the momentum encoder). Empty queue slots are not negatives, nor, when ``labels`` (N,) is given, the
    queue entries of the query's own class. Mean over the N queries.
    """
    q = F.normalize(q, dim=1)
    k = F.normalize(k, dim=1)
    positives = (q * k).sum(dim=1, keepdim=True)
    negatives = q @ queue.features.to(q, copy=True).t()  # a snapshot: enqueue writes the buffer in place
    excluded = (queue.labels == EMPTY).unsqueeze(0)
    if labels is not None:
        excluded = excluded | (queue.labels.unsqueeze(0) == labels.unsqueeze(1))
    negatives = negatives.masked_fill(excluded, float("-inf"))
    logits = torch.cat([positives, negatives], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long, device=q.device))


class MomentumEncoder(nn.Module):
    """Momentum (EMA) copy of an online module: ``W_k <- decay * W_k + (1 - decay) * W_q``.

    Built on :class:`torch.optim.swa_utils.AveragedModel` with ``get_ema_multi_avg_fn(decay)`` and
    ``use_buffers=True`` (BN running statistics are averaged too). The copy starts equal to the online
    module and has no trainable parameters; call :meth:`update` after each optimiser step. MoCo uses
    ``decay = 0.999``. :meth:`forward` runs the copy without gradients, in this module's train/eval mode.
    """

    def __init__(self, online: nn.Module, decay: float = 0.999) -> None:
        super().__init__()
        self.decay = decay
        self.average = AveragedModel(online, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
        self.average.requires_grad_(False)
        # The first update_parameters copies instead of averaging: spend it on the (identical) start.
        self.average.update_parameters(online)

    @property
    def module(self) -> nn.Module:
        """The momentum copy itself."""
        return self.average.module

    def update(self, online: nn.Module) -> None:
        """One EMA step towards ``online``'s current parameters and buffers."""
        self.average.update_parameters(online)

    @torch.no_grad()
    def forward(self, *args: object, **kwargs: object) -> Tensor:
        return self.average(*args, **kwargs)


class ImageProjector(nn.Sequential):
    """MoCo v2 head on pooled features (B x in_dim): Linear-ReLU-Linear to ``dim``."""

    def __init__(self, in_dim: int, dim: int = 128, hidden_dim: int | None = None) -> None:
        hidden_dim = hidden_dim or in_dim
        super().__init__(nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, dim))


class RoIProjector(nn.Module):
    """Detection instances: ``MultiScaleRoIAlign`` over FPN maps, flatten, one Linear layer to ``dim``.

    ``forward(features, boxes, image_sizes)``: ``features`` maps names to (B x C x h x w) maps (only
    ``featmap_names`` are pooled, torchvision's FPN level names by default); ``boxes`` holds one
    (n_i x 4) xyxy tensor per image in input-image pixels; ``image_sizes`` the (H, W) of each input
    image. Returns (sum n_i x dim), boxes in image order.
    """

    def __init__(
        self,
        in_channels: int,
        roi_size: int = 7,
        dim: int = 128,
        featmap_names: Sequence[str] = ("0", "1", "2", "3"),
        sampling_ratio: int = 2,
    ) -> None:
        super().__init__()
        self.pool = MultiScaleRoIAlign(list(featmap_names), roi_size, sampling_ratio)
        self.fc = nn.Linear(in_channels * roi_size * roi_size, dim)

    def forward(
        self, features: dict[str, Tensor], boxes: list[Tensor], image_sizes: list[tuple[int, int]]
    ) -> Tensor:
        return self.fc(self.pool(features, boxes, image_sizes).flatten(1))


class PixelProjector(nn.Sequential):
    """Segmentation head on a feature map: 1x1 conv, ReLU, 1x1 conv to ``dim`` channels."""

    def __init__(self, in_channels: int, dim: int = 128, hidden_channels: int | None = None) -> None:
        hidden_channels = hidden_channels or in_channels
        super().__init__(
            nn.Conv2d(in_channels, hidden_channels, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden_channels, dim, 1),
        )


def class_pixel_instances(
    embeddings: Tensor, masks: Tensor, ignore_index: int = 255, background: int | None = 0
) -> tuple[Tensor, Tensor, Tensor]:
    """One instance per (image, class present): the L2-normalised mean of that class's pixel embeddings.

    ``masks`` (B x H x W, long) are resized to the embeddings' (h x w) by nearest neighbour; pixels of
    ``ignore_index`` and of ``background`` (unless None) form no instance, and a class that vanishes in
    the resizing has none. Returns ``(features M x D, classes M, image_index M)`` sorted by image, then
    class; gradients flow into ``embeddings``.
    """
    b, d, h, w = embeddings.shape
    small = F.interpolate(masks.unsqueeze(1).float(), size=(h, w), mode="nearest").long().view(b, h * w)
    keep = small != ignore_index
    if background is not None:
        keep &= small != background
    image_index = torch.arange(b, device=masks.device).unsqueeze(1).expand(b, h * w)[keep]
    pixel_classes = small[keep]
    num_classes = int(pixel_classes.max()) + 1 if pixel_classes.numel() else 1
    groups, group_of_pixel = torch.unique(image_index * num_classes + pixel_classes, return_inverse=True)
    pixels = embeddings.permute(0, 2, 3, 1).reshape(b, h * w, d)[keep]
    sums = pixels.new_zeros(groups.numel(), d).index_add(0, group_of_pixel, pixels)
    counts = torch.bincount(group_of_pixel, minlength=groups.numel()).unsqueeze(1).to(sums)
    return F.normalize(sums / counts, dim=1), groups % num_classes, groups // num_classes


class SampleContrast(nn.Module):
    """The contrastive term beside the task loss: InfoNCE against a key queue, then enqueue the keys.

    ``temperature`` 0.2 and a 128-d embedding follow MoCo v2. With ``exclude_same_class`` (default),
    labels given to :meth:`loss` also keep queue entries of the query's class out of its negatives.
    """

    def __init__(
        self,
        dim: int = 128,
        queue_size: int = 4096,
        temperature: float = 0.2,
        exclude_same_class: bool = True,
    ) -> None:
        super().__init__()
        self.queue = FeatureQueue(queue_size, dim)
        self.temperature = temperature
        self.exclude_same_class = exclude_same_class

    def loss(self, q_features: Tensor, k_features: Tensor, labels: Tensor | None = None) -> Tensor:
        """InfoNCE of queries (N x dim) against their keys (N x dim) and the queue; keys then enqueued."""
        k_features = k_features.detach()
        loss = info_nce(
            q_features,
            k_features,
            self.queue,
            self.temperature,
            labels=labels if self.exclude_same_class else None,
        )
        self.queue.enqueue(k_features, labels)
        return loss
