"""A downstream probe during pretraining: how good the backbone's features are, at every validation.

After each validation epoch, a linear probe (L-BFGS logistic regression, intern-transfer's) on the
pooled features of a small downstream classification task of the embedded world (default
``gvb_world_cls``), logged as ``val/probe_acc``; when the module has a text side (Up-A-G's
``text_side``), zero-shot accuracy on the same test images with prompt templates over the class names,
``val/zero_shot_acc``. Every rank computes the same numbers on the whole (small) task (a sharded module
gathers its weights for it on every rank).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from intern_arch.sharding import unsharded
from intern_data.shards.index import load_index
from intern_data.shards.reader import ShardDataset, ShardLoader
from intern_data.shards.transforms import classification_transform
from intern_data.world import world_shards
from intern_transfer.probe import LBFGSSearch, linear_probe

__all__ = ["DownstreamProbe"]


class DownstreamProbe(L.Callback):
    """Linear-probe and zero-shot accuracy of the module's backbone on a world classification task.

    Args:
        dataset: an embedded-world classification dataset (its ``train`` and ``val`` splits are used).
        cache_dir: where world datasets are cached as shards.
        img_size: the evaluation images' side (resize and centre crop).
        seed: the world generator's seed and the probe's.
        sizes: images per split (``train``: probe training, ``val``: test).
        batch_size: feature-extraction batch.
        linear_probe: run the probe (zero-shot alone is much cheaper).
        lbfgs: :class:`~intern_transfer.probe.LBFGSSearch` settings.
        templates: zero-shot prompt templates (default: the text side's own).
    """

    def __init__(
        self,
        dataset: str = "gvb_world_cls",
        cache_dir: str = "cache/world",
        img_size: int = 64,
        seed: int = 0,
        sizes: Mapping[str, int] | None = None,
        batch_size: int = 64,
        linear_probe: bool = True,
        lbfgs: Mapping[str, Any] | None = None,
        templates: Sequence[str] | None = None,
    ) -> None:
        self.dataset, self.cache_dir, self.img_size, self.seed = dataset, cache_dir, img_size, seed
        self.sizes = dict(sizes) if sizes is not None else None
        self.batch_size, self.run_probe = batch_size, linear_probe
        self.search = LBFGSSearch(**dict(lbfgs or {}))
        self.templates = list(templates) if templates is not None else None
        self._data: dict[str, tuple[Tensor, Tensor]] | None = None
        self._classes: list[str] = []

    def _load(self) -> dict[str, tuple[Tensor, Tensor]]:
        if self._data is None:
            splits = ("train", "val")
            folder = world_shards(self.dataset, self.cache_dir, splits, seed=self.seed, sizes=self.sizes)
            self._classes = list(load_index(folder)["label_space"]["classes"])
            transform = classification_transform(self.img_size, train=False)
            self._data = {}
            for split in splits:
                dataset = ShardDataset(
                    str(folder), split=split, batch_size=self.batch_size, transform=transform,
                    required_keys=("label",), rank=0, world_size=1,
                )  # fmt: skip
                batches = list(ShardLoader(dataset, num_workers=0, track_position=False))
                self._data[split] = (
                    torch.cat([b["image"] for b in batches]),
                    torch.cat([b["label"] for b in batches]),
                )
        return self._data

    @torch.no_grad()
    def _features(self, backbone: nn.Module, images: Tensor, device: torch.device) -> Tensor:
        chunks = [images[i : i + self.batch_size].to(device) for i in range(0, len(images), self.batch_size)]
        feats = [backbone.forward_head(backbone.forward_features(x), pre_logits=True) for x in chunks]
        return torch.cat(feats).float().cpu()

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        with unsharded(pl_module):  # a sharded module: its weights outside the blocks gathered
            metrics = self._measure(pl_module)
        pl_module.log_dict(metrics, sync_dist=False, rank_zero_only=False)

    def _measure(self, pl_module: L.LightningModule) -> dict[str, float]:
        data = self._load()
        (train_x, train_y), (val_x, val_y) = data["train"], data["val"]
        val_feats = self._features(pl_module.backbone, val_x, pl_module.device)
        metrics: dict[str, float] = {}
        text = getattr(pl_module, "text_side", None)
        if text is not None:
            classes = text.classifier(self._classes, self.templates).cpu()
            embeds = F.normalize(text.encode_image(val_feats.to(pl_module.device)).float().cpu(), dim=-1)
            metrics["val/zero_shot_acc"] = ((embeds @ classes.t()).argmax(1) == val_y).float().mean().item()
        if self.run_probe:
            train_feats = self._features(pl_module.backbone, train_x, pl_module.device)
            result = linear_probe(
                train_feats,
                train_y,
                val_feats,
                val_y,
                strategy="lbfgs",
                lbfgs_search=self.search,
                seed=self.seed,
            )
            metrics["val/probe_acc"] = float(result.test_score)
        return metrics
