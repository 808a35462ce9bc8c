"""Up-A-G's data: the run's image-text shards, a BPE tokenizer trained on their captions, the views."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from intern_arch.checkpoint import atomic_folder
from intern_arch.text import TextTokenizer, train_tokenizer
from intern_data.progress import show_progress
from intern_data.shards.reader import ShardDataset
from intern_data.sources import build_datamodule, prepare_shards, reader_options
from intern_pretrain.core import StageConfigError, StageData
from intern_pretrain.upa_g.eda import EDA
from intern_pretrain.upa_g.views import UpaGTransform

__all__ = ["caption_tokenizer", "image_text_data", "iter_captions"]

log = logging.getLogger(__name__)


def iter_captions(root: str | Path, split: str = "train", max_skip_fraction: float = 0.01) -> Iterator[str]:
    """Every caption of ``split`` in the shard folder ``root``, read from the JSON members only, through
    the shard reader's checks (each shard's sha256, key list, skip counting up to ``max_skip_fraction``)."""
    shards = ShardDataset(root, split=split, batch_size=1, verify=True, max_skip_fraction=max_skip_fraction)
    for sample in shards.scan(images=False):
        yield from sample.get("text", [])


def caption_tokenizer(
    folder: str | Path,
    root: str | Path,
    vocab_size: int,
    split: str = "train",
    max_skip_fraction: float = 0.01,
) -> TextTokenizer:
    """The run's tokenizer: ``folder/tokenizer.json`` when there (a resumed run), else a BPE trained on
    the captions of ``split`` in ``root`` and saved there."""
    folder = Path(folder)
    if (folder / "tokenizer.json").is_file():
        return TextTokenizer.load(folder)
    tokenizer = train_tokenizer(
        iter_captions(root, split, max_skip_fraction), vocab_size=vocab_size, show_progress=show_progress()
    )
    with atomic_folder(folder) as tmp:
        tokenizer.save(tmp)
    log.info("trained a %d-token BPE on the %s captions of %s", tokenizer.vocab_size, split, root)
    return tokenizer


def image_text_data(
    *,
    source: Mapping[str, Any],
    run_dir: str | Path,
    seed: int,
    backbone: nn.Module | None = None,
    img_size: int,
    batch_size: int,
    val_batch_size: int | None = None,
    samples_per_epoch: int | None = None,
    num_workers: int = 0,
    shuffle_buffer: int = 256,
    vocab_size: int = 49409,
    scale: Sequence[float] = (0.2, 1.0),
    hflip: float = 0.5,
    color: bool = True,
    eda_alpha: float = 0.1,
    eda_operations: Sequence[str] = ("synonym", "swap", "delete"),
) -> StageData:
    """The image-text DataModule of ``source`` (views: :class:`UpaGTransform`, ImageNet statistics as
    every intern-arch ``pretrained_cfg``) and the tokenizer the module's text tower is sized by.
    ``backbone`` is part of every stage's data interface; Up-A-G's data does not need it.

    ``samples_per_epoch`` draws that many samples per epoch with replacement (None: one pass over the
    training split). Batches are dropped when short: the contrastive gathers need equal batches on
    every rank.

    Raises:
        StageConfigError: ``source`` is not image-text data.
    """
    if source.get("task") != "image-text":
        raise StageConfigError(
            f"stage upa_g trains on image-text data; data {source.get('name')!r} "
            f"has data.task={source.get('task')!r}"
        )
    root = prepare_shards(dict(source))
    skip = reader_options(source)["max_skip_fraction"]
    tokenizer = caption_tokenizer(Path(run_dir) / "tokenizer", root, vocab_size, max_skip_fraction=skip)
    eda = EDA(alpha=eda_alpha, operations=tuple(eda_operations))
    views = UpaGTransform(img_size, eda, scale=scale, hflip=hflip, color=color)
    datamodule = build_datamodule(
        dict(source),
        root,
        batch_size=batch_size,
        val_batch_size=val_batch_size or batch_size,
        num_workers=num_workers,
        img_size=img_size,
        shuffle_buffer=shuffle_buffer,
        resampled=samples_per_epoch is not None,
        samples_per_epoch=samples_per_epoch,
        drop_last=True,
        seed=seed,
        train_transform=views,
    )
    return StageData(datamodule, {"tokenizer": tokenizer})
