"""Up-A-L (paper Sec. 5.1.2): local representation on the frozen Up-A-G backbone, after SoCo.

An FPN (P2-P5) and a box head are trained by local BYOL (:class:`~intern_pretrain.local.LocalBYOL`) on
selective-search proposals seen in three views; the backbone stays frozen. The stage:

- :func:`build` loads the Up-A-G hand-over folder, makes the shards of the run's data config (default
  the embedded world's image-text set), computes the proposals of the training split once into a
  sidecar next to the shards (reused by later runs), and returns a :class:`UpaLModule` and a
  :class:`LocalViewsDataModule`;
- :func:`export` writes the hand-over folder: the backbone as ``config.json`` + ``model.safetensors``
  and the FPN + box head as ``neck_head.safetensors`` + ``neck_head.json``, ready to initialise the
  detection expert's Faster R-CNN (:func:`init_faster_rcnn`).

Settings live in ``conf/stage/upa_l.yaml`` (the CPU default: 64 px views, 4 proposals; the paper: 448 px,
8 proposals, batch 1024).
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torchvision.models.detection import FasterRCNN

import intern_arch
from intern_arch.checkpoint import atomic_folder, read_config
from intern_data.datamodules import ShardDataModule
from intern_data.shards.reader import Transform
from intern_data.shards.transforms import IMAGENET_MEAN, IMAGENET_STD
from intern_data.sources import prepare_shards
from intern_pretrain.local import (
    LEVEL_PROBS,
    LEVELS,
    AttachProposals,
    BoxHead,
    LocalBYOL,
    LocalViews,
    assign_levels,
    collate_views,
    load_proposals,
    momentum_at,
    proposal_settings,
    write_proposals,
)
from intern_pretrain.optim import warmup_cosine_scheduler
from intern_pretrain.stages import StageConfigError, to_plain

__all__ = [
    "NECK_HEAD_CONFIG",
    "NECK_HEAD_WEIGHTS",
    "LocalViewsDataModule",
    "UpaLModule",
    "build",
    "export",
    "init_faster_rcnn",
    "load_neck_head",
]

STAGE = "upa_l"
NECK_HEAD_WEIGHTS = "neck_head.safetensors"
NECK_HEAD_CONFIG = "neck_head.json"
NECK_HEAD_FORMAT = "intern-neck-head"
# Where each part of the LocalBYOL online branch goes in torchvision's FasterRCNN built by
# intern_arch.build_faster_rcnn(backbone, ..., box_head=BoxHead(...)): neck_head key prefix -> module key.
FPN_PREFIX = "backbone.fpn."
BOX_HEAD_PREFIX = "roi_heads.box_head."
MODULE_PREFIXES = {FPN_PREFIX: "model.fpn.fpn.", BOX_HEAD_PREFIX: "model.head."}
OPTIMIZERS = ("sgd", "adamw")


# ----------------------------------------------------------------------------------------------- data


class LocalViewsDataModule(ShardDataModule):
    """Shards -> batches of three views and their proposals (:func:`collate_views`) for Up-A-L.

    The training transform attaches each sample's proposals from the sidecar next to its shards
    (:func:`~intern_pretrain.local.write_proposals`), then makes the views (:class:`LocalViews`). The
    reader's position is saved in checkpoints, as by every :class:`ShardDataModule`.

    Args:
        root: Shard folder(s); each holds ``proposals-<train_split>.json``.
        size: Side of views 1 and 2 (paper 448).
        view3_size: Side of view 3 (paper 448).
        num_proposals: Proposals per image (paper 8).
        view3_from_view2: Make view 3 by resizing view 2 (SoCo) instead of augmenting afresh.
        proposal_settings: When given (:func:`~intern_pretrain.local.proposal_settings`), every sidecar
            must have been made with them.
        mean, std: Normalisation (the backbone's ``pretrained_cfg``).
        missing: ``"error"`` for a sample without proposals, or ``"whole"`` for the whole image.
        train_split, val_split: As for :class:`ShardDataModule`; BYOL has no validation by default.
        **kwargs: Further :class:`ShardDataModule` arguments (``batch_size``, ``num_workers``, ``seed``...).
    """

    def __init__(
        self,
        root: str | Sequence[str],
        *,
        size: int = 64,
        view3_size: int = 64,
        num_proposals: int = 4,
        view3_from_view2: bool = False,
        proposal_settings: Mapping[str, Any] | None = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        missing: str = "error",
        train_split: str | None = "train",
        val_split: str | None = None,
        **kwargs: Any,
    ) -> None:
        # Read by default_transform, which ShardDataModule.__init__ calls.
        self.view_args = {
            "size": size,
            "view3_size": view3_size,
            "num_proposals": num_proposals,
            "view3_from_view2": view3_from_view2,
            "mean": list(mean),
            "std": list(std),
        }
        self.proposal_settings = dict(proposal_settings) if proposal_settings is not None else None
        self.missing = missing
        self._proposals: dict[str, Tensor] | None = None
        super().__init__(root, train_split=train_split, val_split=val_split, **kwargs)

    def proposals(self) -> dict[str, Tensor]:
        """The proposals of the training split of every root, by sample key (loaded once)."""
        if self._proposals is None:
            split = self.splits["train"]
            if split is None:
                raise ValueError("LocalViewsDataModule needs a train_split to find its proposals")
            self._proposals = {}
            for root in self.roots:
                self._proposals.update(load_proposals(root, split, settings=self.proposal_settings))
        return self._proposals

    def default_transform(self, train: bool) -> Transform:
        attach = AttachProposals(self.proposals(), missing=self.missing)
        views = LocalViews(**self.view_args)

        def transform(sample: dict[str, Any]) -> dict[str, Any]:
            return views(attach(sample))

        return transform

    @staticmethod
    def default_collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
        return collate_views(samples)


# --------------------------------------------------------------------------------------------- module


class UpaLModule(L.LightningModule):
    """Local BYOL on the frozen backbone: the online FPN + box head + projector + predictor learn, the
    target follows by momentum after every optimiser step.

    Args:
        backbone: The Up-A-G backbone (intern-arch contract); frozen here.
        fpn_channels, head_dim, proj_hidden, proj_dim, pred_hidden, roi_size, sampling_ratio, pairs:
            :class:`~intern_pretrain.local.LocalBYOL` (paper: 256, 1024, 4096, 256, 4096, 7, 2,
            view 1 with views 2 and 3).
        levels: FPN level of each proposal: ``"random"`` (Up-A-L, ``level_probs``) or ``"size"`` (SoCo).
        level_probs: Probabilities of P2..P5 (paper 0.1/0.2/0.3/0.4).
        canonical_size: For ``"size"``: the box side that goes to P4; ``None`` is each view's side (SoCo's
            224 on 224 px views).
        optimizer: ``"adamw"`` or ``"sgd"`` (momentum), over the trainable parameters only; biases and
            normalisation weights get no weight decay.
        lr, weight_decay, momentum, betas: Optimiser settings (``momentum`` for SGD, ``betas`` for AdamW).
        warmup_steps, min_lr_ratio: Linear warm-up, then cosine to ``min_lr_ratio * lr`` at the last step.
        base_momentum: Target momentum at step 0, rising to 1 on a cosine (BYOL; paper 0.99).
        total_steps: Length of the momentum and LR schedules; ``None``: the trainer's
            ``estimated_stepping_batches``.
        seed: Seed of the random level draws (one draw per step and batch, so a resumed run repeats them).
        init_from: The Up-A-G hand-over folder (recorded as the export's parent).
        backbone_args: The backbone's constructor arguments (from its hand-over ``config.json``), kept so
            the export rebuilds the same model.
        label_spaces: Label spaces of the backbone's hand-over, passed on by the export.
    """

    def __init__(
        self,
        backbone: nn.Module,
        *,
        fpn_channels: int = 256,
        head_dim: int = 1024,
        proj_hidden: int = 4096,
        proj_dim: int = 256,
        pred_hidden: int = 4096,
        roi_size: int = 7,
        sampling_ratio: int = 2,
        pairs: Sequence[Sequence[int]] = ((0, 1), (0, 2)),
        levels: str = "random",
        level_probs: Sequence[float] = LEVEL_PROBS,
        canonical_size: float | None = None,
        optimizer: str = "adamw",
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        momentum: float = 0.9,
        betas: Sequence[float] = (0.9, 0.999),
        warmup_steps: int = 0,
        min_lr_ratio: float = 0.0,
        base_momentum: float = 0.99,
        total_steps: int | None = None,
        seed: int = 0,
        init_from: str | None = None,
        backbone_args: Mapping[str, Any] | None = None,
        label_spaces: Mapping[str, list[str]] | None = None,
    ) -> None:
        super().__init__()
        if levels not in ("random", "size"):
            raise ValueError(f"levels must be 'random' or 'size', got {levels!r}")
        if len(level_probs) != len(LEVELS):
            raise ValueError(f"level_probs needs one probability per level {LEVELS}, got {list(level_probs)}")
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        self.save_hyperparameters(ignore=["backbone"])
        self.model = LocalBYOL(
            backbone,
            fpn_channels=fpn_channels,
            head_dim=head_dim,
            proj_hidden=proj_hidden,
            proj_dim=proj_dim,
            pred_hidden=pred_hidden,
            roi_size=roi_size,
            sampling_ratio=sampling_ratio,
            pairs=tuple((int(i), int(j)) for i, j in pairs),
        )
        self._momentum_step = -1  # the optimiser step whose target update was done

    @property
    def backbone(self) -> nn.Module:
        return self.model.backbone

    def total_steps(self) -> int:
        """Length of the schedules: ``total_steps`` or the trainer's estimate."""
        if self.hparams.total_steps is not None:
            return int(self.hparams.total_steps)
        return int(self.trainer.estimated_stepping_batches)

    def assign_levels(
        self, boxes: Sequence[Tensor], view_sides: Sequence[int], batch_idx: int = 0
    ) -> Tensor | list[Tensor]:
        """Level indices (0 = P2) of the proposals: one B x K draw shared by every view (``"random"``,
        seeded by seed, step, batch index and rank, so a resumed run repeats it) or one per view by box
        size (``"size"``, the box side ``canonical_size`` or else the view's side going to P4)."""
        hp = self.hparams
        if hp.levels == "size":
            return [
                assign_levels(
                    view_boxes, "size", hp.level_probs, canonical_size=float(hp.canonical_size or side)
                )
                for view_boxes, side in zip(boxes, view_sides, strict=True)
            ]
        rank = self.trainer.global_rank if self._trainer is not None else 0
        key = f"{hp.seed}/{self.global_step}/{batch_idx}/{rank}".encode()
        generator = torch.Generator().manual_seed(zlib.crc32(key))
        return assign_levels(boxes[0], "random", hp.level_probs, generator=generator).to(boxes[0].device)

    def forward(self, views: Sequence[Tensor], boxes: Sequence[Tensor], levels: Any) -> Tensor:
        """The local BYOL loss (see :meth:`LocalBYOL.forward`)."""
        return self.model(views, boxes, levels)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        views, boxes = batch["views"], batch["boxes"]
        levels = self.assign_levels(boxes, [view.shape[-1] for view in views], batch_idx)
        loss = self.model(views, boxes, levels)
        self.log("train/loss", loss, prog_bar=True, batch_size=views[0].shape[0])
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Move the target toward the online branch once per optimiser step (BYOL's cosine momentum)."""
        step = self.global_step
        if step == 0 or step == self._momentum_step:  # no optimiser step yet, or accumulating
            return
        self._momentum_step = step
        momentum = momentum_at(step - 1, self.total_steps(), self.hparams.base_momentum)
        self.model.update_target(momentum)
        self.log("train/momentum", momentum, batch_size=1)

    def configure_optimizers(self) -> dict[str, Any]:
        decay, no_decay = [], []
        for _, param in self.model.named_parameters():
            if param.requires_grad:
                (no_decay if param.ndim <= 1 else decay).append(param)
        groups = [
            {"params": decay, "weight_decay": self.hparams.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        if self.hparams.optimizer == "sgd":
            optimizer = torch.optim.SGD(groups, lr=self.hparams.lr, momentum=self.hparams.momentum)
        else:
            optimizer = torch.optim.AdamW(groups, lr=self.hparams.lr, betas=tuple(self.hparams.betas))
        scheduler = warmup_cosine_scheduler(
            optimizer, self.hparams.warmup_steps, self.total_steps(), self.hparams.min_lr_ratio
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


# ---------------------------------------------------------------------------------------------- build


def _section(cfg: Any, key: str) -> dict[str, Any]:
    """``cfg[key]`` as a plain dict, interpolations resolved."""
    node = cfg.get(key) if isinstance(cfg, Mapping) else getattr(cfg, key, None)
    return to_plain(node) if node is not None else {}


def build(
    cfg: Any, init_from: str | os.PathLike[str], settings: Mapping[str, Any] | None = None
) -> tuple[UpaLModule, LocalViewsDataModule]:
    """The Up-A-L module and its data from the composed config and the Up-A-G hand-over folder.

    Reads ``cfg.data`` (a data config: the embedded world's image-text set by default; any source
    :func:`~intern_data.sources.prepare_shards` knows), ``cfg.seed`` and the stage settings (``settings``,
    default ``cfg.stage``, the keys of ``conf/stage/upa_l.yaml``). The run's length is the trainer's
    (``max_epochs`` of ``samples_per_epoch`` samples drawn with replacement, or ``max_steps``); the
    momentum and LR schedules span it unless ``total_steps`` is set. The proposals of the training split
    are computed once into ``<shards>/proposals-<split>.json`` and reused while the shards and the
    proposal settings are unchanged (other settings for the same shards raise ``StaleProposalsError``).

    Raises:
        StageConfigError: no ``init_from`` folder or no data config.
    """
    stage = dict(settings) if settings is not None else _section(cfg, "stage")
    data = _section(cfg, "data")
    seed = int((cfg.get("seed") if isinstance(cfg, Mapping) else getattr(cfg, "seed", None)) or 0)
    if init_from is None or not Path(init_from).is_dir():
        raise StageConfigError(
            f"stage upa_l starts from an Up-A-G hand-over folder (init_from), got {init_from}"
        )
    if not data:
        raise StageConfigError("stage upa_l needs a data config (cfg.data) to read images from")

    parent = read_config(init_from)
    backbone = intern_arch.from_pretrained(init_from)
    split = stage.get("split", "train")
    root = prepare_shards(data, [split])
    prop = proposal_settings(**dict(stage.get("proposals") or {}))
    write_proposals(root, split, **prop)  # returns at once when a complete sidecar exists

    views = dict(stage.get("views") or {})
    samples = stage.get("samples_per_epoch")
    pretrained = getattr(backbone, "pretrained_cfg", None) or {}
    datamodule = LocalViewsDataModule(
        str(root),
        train_split=split,
        val_split=None,
        size=int(views.get("size", 64)),
        view3_size=int(views.get("view3_size", views.get("size", 64))),
        num_proposals=int(views.get("num_proposals", 4)),
        view3_from_view2=bool(views.get("view3_from_view2", False)),
        proposal_settings=prop,
        mean=pretrained.get("mean", IMAGENET_MEAN),
        std=pretrained.get("std", IMAGENET_STD),
        batch_size=int(stage.get("batch_size", 16)),
        num_workers=int(stage.get("num_workers", 0)),
        shuffle_buffer=int(stage.get("shuffle_buffer", 256)),
        resampled=samples is not None,
        samples_per_epoch=samples,
        drop_last=True,  # BatchNorm in the head and MLPs wants full batches
        seed=seed,
    )

    levels = dict(stage.get("levels") or {})
    opt = dict(stage.get("optimizer") or {})
    opt_name = opt.pop("name", "adamw")
    module = UpaLModule(
        backbone,
        **dict(stage.get("byol") or {}),
        levels=levels.get("mode", "random"),
        level_probs=tuple(levels.get("probs", LEVEL_PROBS)),
        canonical_size=levels.get("canonical_size"),
        optimizer=opt_name,
        **opt,
        base_momentum=float(stage.get("base_momentum", 0.99)),
        total_steps=stage.get("total_steps"),
        seed=seed,
        init_from=str(init_from),
        backbone_args=parent["model_args"],
        label_spaces=parent.get("label_spaces") or {},
    )
    return module, datamodule


# --------------------------------------------------------------------------------------------- export


def neck_head_state(module: UpaLModule) -> dict[str, Tensor]:
    """The online FPN and box head tensors under their Faster R-CNN names (see :func:`export`)."""
    state: dict[str, Tensor] = {}
    for prefix, part in ((FPN_PREFIX, module.model.fpn.fpn), (BOX_HEAD_PREFIX, module.model.head)):
        for name, tensor in part.state_dict().items():
            state[prefix + name] = tensor.detach().contiguous().cpu()
    return state


def _neck_head_config(module: UpaLModule, state: Mapping[str, Tensor]) -> dict[str, Any]:
    model, hp = module.model, module.hparams
    return {
        "format": NECK_HEAD_FORMAT,
        "version": 1,
        "stage": STAGE,
        "branch": "online",
        "weights": NECK_HEAD_WEIGHTS,
        "fpn": {
            "prefix": FPN_PREFIX,
            "module": "torchvision.ops.FeaturePyramidNetwork",
            "in_levels": list(model.fpn.body.levels),
            "levels": list(model.fpn.names),
            "strides": list(model.strides),
            "in_channels_list": list(model.fpn.body.out_channels),
            "out_channels": model.fpn.out_channels,
        },
        "box_head": {
            "prefix": BOX_HEAD_PREFIX,
            "module": "torchvision.models.detection.faster_rcnn.FastRCNNConvFCHead",
            "in_channels": model.fpn.out_channels,
            "resolution": hp.roi_size,
            "conv_dim": model.fpn.out_channels,
            "num_convs": 4,
            "fc_dim": hp.head_dim,
            "norm_layer": "BatchNorm2d",
        },
        "module_keys": dict(MODULE_PREFIXES),
        "tensors": {name: list(tensor.shape) for name, tensor in state.items()},
    }


def export(module: UpaLModule, folder: str | os.PathLike[str]) -> Path:
    """Write the Up-A-L hand-over folder (atomically: a temporary sibling renamed into place).

    Contents:

    - ``config.json`` + ``model.safetensors``: the (frozen) backbone, as :func:`intern_arch.save_pretrained`
      writes it (``stage: upa_l``, ``parent``: the Up-A-G folder); ``intern_arch.from_pretrained`` loads it.
    - ``neck_head.safetensors``: the online branch's FPN and box head, keyed as in torchvision's
      ``FasterRCNN`` built by ``intern_arch.build_faster_rcnn(backbone, n, box_head=BoxHead(...))``:

      =================================  ==========================  ==============================
      neck_head key                      UpaLModule key              FasterRCNN module
      =================================  ==========================  ==============================
      ``backbone.fpn.<name>``            ``model.fpn.fpn.<name>``    ``model.backbone.fpn`` (P2-P5;
                                                                     P6 is a parameter-free max pool)
      ``roi_heads.box_head.<name>``      ``model.head.<name>``       ``model.roi_heads.box_head``
      =================================  ==========================  ==============================

      The backbone's own keys ``<name>`` are ``backbone.body.backbone.<name>`` there.
    - ``neck_head.json``: the prefixes, the FPN's levels, strides and channels, the box head's shape
      (``FastRCNNConvFCHead((C, 7, 7), [C] * 4, [fc_dim], norm_layer=BatchNorm2d)``) and every tensor's
      shape; :func:`init_faster_rcnn` builds the detector from it.

    Projector, predictor and the momentum target are training-only and not exported.
    """
    hp = module.hparams
    state = neck_head_state(module)
    with atomic_folder(folder) as tmp:
        intern_arch.save_pretrained(
            module.backbone,
            tmp,
            model_args=dict(hp.get("backbone_args") or {}),
            stage=STAGE,
            label_spaces=dict(hp.get("label_spaces") or {}),
            parent=hp.get("init_from"),
            extra={"neck_head": {"weights": NECK_HEAD_WEIGHTS, "config": NECK_HEAD_CONFIG}},
        )
        save_file(state, str(tmp / NECK_HEAD_WEIGHTS), metadata={"format": "pt"})
        config = _neck_head_config(module, state)
        (tmp / NECK_HEAD_CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True))
    return Path(folder)


def load_neck_head(folder: str | os.PathLike[str]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The FPN + box head tensors (Faster R-CNN names) and their description from an Up-A-L export."""
    folder = Path(folder)
    config_file = folder / NECK_HEAD_CONFIG
    if not config_file.is_file():
        raise FileNotFoundError(f"{folder} holds no {NECK_HEAD_CONFIG}: not an Up-A-L export")
    config = json.loads(config_file.read_text())
    if config.get("format") != NECK_HEAD_FORMAT:
        raise ValueError(f"{config_file} is not an {NECK_HEAD_FORMAT} file")
    return load_file(str(folder / config["weights"])), config


def init_faster_rcnn(folder: str | os.PathLike[str], num_classes: int, **kwargs: Any) -> FasterRCNN:
    """A Faster R-CNN (``intern_arch.build_faster_rcnn``) initialised from an Up-A-L export: backbone,
    FPN and box head loaded, RPN and box predictor fresh. ``kwargs`` go to ``build_faster_rcnn``."""
    state, config = load_neck_head(folder)
    head = config["box_head"]
    box_head = BoxHead(
        head["in_channels"], head["resolution"], head["conv_dim"], head["num_convs"], head["fc_dim"]
    )
    model = intern_arch.build_faster_rcnn(
        intern_arch.from_pretrained(folder),
        num_classes,
        fpn_channels=config["fpn"]["out_channels"],
        box_head=box_head,
        **kwargs,
    )
    own = model.state_dict()
    wrong = sorted(k for k in state if k not in own or own[k].shape != state[k].shape)
    if wrong:
        raise ValueError(f"{folder}: neck_head tensors that do not fit the Faster R-CNN: {wrong}")
    model.load_state_dict(state, strict=False)
    return model
