"""Similar-text supervision (STS): nearest-neighbour texts from a FIFO feature queue (DeCLIP's NNS)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from intern_pretrain.core.gather import gather_no_grad
from intern_pretrain.upa_g.objective import StepOutputs, Term, TowerDims
from intern_pretrain.upa_g.terms.contrastive import ClipLoss, contrastive_logits

__all__ = ["SimilarTextLoss", "SimilarTextTerm", "TextFeatureQueue"]


class TextFeatureQueue(nn.Module):
    """First-in-first-out queue of L2-normalised, detached text features (each process holds one).

    The features, write pointer and filled count are buffers, so the queue is saved with the model's
    state dict and a resumed run continues with the same neighbours.

    Args:
        dim: Feature width.
        size: Number of slots (65,536 per GPU in DeCLIP's public code).
    """

    features: torch.Tensor
    ptr: torch.Tensor
    filled: torch.Tensor

    def __init__(self, dim: int, size: int = 65536) -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f"queue size must be >= 1, got {size}")
        self.size = size
        self.register_buffer("features", torch.zeros(size, dim))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))

    def __len__(self) -> int:
        return int(self.filled)

    @torch.no_grad()
    def enqueue(self, x: torch.Tensor) -> None:
        """Write the rows of `x` `(B, dim)` at the pointer, overwriting the oldest when full."""
        x = F.normalize(x.detach().to(self.features.dtype), dim=-1)
        if x.shape[0] > self.size:  # only the newest `size` rows survive
            x = x[-self.size :]
        n, ptr = x.shape[0], int(self.ptr)
        idx = (torch.arange(n, device=x.device) + ptr) % self.size
        self.features[idx] = x
        self.ptr.fill_((ptr + n) % self.size)
        self.filled.fill_(min(int(self.filled) + n, self.size))

    def valid(self) -> torch.Tensor:
        """The filled slots, oldest first."""
        n, ptr = int(self.filled), int(self.ptr)
        if n < self.size:
            return self.features[:n]
        return torch.cat([self.features[ptr:], self.features[:ptr]])

    @torch.no_grad()
    def nearest(self, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Nearest filled slot of each query row by cosine similarity.

        Returns:
            `(neighbours (B, dim), slot indices (B,))`; the queue must not be empty.
        """
        n = int(self.filled)
        if n == 0:
            raise RuntimeError("the text queue is empty")
        # slots [0, n) are the filled ones both before and after the first wrap-around
        bank = self.features[:n]
        sim = F.normalize(query.detach().to(bank.dtype), dim=-1) @ bank.t()
        idx = sim.argmax(dim=1)
        return bank[idx], idx


class SimilarTextLoss(nn.Module):
    """STS: each image view is contrasted against the queued text nearest to its own paired text.

    For each local text feature `z^T_i` the nearest queued text `nn_i` (cosine) becomes the positive of
    images `i` of every view; the negatives are the neighbours of the other samples, gathered from every
    rank. The loss is image-to-text InfoNCE (`symmetric=True` adds the neighbour-to-image direction),
    averaged over the views. The current texts are enqueued after the loss is computed, so a sample is
    never its own neighbour in its own step. Only filled slots are candidates; with an empty queue the
    loss is `0` (connected to the image features). Every rank enqueues the texts of all ranks (gathered,
    as MoCo's queue is fed), so the queue is the same on every rank: DDP's buffer broadcast and a
    sharded checkpoint, which saves a replicated buffer once, both keep it whole, and a resumed run
    has every rank's neighbours. Every rank must hold the same local batch size.

    Args:
        dim: Embedding width.
        queue_size: Queue slots (filled with every rank's texts).
        symmetric: Add the text-to-image direction (averaged, like `ClipLoss`).
    """

    def __init__(self, dim: int, queue_size: int = 65536, symmetric: bool = False) -> None:
        super().__init__()
        self.queue = TextFeatureQueue(dim, queue_size)
        self.symmetric = symmetric
        self.clip = ClipLoss()

    def forward(
        self,
        image_embeds: list[torch.Tensor] | tuple[torch.Tensor, ...],
        text_embed: torch.Tensor,
        logit_scale: torch.Tensor | float,
        enqueue: bool = True,
    ) -> torch.Tensor:
        """Loss for L2-normalised image views `[(B, D), ...]` and their paired texts `(B, D)`."""
        if len(self.queue) == 0:
            loss = sum(img.sum() * 0.0 for img in image_embeds)
        else:
            neighbours, _ = self.queue.nearest(text_embed)
            losses = []
            for img in image_embeds:
                nn_text = neighbours.to(img.dtype)
                if self.symmetric:
                    losses.append(self.clip(img, nn_text, logit_scale))
                else:
                    logits, labels = contrastive_logits(img, nn_text, logit_scale)
                    losses.append(F.cross_entropy(logits, labels))
            loss = torch.stack(losses).mean()
        if enqueue and self.training:
            self.queue.enqueue(gather_no_grad(text_embed))
        return loss  # type: ignore[return-value]


class SimilarTextTerm(Term):
    """``L_STS`` (Eq. 8): every image view against the queued caption nearest to its own caption.

    Args:
        dims: ``embed_dim`` sizes the queue.
        weight: the term's weight (``alpha`` of Eq. 8; paper 0.5).
        queue_size: queue slots, filled with every rank's captions (DeCLIP's public code: 65,536).
        image_views: image views contrasted (the paper: both).
        symmetric: also the neighbour-to-image direction.
    """

    def __init__(
        self,
        dims: TowerDims,
        weight: float = 1.0,
        queue_size: int = 65536,
        image_views: int = 2,
        symmetric: bool = False,
    ) -> None:
        super().__init__(weight)
        self.image_views = image_views
        self.loss = SimilarTextLoss(dims.embed_dim, queue_size, symmetric=symmetric)

    def forward(self, out: StepOutputs) -> torch.Tensor:
        return self.loss(out.image_embeds[: self.image_views], out.text_embeds[0], out.logit_scale)
