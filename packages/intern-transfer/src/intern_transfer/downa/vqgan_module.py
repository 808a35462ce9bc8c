"""Training the Down-A VQ-GAN with Lightning: taming's two-optimiser GAN step under manual optimisation.

Batches are dicts whose ``image`` is ``(B, 3, H, W)`` in [0, 1], sides divisible by the VQ-GAN's
factor: build the project's shard DataModule with unnormalised transforms (e.g.
``classification_transform(size, train, normalize=False)``); the module maps images to [-1, 1] itself.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from intern_transfer.downa.vqgan import (
    VQGAN,
    PatchDiscriminator,
    PerceptualLoss,
    VQGANConfig,
    adaptive_weight,
    hinge_d_loss,
)
from intern_transfer.runs import save_plain_hyperparameters

__all__ = ["VQGANModule"]

BETAS = (0.5, 0.9)  # taming's Adam betas, for both optimisers


def _code_stats(indices: Tensor, codebook_size: int) -> tuple[Tensor, Tensor]:
    """The batch's code perplexity and the fraction of the codebook it uses."""
    counts = torch.bincount(indices.flatten(), minlength=codebook_size).float()
    probs = counts / counts.sum()
    perplexity = torch.exp(-(probs * probs.clamp_min(1e-10).log()).sum())
    return perplexity, (counts > 0).float().mean()


class VQGANModule(L.LightningModule):
    """The VQ-GAN and its patch discriminator, trained as in taming. Generator step: L1 reconstruction
    ``+ perceptual_weight *`` :class:`PerceptualLoss` on the frozen ``perceptual`` backbone (none when
    None) ``+`` the commitment loss, and from ``disc_start`` on ``+ adaptive_weight * disc_weight *`` the
    generator's hinge loss ``-mean(D(recon))``. Discriminator step (from ``disc_start`` on): hinge loss
    on the images and the detached reconstructions. The codebook moves by EMA in the generator's forward.

    ``disc_start`` counts batches. Under manual optimisation Lightning's ``global_step`` (and so
    ``max_steps``) counts optimiser steps: one per batch before ``disc_start``, two after. Both
    optimisers' states are in Lightning's checkpoints; add ``ExactResume`` for the random-number states
    (dead-code replacement draws from torch's generator) to resume exactly.
    """

    def __init__(
        self,
        config: VQGANConfig,
        perceptual: nn.Module | None = None,
        lr: float = 2e-4,
        perceptual_weight: float = 1.0,
        disc_weight: float = 0.5,
        disc_start: int = 10_000,
    ) -> None:
        super().__init__()
        save_plain_hyperparameters(self, ignore=["config", "perceptual"])
        self.automatic_optimization = False
        self.vqgan = VQGAN(config)
        self.discriminator = PatchDiscriminator(config.disc_channels, config.disc_layers)
        self.perceptual = PerceptualLoss(perceptual) if perceptual is not None else None
        self.lr = lr
        self.perceptual_weight = perceptual_weight
        self.disc_weight = disc_weight
        self.disc_start = disc_start

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [
            torch.optim.Adam(self.vqgan.parameters(), lr=self.lr, betas=BETAS),
            torch.optim.Adam(self.discriminator.parameters(), lr=self.lr, betas=BETAS),
        ]

    def _reconstruction(self, x: Tensor, recon: Tensor, stage: str) -> Tensor:
        """L1 plus the weighted perceptual term (taming's ``nll_loss``), logged under ``stage``."""
        rec_loss = (x - recon).abs().mean()
        self.log(f"{stage}/rec_loss", rec_loss, prog_bar=True, sync_dist=stage == "val")
        if self.perceptual is None:
            return rec_loss
        p_loss = self.perceptual(x, recon)
        self.log(f"{stage}/perceptual", p_loss, sync_dist=stage == "val")
        return rec_loss + self.perceptual_weight * p_loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        x = batch["image"] * 2 - 1
        disc_on = self.global_step >= self.disc_start  # equals the batch count until disc_start

        with self.toggled_optimizer(opt_g):
            recon, indices, commit = self.vqgan(x)
            nll = self._reconstruction(x, recon, "train")
            loss = nll + commit
            if disc_on:
                g_loss = -self.discriminator(recon).mean()
                weight = adaptive_weight(nll, g_loss, self.vqgan.last_layer) * self.disc_weight
                loss = loss + weight * g_loss
                self.log_dict({"train/g_loss": g_loss, "train/disc_weight": weight})
            opt_g.zero_grad()
            self.manual_backward(loss)
            opt_g.step()

        perplexity, usage = _code_stats(indices, self.vqgan.config.codebook_size)
        self.log_dict(
            {"train/loss": loss, "train/commit": commit, "train/perplexity": perplexity, "train/usage": usage}
        )
        if not disc_on:
            return
        with self.toggled_optimizer(opt_d):
            # GroupNorm: one pass over both halves gives each the logits it would get alone
            real_logits, fake_logits = self.discriminator(torch.cat([x, recon.detach()])).chunk(2)
            d_loss = hinge_d_loss(real_logits, fake_logits)
            opt_d.zero_grad()
            self.manual_backward(d_loss)
            opt_d.step()
        self.log("train/d_loss", d_loss, prog_bar=True)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        x = batch["image"] * 2 - 1
        self._reconstruction(x, self.vqgan(x)[0], "val")
