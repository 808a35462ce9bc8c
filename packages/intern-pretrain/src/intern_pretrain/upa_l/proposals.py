"""Unsupervised region proposals for Up-A-L: selective search and the paper's filters.

Selective search (Uijlings et al., IJCV 2013) runs once per image, as in SoCo, through OpenCV's
``ximgproc`` (package ``opencv-contrib-python-headless``); :mod:`.sidecar` stores a split's proposals
next to its shards.

Filters (paper Sec. 5.1.2, SoCo): width and height >= ``min_size`` (32 px in the paper, for images of a
few hundred pixels; the size is not rescaled for small images, so pass a smaller one for them, as the
tests do at 64 px), aspect ratio in [1/3, 3], ``sqrt(box area / image area)`` in [0.3, 0.8]. When no box
passes, looser stages are tried in turn (see :data:`FALLBACK_STAGES`), and the whole image is the last
resort.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from intern_data.schema import Sample

MODES = ("fast", "quality", "single")
# Which rules each filter stage applies: the paper's three rules, then without the area rule, then only
# the minimum size; after these the whole image.
FALLBACK_STAGES = (("size", "aspect", "area"), ("size", "aspect"), ("size",))


def _cv2_ximgproc() -> Any:
    try:
        import cv2
    except ImportError as err:
        raise ImportError(
            "selective search needs OpenCV's contrib modules: pip install opencv-contrib-python-headless"
        ) from err
    if not hasattr(cv2, "ximgproc"):
        raise ImportError(
            f"cv2 {cv2.__version__} lacks the ximgproc contrib module; uninstall opencv-python(-headless) "
            "and pip install opencv-contrib-python-headless"
        )
    return cv2


def _to_hwc_uint8(image: Tensor | np.ndarray) -> np.ndarray:
    """An RGB H x W x 3 uint8 array from a C x H x W tensor or an H x W x C / H x W array."""
    if isinstance(image, Tensor):
        if image.dtype != torch.uint8:
            raise TypeError(f"selective search needs a uint8 image, got {image.dtype}")
        array = image.detach().cpu()
        array = (array.unsqueeze(0) if array.ndim == 2 else array).permute(1, 2, 0).numpy()
    else:
        array = np.asarray(image)
        if array.dtype != np.uint8:
            raise TypeError(f"selective search needs a uint8 image, got {array.dtype}")
        array = array[..., None] if array.ndim == 2 else array
    if array.ndim != 3 or array.shape[-1] not in (1, 3):
        raise ValueError(
            f"expected a C x H x W tensor or an H x W x C array with 1 or 3 channels, got {image.shape}"
        )
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.ascontiguousarray(array)


def selective_search(
    image: Tensor | np.ndarray, mode: str = "fast", search_size: int | None = None
) -> Tensor:
    """Selective search proposals of one image.

    Args:
        image: uint8 RGB image, C x H x W tensor (the sample schema) or H x W x C array; grey is repeated.
        mode: OpenCV's strategy: ``"fast"`` (SoCo's choice), ``"quality"`` or ``"single"``.
        search_size: Shrink the image so its longer side is at most this before searching (faster on
            large images); boxes are scaled back to the input's pixels. ``None`` searches at full size.

    Returns:
        float32 N x 4 boxes, xyxy in pixels of ``image``, sorted (by x1, y1, x2, y2). OpenCV ranks its
        hypotheses by ``level * random`` with an RNG that ``cv2.setRNGSeed`` does not reach, so the set of
        boxes is reproducible but their order is not; sorting makes the output deterministic.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    cv2 = _cv2_ximgproc()
    rgb = _to_hwc_uint8(image)
    height, width = rgb.shape[:2]
    scale = 1.0
    if search_size is not None and max(height, width) > search_size:
        scale = search_size / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    search = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    search.setBaseImage(np.ascontiguousarray(rgb[..., ::-1]))  # OpenCV images are BGR
    {"fast": search.switchToSelectiveSearchFast, "quality": search.switchToSelectiveSearchQuality}.get(
        mode, search.switchToSingleStrategy
    )()
    rects = search.process()
    if len(rects) == 0:
        return torch.zeros(0, 4)
    boxes = torch.as_tensor(np.asarray(rects), dtype=torch.float32).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]  # x, y, w, h -> x1, y1, x2, y2
    if scale != 1.0:
        boxes /= scale
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    return _sort_boxes(boxes)


def _sort_boxes(boxes: Tensor) -> Tensor:
    """Boxes in lexicographic (x1, y1, x2, y2) order."""
    for column in (3, 2, 1, 0):  # stable sorts, least significant column first
        boxes = boxes[torch.sort(boxes[:, column], stable=True).indices]
    return boxes


def filter_mask(
    boxes: Tensor,
    image_size: tuple[int, int],
    rules: Iterable[str] = FALLBACK_STAGES[0],
    *,
    min_size: float = 32,
    max_aspect: float = 3.0,
    area_ratio: tuple[float, float] = (0.3, 0.8),
) -> Tensor:
    """Which boxes pass the chosen rules (``"size"``, ``"aspect"``, ``"area"``); ``image_size`` is (H, W)."""
    height, width = image_size
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    keep = (w > 0) & (h > 0)
    rules = set(rules)
    if "size" in rules:
        keep &= (w >= min_size) & (h >= min_size)
    if "aspect" in rules:
        aspect = w / h.clamp(min=1e-6)
        keep &= (aspect >= 1 / max_aspect) & (aspect <= max_aspect)
    if "area" in rules:
        ratio = torch.sqrt((w * h).clamp(min=0) / (height * width))
        keep &= (ratio >= area_ratio[0]) & (ratio <= area_ratio[1])
    return keep


def filter_proposals(
    boxes: Tensor,
    image_size: tuple[int, int],
    *,
    min_size: float = 32,
    max_aspect: float = 3.0,
    area_ratio: tuple[float, float] = (0.3, 0.8),
    max_proposals: int | None = None,
    seed: int = 0,
    return_stage: bool = False,
) -> Tensor | tuple[Tensor, int]:
    """Keep the proposals passing the paper's filters, falling back to looser ones, then the whole image.

    Args:
        boxes: N x 4 xyxy boxes in pixels.
        image_size: (height, width) of the image.
        min_size: Minimum width and height in pixels (paper: 32). Not rescaled with the image.
        max_aspect: Width / height must lie in [1 / max_aspect, max_aspect].
        area_ratio: Bounds of ``sqrt(box area / image area)``.
        max_proposals: Keep at most this many after de-duplication: a random subset drawn with ``seed``
            (SoCo samples its training boxes uniformly from the filtered ones), in the input's order.
        return_stage: Also return the stage used: an index into :data:`FALLBACK_STAGES`, or
            ``len(FALLBACK_STAGES)`` for the whole image.

    Returns:
        float32 M x 4 boxes (M >= 1), and the stage when ``return_stage``.
    """
    boxes = boxes.reshape(-1, 4).float()
    height, width = image_size
    kept, stage = torch.tensor([[0.0, 0.0, float(width), float(height)]]), len(FALLBACK_STAGES)
    for level, rules in enumerate(FALLBACK_STAGES):
        mask = filter_mask(
            boxes, image_size, rules, min_size=min_size, max_aspect=max_aspect, area_ratio=area_ratio
        )
        if mask.any():
            kept, stage = _dedupe(boxes[mask]), level
            break
    if max_proposals is not None and len(kept) > max_proposals:
        generator = torch.Generator().manual_seed(seed)
        chosen = torch.randperm(len(kept), generator=generator)[:max_proposals]
        kept = kept[chosen.sort().values]
    return (kept, stage) if return_stage else kept


def _dedupe(boxes: Tensor) -> Tensor:
    """Drop repeated boxes, keeping the first occurrence and the input order."""
    _, inverse = torch.unique(boxes, dim=0, return_inverse=True)
    first = torch.full((int(inverse.max()) + 1,), len(boxes), dtype=torch.long)
    first.scatter_reduce_(0, inverse, torch.arange(len(boxes)), reduce="amin")
    return boxes[first.sort().values]


def proposal_settings(
    mode: str = "fast",
    min_size: float = 32,
    max_aspect: float = 3.0,
    area_ratio: tuple[float, float] = (0.3, 0.8),
    max_proposals: int | None = 128,
    search_size: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The settings that decide a split's proposals, as stored in (and checked against) the sidecar."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return {
        "mode": mode,
        "min_size": min_size,
        "max_aspect": max_aspect,
        "area_ratio": [float(area_ratio[0]), float(area_ratio[1])],
        "max_proposals": max_proposals,
        "search_size": search_size,
        "seed": seed,
    }


def proposals_for_image(image: Tensor, settings: dict[str, Any]) -> Tensor:
    """Selective search then :func:`filter_proposals` on one C x H x W uint8 image."""
    boxes = selective_search(image, settings["mode"], settings["search_size"])
    return filter_proposals(
        boxes,
        tuple(image.shape[-2:]),
        min_size=settings["min_size"],
        max_aspect=settings["max_aspect"],
        area_ratio=tuple(settings["area_ratio"]),
        max_proposals=settings["max_proposals"],
        seed=settings["seed"],
    )


def compute_proposals(samples: Iterable[Sample], **settings: Any) -> dict[str, Tensor]:
    """The filtered proposals of each sample by ``__key__``; ``settings`` as for :func:`proposal_settings`."""
    resolved = proposal_settings(**settings)
    return {sample["__key__"]: proposals_for_image(sample["image"], resolved) for sample in samples}
