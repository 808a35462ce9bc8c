"""Box clean-up shared by the detection readers."""

from __future__ import annotations

from collections import Counter


def clip_box(
    box: tuple[float, float, float, float], width: float, height: float, dropped: Counter[str]
) -> tuple[float, float, float, float] | None:
    """Clip an xyxy box to the image; return None (counting why in ``dropped``) if nothing is left.

    Boxes reaching outside the image are clipped to it and counted under ``"clipped"``; boxes with
    no area inside the image are dropped and counted under ``"empty"``.
    """
    x0, y0, x1, y1 = box
    cx0, cy0 = min(max(x0, 0.0), width), min(max(y0, 0.0), height)
    cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
    if cx1 <= cx0 or cy1 <= cy0:
        dropped["empty"] += 1
        return None
    if (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1):
        dropped["clipped"] += 1
    return cx0, cy0, cx1, cy1
