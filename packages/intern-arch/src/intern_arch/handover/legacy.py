"""Hand-over folders written before parts had their own folders (format version 1) keep loading.

- Up-A-L wrote its FPN and box head together as ``neck_head.safetensors`` + ``neck_head.json`` beside
  the backbone, keyed as in torchvision's Faster R-CNN (``backbone.fpn.*``, ``roi_heads.box_head.*``);
  they become the ``neck`` and ``heads/box`` parts.
- Up-A-G wrote ``text/`` with a config of its own shape (``text_tower``, ``image_proj``, ``templates``);
  its tensors already have the ``text`` part's names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["legacy_parts"]


def legacy_parts(folder: Path, config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``PartSpec`` fields of every part a version-1 folder holds in its older layout."""
    specs = []
    neck_head = config.get("neck_head")
    if neck_head:
        described = json.loads((folder / neck_head["config"]).read_text())
        weights = folder / neck_head["weights"]
        fpn, head = described["fpn"], described["box_head"]
        specs.append(
            {
                "name": "neck",
                "kind": "fpn",
                "args": {
                    "out_channels": fpn["out_channels"],
                    "levels": fpn["in_levels"],
                    "extra_max_pool": False,
                },
                "weights": weights,
                "folder": folder,
                "key_prefix": fpn["prefix"],
                "module_prefix": "fpn.",
            }
        )
        args = {key: head[key] for key in ("in_channels", "resolution", "conv_dim", "num_convs", "fc_dim")}
        specs.append(
            {
                "name": "heads/box",
                "kind": "box_head",
                "args": args,
                "weights": weights,
                "folder": folder,
                "key_prefix": head["prefix"],
            }
        )
    text = (config.get("upa_g") or {}).get("text")
    if text:
        described = json.loads((folder / text / "config.json").read_text())
        args = {
            "tower": described["text_tower"],
            "image_dim": described["image_proj"]["in_features"],
            "templates": described.get("templates"),
        }
        specs.append(
            {
                "name": "text",
                "kind": "text",
                "args": args,
                "weights": folder / text / "model.safetensors",
                "folder": folder / text,
            }
        )
    return specs
