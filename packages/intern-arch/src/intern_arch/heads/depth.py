"""Monocular depth: a small top-down decoder over C2..C5 and the BTS scale-invariant log loss.

The GV-B depth tasks (KITTI, NYUv2) are BTS-style (Lee et al., 2019, "From Big to Small"): depth is
predicted as ``max_depth * sigmoid(.)`` at full resolution and trained with BTS's ``silog`` loss.
The decoder is FPN-like rather than BTS's local planar guidance, to stay small. Inputs are normalised
images; depth maps are metres with 0 marking pixels without ground truth.
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import Conv2dNormActivation

from ..necks import PyramidAdapter


class DepthDecoder(nn.Module):
    """Top-down fusion of a pyramid: lateral 1x1 convs, bilinear upsample-add, 3x3 conv-BN-ReLU per level.

    Args:
        in_channels: Channels of the pyramid levels, finest first.
        channels: Channels of the decoder.
    """

    def __init__(self, in_channels: Sequence[int], channels: int = 128) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(chs, channels, 1) for chs in in_channels)
        self.smooth = nn.ModuleList(Conv2dNormActivation(channels, channels, 3) for _ in in_channels)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        """Fused features at the finest level's resolution."""
        x = self.smooth[-1](self.lateral[-1](features[-1]))
        top_down = zip(features[-2::-1], self.lateral[-2::-1], self.smooth[-2::-1], strict=True)
        for feat, lateral, smooth in top_down:
            x = F.interpolate(x, size=feat.shape[-2:], mode="bilinear", align_corners=False)
            x = smooth(x + lateral(feat))
        return x


class DepthModel(nn.Module):
    """Backbone pyramid C2..C5, ``DepthDecoder``, a 3x3 conv to one channel, upsampled to the input.

    Args:
        backbone: A model with the intern-arch backbone contract.
        max_depth: Largest predictable depth in metres (80 for KITTI, 10 for NYUv2).
        decoder_channels: Channels of the decoder.
        freeze_backbone: Train only the decoder.
    """

    def __init__(
        self,
        backbone: nn.Module,
        max_depth: float,
        decoder_channels: int = 128,
        freeze_backbone: bool = False,
    ) -> None:
        super().__init__()
        self.max_depth = max_depth
        self.body = PyramidAdapter(backbone, freeze_backbone=freeze_backbone)
        self.decoder = DepthDecoder(self.body.out_channels, decoder_channels)
        self.predict = nn.Conv2d(decoder_channels, 1, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """Depth in metres, (N, H, W) at the input's size, in (0, max_depth)."""
        logits = self.predict(self.decoder(list(self.body(x).values())))
        logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.max_depth * torch.sigmoid(logits.squeeze(1))


def silog_loss(
    pred: Tensor, target: Tensor, valid_mask: Tensor | None = None, variance_focus: float = 0.85
) -> Tensor:
    """BTS's scale-invariant log loss, ``10 * sqrt(mean(d^2) - variance_focus * mean(d)^2)``.

    ``d = log(pred) - log(target)`` over the valid pixels, as in the BTS training code.

    Args:
        pred: Predicted depth, positive, same shape as ``target``.
        target: Ground-truth depth; 0 marks invalid pixels.
        valid_mask: Further restricts the pixels that count (e.g. a Garg or Eigen crop); ``target > 0``
            always applies.
        variance_focus: BTS's lambda; 1 makes the loss fully scale-invariant.

    Returns:
        The loss over valid pixels; zero (still attached to the graph) when no pixel is valid.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    valid = target > 0 if valid_mask is None else (target > 0) & valid_mask
    if not valid.any():
        return pred.sum() * 0.0
    d = torch.log(pred[valid]) - torch.log(target[valid])
    return torch.sqrt((d**2).mean() - variance_focus * d.mean() ** 2) * 10.0
