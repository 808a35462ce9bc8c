"""Monocular depth errors with the BTS evaluation protocol (``bts_eval.py`` / ``eval_with_pngs.py``).

Per image:

- predictions: NaN -> ``min_depth``, +inf -> ``max_depth``, then clamped to ``[min_depth, max_depth]``;
- valid pixels: ``min_depth < gt < max_depth`` (strict), within the evaluation crop if one is set, and
  within an optional per-call ``mask``;
- RMSE, AbsRel, SqRel, RMSE(log), log10, SILog (x 100) and delta < 1.25 / 1.25^2 / 1.25^3 over the
  valid pixels, in metres, with no median scaling.

SILog's variance term is clamped at 0 against rounding. Each measure is averaged over images (not
over pixels). Images with no valid pixel are skipped and
not counted (the official script would produce NaN); ``compute`` reports ``num_images`` counted.

Crops (on the ground-truth resolution):

- ``"garg"`` (KITTI Eigen split): rows ``int(0.40810811 * H):int(0.99189189 * H)``, columns
  ``int(0.03594771 * W):int(0.96405229 * W)``; max depth 80 m.
- ``"eigen_nyu"`` (NYUv2, 480 x 640 only): rows 45:471, columns 41:601; max depth 10 m.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor
from torchmetrics import Metric

CROPS = ("garg", "eigen_nyu")
_MEASURES = ("rmse", "abs_rel", "sq_rel", "rmse_log", "log10", "silog", "delta1", "delta2", "delta3")


def garg_crop_mask(height: int, width: int, device: torch.device | str | None = None) -> Tensor:
    """KITTI Garg crop as an H x W bool mask (BTS's fractions, truncated with ``int``)."""
    mask = torch.zeros(height, width, dtype=torch.bool, device=device)
    mask[
        int(0.40810811 * height) : int(0.99189189 * height), int(0.03594771 * width) : int(0.96405229 * width)
    ] = True
    return mask


def nyu_eigen_crop_mask(
    height: int = 480, width: int = 640, device: torch.device | str | None = None
) -> Tensor:
    """NYUv2 Eigen crop (rows 45:471, columns 41:601) as a 480 x 640 bool mask."""
    if (height, width) != (480, 640):
        raise ValueError(
            f"the NYUv2 Eigen crop is defined for 480 x 640 ground truth, got {height} x {width}"
        )
    mask = torch.zeros(height, width, dtype=torch.bool, device=device)
    mask[45:471, 41:601] = True
    return mask


def crop_mask(crop: str, height: int, width: int, device: torch.device | str | None = None) -> Tensor:
    """The evaluation crop ``crop`` (one of :data:`CROPS`) for ground truth of size H x W."""
    if crop == "garg":
        return garg_crop_mask(height, width, device)
    if crop == "eigen_nyu":
        return nyu_eigen_crop_mask(height, width, device)
    raise ValueError(f"unknown crop {crop!r}; known: {CROPS}")


def _as_maps(x: Tensor, what: str) -> Tensor:
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ValueError(f"{what} must be B x H x W or B x 1 x H x W, got shape {tuple(x.shape)}")
    return x


class DepthMetrics(Metric):
    """All BTS depth measures, each averaged over images; the rules are in the module docstring.

    ``update(preds, target, mask=None)``: depth maps in metres, B x H x W or B x 1 x H x W, preds at the
    ground truth's resolution; ``mask`` (optional, bool) further restricts the valid pixels.
    ``compute()`` returns a dict of ``rmse``, ``abs_rel``, ``sq_rel``, ``rmse_log``, ``log10``,
    ``silog``, ``delta1``, ``delta2``, ``delta3`` and ``num_images``.

    Args:
        max_depth: 80 for KITTI, 10 for NYUv2.
        min_depth: 1e-3 in BTS.
        crop: ``None``, ``"garg"`` or ``"eigen_nyu"``.
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(
        self,
        max_depth: float,
        min_depth: float = 1e-3,
        crop: Literal["garg", "eigen_nyu"] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if crop is not None and crop not in CROPS:
            raise ValueError(f"unknown crop {crop!r}; known: {CROPS}")
        if not 0 < min_depth < max_depth:
            raise ValueError(f"need 0 < min_depth < max_depth, got {min_depth}, {max_depth}")
        self.max_depth = float(max_depth)
        self.min_depth = float(min_depth)
        self.crop = crop
        for name in _MEASURES:
            self.add_state(
                f"sum_{name}", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum"
            )
        self.add_state("num_images", default=torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor, mask: Tensor | None = None) -> None:
        """Add a batch of depth maps."""
        pred = _as_maps(torch.as_tensor(preds), "preds").to(torch.float64)
        gt = _as_maps(torch.as_tensor(target), "target").to(torch.float64)
        if pred.shape != gt.shape:
            raise ValueError(
                f"preds {tuple(pred.shape)} and target {tuple(gt.shape)} differ: resize preds first"
            )
        pred = torch.nan_to_num(pred, nan=self.min_depth, posinf=self.max_depth, neginf=self.min_depth)
        pred = pred.clamp(self.min_depth, self.max_depth)
        valid = (gt > self.min_depth) & (gt < self.max_depth)
        if self.crop is not None:
            valid &= crop_mask(self.crop, gt.shape[-2], gt.shape[-1], gt.device)
        if mask is not None:
            valid &= _as_maps(torch.as_tensor(mask), "mask").to(device=gt.device, dtype=torch.bool)
        count = valid.sum(dim=(1, 2))
        keep = count > 0
        if not keep.any():
            return
        pred, gt, valid, n = pred[keep], gt[keep], valid[keep], count[keep].to(torch.float64)
        gt_safe = torch.where(valid, gt, torch.ones_like(gt))
        pred_safe = torch.where(valid, pred, torch.ones_like(pred))

        def mean(x: Tensor) -> Tensor:
            return torch.where(valid, x, torch.zeros_like(x)).sum(dim=(1, 2)) / n

        diff = gt_safe - pred_safe
        log_err = torch.log(pred_safe) - torch.log(gt_safe)
        ratio = torch.maximum(gt_safe / pred_safe, pred_safe / gt_safe)
        values = {
            "rmse": mean(diff**2).sqrt(),
            "abs_rel": mean(diff.abs() / gt_safe),
            "sq_rel": mean(diff**2 / gt_safe),
            "rmse_log": mean(log_err**2).sqrt(),
            "log10": mean((torch.log10(gt_safe) - torch.log10(pred_safe)).abs()),
            "silog": (mean(log_err**2) - mean(log_err) ** 2).clamp_min(0).sqrt() * 100,
            "delta1": mean((ratio < 1.25).to(torch.float64)),
            "delta2": mean((ratio < 1.25**2).to(torch.float64)),
            "delta3": mean((ratio < 1.25**3).to(torch.float64)),
        }
        for name, value in values.items():
            state = f"sum_{name}"
            setattr(self, state, getattr(self, state) + value.sum().to(getattr(self, state).device))
        self.num_images += int(keep.sum())

    def compute(self) -> dict[str, Tensor]:
        """Per-image means of every measure (NaN if no image had a valid pixel) and ``num_images``."""
        n = self.num_images.to(torch.float64)
        out = {name: getattr(self, f"sum_{name}") / n for name in _MEASURES}
        out["num_images"] = self.num_images.clone()
        return out


class DepthRMSE(DepthMetrics):
    """RMSE in metres per image, averaged over images (the GV-B depth metric); see :class:`DepthMetrics`."""

    def compute(self) -> Tensor:  # type: ignore[override]
        """The mean per-image RMSE."""
        return super().compute()["rmse"]
