"""Up-A-L's data: images of the run's data config, their selective-search proposals, three views each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from intern_data.datamodules import ShardDataModule
from intern_data.shards.reader import Transform
from intern_data.shards.transforms import IMAGENET_MEAN, IMAGENET_STD
from intern_data.sources import prepare_shards, reader_options
from intern_pretrain.core import StageData
from intern_pretrain.upa_l.proposals import proposal_settings
from intern_pretrain.upa_l.sidecar import load_proposals, write_proposals
from intern_pretrain.upa_l.views import AttachProposals, LocalViews, collate_views

__all__ = ["LocalViewsDataModule", "local_views_data"]


class LocalViewsDataModule(ShardDataModule):
    """Shards -> batches of three views and their proposals (:func:`collate_views`) for Up-A-L.

    The training transform attaches each sample's proposals from the sidecar next to its shards
    (:func:`~intern_pretrain.upa_l.sidecar.write_proposals`), then makes the views (:class:`LocalViews`).
    The reader's position is saved in checkpoints, as by every :class:`ShardDataModule`.

    Args:
        root: Shard folder(s); each holds ``proposals-<train_split>.json``.
        size: Side of views 1 and 2 (paper 448).
        view3_size: Side of view 3 (paper 448).
        num_proposals: Proposals per image (paper 8).
        view3_from_view2: Make view 3 by resizing view 2 (SoCo) instead of augmenting afresh.
        proposal_settings: When given (:func:`~intern_pretrain.upa_l.proposals.proposal_settings`), every
            sidecar must have been made with them.
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


def local_views_data(
    *,
    source: Mapping[str, Any],
    run_dir: str | Path,
    seed: int,
    backbone: nn.Module,
    split: str = "train",
    batch_size: int = 16,
    samples_per_epoch: int | None = None,
    num_workers: int = 0,
    shuffle_buffer: int = 256,
    views: Mapping[str, Any] | None = None,
    proposals: Mapping[str, Any] | None = None,
) -> StageData:
    """Up-A-L's DataModule over ``split`` of ``source`` (default: the embedded world's image-text set).

    The proposals of the split are computed once into ``<shards>/proposals-<split>.json`` and reused
    while the shards and the proposal settings are unchanged (other settings for the same shards raise
    ``StaleProposalsError``). Views are normalised with the backbone's ``pretrained_cfg``.
    ``samples_per_epoch`` draws that many samples per epoch with replacement (None: one pass). Short
    batches are dropped: BatchNorm in the box head and the MLPs wants full ones. ``run_dir`` is part
    of every stage's data interface; Up-A-L's data does not need it.
    """
    root = prepare_shards(dict(source), [split])
    options = reader_options(source)
    settings = proposal_settings(**dict(proposals or {}))
    # returns at once when a complete sidecar exists
    write_proposals(root, split, max_skip_fraction=options["max_skip_fraction"], **settings)
    views = dict(views or {})
    pretrained = getattr(backbone, "pretrained_cfg", None) or {}
    datamodule = LocalViewsDataModule(
        str(root),
        train_split=split,
        val_split=None,
        size=int(views.get("size", 64)),
        view3_size=int(views.get("view3_size", views.get("size", 64))),
        num_proposals=int(views.get("num_proposals", 4)),
        view3_from_view2=bool(views.get("view3_from_view2", False)),
        proposal_settings=settings,
        mean=pretrained.get("mean", IMAGENET_MEAN),
        std=pretrained.get("std", IMAGENET_STD),
        batch_size=batch_size,
        num_workers=num_workers,
        shuffle_buffer=shuffle_buffer,
        resampled=samples_per_epoch is not None,
        samples_per_epoch=samples_per_epoch,
        drop_last=True,
        seed=seed,
        **options,
    )
    return StageData(datamodule)
