"""Up-A-G: global image-text representation by group supervision (INTERN paper, sec. 5.1.1; DeCLIP).

A dual encoder: the image tower is any intern-arch backbone (pooled pre-logits features) with a linear
projection to the joint space; the text tower a bidirectional transformer (:class:`TextTower`) over a
BPE tokenizer trained on the run's own captions, with an MLM head. The objective is
:class:`GroupSupervisionLoss` with every term switchable from ``stage.losses``: plain CLIP is this
stage with ``simsiam``, ``mlm``, ``sts``, ``multi_view_image`` and ``multi_view_text`` off
(``experiment=clip_baseline``).

Views (facts.md): two image views per sample (MoCo v2's, or crop and flip only: ``augment.color``),
made by :class:`UpaGTransform` in the shard reader (seeded per sample, so a resumed run augments like an
uninterrupted one); the caption and an EDA copy. MLM reads a third, masked copy of the caption (masks
from a generator seeded by the step and rank): masking the contrastive view itself hides the very words
(colours, names) an image is paired by (on the world's captions, one seed: 4.0 / 2.8 probe points at
10% / 100% of gvb_world_cls; benchmarks/RESULTS.md, Up-A).

Validation: the contrastive loss and in-batch image-to-text accuracy on the captions' val split, then
zero-shot classification (prompt templates over the class names) and a quick L-BFGS linear probe on
the backbone's features of a downstream task (default ``gvb_world_cls`` of the embedded world), logged
as ``val/zero_shot_acc`` and ``val/probe_acc``.

The export is the backbone as an intern-arch hand-over folder plus ``text/``: the text tower, the
image projection and the logit scale (``model.safetensors``), their sizes (``config.json``) and the
tokenizer (``tokenizer.json``); :func:`load_text_side` reads it back.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torchvision.transforms import v2

from intern_arch import load_weights, save_pretrained
from intern_arch.checkpoint import atomic_folder
from intern_data.shards.codec import iter_tar_samples
from intern_data.shards.index import load_index, split_shards
from intern_data.shards.reader import ShardDataset, ShardLoader
from intern_data.shards.transforms import IMAGENET_MEAN, IMAGENET_STD, PickCaption, SampleTransform
from intern_data.shards.transforms import classification_transform as eval_image_transform
from intern_data.sources import build_datamodule, prepare_shards
from intern_data.world import world_shards
from intern_pretrain.losses import GroupSupervisionLoss
from intern_pretrain.optim import MixedOptimizer, warmup_cosine_scheduler
from intern_pretrain.stages import StageConfigError, instantiate, to_plain
from intern_pretrain.text import (
    EDA,
    IGNORE_INDEX,
    MLMHead,
    TextTokenizer,
    TextTower,
    TextTowerCfg,
    mask_tokens,
)
from intern_pretrain.text import train_tokenizer as _train_tokenizer

__all__ = [
    "UpaGModule",
    "UpaGTransform",
    "build",
    "caption_tokenizer",
    "export",
    "load_text_side",
    "moco_v2_view",
    "view_transform",
]

log = logging.getLogger(__name__)

STAGE = "upa_g"
TEXT_DIR = "text"


# ------------------------------------------------------------------------------------------ views


def moco_v2_view(
    img_size: int, scale: tuple[float, float] = (0.2, 1.0), hflip: float = 0.5, color: bool = True
) -> v2.Compose:
    """MoCo v2's augmentation on uint8 images: random-resized crop, colour jitter 0.4/0.4/0.4/0.1
    (p 0.8), greyscale (p 0.2), Gaussian blur sigma 0.1-2 (p 0.5, kernel ~10% of the side), flip.
    ``color=False`` keeps only the crop and the flip (views that still match a caption's colour words)."""
    crop = [v2.RandomResizedCrop(img_size, scale=tuple(scale), antialias=True)]
    if color:
        kernel = max(3, int(0.1 * img_size) // 2 * 2 + 1)
        crop += [
            v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            v2.RandomGrayscale(p=0.2),
            v2.RandomApply([v2.GaussianBlur(kernel, sigma=(0.1, 2.0))], p=0.5),
        ]
    return v2.Compose([*crop, v2.RandomHorizontalFlip(hflip)])


class UpaGTransform:
    """Training views of an image-text sample: ``image`` (and ``image2``, a second MoCo-v2 view), one
    random caption as ``text`` (and ``text_eda``, its EDA copy). Random draws use torch's global
    generator, which the shard reader seeds per sample."""

    def __init__(
        self,
        img_size: int,
        *,
        two_images: bool = True,
        eda: EDA | None = None,
        scale: Sequence[float] = (0.2, 1.0),
        hflip: float = 0.5,
        color: bool = True,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        geometry = moco_v2_view(img_size, (float(scale[0]), float(scale[1])), hflip, color)
        self.first = SampleTransform(geometry, mean=mean, std=std, post=[PickCaption(random=True)])
        self.second = SampleTransform(geometry, mean=mean, std=std) if two_images else None
        self.eda = eda

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        out = self.first(sample)
        if self.second is not None:
            out["image2"] = self.second({"image": sample["image"]})["image"]
        if self.eda is not None:
            out["text_eda"] = self.eda(out["text"], random.Random(int(torch.randint(2**62, ()))))
        return out

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(first={self.first!r}, second={self.second is not None}, eda={self.eda})"
        )


def view_transform(settings: Mapping[str, Any]) -> UpaGTransform:
    """The training views of the stage config ``settings``: its ``augment`` block, with the second
    image view and the EDA text view as its ``losses`` ask."""
    losses, aug = settings["losses"], settings["augment"]
    eda = (
        EDA(alpha=float(aug["eda_alpha"]), operations=tuple(aug["eda_operations"]))
        if losses["multi_view_text"]
        else None
    )
    return UpaGTransform(
        int(settings["img_size"]),
        two_images=bool(losses["multi_view_image"]),
        eda=eda,
        scale=aug["scale"],
        hflip=float(aug["hflip"]),
        color=bool(aug["color"]),
    )


# ------------------------------------------------------------------------------------- tokenizer


def iter_captions(root: str | Path, split: str = "train") -> Any:
    """Every caption of ``split`` in the shard folder ``root`` (read from the JSON members only)."""
    for shard in split_shards(root, split):
        for raw in iter_tar_samples(shard.url):
            if "json" in raw:
                yield from json.loads(raw["json"]).get("text", [])


def caption_tokenizer(
    folder: str | Path, root: str | Path, vocab_size: int, split: str = "train"
) -> TextTokenizer:
    """The run's tokenizer: ``folder/tokenizer.json`` when there (a resumed run), else a BPE trained on
    the captions of ``split`` in ``root`` and saved there."""
    folder = Path(folder)
    if (folder / "tokenizer.json").is_file():
        return TextTokenizer.load(folder)
    tokenizer = _train_tokenizer(iter_captions(root, split), vocab_size=vocab_size)
    with atomic_folder(folder) as tmp:
        tokenizer.save(tmp)
    log.info("trained a %d-token BPE on the %s captions of %s", tokenizer.vocab_size, split, root)
    return tokenizer


# ---------------------------------------------------------------------------------------- module


def _no_decay(name: str, param: Tensor, skip: set[str]) -> bool:
    return param.ndim <= 1 or name in skip


class UpaGModule(L.LightningModule):
    """The Up-A-G dual encoder and its group-supervision objective.

    Args:
        backbone: an intern-arch backbone built with ``num_classes=0`` (timm contract).
        settings: the stage config (``conf/stage/upa_g.yaml``) as a mapping.
        tokenizer: the run's trained tokenizer; the text tower's vocabulary is its size.
        backbone_args: constructor arguments for the hand-over ``config.json``.
        eval_root: shard folder of the downstream classification task (None: no zero-shot or probe).
        class_names: that task's class names, in label order.
        seed: seeds the MLM masks (with the step and rank).
        init_from: the hand-over folder the backbone started from, recorded in the export.
    """

    def __init__(
        self,
        backbone: nn.Module,
        settings: Mapping[str, Any],
        tokenizer: TextTokenizer,
        *,
        backbone_args: Mapping[str, Any] | None = None,
        eval_root: str | None = None,
        class_names: Sequence[str] | None = None,
        seed: int = 0,
        init_from: str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["backbone", "tokenizer"])
        self.settings = dict(settings)
        self.tokenizer = tokenizer
        self.backbone_args = dict(backbone_args or {})
        self.eval_root = eval_root
        self.class_names = list(class_names or [])
        self.seed = seed
        self.init_from = init_from
        embed_dim = int(settings["embed_dim"])
        text = settings["text"]
        losses = settings["losses"]

        self.backbone = backbone
        self.image_proj = nn.Linear(backbone.num_features, embed_dim, bias=False)
        nn.init.normal_(self.image_proj.weight, std=backbone.num_features**-0.5)
        self.text_cfg = TextTowerCfg(
            width=int(text["width"]),
            layers=int(text["layers"]),
            heads=int(text["heads"]),
            context_length=int(text["context_length"]),
            vocab_size=tokenizer.vocab_size,
            embed_dim=embed_dim,
        )
        self.text = TextTower(self.text_cfg)
        self.mlm_head = MLMHead(self.text_cfg.width, tokenizer.vocab_size) if losses["mlm"] else None
        simsiam = dict(settings.get("simsiam") or {})
        self.criterion = GroupSupervisionLoss(
            embed_dim,
            multi_view_image=bool(losses["multi_view_image"]),
            multi_view_text=bool(losses["multi_view_text"]),
            cl_reduction=settings.get("cl_reduction", "mean"),
            simsiam=bool(losses["simsiam"]),
            simsiam_in_dim=backbone.num_features,
            simsiam_proj_dim=int(simsiam.get("proj_dim", 1024)),
            simsiam_pred_dim=int(simsiam.get("pred_dim", 512)),
            mlm=bool(losses["mlm"]),
            sts=bool(losses["sts"]),
            alpha=float(settings["alpha"]),
            queue_size=int(settings["queue_size"]),
            init_temperature=float(settings["temperature"]),
            max_logit_scale=float(settings.get("max_logit_scale", 100.0)),
        )
        self._eval_data: dict[str, tuple[Tensor, Tensor]] | None = None

    # -- towers

    def encode_image(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``(pooled backbone features, joint-space embeddings)``, neither normalised."""
        feats = self.backbone.forward_head(self.backbone.forward_features(images), pre_logits=True)
        return feats, self.image_proj(feats)

    def tokenize(self, texts: Sequence[str]) -> tuple[Tensor, Tensor, Tensor]:
        ids, mask, eot = self.tokenizer.encode_batch(list(texts), self.text_cfg.context_length)
        return ids.to(self.device), mask.to(self.device), eot.to(self.device)

    def encode_text(self, ids: Tensor, mask: Tensor, eot: Tensor) -> tuple[Tensor, Tensor]:
        """``(joint-space embeddings, token states)``."""
        pooled, states = self.text(ids, mask, eot)
        return self.text.proj(pooled), states

    @torch.no_grad()
    def class_embeddings(self, class_names: Sequence[str], templates: Sequence[str]) -> Tensor:
        """Normalised zero-shot classifier ``C x D``: each class's prompt embeddings averaged."""
        prompts = [template.format(name) for name in class_names for template in templates]
        embeds = F.normalize(self.encode_text(*self.tokenize(prompts))[0].float(), dim=-1)
        embeds = embeds.view(len(class_names), len(templates), -1).mean(1)
        return F.normalize(embeds, dim=-1)

    # -- training

    def _mlm_generator(self) -> torch.Generator:
        seed = (self.seed * 1_000_003 + self.global_step * 1009 + self.global_rank) % 2**63
        return torch.Generator(device=self.device).manual_seed(seed)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        crit = self.criterion
        views = [batch["image"]] + ([batch["image2"]] if crit.multi_view_image else [])
        feats, embeds = self.encode_image(torch.cat(views))
        image_feats, image_embeds = feats.chunk(len(views)), embeds.chunk(len(views))

        ids, mask, eot = self.tokenize(batch["text"])
        texts = [(ids, mask, eot)]
        if crit.multi_view_text:
            texts.append(self.tokenize(batch["text_eda"]))
        n_views = len(texts)
        if self.mlm_head is not None:  # a third, masked copy of the caption, seen only by MLM
            masked, labels = mask_tokens(
                ids, mask, self.tokenizer, float(self.settings["mlm_prob"]), self._mlm_generator()
            )
            texts.append((masked, mask, eot))
        text_embeds, states = self.encode_text(*(torch.cat(parts) for parts in zip(*texts, strict=True)))
        mlm_logits = mlm_labels = None
        if self.mlm_head is not None:
            chosen = labels != IGNORE_INDEX
            mlm_logits, mlm_labels = self.mlm_head(states[n_views * len(ids) :][chosen]), labels[chosen]

        loss, parts = crit(
            image_embeds,
            text_embeds.chunk(len(texts))[:n_views],
            image_features=image_feats,
            mlm_logits=mlm_logits,
            mlm_labels=mlm_labels,
        )
        batch_size = batch["image"].shape[0]
        self.log("train/loss", parts.pop("loss"), prog_bar=True, batch_size=batch_size)
        self.log_dict({f"train/{k}": v for k, v in parts.items()}, batch_size=batch_size)
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.criterion.logit_scale.clamp_()

    # -- validation

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        _, image = self.encode_image(batch["image"])
        text, _ = self.encode_text(*self.tokenize(batch["text"]))
        image, text = F.normalize(image.float(), dim=-1), F.normalize(text.float(), dim=-1)
        loss = self.criterion.clip(image, text, self.criterion.logit_scale())
        acc = ((image @ text.t()).argmax(1) == torch.arange(len(image), device=image.device)).float().mean()
        size = len(image)
        self.log("val/loss", loss, sync_dist=True, batch_size=size)
        self.log("val/i2t_acc", acc, sync_dist=True, batch_size=size)

    def _load_eval(self) -> dict[str, tuple[Tensor, Tensor]]:
        if self._eval_data is None:
            cfg = self.settings["eval"]
            transform = eval_image_transform(int(self.settings["img_size"]), train=False)
            self._eval_data = {}
            for split in ("train", "val"):
                dataset = ShardDataset(
                    self.eval_root,
                    split=split,
                    batch_size=int(cfg.get("batch_size", 64)),
                    transform=transform,
                    required_keys=("label",),
                    rank=0,
                    world_size=1,
                )
                batches = list(ShardLoader(dataset, num_workers=0, track_position=False))
                self._eval_data[split] = (
                    torch.cat([b["image"] for b in batches]),
                    torch.cat([b["label"] for b in batches]),
                )
        return self._eval_data

    @torch.no_grad()
    def _embed_images(self, images: Tensor, chunk: int = 128) -> tuple[Tensor, Tensor]:
        outs = [
            self.encode_image(images[i : i + chunk].to(self.device)) for i in range(0, len(images), chunk)
        ]
        return torch.cat([o[0] for o in outs]).float().cpu(), torch.cat([o[1] for o in outs]).float().cpu()

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking or not self.eval_root or not self.class_names:
            return
        from intern_transfer.probe import LBFGSSearch, linear_probe

        cfg = self.settings["eval"]
        data = self._load_eval()
        (train_x, train_y), (val_x, val_y) = data["train"], data["val"]
        val_feats, val_embeds = self._embed_images(val_x)
        classes = self.class_embeddings(self.class_names, list(cfg["templates"])).cpu()
        zero_shot = (F.normalize(val_embeds, dim=-1) @ classes.t()).argmax(1)
        metrics = {"val/zero_shot_acc": (zero_shot == val_y).float().mean().item()}
        if cfg.get("probe", True):
            train_feats, _ = self._embed_images(train_x)
            search = LBFGSSearch(**dict(cfg.get("lbfgs") or {}))
            result = linear_probe(
                train_feats, train_y, val_feats, val_y, strategy="lbfgs", lbfgs_search=search, seed=self.seed
            )
            metrics["val/probe_acc"] = float(result.test_score)
        # every rank computes the same numbers on the whole (small) evaluation set
        self.log_dict(metrics, sync_dist=False, rank_zero_only=False)

    # -- optimisation

    def param_groups(self) -> dict[str, list[dict[str, Any]]]:
        """Parameter groups by tower: ``image`` (backbone, projection, SimSiam head), ``text`` (text
        tower, MLM head) and ``scale`` (the logit scale); norms, biases and the backbone's
        ``no_weight_decay()`` names go to ``*_no_decay`` groups."""
        skip = {f"backbone.{n}" for n in getattr(self.backbone, "no_weight_decay", lambda: set())()}
        towers: dict[str, list[tuple[str, nn.Module | None]]] = {
            "image": [
                ("backbone", self.backbone),
                ("image_proj", self.image_proj),
                ("criterion.simsiam", self.criterion.simsiam),
            ],
            "text": [("text", self.text), ("mlm_head", self.mlm_head)],
        }
        groups: dict[str, list[dict[str, Any]]] = {}
        covered: set[int] = set()
        for tower, modules in towers.items():
            decay, no_decay = [], []
            for prefix, module in modules:
                if module is None:
                    continue
                for name, p in module.named_parameters():
                    if p.requires_grad and id(p) not in covered:
                        covered.add(id(p))
                        (no_decay if _no_decay(f"{prefix}.{name}", p, skip) else decay).append(p)
            groups[tower] = [
                g
                for g in (
                    {"name": tower, "params": decay},
                    {"name": f"{tower}_no_decay", "params": no_decay, "weight_decay": 0.0},
                )
                if g["params"]
            ]
        scale = self.criterion.logit_scale.log_scale
        groups["scale"] = (
            [{"name": "logit_scale", "params": [scale], "weight_decay": 0.0}] if scale.requires_grad else []
        )
        covered.add(id(scale))
        left = [n for n, p in self.named_parameters() if p.requires_grad and id(p) not in covered]
        if left:
            raise RuntimeError(f"parameters in no optimiser group: {left}")
        return groups

    def configure_optimizers(self) -> dict[str, Any]:
        kind = self.settings["optimizer"]
        optim = self.settings["optim"]
        adamw, sgd = dict(optim["adamw"]), dict(optim["sgd"])
        scale_mult = float(optim["logit_scale_lr_mult"])
        groups = self.param_groups()

        def make_adamw(parts: list[dict[str, Any]]) -> torch.optim.AdamW:
            return torch.optim.AdamW(
                parts,
                lr=float(adamw["lr"]),
                weight_decay=float(adamw["weight_decay"]),
                betas=tuple(adamw["betas"]),
                eps=float(adamw["eps"]),
            )

        def make_sgd(parts: list[dict[str, Any]]) -> torch.optim.SGD:
            return torch.optim.SGD(
                parts,
                lr=float(sgd["lr"]),
                momentum=float(sgd["momentum"]),
                weight_decay=float(sgd["weight_decay"]),
                nesterov=bool(sgd.get("nesterov", False)),
            )

        def with_scale(base_lr: float) -> list[dict[str, Any]]:
            return [{**g, "lr": base_lr * scale_mult} for g in groups["scale"]]

        if kind == "mixed":
            inner = [make_adamw(groups["image"] + with_scale(float(adamw["lr"])))]
            if groups["text"]:
                inner.append(make_sgd(groups["text"]))
            optimizer: torch.optim.Optimizer = MixedOptimizer(inner)
        elif kind == "adamw":
            optimizer = make_adamw(groups["image"] + groups["text"] + with_scale(float(adamw["lr"])))
        elif kind == "sgd":
            optimizer = make_sgd(groups["image"] + groups["text"] + with_scale(float(sgd["lr"])))
        else:
            raise StageConfigError(f"stage.optimizer is {kind!r}; choose mixed, adamw or sgd")
        total = int(self.trainer.estimated_stepping_batches) if self._trainer is not None else 1
        scheduler = warmup_cosine_scheduler(
            optimizer, int(optim["warmup_steps"]), total, float(optim.get("min_lr_ratio", 0.0))
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # -- hand-over

    def export(self, folder: str | Path) -> Path:
        """Write the hand-over folder (module docstring) and return its path."""
        return export(self, folder)


# ------------------------------------------------------------------------------------- hand-over


def export(module: UpaGModule, folder: str | Path) -> Path:
    """The backbone as an intern-arch hand-over folder at ``folder``, plus ``folder/text/``."""
    folder = save_pretrained(
        module.backbone,
        folder,
        model_args=module.backbone_args,
        stage=STAGE,
        parent=module.init_from,
        extra={"upa_g": {"embed_dim": module.text_cfg.embed_dim, "text": TEXT_DIR}},
    )
    text = folder / TEXT_DIR
    text.mkdir()
    state = {f"text.{k}": v for k, v in module.text.state_dict().items()}
    state["image_proj.weight"] = module.image_proj.weight
    state["logit_scale"] = module.criterion.logit_scale().reshape(1)
    save_file(
        {k: v.detach().float().contiguous().cpu() for k, v in state.items()}, str(text / "model.safetensors")
    )
    config = {
        "text_tower": asdict(module.text_cfg),
        "image_proj": {
            "in_features": module.image_proj.in_features,
            "out_features": module.image_proj.out_features,
        },
        "templates": list(module.settings["eval"]["templates"]),
        "stage": STAGE,
    }
    (text / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    module.tokenizer.save(text)
    return folder


def load_text_side(folder: str | Path) -> tuple[TextTower, nn.Linear, TextTokenizer, float]:
    """``(text tower, image projection, tokenizer, logit scale)`` of an Up-A-G export; with
    ``intern_arch.from_pretrained(folder)`` for the backbone that is the whole zero-shot model."""
    text = Path(folder) / TEXT_DIR
    config = json.loads((text / "config.json").read_text())
    state = load_file(str(text / "model.safetensors"))
    tower = TextTower(TextTowerCfg(**config["text_tower"]))
    tower.load_state_dict({k.removeprefix("text."): v for k, v in state.items() if k.startswith("text.")})
    proj = nn.Linear(config["image_proj"]["in_features"], config["image_proj"]["out_features"], bias=False)
    proj.load_state_dict({"weight": state["image_proj.weight"]})
    return tower, proj, TextTokenizer.load(text), float(state["logit_scale"])


# ----------------------------------------------------------------------------------------- build


def build(cfg: Any, init_from: Path | None = None) -> tuple[UpaGModule, L.LightningDataModule]:
    """The Up-A-G module and its image-text DataModule for the composed app config ``cfg``.

    Makes the data shards (and the downstream task's for validation), trains the tokenizer on the
    training captions or loads it from ``<run folder>/tokenizer/``, builds the backbone from
    ``cfg.model.backbone`` (with weights from ``init_from`` when given).
    """
    stage, data = to_plain(cfg["stage"]), to_plain(cfg["data"])
    if data.get("task") != "image-text":
        raise StageConfigError(
            f"stage upa_g trains on image-text data; data {data.get('name')!r} "
            f"has data.task={data.get('task')!r}"
        )
    root = prepare_shards(data)
    run_dir = Path(cfg["paths"]["output_dir"])
    tokenizer = caption_tokenizer(run_dir / "tokenizer", root, int(stage["text"]["vocab_size"]))

    backbone_cfg = to_plain(cfg["model"]["backbone"])
    backbone = instantiate(backbone_cfg, num_classes=0)
    if init_from is not None:
        missing, unexpected = load_weights(backbone, Path(init_from) / "model.safetensors", strict=False)
        log.info("backbone from %s (missing %s, unexpected %s)", init_from, missing, unexpected)
    backbone_args = {k: v for k, v in backbone_cfg.items() if k not in ("_target_", "model_name")}

    evaluation = stage["eval"]
    eval_root = class_names = None
    if evaluation.get("dataset"):
        folder = world_shards(
            evaluation["dataset"],
            evaluation["cache_dir"],
            ["train", "val"],
            seed=int(evaluation.get("seed", 0)),
            sizes=evaluation.get("sizes"),
        )
        eval_root, class_names = str(folder), load_index(folder)["label_space"]["classes"]

    module = UpaGModule(
        backbone,
        stage,
        tokenizer,
        backbone_args=backbone_args,
        eval_root=eval_root,
        class_names=class_names,
        seed=int(cfg["seed"]),
        init_from=str(init_from) if init_from is not None else None,
    )
    samples = stage.get("samples_per_epoch")
    datamodule = build_datamodule(
        data,
        root,
        batch_size=int(stage["batch_size"]),
        val_batch_size=int(stage.get("val_batch_size") or stage["batch_size"]),
        num_workers=int(stage["num_workers"]),
        img_size=int(stage["img_size"]),
        shuffle_buffer=int(stage["shuffle_buffer"]),
        resampled=samples is not None,
        samples_per_epoch=samples,
        drop_last=True,  # contrastive gathers need equal batches on every rank
        seed=int(cfg["seed"]),
        train_transform=view_transform(stage),
    )
    return module, datamodule
