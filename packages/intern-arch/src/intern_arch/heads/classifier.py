"""A linear classifier on a backbone's pooled features, for linear probes and classification fine-tuning."""

from typing import ClassVar

from timm.layers.adaptive_avgmax_pool import adaptive_pool_feat_mult
from torch import Tensor, nn

from ..necks._backbone import BackboneHolder


class LinearClassifier(BackboneHolder):
    """Backbone, global pooling and one ``nn.Linear``.

    The backbone's own classifier is dropped (``reset_classifier(0, pool)``), so its
    ``forward_head(pre_logits=True)`` gives the pooled features the linear layer reads.

    Args:
        backbone: A model with the intern-arch backbone contract.
        num_classes: Output classes.
        pool: timm global pooling type (``avg``, ``max``, ``avgmax``, ``catavgmax``).
        freeze_backbone: Linear probe: no gradient into the backbone, which stays in eval mode.
    """

    def __init__(
        self, backbone: nn.Module, num_classes: int, pool: str = "avg", freeze_backbone: bool = False
    ) -> None:
        super().__init__(backbone, freeze_backbone)
        backbone.reset_classifier(0, pool)
        self.fc = nn.Linear(backbone.num_features * adaptive_pool_feat_mult(pool), num_classes)
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: Tensor) -> Tensor:
        features = self.backbone.forward_head(self.backbone.forward_features(x), pre_logits=True)
        return self.fc(features)


class LinearHead(nn.Linear):
    """A linear layer over pooled features as a hand-over part (kind ``linear``): the per-source heads
    of a classification expert, which share one backbone pass.

    Args:
        in_features: Pooled feature size (the backbone's ``num_features``).
        num_classes: Output classes.
    """

    handover_kind: ClassVar[str] = "linear"

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__(in_features, num_classes)
        nn.init.normal_(self.weight, std=0.01)
        nn.init.zeros_(self.bias)
        self.args = {"in_features": int(in_features), "num_classes": int(num_classes)}
