"""Up-A-G: global image-text representation by group supervision (INTERN paper, sec. 5.1.1; DeCLIP).

A dual encoder: the image tower is any intern-arch backbone (pooled pre-logits features) with a linear
projection to the joint space; the text tower a bidirectional transformer over a BPE tokenizer trained
on the run's own captions. Both live in a :class:`~intern_arch.text.TextSide`, the hand-over's ``text``
part. The objective is a weighted sum of named terms (:mod:`intern_pretrain.upa_g.objective`).

Validation: the contrastive loss and in-batch image-to-text accuracy on the captions' validation split
(zero-shot and probe accuracy on a downstream task come from the stage's ``probe`` callback).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from intern_arch.text import TextSide, TextTokenizer, TextTowerCfg
from intern_arch.training import weight_decay_groups
from intern_pretrain.core import LogitScale, MixedOptimizer, StageModule, scheduled
from intern_pretrain.upa_g.objective import Objective, StepOutputs, Term, TowerDims
from intern_pretrain.upa_g.terms.contrastive import ClipLoss
from intern_transfer.runs import save_plain_hyperparameters

__all__ = ["UpaGModule"]

OptimizerFactory = Callable[..., Optimizer]


class UpaGModule(StageModule):
    """The Up-A-G dual encoder and its objective.

    Args:
        backbone: an intern-arch backbone built with ``num_classes=0`` (timm contract).
        tokenizer: the run's trained tokenizer; the text tower's vocabulary is its size.
        objective: term factories by name (``_partial_`` configs), each called with the
            :class:`~intern_pretrain.upa_g.objective.TowerDims`.
        optimizer: the image tower's optimiser factory (and the text tower's without ``text_optimizer``).
        scheduler: ``scheduler(optimizer, total_steps=...)``, stepped every optimiser step; None: none.
        text_optimizer: the text tower's own optimiser factory (paper, MetaNet: momentum SGD while the
            image tower takes AdamW); None: the text tower joins ``optimizer``.
        embed_dim: the joint space (paper: 1024, CLIP R50's).
        text: the text tower's ``width``, ``layers``, ``heads`` and ``context_length``.
        temperature: initial temperature, learnable (0.07), the scale capped at ``max_logit_scale``.
        max_logit_scale: cap of ``1 / temperature`` (100).
        logit_scale_lr_mult: the temperature learns at this multiple of its optimiser's learning rate.
        templates: zero-shot prompt templates, exported with the text side.
        seed: seeds the MLM masks (with the step and the rank, so a resumed run masks the same).
    """

    def __init__(
        self,
        backbone: nn.Module,
        tokenizer: TextTokenizer,
        *,
        objective: Mapping[str, Callable[..., Term]],
        optimizer: OptimizerFactory,
        scheduler: Callable[..., LRScheduler] | None = None,
        text_optimizer: OptimizerFactory | None = None,
        embed_dim: int = 1024,
        text: Mapping[str, int] | None = None,
        temperature: float = 0.07,
        max_logit_scale: float = 100.0,
        logit_scale_lr_mult: float = 0.1,
        templates: Sequence[str] = ("a photo of a {}.",),
        seed: int = 0,
    ) -> None:
        super().__init__()
        # Factories and the tokenizer stay out of the hyperparameters (modules always do): checkpoints load
        # with weights_only=True.
        ignore = ["tokenizer", "objective", "optimizer", "scheduler", "text_optimizer"]
        save_plain_hyperparameters(self, ignore=ignore)
        self.backbone = backbone
        tower = TextTowerCfg(**dict(text or {}), vocab_size=tokenizer.vocab_size, embed_dim=embed_dim)
        self.text_side = TextSide(tower, backbone.num_features, tokenizer, templates, 1 / temperature)
        self.logit_scale = LogitScale(temperature, max_logit_scale)
        dims = TowerDims(backbone.num_features, embed_dim, tower.width, tokenizer.vocab_size)
        self.objective = Objective({name: factory(dims=dims) for name, factory in objective.items()})
        self.clip = ClipLoss()
        self.optimizer_factory, self.text_optimizer_factory = optimizer, text_optimizer
        self.scheduler_factory = scheduler
        self.seed = seed

    @property
    def tokenizer(self) -> TextTokenizer:
        return self.text_side.tokenizer

    def encode_image(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``(pooled backbone features, joint-space embeddings)``, neither normalised."""
        feats = self.backbone.forward_head(self.backbone.forward_features(images), pre_logits=True)
        return feats, self.text_side.encode_image(feats)

    # -- training

    def _mask_generator(self) -> torch.Generator:
        seed = (self.seed * 1_000_003 + self.global_step * 1009 + self.global_rank) % 2**63
        return torch.Generator(device=self.device).manual_seed(seed)

    def step_outputs(self, batch: Mapping[str, Any]) -> StepOutputs:
        """Encode what the objective's terms need: image views in one backbone pass, the caption views
        and every term's caption copy in one text-tower pass."""
        objective = self.objective
        views = [batch["image"], batch["image2"]][: objective.image_views]
        feats, embeds = self.encode_image(torch.cat(views))
        ids, mask, eot = self.text_side.tokenize(batch["text"])
        texts = [(ids, mask, eot)]
        if objective.text_views > 1:
            texts.append(self.text_side.tokenize(batch["text_eda"]))
        copies: dict[int, Tensor] = {}
        generator = self._mask_generator()
        for term in objective.terms.values():
            copy = term.text_copy(ids, mask, self.tokenizer, generator)
            if copy is not None:
                texts.append((copy[0], mask, eot))
                copies[id(term)] = copy[1]
        pooled, states = self.text_side.text(*(torch.cat(parts) for parts in zip(*texts, strict=True)))
        text_embeds = self.text_side.text.proj(pooled[: len(ids) * objective.text_views])
        copy_states = states[len(ids) * objective.text_views :].split(len(ids)) if copies else ()
        return StepOutputs(
            image_features=list(feats.chunk(len(views))),
            image_embeds=[F.normalize(x, dim=-1) for x in embeds.chunk(len(views))],
            text_embeds=[F.normalize(x, dim=-1) for x in text_embeds.chunk(objective.text_views)],
            logit_scale=self.logit_scale(),
            text_copies={key: (s, t) for (key, t), s in zip(copies.items(), copy_states, strict=True)},
        )

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        out = self.step_outputs(batch)
        loss, parts = self.objective(out)
        size = batch["image"].shape[0]
        self.log("train/loss", parts.pop("loss"), prog_bar=True, batch_size=size)
        self.log_dict({f"train/{k}": v for k, v in parts.items()}, batch_size=size)
        self.log("train/logit_scale", out.logit_scale.detach(), batch_size=size)
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.logit_scale.clamp_()

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        _, image = self.encode_image(batch["image"])
        text = self.text_side.encode_text(batch["text"])
        image, text = F.normalize(image.float(), dim=-1), F.normalize(text.float(), dim=-1)
        loss = self.clip(image, text, self.logit_scale())
        acc = ((image @ text.t()).argmax(1) == torch.arange(len(image), device=image.device)).float().mean()
        self.log("val/loss", loss, sync_dist=True, batch_size=len(image))
        self.log("val/i2t_acc", acc, sync_dist=True, batch_size=len(image))

    # -- optimisation

    def param_groups(self, weight_decay: float, text_weight_decay: float) -> dict[str, list[dict[str, Any]]]:
        """Parameter groups by tower: ``image`` (backbone, projection, image-side terms) and ``text``
        (text tower, text-side terms), each split into decay / no decay (biases, norms and the
        backbone's ``no_weight_decay()`` names take none); ``scale``, the logit scale, is returned apart."""
        terms = self.objective.terms.items()
        towers = {
            "image": {"backbone": self.backbone, "image_proj": self.text_side.image_proj},
            "text": {"text": self.text_side.text},
        }
        for name, term in terms:
            towers[term.tower][f"term_{name}"] = term
        groups = {
            "image": weight_decay_groups(nn.ModuleDict(towers["image"]), weight_decay, "image"),
            "text": weight_decay_groups(nn.ModuleDict(towers["text"]), text_weight_decay, "text"),
        }
        covered = {id(p) for tower in groups.values() for group in tower for p in group["params"]}
        covered.add(id(self.logit_scale.log_scale))
        left = [n for n, p in self.named_parameters() if p.requires_grad and id(p) not in covered]
        if left:
            raise RuntimeError(f"parameters in no optimiser group: {left}")
        return groups

    def configure_optimizers(self) -> Any:
        image_wd = _keyword(self.optimizer_factory, "weight_decay")
        text_factory = self.text_optimizer_factory or self.optimizer_factory
        groups = self.param_groups(image_wd, _keyword(text_factory, "weight_decay"))
        scale = self.logit_scale.log_scale
        lr = _keyword(self.optimizer_factory, "lr")
        scale_group = {"name": "logit_scale", "params": [scale], "weight_decay": 0.0}
        scale_group["lr"] = lr * self.hparams.logit_scale_lr_mult
        if self.text_optimizer_factory is None:
            optimizer = self.optimizer_factory(groups["image"] + groups["text"] + [scale_group])
        else:
            image = self.optimizer_factory(groups["image"] + [scale_group])
            optimizer = MixedOptimizer([image, self.text_optimizer_factory(groups["text"])])
        return scheduled(optimizer, self.scheduler_factory, self.trainer.estimated_stepping_batches)

    # -- hand-over

    def handover_parts(self) -> dict[str, nn.Module]:
        """The text side, with the learned temperature."""
        self.text_side.logit_scale.fill_(float(self.logit_scale().detach()))
        return {"text": self.text_side}


def _keyword(factory: Callable[..., Any], name: str) -> float:
    """A setting of an optimiser factory (a ``functools.partial``, as Hydra's ``_partial_`` makes)."""
    keywords = getattr(factory, "keywords", {})
    if name not in keywords:
        raise ValueError(f"the optimiser config must set {name} (it has {sorted(keywords)})")
    return float(keywords[name])
