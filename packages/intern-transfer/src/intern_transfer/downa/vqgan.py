"""The VQ-GAN of Down-A stage 1 (paper sec. 8.1; Esser et al., "Taming Transformers").

A convolutional encoder maps an image in [-1, 1] to a grid of ``embed_dim`` vectors at ``1 / downsample``
of its size; ``vector_quantize_pytorch.VectorQuantize`` snaps each to its nearest code (EMA codebook
updates, taming's commitment loss, dead-code replacement) with the straight-through gradient; a mirrored
decoder maps the codes back to an image. Training adds an L1 + perceptual reconstruction loss and a
patch discriminator's hinge loss, balanced by taming's adaptive weight (``vqgan_module``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from vector_quantize_pytorch import VectorQuantize

__all__ = [
    "PatchDiscriminator",
    "PerceptualLoss",
    "VQGAN",
    "VQGANConfig",
    "adaptive_weight",
    "hinge_d_loss",
]


@dataclass(frozen=True)
class VQGANConfig:
    """A VQ-GAN's shape. Taming's reference is ``channels=128, channel_mult=(1, 1, 2, 2, 4)`` (factor 16
    at 256 px); at 64 px a factor of 4 or 8 keeps a useful grid of codes."""

    channels: int = 64
    channel_mult: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 1
    embed_dim: int = 64
    codebook_size: int = 512
    commitment_weight: float = 0.25
    codebook_decay: float = 0.99
    threshold_ema_dead_code: int = 2
    disc_layers: int = 2
    disc_channels: int = 64

    def __post_init__(self) -> None:
        object.__setattr__(self, "channel_mult", tuple(self.channel_mult))
        if not self.channel_mult:
            raise ValueError("VQGANConfig.channel_mult needs at least one level")

    @property
    def downsample(self) -> int:
        """How many pixels per code along each side: ``2 ** (len(channel_mult) - 1)``."""
        return 2 ** (len(self.channel_mult) - 1)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        out = dataclasses.asdict(self)
        out["channel_mult"] = list(self.channel_mult)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> VQGANConfig:
        """The inverse of :meth:`to_dict`; an unknown key raises ValueError naming it."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown VQGANConfig keys {unknown}; known: {sorted(known)}")
        return cls(**values)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(32, channels), channels)


class ResBlock(nn.Module):
    """GroupNorm, SiLU, 3x3 conv, twice, plus a (1x1-projected) skip."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _norm(in_channels),
            nn.SiLU(),
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            _norm(out_channels),
            nn.SiLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
        )
        self.skip = nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.skip(x) + self.body(x)


class Upsample(nn.Module):
    """Nearest-neighbour x2, then a 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def _head(channels: int, out_channels: int) -> list[nn.Module]:
    return [_norm(channels), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1)]


def _encoder(config: VQGANConfig) -> nn.Sequential:
    """Image (3 channels) to ``embed_dim`` channels at ``1 / downsample`` of the size."""
    widths = [config.channels * mult for mult in config.channel_mult]
    layers: list[nn.Module] = [nn.Conv2d(3, config.channels, 3, padding=1)]
    width = config.channels
    for level, out in enumerate(widths):
        for _ in range(config.num_res_blocks):
            layers.append(ResBlock(width, out))
            width = out
        if level < len(widths) - 1:
            layers.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
    layers += [ResBlock(width, width), *_head(width, config.embed_dim)]
    return nn.Sequential(*layers)


def _decoder(config: VQGANConfig) -> nn.Sequential:
    """The encoder's mirror, with taming's ``num_res_blocks + 1`` blocks per level."""
    widths = [config.channels * mult for mult in config.channel_mult]
    width = widths[-1]
    layers: list[nn.Module] = [nn.Conv2d(config.embed_dim, width, 3, padding=1), ResBlock(width, width)]
    for level in reversed(range(len(widths))):
        for _ in range(config.num_res_blocks + 1):
            layers.append(ResBlock(width, widths[level]))
            width = widths[level]
        if level > 0:
            layers.append(Upsample(width))
    layers += _head(width, 3)
    return nn.Sequential(*layers)


class VQGAN(nn.Module):
    """Encoder, EMA vector quantiser, decoder. Images are in [-1, 1] with sides divisible by
    ``config.downsample`` (:meth:`reconstruct` pads others)."""

    def __init__(self, config: VQGANConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = _encoder(config)
        # rotation_trick=False: taming's plain straight-through estimator (the library defaults to the
        # rotation trick). The codebook is a buffer moved by EMA, so it has no parameters to optimise.
        self.quantizer = VectorQuantize(
            dim=config.embed_dim,
            codebook_size=config.codebook_size,
            decay=config.codebook_decay,
            commitment_weight=config.commitment_weight,
            threshold_ema_dead_code=config.threshold_ema_dead_code,
            accept_image_fmap=True,
            rotation_trick=False,
        )
        self.decoder = _decoder(config)

    @property
    def last_layer(self) -> Tensor:
        """The decoder's final conv weight (the adaptive weight's reference)."""
        return self.decoder[-1].weight

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(z_q, indices, commit_loss)``: quantised codes ``(B, embed_dim, H/f, W/f)``, their indices
        ``(B, H/f, W/f)`` and the weighted commitment loss (zero in eval mode)."""
        factor = self.config.downsample
        height, width = x.shape[-2:]
        if height % factor or width % factor:
            raise ValueError(
                f"VQGAN input size {height}x{width} is not divisible by the downsampling factor {factor}; "
                "pad it (reconstruct() does)"
            )
        z_q, indices, commit_loss = self.quantizer(self.encoder(x))
        return z_q, indices, commit_loss

    def decode(self, z_q: Tensor) -> Tensor:
        """Codes ``(B, embed_dim, h, w)`` to an image ``(B, 3, h*f, w*f)`` (unclamped)."""
        return self.decoder(z_q)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(recon, indices, commit_loss)``."""
        z_q, indices, commit_loss = self.encode(x)
        return self.decode(z_q), indices, commit_loss

    def reconstruct(self, images01: Tensor) -> Tensor:
        """Encode and decode ``(B, 3, H, W)`` images in [0, 1] of any size, in eval mode without
        gradients: reflect-padded (bottom, right) to a multiple of the factor, cropped back, clamped to
        [0, 1]. The module's train/eval mode is restored afterwards."""
        factor = self.config.downsample
        height, width = images01.shape[-2:]
        pad_h, pad_w = -height % factor, -width % factor
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                x = F.pad(images01 * 2 - 1, (0, pad_w, 0, pad_h), mode=mode)
                recon = self(x)[0][..., :height, :width]
        finally:
            self.train(was_training)
        return ((recon + 1) / 2).clamp(0, 1)


class PatchDiscriminator(nn.Module):
    """pix2pix's / taming's NLayerDiscriminator: ``layers`` 4x4 stride-2 convs, one stride-1 conv and a
    one-channel 4x4 conv, giving one logit per patch. GroupNorm instead of BatchNorm: the logits do not
    depend on the batch, and the generator's pass through the discriminator moves no running stats."""

    def __init__(self, channels: int = 64, layers: int = 2, in_channels: int = 3) -> None:
        super().__init__()
        seq: list[nn.Module] = [nn.Conv2d(in_channels, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        width = channels
        for n in range(1, layers + 1):
            out = channels * min(2**n, 8)
            stride = 2 if n < layers else 1
            seq += [nn.Conv2d(width, out, 4, stride=stride, padding=1, bias=False), _norm(out)]
            seq.append(nn.LeakyReLU(0.2))
            width = out
        seq.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*seq)
        for module in self.modules():  # taming's weights_init
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0.0, 0.02)
            elif isinstance(module, nn.GroupNorm):
                nn.init.normal_(module.weight, 1.0, 0.02)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Images in [-1, 1] ``(B, C, H, W)`` to patch logits ``(B, 1, h, w)``."""
        return self.net(x)


def hinge_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Taming's discriminator hinge loss: ``(mean(relu(1 - real)) + mean(relu(1 + fake))) / 2``."""
    return 0.5 * (F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())


def adaptive_weight(rec_loss: Tensor, g_loss: Tensor, last_layer: Tensor, max_weight: float = 1e4) -> Tensor:
    """Taming's ``calculate_adaptive_weight``: ``|grad rec_loss| / (|grad g_loss| + 1e-4)`` with the
    gradients taken w.r.t. ``last_layer``, clamped to ``[0, max_weight]`` and detached. Both losses'
    graphs are kept for the backward pass that follows."""
    rec_grad = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)[0]
    g_grad = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
    return (rec_grad.norm() / (g_grad.norm() + 1e-4)).clamp(0.0, max_weight).detach()


class PerceptualLoss(nn.Module):
    """An LPIPS-style distance on a frozen backbone's pyramid (``forward_pyramid`` -> C2..C5, the
    project's backbone contract). No LPIPS or VGG weights can be downloaded here, so there are no learned
    per-channel linear layers: per level, each position's feature vector is scaled to unit length over
    channels (LPIPS's ``normalize_tensor``), the squared difference is summed over channels and averaged
    over positions and batch (LPIPS's lin-free form, in [0, 4]); the result is the mean over levels.
    Images are in [-1, 1] and normalised with the backbone's ``pretrained_cfg`` mean/std. The backbone is
    frozen in place and stays in eval mode whatever mode the parent module is put in."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone.eval().requires_grad_(False)
        cfg = backbone.pretrained_cfg
        self.register_buffer("mean", torch.tensor(cfg["mean"]).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg["std"]).view(1, -1, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.backbone.eval()
        return self

    def _features(self, x: Tensor) -> list[Tensor]:
        x = ((x + 1) / 2 - self.mean) / self.std
        return [F.normalize(fmap, dim=1, eps=1e-10) for fmap in self.backbone.forward_pyramid(x).values()]

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """The distance between image batches ``x`` and ``y`` (gradients flow to both)."""
        levels = [
            (fx - fy).pow(2).sum(dim=1).mean()
            for fx, fy in zip(self._features(x), self._features(y), strict=True)
        ]
        return torch.stack(levels).mean()
