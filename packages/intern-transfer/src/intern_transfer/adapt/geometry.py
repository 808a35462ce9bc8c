"""A dense task's geometry: anchors and ASPP rates fitted to the input size.

Anchors and ASPP rates default to the input size (:mod:`intern_arch.heads.geometry`); a task config
overrides them with ``protocol.anchor_sizes`` (one per FPN level P2..P6) and ``protocol.aspp_rates``.
"""

from __future__ import annotations

from typing import Any

from intern_arch.heads.geometry import scaled_atrous_rates
from intern_data.tasks import TaskSpec


def dense_geometry(spec: TaskSpec, img_size: int) -> dict[str, Any]:
    """The adapter arguments of the task's geometry: ``anchor_sizes`` (detection; None: derived by the
    detector from its input size) or ``atrous_rates`` (segmentation), from the task config when set."""
    protocol = spec.protocol
    if spec.type.endswith("detection"):
        sizes = protocol.get("anchor_sizes")
        return {"anchor_sizes": None if sizes is None else tuple(float(s) for s in sizes)}
    if spec.type == "segmentation":
        rates = protocol.get("aspp_rates")
        return {
            "atrous_rates": scaled_atrous_rates(img_size) if rates is None else tuple(int(r) for r in rates)
        }
    return {}
