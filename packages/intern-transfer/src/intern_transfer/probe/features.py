"""Frozen-backbone feature extraction and an on-disk feature cache (safetensors + JSON, no pickle).

A linear probe trains many heads on the same features, so features are extracted once per (model,
dataset, split, preprocessing, autocast dtype) and kept on disk. An entry is two files in the cache folder:

- ``{dataset}-{split}-{digest}.safetensors``: ``features`` (float32 N x D), ``labels`` (int64 N) and
  ``keys_json`` (uint8: the UTF-8 JSON list of sample keys);
- ``{dataset}-{split}-{digest}.json``: the sidecar: format version, the full cache key, N, D, the
  file's SHA-256 and any caller metadata.

``digest`` hashes the whole key. Both files are written to temporary names and renamed into place,
the data file first and the sidecar last, so the sidecar marks a complete entry: a data file without
a sidecar is an interrupted write (a miss). A sidecar that cannot be read, names another key or whose
checksum, tensor names or shapes disagree with the data file is corrupt: :meth:`FeatureCache.load`
raises :class:`FeatureCacheError` naming the file and the reason, and
:meth:`FeatureCache.load_or_compute` logs that error and recomputes the entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from intern_data.io import atomic_path, atomic_write_text, file_sha256
from intern_data.progress import progress_bar

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_TENSORS = ("features", "labels", "keys_json")


class Features(NamedTuple):
    """Pooled pre-logits features of a dataset split: ``features`` float32 N x D, ``labels`` int64 N,
    ``keys`` the N sample keys (``__key__`` of each sample, or its position when batches carry none)."""

    features: Tensor
    labels: Tensor
    keys: list[str]


class FeatureCacheError(RuntimeError):
    """A cache entry that exists but cannot be trusted (unreadable, foreign or damaged)."""


# -- extraction


def model_fingerprint(model: nn.Module) -> str:
    """SHA-256 of a model's architecture name and state dict (names, dtypes, shapes and bytes).

    Two models with the same weights and architecture share a fingerprint; any changed weight or
    buffer (BN running statistics included) changes it.
    """
    digest = hashlib.sha256()
    cfg = getattr(model, "pretrained_cfg", None) or {}
    digest.update(f"{type(model).__module__}.{type(model).__qualname__}:{cfg.get('architecture')}".encode())
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().to("cpu").contiguous()
        digest.update(f"|{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _unpack(batch: Any, offset: int) -> tuple[Tensor, Tensor, list[str]]:
    """Images, labels and keys of a batch: a dict with ``image``, ``label`` (and ``__key__``) as the
    intern-data DataModules give, or a sequence ``(images, labels[, keys])`` as torchvision datasets do."""
    if isinstance(batch, Mapping):
        if "image" not in batch or "label" not in batch:
            raise ValueError(f"a batch dict needs 'image' and 'label' keys; got {sorted(batch)}")
        images, labels, keys = batch["image"], batch["label"], batch.get("__key__")
    elif isinstance(batch, Sequence) and len(batch) in (2, 3):
        images, labels = batch[0], batch[1]
        keys = batch[2] if len(batch) == 3 else None
    else:
        raise ValueError(
            "a batch must be a dict with 'image' and 'label' or a tuple (images, labels[, keys])"
        )
    if not isinstance(images, Tensor) or images.ndim != 4:
        raise ValueError("batch images must be a B x C x H x W tensor")
    if not images.is_floating_point():
        raise ValueError(
            f"batch images are {images.dtype}; the backbone needs float images, normalised as its "
            "pretrained_cfg says (do it in the dataset's transform)"
        )
    labels = torch.as_tensor(labels).reshape(-1).to(torch.int64)
    if labels.numel() != images.shape[0]:
        raise ValueError(f"batch has {images.shape[0]} images but {labels.numel()} labels")
    if keys is None:
        keys = [str(offset + i) for i in range(images.shape[0])]
    else:
        keys = [str(k) for k in keys]
        if len(keys) != images.shape[0]:
            raise ValueError(f"batch has {images.shape[0]} images but {len(keys)} keys")
    return images, labels, keys


@torch.no_grad()
def extract_features(
    backbone: nn.Module,
    batches: Iterable[Any],
    *,
    device: str | torch.device | None = None,
    autocast_dtype: torch.dtype | None = None,
    progress: bool = False,
) -> Features:
    """Pooled pre-logits features of every batch, from the frozen backbone in eval mode.

    Features are ``backbone.forward_head(backbone.forward_features(x), pre_logits=True)``: after global
    pooling (and any pre-logits layer), before the classifier. The backbone is put in eval mode (BN
    uses its running statistics, dropout is off) and restored to its previous mode afterwards; no
    gradient is recorded.

    Args:
        backbone: any model with the timm ``forward_features`` / ``forward_head`` contract.
        batches: a DataLoader or any iterable of batches (see :func:`_unpack` for the forms).
        device: where to run; default the backbone's own device.
        autocast_dtype: run the backbone under ``torch.autocast`` with this dtype (e.g. bfloat16 on a
            GPU); features are returned in float32 either way.
        progress: show a progress bar (:func:`intern_data.progress.progress_bar`: on a terminal only).

    Returns:
        :class:`Features` on the CPU, in batch order.
    """
    if device is None:
        param = next(iter(backbone.parameters()), None)
        device = param.device if param is not None else torch.device("cpu")
    device = torch.device(device)
    was_training = backbone.training
    backbone.eval()
    feats: list[Tensor] = []
    labels: list[Tensor] = []
    keys: list[str] = []
    try:
        for batch in progress_bar(batches, desc="features", unit="batch", enabled=progress):
            images, batch_labels, batch_keys = _unpack(batch, len(keys))
            images = images.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                out = backbone.forward_head(backbone.forward_features(images), pre_logits=True)
            if out.ndim != 2:
                raise ValueError(
                    f"forward_head(..., pre_logits=True) gave shape {tuple(out.shape)}; pooled features "
                    "must be B x D (does the backbone pool?)"
                )
            feats.append(out.float().cpu())
            labels.append(batch_labels)
            keys.extend(batch_keys)
    finally:
        backbone.train(was_training)
    if not feats:
        raise ValueError("no batches to extract features from")
    return Features(torch.cat(feats), torch.cat(labels), keys)


# -- cache


@dataclass(frozen=True)
class CacheKey:
    """What identifies a cache entry.

    Args:
        model: the model fingerprint (:func:`model_fingerprint`) or a checkpoint id the caller vouches for.
        dataset: dataset name.
        split: split name (``train``, ``test``, or a manifest id such as ``train-10pct-<hash>``).
        preprocess: a description of the preprocessing (resize, crop, mean, std, interpolation, ...),
            as a string or any JSON-serialisable value.
        autocast: the ``torch.autocast`` dtype the features were computed under (``"bfloat16"``,
            ``"float16"``), None for float32.
    """

    model: str
    dataset: str
    split: str
    preprocess: Any
    autocast: str | None = None

    def as_dict(self) -> dict[str, Any]:
        key = {"format_version": FORMAT_VERSION, **asdict(self)}
        if self.autocast is None:  # float32 keys stay as they were before autocast was part of the key
            del key["autocast"]
        return key

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()

    @property
    def stem(self) -> str:
        safe = [re.sub(r"[^A-Za-z0-9_.]+", "_", part)[:64] for part in (self.dataset, self.split)]
        return f"{safe[0]}-{safe[1]}-{self.digest[:20]}"


class FeatureCache:
    """Feature files in ``root``, one entry per :class:`CacheKey`; layout and guarantees in the module doc.

    ``stats`` counts ``hit``, ``miss`` and ``corrupt`` outcomes of :meth:`load_or_compute`.

    Args:
        root: the cache folder (created on first write).
        verify: check each data file's SHA-256 against its sidecar on load (reads the file twice).
    """

    def __init__(self, root: str | os.PathLike, *, verify: bool = True) -> None:
        self.root = Path(root)
        self.verify = verify
        self.stats: Counter[str] = Counter()

    def paths(self, key: CacheKey) -> tuple[Path, Path]:
        """The data file and the sidecar of ``key``."""
        return self.root / f"{key.stem}.safetensors", self.root / f"{key.stem}.json"

    def load(self, key: CacheKey) -> Features | None:
        """The cached features of ``key``, or None if there is no complete entry.

        Raises:
            FeatureCacheError: the entry exists but is unreadable, belongs to another key or is damaged.
        """
        data_path, meta_path = self.paths(key)
        if not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise FeatureCacheError(f"feature cache sidecar {meta_path} is unreadable: {err}") from err
        if not isinstance(meta, dict) or meta.get("key") != key.as_dict():
            raise FeatureCacheError(f"feature cache sidecar {meta_path} does not describe the key {key}")
        if not data_path.is_file():
            raise FeatureCacheError(f"feature cache file {data_path} is missing (its sidecar exists)")
        if self.verify and file_sha256(data_path) != meta.get("sha256"):
            raise FeatureCacheError(
                f"feature cache file {data_path} fails its checksum (damaged or replaced)"
            )
        try:
            tensors = load_file(str(data_path))
        except (SafetensorError, OSError, ValueError) as err:
            raise FeatureCacheError(f"feature cache file {data_path} is unreadable: {err}") from err
        if set(tensors) != set(_TENSORS):
            raise FeatureCacheError(f"feature cache file {data_path} holds {sorted(tensors)}, not {_TENSORS}")
        feats, labels = tensors["features"], tensors["labels"]
        try:
            keys = json.loads(bytes(tensors["keys_json"].numpy()).decode())
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise FeatureCacheError(f"feature cache file {data_path} has unreadable sample keys") from err
        n, dim = meta.get("num_samples"), meta.get("dim")
        if (
            feats.dtype != torch.float32
            or labels.dtype != torch.int64
            or tuple(feats.shape) != (n, dim)
            or tuple(labels.shape) != (n,)
            or not isinstance(keys, list)
            or len(keys) != n
        ):
            raise FeatureCacheError(
                f"feature cache file {data_path} disagrees with its sidecar: features "
                f"{feats.dtype} {tuple(feats.shape)}, labels {labels.dtype} {tuple(labels.shape)}, "
                f"{len(keys) if isinstance(keys, list) else '?'} keys; sidecar says N={n}, D={dim}"
            )
        return Features(feats, labels, keys)

    def save(self, key: CacheKey, features: Features, meta: Mapping[str, Any] | None = None) -> Path:
        """Write an entry atomically (data file, then sidecar); return the data file's path."""
        feats = features.features.detach().to("cpu", torch.float32).contiguous()
        labels = features.labels.detach().to("cpu", torch.int64).contiguous()
        keys = [str(k) for k in features.keys]
        if feats.ndim != 2 or labels.shape != (feats.shape[0],) or len(keys) != feats.shape[0]:
            raise ValueError(
                f"features {tuple(feats.shape)}, labels {tuple(labels.shape)} and {len(keys)} keys disagree"
            )
        keys_bytes = torch.frombuffer(bytearray(json.dumps(keys).encode()), dtype=torch.uint8)
        self.root.mkdir(parents=True, exist_ok=True)
        data_path, meta_path = self.paths(key)
        tensors = {"features": feats, "labels": labels, "keys_json": keys_bytes}
        with atomic_path(data_path) as tmp:
            save_file(tensors, str(tmp), metadata={"format": "pt"})
        sidecar = {
            "key": key.as_dict(),
            "num_samples": int(feats.shape[0]),
            "dim": int(feats.shape[1]),
            "sha256": file_sha256(data_path),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "meta": dict(meta or {}),
        }
        atomic_write_text(meta_path, json.dumps(sidecar, indent=2, sort_keys=True))
        return data_path

    def load_or_compute(
        self, key: CacheKey, compute: Callable[[], Features], meta: Mapping[str, Any] | None = None
    ) -> Features:
        """The cached entry of ``key``; on a miss, or a corrupt entry (logged), ``compute()`` and store it."""
        try:
            cached = self.load(key)
        except FeatureCacheError as err:
            log.error("%s; recomputing the features", err)
            self.stats["corrupt"] += 1
            cached = None
        else:
            self.stats["hit" if cached is not None else "miss"] += 1
        if cached is not None:
            return cached
        features = compute()
        self.save(key, features, meta)
        return features


def cached_features(
    cache: FeatureCache | None,
    backbone: nn.Module,
    batches: Iterable[Any],
    *,
    dataset: str,
    split: str,
    preprocess: Any,
    model_id: str | None = None,
    autocast_dtype: torch.dtype | None = None,
    **extract_kwargs: Any,
) -> Features:
    """:func:`extract_features` through ``cache`` (None: no cache); ``batches`` is only read on a miss.

    ``model_id`` defaults to :func:`model_fingerprint` of ``backbone``; ``autocast_dtype`` is part of
    the key, so features computed in bfloat16 are never reused for float32.
    """
    extract_kwargs["autocast_dtype"] = autocast_dtype
    if cache is None:
        return extract_features(backbone, batches, **extract_kwargs)
    autocast = None if autocast_dtype is None else str(autocast_dtype).removeprefix("torch.")
    key = CacheKey(model_id or model_fingerprint(backbone), dataset, split, preprocess, autocast)
    return cache.load_or_compute(key, lambda: extract_features(backbone, batches, **extract_kwargs))
