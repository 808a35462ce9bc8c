"""Proxy training of a sampled architecture (INTERN paper 4.4: each sampled network trains for a few
epochs and is scored on a held-out split of the training set).

The proxy task is a labelled classification split read once into memory as uint8 tensors (the world's
``world_cls_fine`` on CPU; any labelled shard folder with a held-out split on a cluster). A network
trains ``steps`` AdamW steps with a warmup-cosine schedule on random-flipped batches drawn by a seeded
generator, then is scored on the held-out split; the same architecture, settings, data and seed give
the same accuracy bit for bit on one device.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms.v2.functional import normalize

from intern_arch import MetaNet, MetaNetCfg
from intern_data.shards import ShardDataset, load_index
from intern_data.shards.transforms import IMAGENET_MEAN, IMAGENET_STD
from intern_transfer.schedules import warmup_cosine

__all__ = ["ProxyData", "ProxyResult", "ProxySettings", "load_proxy_data", "train_proxy"]


@dataclass(frozen=True)
class ProxySettings:
    """How long and how each sampled network trains (CPU defaults; the paper: 5 ImageNet epochs)."""

    steps: int = 150
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_steps: int = 10
    eval_batch_size: int = 250


@dataclass(frozen=True)
class ProxyData:
    """A proxy task in memory: uint8 images and int64 labels of its training and held-out splits."""

    train_images: Tensor
    train_labels: Tensor
    val_images: Tensor
    val_labels: Tensor
    num_classes: int
    fingerprint: str


@dataclass(frozen=True)
class ProxyResult:
    """What one proxy run measured."""

    accuracy: float
    train_loss: float  # mean training loss over the run: how fast it converges
    seconds: float


def _read_split(folder: Path, split: str) -> tuple[Tensor, Tensor]:
    images, labels = [], []
    for batch in ShardDataset(folder, batch_size=256, split=split, required_keys=("image", "label")):
        images.append(batch["image"])
        labels.append(batch["label"])
    if not images:
        raise ValueError(f"proxy data: split {split!r} of {folder} has no labelled images")
    return torch.cat(images), torch.cat(labels)


def load_proxy_data(
    folder: str | Path, train_split: str, val_split: str, num_classes: int | None = None
) -> ProxyData:
    """Read a labelled shard folder's training and held-out splits (fingerprinted by their shards);
    ``num_classes`` defaults to the largest label + 1."""
    folder = Path(folder)
    index = load_index(folder)
    for split in (train_split, val_split):
        if split not in index["splits"]:
            raise ValueError(f"proxy data: {folder} has no split {split!r}; it has {sorted(index['splits'])}")
    train_images, train_labels = _read_split(folder, train_split)
    val_images, val_labels = _read_split(folder, val_split)
    if num_classes is None:
        num_classes = int(max(train_labels.max(), val_labels.max())) + 1
    hashes = json.dumps([index["splits"][train_split], index["splits"][val_split]], sort_keys=True)
    fingerprint = hashlib.sha256(hashes.encode()).hexdigest()[:16]
    return ProxyData(train_images, train_labels, val_images, val_labels, num_classes, fingerprint)


def _normalise(images: Tensor) -> Tensor:
    return normalize(images.float() / 255.0, IMAGENET_MEAN, IMAGENET_STD)


def _accuracy(model: MetaNet, images: Tensor, labels: Tensor, batch_size: int, device: torch.device) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(labels), batch_size):
            x = _normalise(images[start : start + batch_size].to(device))
            correct += int((model(x).argmax(1).cpu() == labels[start : start + batch_size]).sum())
    return correct / len(labels)


def train_proxy(
    cfg: MetaNetCfg, data: ProxyData, settings: ProxySettings, seed: int, device: str = "cpu"
) -> ProxyResult:
    """Train ``cfg`` from scratch on the proxy task and score it on the held-out split."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    dev = torch.device(device)
    model = MetaNet(cfg, num_classes=data.num_classes).to(dev)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    schedule = warmup_cosine(optimizer, settings.steps, settings.warmup_steps)
    generator = torch.Generator().manual_seed(seed)
    order = torch.empty(0, dtype=torch.int64)
    losses = []
    model.train()
    for _ in range(settings.steps):
        if len(order) < settings.batch_size:
            order = torch.cat([order, torch.randperm(len(data.train_labels), generator=generator)])
        take, order = order[: settings.batch_size], order[settings.batch_size :]
        flip = torch.rand(len(take), generator=generator) < 0.5
        images = data.train_images[take]
        images = torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
        loss = F.cross_entropy(model(_normalise(images.to(dev))), data.train_labels[take].to(dev))
        losses.append(loss.item())
        if not math.isfinite(losses[-1]):
            return ProxyResult(0.0, math.inf, time.perf_counter() - start)  # a diverged network scores 0
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    accuracy = _accuracy(model, data.val_images, data.val_labels, settings.eval_batch_size, dev)
    return ProxyResult(accuracy, sum(losses) / len(losses), time.perf_counter() - start)


def proxy_key(cfg: MetaNetCfg, settings: ProxySettings, data_fingerprint: str, seed: int) -> str:
    """The cache key of one proxy run: the architecture, the settings, the data and the seed."""
    arch = {**cfg.as_dict(), "source": "", "reference": {}}  # names do not change what trains
    payload = json.dumps([arch, asdict(settings), data_fingerprint, seed], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]
