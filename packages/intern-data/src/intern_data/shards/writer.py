"""Write a split of samples to webdataset shards ``{dataset}-{split}-{NNNNNN}.tar`` plus ``index.json``.

Crash safety and resumption (hand-written: webdataset's ``ShardWriter`` writes straight to the final
name and cannot resume):

- each shard is written to ``.{name}.tmp``, flushed, fsynced and only then renamed to ``{name}``, so a
  file named like a shard is always complete; its key list (:mod:`~intern_data.shards.keylist`) follows,
  and ``index.json`` is written last, atomically;
- a rerun after an interruption deletes leftover temporary files, reads the complete shards back (keys,
  counts, statistics, sha256; a finished split's shards must still match the sha256 in its index),
  checks that the input yields the same keys in the same order (the input must be deterministic), skips
  those samples without encoding them, and continues with the next shard. The final shards are
  byte-identical to an uninterrupted run: tar headers carry fixed times and owners, and the encoders
  are deterministic;
- the settings of an unfinished split are kept in ``.{dataset}-{split}.writing.json``; resuming with
  other settings is an error rather than a silent mix.

The shard size is decided before a sample is added: a new shard starts when the current one holds
``max_shard_count`` samples or the sample's members would take it past ``max_shard_bytes`` (a single
larger sample still gets a shard of its own).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import tarfile
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
import webdataset as wds

from intern_data.io import atomic_write_bytes, file_sha256, fsync_dir
from intern_data.label_space import LabelSpace
from intern_data.progress import progress_bar
from intern_data.schema import IGNORE_INDEX, Sample, check_label_space, validate_sample
from intern_data.shards.codec import (
    DEPTH_FORMATS,
    IMAGE_FORMATS,
    PROBLEM,
    _decode_png_plane,
    encode_sample,
    iter_tar_samples,
    members_crc,
)
from intern_data.shards.index import FORMAT, INDEX_NAME, VERSION, hash_strings, index_path, locked
from intern_data.shards.keylist import key_list_name, write_key_list

log = logging.getLogger(__name__)

_BLOCK = 512
_TAR_END = 2 * _BLOCK
_NAME = re.compile(r"^[A-Za-z0-9_.+=]+(?:[A-Za-z0-9_.+=-]*[A-Za-z0-9_.+=])?$")
_FIELDS = ("image", "text", "label", "boxes", "mask", "depth", "proposals")


class ShardWriteError(RuntimeError):
    """Writing or resuming shards cannot go on safely; the message says why and what to do."""


def shard_name(dataset: str, split: str, number: int) -> str:
    return f"{dataset}-{split}-{number:06d}.tar"


def _tar_size(member_bytes: int) -> int:
    """File size of a tar holding ``member_bytes``: plus the end blocks, padded to tarfile's record."""
    return -(-(member_bytes + _TAR_END) // tarfile.RECORDSIZE) * tarfile.RECORDSIZE


def _member_bytes(members: dict[str, Any]) -> int:
    """Bytes the members take in a tar: a 512-byte header each, data padded to 512-byte blocks."""
    return sum(_BLOCK + -(-len(v) // _BLOCK) * _BLOCK for k, v in members.items() if k != "__key__")


def _image_member(members: Iterable[str]) -> str:
    """The extension of a sample's image member (``jpg`` or ``png``)."""
    return "jpg" if "jpg" in members else "png"


class _SplitStats:
    """Counts of one split: samples, fields, sources, stored image formats, and per-class counts."""

    def __init__(self) -> None:
        self.count = 0
        self.fields: Counter[str] = Counter()
        self.sources: Counter[str] = Counter()
        self.formats: Counter[str] = Counter()
        self.classes: dict[str, Counter[int]] = {"label": Counter(), "boxes": Counter(), "mask": Counter()}

    def add(
        self,
        fields: Iterable[str],
        source: str,
        image_format: str,
        label: int | None,
        box_labels: list[int],
        mask_classes: list[int],
    ) -> None:
        self.count += 1
        self.fields.update(fields)
        self.sources[source] += 1
        self.formats[image_format] += 1
        if label is not None:
            self.classes["label"][label] += 1
        self.classes["boxes"].update(box_labels)
        self.classes["mask"].update(c for c in mask_classes if c != IGNORE_INDEX)

    def add_sample(self, sample: Sample, members: dict[str, Any]) -> None:
        mask_classes = torch.unique(sample["mask"]).tolist() if "mask" in sample else []
        self.add(
            (f for f in _FIELDS if f in sample),
            sample["source"],
            _image_member(members),
            sample.get("label"),
            sample["box_labels"].tolist() if "box_labels" in sample else [],
            mask_classes,
        )

    def add_raw(self, raw: dict[str, Any]) -> str:
        """Count a sample read back from a complete shard (JSON plus mask only); return its key."""
        meta = json.loads(raw["json"])
        members = meta["members"]
        fields = ["image"] + [f for f in ("text", "label", "boxes", "proposals") if f in meta]
        fields += [
            f
            for f, ext in (("mask", "mask.png"), ("depth", "depth."))
            if any(m.startswith(ext) for m in members)
        ]
        mask = torch.unique(_decode_png_plane(raw["mask.png"])).tolist() if "mask.png" in members else []
        self.add(
            fields,
            meta["source"],
            _image_member(members),
            meta.get("label"),
            meta.get("box_labels", []),
            mask,
        )
        return meta["key"]

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "fields": {f: self.fields[f] for f in _FIELDS},
            "sources": dict(sorted(self.sources.items())),
            "stored_formats": dict(sorted(self.formats.items())),
            "class_counts": {
                kind: {str(c): n for c, n in sorted(counts.items())}
                for kind, counts in self.classes.items()
                if counts
            },
        }


class _ShardFile:
    """One shard being written under its temporary name; ``commit`` makes it complete."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder = folder
        self.name = name
        self.final = folder / name
        self.tmp = folder / f".{name}.tmp"
        self.handle = open(self.tmp, "wb")  # noqa: SIM115 - closed in commit/abort
        # Fixed mtime/owner/mode so a rerun writes byte-identical tars.
        self.tar = wds.TarWriter(
            self.handle, encoder=False, mtime=0, user="", group="", mode=0o444, format="PAX_FORMAT"
        )
        self.count = 0
        self.bytes = 0
        self.keys: set[str] = set()
        self.listed: list[tuple[str, int]] = []  # (prefix, crc32 of the members): the key list
        self.first_key = self.last_key = ""

    def write(self, key: str, members: dict[str, Any], size: int) -> None:
        if key in self.keys:
            raise ShardWriteError(
                f"sample key {key!r} appears twice in shard {self.name}; keys must be unique"
            )
        self.tar.write(members)
        self.keys.add(key)
        self.listed.append((members["__key__"], members_crc(members)))
        self.first_key = self.first_key or key
        self.last_key = key
        self.count += 1
        self.bytes += size

    def commit(self) -> dict[str, Any]:
        self.tar.close()
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        os.replace(self.tmp, self.final)
        fsync_dir(self.folder)
        return {
            "name": self.name,
            "count": self.count,
            "bytes": self.final.stat().st_size,
            "sha256": file_sha256(self.final),
            "first_key": self.first_key,
            "last_key": self.last_key,
            "keys": write_key_list(self.folder, self.name, self.listed),
        }

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.tar.close()
        self.handle.close()
        self.tmp.unlink(missing_ok=True)


def _existing_shards(folder: Path, dataset: str, split: str) -> list[Path]:
    pattern = re.compile(rf"^{re.escape(dataset)}-{re.escape(split)}-(\d{{6}})\.tar$")
    found = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := pattern.match(p.name)))
    for expected, (number, path) in enumerate(found):
        if number != expected:
            raise ShardWriteError(
                f"shards of {dataset}/{split} in {folder} are not numbered "
                f"0..{len(found) - 1} ({path.name}); "
                "rerun with overwrite=True to rewrite the split"
            )
    return [p for _, p in found]


def _rescan(path: Path, stats: _SplitStats, sha256: str | None) -> tuple[dict[str, Any], list[str]]:
    """Read a complete shard back: its index entry (its key list written again) and its keys in order.
    ``sha256``: what the index of a finished split records for it, which it must still match."""
    digest = file_sha256(path)
    if sha256 is not None and digest != sha256:
        raise ShardWriteError(
            f"shard {path.name} does not match the sha256 in {index_path(path.parent)}: it changed after it "
            "was written; delete it (and the ones after it) or rerun with overwrite=True"
        )
    keys: list[str] = []
    listed: list[tuple[str, int]] = []
    try:
        for raw in iter_tar_samples(str(path)):
            if PROBLEM in raw:
                raise ValueError(raw[PROBLEM])
            keys.append(stats.add_raw(raw))
            listed.append((raw["__key__"], members_crc(raw)))
    except Exception as err:
        raise ShardWriteError(
            f"shard {path.name} looks complete but cannot be read ({type(err).__name__}: {err}); "
            "delete it (and the ones after it) or rerun with overwrite=True"
        ) from err
    entry = {
        "name": path.name,
        "count": len(keys),
        "bytes": path.stat().st_size,
        "sha256": digest,
        "first_key": keys[0] if keys else "",
        "last_key": keys[-1] if keys else "",
        "keys": write_key_list(path.parent, path.name, listed),
    }
    return entry, keys


def _skip_written(samples: Iterator[Sample], keys: list[str], shard: str) -> None:
    for position, key in enumerate(keys):
        try:
            sample = next(samples)
        except StopIteration:
            raise ShardWriteError(
                f"resuming: the input ended after {position} samples but shard {shard} holds more; the input "
                "must give the same samples in the same order, or rerun with overwrite=True"
            ) from None
        if sample.get("__key__") != key:
            raise ShardWriteError(
                f"resuming: shard {shard} holds {key!r} at this position but the input gives "
                f"{sample.get('__key__')!r}; the input is not deterministic (rerun with overwrite=True)"
            )


def _write_index(
    folder: Path, dataset: str, split: str, entry: dict[str, Any], label_space: LabelSpace | None
) -> dict[str, Any]:
    file = folder / INDEX_NAME
    with locked(folder):
        index = (
            json.loads(file.read_text())
            if file.is_file()
            else {"format": FORMAT, "version": VERSION, "dataset": dataset, "label_space": None, "splits": {}}
        )
        if index.get("dataset") != dataset:
            raise ShardWriteError(f"{file} belongs to dataset {index.get('dataset')!r}, not {dataset!r}")
        new_space = label_space.to_json() if label_space is not None else None
        if new_space is not None:
            if index["label_space"] not in (None, new_space):
                raise ShardWriteError(
                    f"{file}: split {split!r} has another label space than the dataset's other splits"
                )
            index["label_space"] = new_space
        index["splits"][split] = entry
        index["splits"] = dict(sorted(index["splits"].items()))
        index["content_hash"] = hash_strings([f"{s}:{e['content_hash']}" for s, e in index["splits"].items()])
        atomic_write_bytes(file, (json.dumps(index, indent=1, ensure_ascii=False) + "\n").encode())
    return index


def write_shards(
    samples: Iterable[Sample],
    out_dir: str | os.PathLike[str],
    dataset: str,
    split: str,
    label_space: LabelSpace | None = None,
    max_shard_bytes: int = 128 << 20,
    max_shard_count: int = 10_000,
    image_format: str = "jpg",
    *,
    quality: int = 95,
    depth_format: str = "npy",
    overwrite: bool = False,
    total: int | None = None,
) -> dict[str, Any]:
    """Write one split of a dataset as shards in ``out_dir`` and record it in ``out_dir/index.json``.

    Rerunning after an interruption resumes after the last complete shard (see the module docstring);
    rerunning a finished split checks it against the input and rewrites nothing.

    Args:
        samples: the split's samples in a deterministic order; each is checked with ``validate_sample``.
        out_dir: the dataset's shard folder (created if missing); several splits share its index.
        dataset: dataset name, the first part of the shard names.
        split: split name (``train``, ``val``, ...).
        label_space: the dataset's label space; labels, box labels and mask values are checked
            against it and it is stored in the index.
        max_shard_bytes: size above which a new shard starts.
        max_shard_count: samples per shard at most.
        image_format: ``"keep"`` (a sample's ``__image_bytes__`` as they are when PNG or JPEG, else
            lossless PNG), ``"jpg"`` (lossy) or ``"png"`` (lossless).
        quality: JPEG quality.
        depth_format: ``"npy"`` (float32, exact) or ``"png16"`` (millimetres).
        overwrite: delete this split's shards first instead of resuming.
        total: the number of samples, for the progress bar (default: ``len(samples)`` when it has one).

    Returns:
        The whole ``index.json`` as a dict.

    Raises:
        SampleError: a sample breaks the schema.
        ShardWriteError: resuming is unsafe (other settings, input order changed, unreadable shard).
    """
    for what, value in (("dataset", dataset), ("split", split)):
        if not _NAME.match(value):
            raise ValueError(f"{what} name {value!r} must be letters, digits and _.+=- (no '/' or spaces)")
    if image_format not in IMAGE_FORMATS or depth_format not in DEPTH_FORMATS:
        raise ValueError(
            f"image_format must be in {IMAGE_FORMATS} and depth_format in {DEPTH_FORMATS}, "
            f"got {image_format!r}, {depth_format!r}"
        )
    if max_shard_count < 1 or max_shard_bytes < 1:
        raise ValueError("max_shard_count and max_shard_bytes must be positive")
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    settings = {
        "image_format": image_format,
        "quality": quality,
        "depth_format": depth_format,
        "max_shard_bytes": max_shard_bytes,
        "max_shard_count": max_shard_count,
    }
    with open(folder / f".{dataset}-{split}.lock", "a") as split_lock:
        try:
            fcntl.flock(split_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ShardWriteError(f"another process is writing {dataset}/{split} in {folder}") from None
        with progress_bar(samples, total=total, desc=f"{dataset}/{split}", unit="sample") as bar:
            return _write_split(iter(bar), folder, dataset, split, label_space, settings, overwrite)


def _write_split(
    samples: Iterator[Sample],
    folder: Path,
    dataset: str,
    split: str,
    label_space: LabelSpace | None,
    settings: dict[str, Any],
    overwrite: bool,
) -> dict[str, Any]:
    progress = folder / f".{dataset}-{split}.writing.json"
    for leftover in folder.glob(f".{dataset}-{split}-*.tar.tmp"):
        log.info("removing incomplete shard %s", leftover.name)
        leftover.unlink()
    if overwrite:
        for path in _existing_shards(folder, dataset, split):
            path.unlink()
            (folder / key_list_name(path.name)).unlink(missing_ok=True)
        progress.unlink(missing_ok=True)
    existing = _existing_shards(folder, dataset, split)
    finished = bool(existing) and not progress.is_file()
    recorded, hashes = None, {}
    if progress.is_file():
        recorded = json.loads(progress.read_text())
    elif existing and index_path(folder).is_file():
        split_entry = json.loads(index_path(folder).read_text()).get("splits", {}).get(split, {})
        recorded = split_entry.get("settings")
        hashes = {shard["name"]: shard["sha256"] for shard in split_entry.get("shards", [])}
    if existing and recorded is not None and recorded != settings:
        raise ShardWriteError(
            f"{dataset}/{split} in {folder} was written with {recorded}, not {settings}; "
            "resume with the same settings or rerun with overwrite=True"
        )
    if not finished:  # a finished split is only checked against the input
        atomic_write_bytes(progress, json.dumps(settings, sort_keys=True).encode())

    stats = _SplitStats()
    entries: list[dict[str, Any]] = []
    for path in existing:
        entry, keys = _rescan(path, stats, hashes.get(path.name) if finished else None)
        _skip_written(samples, keys, path.name)
        entries.append(entry)
    if existing:
        log.info(
            "resuming %s/%s after %d complete shards (%d samples)", dataset, split, len(existing), stats.count
        )
    if finished:
        extra = next(samples, None)
        if extra is not None:
            raise ShardWriteError(
                f"{dataset}/{split} in {folder} is complete but the input goes on "
                f"({extra.get('__key__')!r}); "
                "rerun with overwrite=True to rewrite the split"
            )

    shard: _ShardFile | None = None
    try:
        for sample in samples:
            validate_sample(sample)
            if label_space is not None:
                check_label_space(sample, label_space)
            members = encode_sample(
                sample,
                image_format=settings["image_format"],
                quality=settings["quality"],
                depth_format=settings["depth_format"],
            )
            size = _member_bytes(members)
            if shard is not None and (
                shard.count >= settings["max_shard_count"]
                or _tar_size(shard.bytes + size) > settings["max_shard_bytes"]
            ):
                entries.append(shard.commit())
                shard = None
            if shard is None:
                shard = _ShardFile(folder, shard_name(dataset, split, len(entries)))
            shard.write(sample["__key__"], members, size)
            stats.add_sample(sample, members)
        if shard is not None:
            entries.append(shard.commit())
            shard = None
    finally:
        if shard is not None:
            shard.abort()

    entry = {
        **stats.to_json(),
        "shards": entries,
        "content_hash": hash_strings([e["sha256"] for e in entries]),
        "settings": settings,
    }
    index = _write_index(folder, dataset, split, entry, label_space)
    progress.unlink(missing_ok=True)
    log.info("wrote %s/%s: %d samples in %d shards", dataset, split, stats.count, len(entries))
    return index
