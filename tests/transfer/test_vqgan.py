"""intern_transfer.downa's VQ-GAN: straight-through gradients and an EMA codebook, overfitting eight
images, taming's losses by their definitions, a bit-exact save/load, the Lightning module's two optimisers
and its exact resume."""

from __future__ import annotations

import hashlib
from pathlib import Path

import lightning as L
import pytest
import timm
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

import intern_arch  # noqa: F401  (registers mnb_test with timm)
from intern_transfer.downa import (
    VQGAN,
    PatchDiscriminator,
    PerceptualLoss,
    VQGANConfig,
    VQGANModule,
    adaptive_weight,
    hinge_d_loss,
    load_vqgan,
    save_vqgan,
    vqgan_fingerprint,
)
from intern_transfer.runs import ExactResume

pytestmark = pytest.mark.usefixtures("one_thread")  # these CPUs are shared: two threads thrash

TINY = VQGANConfig(channels=16, channel_mult=(1, 2), embed_dim=16, codebook_size=64, disc_channels=16)
FACTOR4 = VQGANConfig(channels=8, channel_mult=(1, 1, 2), embed_dim=8, codebook_size=32)


def smooth_images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """``n`` smooth RGB images in [0, 1]: random 4x4 colours, bilinearly upsampled."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=generator)
    return F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def test_config_round_trips_and_names_unknown_keys() -> None:
    assert FACTOR4.downsample == 4 and VQGANConfig().downsample == 4
    assert VQGANConfig.from_dict(FACTOR4.to_dict()) == FACTOR4
    with pytest.raises(ValueError, match="bogus"):
        VQGANConfig.from_dict({**FACTOR4.to_dict(), "bogus": 1})


def test_straight_through_gradient_and_ema_codebook() -> None:
    torch.manual_seed(0)
    model = VQGAN(TINY).train()
    codebook = model.quantizer._codebook
    before = {name: buf.clone() for name, buf in codebook.named_buffers()}
    recon, indices, _ = model(smooth_images(4, 16) * 2 - 1)
    recon.abs().mean().backward()  # the decoder's output only: no commitment term reaches the encoder
    for name, param in model.encoder.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert list(model.quantizer.parameters()) == [] and not codebook.embed.requires_grad
    for name in ("embed", "embed_avg", "cluster_size"):
        assert not torch.equal(before[name], getattr(codebook, name)), name
    assert indices.shape == (4, 8, 8) and indices.unique().numel() > 1


def test_overfits_eight_images() -> None:
    torch.manual_seed(0)
    x = smooth_images(8, 16) * 2 - 1
    model = VQGAN(TINY)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, betas=(0.9, 0.99))
    first = None
    for _ in range(80):
        recon, _, commit = model(x)
        rec_loss = (recon - x).abs().mean()
        first = first if first is not None else rec_loss.item()
        opt.zero_grad()
        (rec_loss + commit).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        final = (model(x)[0] - x).abs().mean().item()
    assert final * 5 < first, (first, final)


def test_hinge_d_loss_by_definition() -> None:
    real = torch.tensor([2.0, 0.5, -1.0])  # relu(1 - real) = 0, 0.5, 2
    fake = torch.tensor([-2.0, 0.0, 1.5])  # relu(1 + fake) = 0, 1, 2.5
    assert hinge_d_loss(real, fake).item() == pytest.approx(0.5 * (2.5 / 3 + 3.5 / 3))
    assert hinge_d_loss(torch.full((2, 1, 3, 3), 1.0), torch.full((2, 1, 3, 3), -1.0)).item() == 0.0


def test_adaptive_weight_is_the_clamped_grad_norm_ratio() -> None:
    torch.manual_seed(0)
    last = torch.randn(4, 3, requires_grad=True)
    a, b = torch.randn(4, 3), torch.randn(4, 3)
    rec_loss, g_loss = (last * a).sum() + (last**2).sum(), (last * b).sum().tanh()
    rec_grad = torch.autograd.grad(rec_loss, last, retain_graph=True)[0]
    g_grad = torch.autograd.grad(g_loss, last, retain_graph=True)[0]
    weight = adaptive_weight(rec_loss, g_loss, last)
    assert not weight.requires_grad
    assert weight.item() == pytest.approx((rec_grad.norm() / (g_grad.norm() + 1e-4)).item(), rel=1e-6)
    torch.testing.assert_close(rec_grad, a + 2 * last.detach())  # by hand
    assert adaptive_weight(rec_loss, g_loss, last, max_weight=1e-3).item() == pytest.approx(1e-3)
    (rec_loss + g_loss).backward()  # both graphs are kept for the backward that follows


def test_save_load_round_trip_is_bit_exact(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = VQGAN(FACTOR4).train()
    model(smooth_images(4, 16) * 2 - 1)  # moves the EMA codebook off its initialisation
    fingerprint = save_vqgan(model, tmp_path / "vq")
    assert sorted(p.name for p in (tmp_path / "vq").iterdir()) == ["config.json", "model.safetensors"]
    digest = hashlib.sha256((tmp_path / "vq" / "model.safetensors").read_bytes()).hexdigest()
    assert fingerprint == vqgan_fingerprint(tmp_path / "vq") == digest[:16]
    loaded = load_vqgan(tmp_path / "vq")
    assert not loaded.training and loaded.config == FACTOR4
    ours, theirs = model.state_dict(), loaded.state_dict()
    assert ours.keys() == theirs.keys() and "quantizer._codebook.embed_avg" in ours
    for name, tensor in ours.items():
        assert torch.equal(tensor, theirs[name]), name
    images = smooth_images(2, 20, seed=1)
    assert torch.equal(model.reconstruct(images), loaded.reconstruct(images))
    assert model.training  # reconstruct restores the mode


def test_load_names_the_folder_and_file(tmp_path: Path) -> None:
    folder = tmp_path / "vq"
    save_vqgan(VQGAN(FACTOR4), folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_vqgan(folder)
    (folder / "config.json").write_text('{"config": {}}')
    with pytest.raises(ValueError, match=r"config\.json.*fingerprint"):
        load_vqgan(folder)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "none")):
        load_vqgan(tmp_path / "none")


def test_sizes_divisible_by_the_factor() -> None:
    model = VQGAN(FACTOR4)
    with pytest.raises(ValueError, match=r"18x16 .* factor 4"):
        model(torch.zeros(1, 3, 18, 16))
    out = model.reconstruct(torch.rand(2, 3, 30, 30))
    assert out.shape == (2, 3, 30, 30) and out.min() >= 0 and out.max() <= 1
    assert model.encode(torch.zeros(1, 3, 32, 16))[1].shape == (1, 8, 4)


def test_patch_discriminator_gives_one_logit_per_patch() -> None:
    disc = PatchDiscriminator(channels=8, layers=2)
    assert disc(torch.zeros(3, 3, 32, 32)).shape == (3, 1, 6, 6)  # 32 -> 16 -> 8 -> 7 -> 6


def test_perceptual_loss_on_a_frozen_backbone() -> None:
    torch.manual_seed(0)
    loss = PerceptualLoss(timm.create_model("mnb_test"))
    parent = torch.nn.ModuleDict({"p": loss}).train()
    assert not loss.backbone.training and parent.training
    assert not any(p.requires_grad for p in loss.backbone.parameters())
    x = smooth_images(2, 32) * 2 - 1
    y = x.clone().requires_grad_(True)
    assert loss(x, x).item() == 0.0
    value = loss(x, (y + 0.3 * torch.randn_like(y)))
    value.backward()
    assert 0 < value.item() <= 4 and y.grad is not None and y.grad.abs().sum() > 0


def image_loader(n: int = 8, size: int = 32, batch_size: int = 4) -> DataLoader:
    return DataLoader([{"image": image} for image in smooth_images(n, size)], batch_size=batch_size)


def trainer(**kwargs) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


def test_module_runs_both_optimisers() -> None:
    torch.manual_seed(0)
    module = VQGANModule(TINY, perceptual=timm.create_model("mnb_test"), disc_start=1)
    disc_before = [p.detach().clone() for p in module.discriminator.parameters()]
    backbone_before = [p.detach().clone() for p in module.perceptual.backbone.parameters()]
    run = trainer(max_steps=3)
    run.fit(module, image_loader())
    assert run.global_step == 3  # batch 0: the generator; batch 1: both
    disc_after, backbone_after = module.discriminator.parameters(), module.perceptual.backbone.parameters()
    assert any(not torch.equal(a, b) for a, b in zip(disc_before, disc_after, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(backbone_before, backbone_after, strict=True))
    logged = run.callback_metrics
    for key in ("train/rec_loss", "train/commit", "train/perplexity", "train/perceptual", "train/d_loss"):
        assert torch.isfinite(logged[key]), key
    assert not module.perceptual.backbone.training


def test_module_resumes_exactly(tmp_path: Path) -> None:
    """An epoch of two batches, a checkpoint, another epoch, against two unbroken: the same weights and
    codebook (resuming at an epoch's end: a plain DataLoader cannot resume mid-epoch)."""

    def fresh() -> VQGANModule:
        torch.manual_seed(0)
        return VQGANModule(TINY, disc_start=1)

    unbroken = fresh()
    L.seed_everything(1)
    trainer(max_epochs=2, callbacks=[ExactResume()]).fit(unbroken, image_loader(size=16))

    first = fresh()
    L.seed_everything(1)
    run = trainer(max_epochs=1, callbacks=[ExactResume()])
    run.fit(first, image_loader(size=16))
    run.save_checkpoint(tmp_path / "half.ckpt")
    checkpoint = torch.load(tmp_path / "half.ckpt", weights_only=True)
    assert len(checkpoint["optimizer_states"]) == 2
    resumed = fresh()
    L.seed_everything(2)  # the checkpoint's random-number states replace this
    resume = trainer(max_epochs=2, callbacks=[ExactResume()])
    resume.fit(resumed, image_loader(size=16), ckpt_path=tmp_path / "half.ckpt")
    assert resume.global_step == 7  # 1 + 2 + 2 + 2 optimiser steps

    ours, theirs = unbroken.state_dict(), resumed.state_dict()
    for name, tensor in ours.items():
        assert torch.equal(tensor, theirs[name]), name
