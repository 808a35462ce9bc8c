"""Group supervision of Up-A-G (INTERN paper, section 5.1.1, Eq. 7-8; public predecessor DeCLIP).

`L_GS = (1 - alpha) * L_ICS + alpha * L_STS`, where the intra- and cross-modal supervision is

    L_ICS = w_cs * L_CS(z^I, z^I') + w_mlm * L_MLM(T, T')
            + reduce over (a, b) of L_CL(z^I_a, z^T_b),  a in {I, I'}, b in {T, T'}

and `L_STS` contrasts both image views with the queued nearest neighbours of the caption features.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from intern_pretrain.losses.clip import ClipLoss
from intern_pretrain.losses.mlm import MLMLoss
from intern_pretrain.losses.similar_text import SimilarTextLoss
from intern_pretrain.losses.simsiam import SimSiamHead
from intern_pretrain.losses.temperature import LogitScale

__all__ = ["GroupSupervisionLoss"]


class GroupSupervisionLoss(nn.Module):
    """The Up-A-G objective, every term switchable; plain CLIP is one image-text InfoNCE term.

    Choices where Eq. 7-8 leave room (all configurable):

    - Cross-modal pairs: Eq. 7 *sums* the four `L_CL` terms; by default they are *averaged*
      (`cl_reduction="mean"`, DeCLIP's public code and the project's facts), so the contrastive part keeps
      the scale of one CLIP loss whether one or four pairs are on. `cl_reduction="sum"` follows Eq. 7
      literally. Each `L_CL` averages its two directions (`ClipLoss`); Eq. 7 sums them.
    - `L_CS` is SimSiam's `-0.5 * (cos(p1, sg(z2)) + cos(p2, sg(z1)))` on the image features (the
      backbone's pooled features when given, else the embeddings); `L_MLM` is the token cross-entropy
      of the masked caption. Both sit inside `L_ICS` as in Eq. 7, with weights `simsiam_weight`,
      `mlm_weight`.
    - `alpha` weighs `L_STS` against `L_ICS` only when STS is on; with STS off `L_GS = L_ICS`
      (otherwise turning STS off would silently halve the loss).
    - The STS query is the first text view (the caption); image views are the ones given.

    Args:
        embed_dim: Width of the joint embedding (the STS queue's width).
        multi_view_image: Use the second image view in the cross-modal pairs (and SimSiam needs it).
        multi_view_text: Use the second (EDA) text view in the cross-modal pairs.
        cl_reduction: `"mean"` or `"sum"` over the active image-text pairs.
        simsiam: Add the image-image SimSiam term.
        simsiam_weight: Its weight inside `L_ICS`.
        simsiam_in_dim: Width of the features fed to the SimSiam projector (default `embed_dim`).
        simsiam_proj_dim: Projector width (1024 in the paper).
        simsiam_pred_dim: Predictor bottleneck (512 in the paper).
        mlm: Add the masked-language-modelling term (needs `mlm_logits`, `mlm_labels`).
        mlm_weight: Its weight inside `L_ICS`.
        sts: Add similar-text supervision.
        alpha: `L_GS = (1 - alpha) L_ICS + alpha L_STS` (0.5 in the paper).
        queue_size: STS queue slots per process.
        sts_symmetric: Also the neighbour-to-image direction in STS.
        init_temperature: Initial `tau` of the shared learnable temperature (0.07).
        max_logit_scale: Cap of `1 / tau` (100).
        learnable_temperature: Train `tau`.
    """

    def __init__(
        self,
        embed_dim: int,
        *,
        multi_view_image: bool = True,
        multi_view_text: bool = True,
        cl_reduction: Literal["mean", "sum"] = "mean",
        simsiam: bool = True,
        simsiam_weight: float = 1.0,
        simsiam_in_dim: int | None = None,
        simsiam_proj_dim: int = 1024,
        simsiam_pred_dim: int = 512,
        mlm: bool = True,
        mlm_weight: float = 1.0,
        sts: bool = True,
        alpha: float = 0.5,
        queue_size: int = 65536,
        sts_symmetric: bool = False,
        init_temperature: float = 0.07,
        max_logit_scale: float = 100.0,
        learnable_temperature: bool = True,
    ) -> None:
        super().__init__()
        if cl_reduction not in ("mean", "sum"):
            raise ValueError(f"cl_reduction must be 'mean' or 'sum', got {cl_reduction!r}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if simsiam and not multi_view_image:
            raise ValueError("simsiam needs two image views (multi_view_image=True)")
        self.multi_view_image = multi_view_image
        self.multi_view_text = multi_view_text
        self.cl_reduction = cl_reduction
        self.simsiam_weight = simsiam_weight
        self.mlm_weight = mlm_weight
        self.alpha = alpha
        self.logit_scale = LogitScale(init_temperature, max_logit_scale, learnable=learnable_temperature)
        self.clip = ClipLoss()
        self.simsiam = (
            SimSiamHead(simsiam_in_dim or embed_dim, simsiam_proj_dim, simsiam_pred_dim) if simsiam else None
        )
        self.mlm = MLMLoss() if mlm else None
        self.sts = SimilarTextLoss(embed_dim, queue_size, symmetric=sts_symmetric) if sts else None

    def forward(
        self,
        image_embeds: Sequence[torch.Tensor],
        text_embeds: Sequence[torch.Tensor],
        image_features: Sequence[torch.Tensor] | None = None,
        mlm_logits: torch.Tensor | None = None,
        mlm_labels: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Compute `L_GS` for the local batch.

        Args:
            image_embeds: Image-view embeddings `[(B, D)]` or `[(B, D), (B, D)]` (normalised here).
            text_embeds: Text-view embeddings, caption first, then the EDA copy.
            image_features: Per-view features for SimSiam (default: `image_embeds`).
            mlm_logits: `(B, L, V)` vocabulary logits of the masked caption.
            mlm_labels: `(B, L)` targets, `-100` where not masked.

        Returns:
            `(total, parts)`; `parts` holds detached scalars for logging: `loss`, `ics`, `cl`,
            `cl/i{a}t{b}`, and `simsiam`, `mlm`, `sts` when on, and `logit_scale`.
        """
        n_img = 2 if self.multi_view_image else 1
        n_txt = 2 if self.multi_view_text else 1
        if len(image_embeds) < n_img or len(text_embeds) < n_txt:
            raise ValueError(
                f"need {n_img} image and {n_txt} text views, got {len(image_embeds)} and {len(text_embeds)}"
            )
        imgs = [F.normalize(x, dim=-1) for x in image_embeds[:n_img]]
        txts = [F.normalize(x, dim=-1) for x in text_embeds[:n_txt]]
        scale = self.logit_scale()
        parts: dict[str, torch.Tensor] = {}

        pair_losses = []
        for a, img in enumerate(imgs):
            for b, txt in enumerate(txts):
                pair = self.clip(img, txt, scale)
                parts[f"cl/i{a}t{b}"] = pair
                pair_losses.append(pair)
        stacked = torch.stack(pair_losses)
        cl = stacked.mean() if self.cl_reduction == "mean" else stacked.sum()
        parts["cl"] = cl
        ics = cl

        if self.simsiam is not None:
            feats = image_features if image_features is not None else image_embeds
            if len(feats) < 2:
                raise ValueError("simsiam needs the features of two image views")
            cs = self.simsiam(feats[0], feats[1])
            parts["simsiam"] = cs
            ics = ics + self.simsiam_weight * cs
        if self.mlm is not None:
            if mlm_logits is None or mlm_labels is None:
                raise ValueError("mlm is on: pass mlm_logits and mlm_labels")
            mlm = self.mlm(mlm_logits, mlm_labels)
            parts["mlm"] = mlm
            ics = ics + self.mlm_weight * mlm
        parts["ics"] = ics

        if self.sts is not None:
            sts = self.sts(imgs, txts[0], scale)
            parts["sts"] = sts
            total = (1.0 - self.alpha) * ics + self.alpha * sts
        else:
            total = ics
        parts["loss"] = total
        parts["logit_scale"] = scale
        return total, {k: v.detach() for k, v in parts.items()}
