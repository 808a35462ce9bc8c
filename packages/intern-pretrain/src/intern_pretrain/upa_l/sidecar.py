"""A split's proposals stored next to its shards, computed once and reused, as ``proposals-<split>.json``::

    {
      "format": "intern-proposals", "version": 1,
      "dataset": "world_det_a", "split": "train",
      "content_hash": "<the split's content_hash in index.json>",
      "settings": {"mode": "fast", "min_size": 32, "max_aspect": 3.0, "area_ratio": [0.3, 0.8],
                   "max_proposals": 128, "search_size": null, "seed": 0},
      "complete": true, "count": 1000,
      "proposals": {"<__key__>": [[x1, y1, x2, y2], ...], ...}
    }

The file is rewritten atomically every ``flush_every`` images, so an interrupted run resumes after the
images already done. Proposals made for other shard content or other settings are refused, never
silently reused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from intern_data.io import atomic_write_bytes
from intern_data.progress import progress_bar
from intern_data.shards.index import load_index
from intern_data.shards.reader import ShardDataset
from intern_pretrain.upa_l.proposals import proposal_settings, proposals_for_image

FORMAT = "intern-proposals"
VERSION = 1


class StaleProposalsError(ValueError):
    """A proposals sidecar made for other shard content or other settings."""


def proposals_path(shard_folder: str | os.PathLike[str], split: str) -> Path:
    """Where the sidecar of ``split`` lives: ``<shard_folder>/proposals-<split>.json``."""
    return Path(shard_folder) / f"proposals-{split}.json"


def _split_content_hash(shard_folder: str | os.PathLike[str], split: str) -> tuple[str, str]:
    index = load_index(shard_folder)
    if split not in index["splits"]:
        raise KeyError(f"{shard_folder} has no split {split!r}")
    return index["dataset"], index["splits"][split]["content_hash"]


def _check_sidecar(
    file: Path, data: dict[str, Any], content_hash: str, settings: dict[str, Any] | None
) -> None:
    if data.get("format") != FORMAT or data.get("version") != VERSION:
        raise StaleProposalsError(f"{file} is not an {FORMAT} v{VERSION} file")
    if data.get("content_hash") != content_hash:
        raise StaleProposalsError(
            f"{file} was made for other shard content (content hash {str(data.get('content_hash'))[:12]}..., "
            f"the shards now have {content_hash[:12]}...); delete it or rerun write_proposals(overwrite=True)"
        )
    if settings is not None and data.get("settings") != settings:
        raise StaleProposalsError(
            f"{file} was made with settings {data.get('settings')}, not {settings}; "
            "delete it or rerun write_proposals(overwrite=True)"
        )


def _dump(file: Path, data: dict[str, Any]) -> None:
    atomic_write_bytes(file, json.dumps(data, separators=(",", ":")).encode())


def write_proposals(
    shard_folder: str | os.PathLike[str],
    split: str,
    out: str | os.PathLike[str] | None = None,
    *,
    overwrite: bool = False,
    flush_every: int = 1000,
    max_skip_fraction: float = 0.01,
    **settings: Any,
) -> Path:
    """Compute the proposals of every image of a shard split once and store them as a JSON sidecar.

    Images are read through the shard reader (each shard's sha256 checked against the index first;
    a corrupt sample is skipped, counted and logged, up to ``max_skip_fraction``), so a skipped image
    has no proposals, as it has no place in training.

    Args:
        shard_folder: Folder holding the shards and ``index.json``.
        split: Split to read.
        out: Sidecar path; defaults to :func:`proposals_path`.
        overwrite: Recompute even when a sidecar for other content or settings exists.
        flush_every: Rewrite the (partial) sidecar after this many images, so a rerun resumes there.
        max_skip_fraction: The share of bad samples that stops the pass (``SkipRateError``).
        **settings: As for :func:`proposal_settings` (``mode``, ``min_size``, ``max_aspect``,
            ``area_ratio``, ``max_proposals``, ``search_size``, ``seed``).

    Returns:
        The sidecar's path.

    Raises:
        StaleProposalsError: the sidecar exists for other shard content or settings (without ``overwrite``).
    """
    resolved = proposal_settings(**settings)
    dataset, content_hash = _split_content_hash(shard_folder, split)
    file = Path(out) if out is not None else proposals_path(shard_folder, split)
    data: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "dataset": dataset,
        "split": split,
        "content_hash": content_hash,
        "settings": resolved,
        "complete": False,
        "count": 0,
        "proposals": {},
    }
    if file.is_file() and not overwrite:
        existing = json.loads(file.read_text())
        _check_sidecar(file, existing, content_hash, resolved)
        if existing.get("complete"):
            return file
        data["proposals"] = existing.get("proposals", {})
    done = data["proposals"]
    pending = 0
    shards = ShardDataset(
        shard_folder, split=split, batch_size=1, verify=True, max_skip_fraction=max_skip_fraction
    )
    samples = shards.scan()
    for sample in progress_bar(
        samples, total=shards.num_samples, desc=f"proposals {dataset}/{split}", unit="image"
    ):
        if sample["__key__"] in done:
            continue
        done[sample["__key__"]] = proposals_for_image(sample["image"], resolved).tolist()
        pending += 1
        if pending >= flush_every:
            data["count"] = len(done)
            _dump(file, data)
            pending = 0
    data["complete"], data["count"] = True, len(done)
    _dump(file, data)
    return file


def load_proposals(
    shard_folder: str | os.PathLike[str],
    split: str,
    path: str | os.PathLike[str] | None = None,
    *,
    settings: dict[str, Any] | None = None,
) -> dict[str, Tensor]:
    """The proposals of a split by sample key, checked against the shards' current content hash.

    Args:
        shard_folder: Folder holding the shards and ``index.json``.
        split: Split name.
        path: Sidecar path; defaults to :func:`proposals_path`.
        settings: When given (see :func:`proposal_settings`), the sidecar must have been made with them.

    Raises:
        FileNotFoundError: no sidecar (run :func:`write_proposals` first).
        StaleProposalsError: the sidecar belongs to other shard content or settings, or is incomplete.
    """
    file = Path(path) if path is not None else proposals_path(shard_folder, split)
    if not file.is_file():
        raise FileNotFoundError(
            f"no proposals at {file}; make them with write_proposals({shard_folder!r}, {split!r})"
        )
    data = json.loads(file.read_text())
    _, content_hash = _split_content_hash(shard_folder, split)
    _check_sidecar(file, data, content_hash, settings)
    if not data.get("complete"):
        raise StaleProposalsError(f"{file} is incomplete ({data.get('count')} images); rerun write_proposals")
    return {
        key: torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
        for key, boxes in data["proposals"].items()
    }
