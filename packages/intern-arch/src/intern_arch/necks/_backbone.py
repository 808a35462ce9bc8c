"""A module that holds a backbone, optionally frozen for probes."""

from typing import Self

from torch import nn

from ..training import freeze


class BackboneHolder(nn.Module):
    """Holds ``backbone``; when frozen, its parameters take no gradient and it stays in eval mode.

    Eval mode keeps a frozen backbone's BatchNorm statistics and dropout fixed even while the modules
    built on top of it train, as in DINOv2's and GV-B's linear probes.
    """

    def __init__(self, backbone: nn.Module, freeze_backbone: bool = False) -> None:
        super().__init__()
        self.backbone = backbone
        self.freeze_backbone = freeze_backbone
        if freeze_backbone:
            freeze(backbone)

    def train(self, mode: bool = True) -> Self:
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()
        return self
