"""The backbone contract shared by every intern-arch model (docs/architecture.md, "The backbone contract")."""

from torch import Tensor

PYRAMID_LEVELS = ("C2", "C3", "C4", "C5")
PYRAMID_STRIDES = (4, 8, 16, 32)

CONTRACT_METHODS = (
    "forward_features",
    "forward_pyramid",
    "forward_head",
    "reset_classifier",
    "set_grad_checkpointing",
    "no_weight_decay",
)


class PyramidMixin:
    """Adds ``forward_pyramid`` to a timm-style model with ``forward_intermediates``.

    ``feature_info`` lists the pyramid levels C2..C5 (``name``, ``num_chs``, ``reduction``, ``module``);
    ``pyramid_indices`` gives their positions in the model's ``forward_intermediates`` indexing.
    """

    feature_info: list[dict]
    pyramid_indices: tuple[int, ...]

    def forward_pyramid(self, x: Tensor) -> dict[str, Tensor]:
        """Feature maps C2..C5 at strides 4, 8, 16 and 32."""
        maps = self.forward_intermediates(x, indices=list(self.pyramid_indices), intermediates_only=True)
        return {info["name"]: fmap for info, fmap in zip(self.feature_info, maps, strict=True)}


def pyramid_feature_info(channels: list[int], reductions: list[int], modules: list[str]) -> list[dict]:
    """``feature_info`` entries for the four pyramid levels, in timm's key convention plus ``name``."""
    if tuple(reductions) != PYRAMID_STRIDES:
        raise ValueError(f"pyramid stages {modules} have strides {reductions}, expected {PYRAMID_STRIDES}")
    return [
        {"name": name, "num_chs": chs, "reduction": stride, "module": module}
        for name, stride, chs, module in zip(PYRAMID_LEVELS, reductions, channels, modules, strict=True)
    ]
