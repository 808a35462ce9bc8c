"""Read shards as a stream of batches: split by rank and worker, shuffle, mix, decode, transform, batch.

The pipeline of one DataLoader worker (one *slot*: ``slot = rank * num_workers + worker``) reads::

    its part of the epoch's shards -> shuffle buffer -> check + decode -> transform -> batch

Tar members are grouped into samples by :func:`~intern_data.shards.codec.iter_tar_samples`, the shuffle
buffer is webdataset's, decoding is :mod:`intern_data.imaging` (it raises on corrupt bytes and refuses
images over ``max_pixels`` before decoding), transforms are torchvision v2
(:mod:`intern_data.shards.transforms`). What is written here is the epoch plan, because
webdataset's ``split_by_node``/``split_by_worker`` deal out whole shards: with fewer shards than
ranks x workers some ranks get nothing, and with uneven shards ranks get different batch counts; under
DDP either one hangs the collectives. The plan instead uses the sample counts of ``index.json``:

- **finite epochs** (``resampled=False``): the epoch's shard order (shuffled by ``seed`` + epoch) is
  laid end to end and cut into ``ranks x workers`` contiguous ranges of near-equal size, at sample level,
  so every slot reads at most a shard or two and every sample is read exactly once per epoch. Every
  slot yields the same number of batches ``K = ceil(ceil(N / slots) / batch_size)``; a slot with one
  sample fewer splits a batch in two instead of yielding one batch less. With ``drop_last=True``
  every batch is full and up to ``slots x batch_size - 1`` samples are left out of the epoch;
- **resampled epochs** (``resampled=True``): each slot draws shards with replacement (per sample, the
  source by ``weights`` when several are mixed) and yields ``ceil(samples_per_epoch / (slots x
  batch_size))`` batches;
- **the index is the truth**: a shard's key list (:mod:`~intern_data.shards.keylist`) says which
  samples it holds, in which order, and the crc32 of their members. A tar sample not in it, a member
  whose name could not have been written here (``../``, absolute, an unknown extension), a sample whose
  members do not match their crc32, and a label outside the index's label space are skipped and
  counted, and take no sample's place. With ``verify=True`` each shard's sha256 is checked against the
  index before it is read, and a mismatch stops the run naming the shard (:class:`ShardIntegrityError`);
  it is off by default: hashing every shard again each epoch costs about 7% of JPEG decoding, and the
  crc32 check already catches a changed sample for a third of that and skips only that sample. Folders
  written before key lists are read by tar position, with every other check;
- **bad data** (a corrupt image, a missing member, a truncated or missing tar): the sample is skipped,
  counted and logged with its shard and key; a shard that ends early counts its missing samples. A slot
  that runs out of good samples pads its last batches with repeats of good ones (counted as
  ``padded``), so batch counts never diverge. When the skipped fraction of a worker's samples passes
  ``max_skip_fraction`` (after ``min_samples_for_skip_check`` samples) the run stops with
  :class:`SkipRateError`.

Everything random (shard order, shuffle buffer, resampling, mixing, and each sample's augmentation)
is seeded from ``seed``, the epoch and the slot, so a run is reproducible and a position saved by
:class:`ShardLoader` resumes exactly (:mod:`intern_data.shards.position`).
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import logging
import math
import os
import random
import tarfile
from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import webdataset as wds
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from webdataset.shardlists import expand_urls

from intern_data.imaging import MAX_PIXELS
from intern_data.io import file_sha256
from intern_data.schema import Sample, SampleError, check_label_space, validate_sample
from intern_data.shards.batched import CropDraw
from intern_data.shards.codec import (
    PROBLEM,
    SampleDecodeError,
    decode_sample,
    escape_key,
    iter_tar_samples,
    member_problem,
    members_crc,
)
from intern_data.shards.collate import PAD_KEY, collate_samples
from intern_data.shards.index import ShardInfo, ShardIntegrityError, hash_strings, load_index, split_shards
from intern_data.shards.keylist import load_key_list
from intern_data.shards.position import ReaderPosition, WorkerCursor

log = logging.getLogger(__name__)

Transform = Callable[[Sample], Sample]
Collate = Callable[[list[Sample]], dict[str, Any]]
CURSOR_KEY = "__cursor__"


class SkipRateError(RuntimeError):
    """Too many bad samples: the skipped fraction passed ``max_skip_fraction``."""


# --------------------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class ShardSource:
    """One dataset to read: a shard folder (or its ``index.json``) and a split, or explicit tar paths.

    Args:
        path: folder holding ``index.json``, the index itself, or tar path(s) (brace patterns allowed;
            their samples are then counted from the tar headers).
        split: split to read from the index.
        weight: relative sampling weight when several sources are mixed (resampled mode).
    """

    path: str | os.PathLike[str] | tuple[str, ...]
    split: str = "train"
    weight: float = 1.0

    def resolve(self) -> tuple[list[ShardInfo], str]:
        """The shards with their sample counts, and a fingerprint of the content."""
        if (
            isinstance(self.path, str | os.PathLike)
            and not str(self.path).endswith(".tar")
            and "{" not in str(self.path)
        ):
            index = load_index(self.path)
            shards = split_shards(self.path, self.split)
            content = index["splits"][self.split]["content_hash"]
            return shards, hash_strings([index["dataset"], self.split, content])
        paths = [self.path] if isinstance(self.path, str | os.PathLike) else list(self.path)
        urls = [u for p in paths for u in expand_urls(str(p))]  # braces, '::' lists
        shards = [ShardInfo(u, count_tar_samples(u), Path(u).name.rsplit("-", 2)[0]) for u in urls]
        return shards, hash_strings([f"{s.url}:{s.count}:{os.path.getsize(s.url)}" for s in shards])


def count_tar_samples(path: str) -> int:
    """Samples (distinct prefixes of plain member names) in a local tar, from its headers only."""
    keys = 0
    last = None
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                prefix = member.name.partition(".")[0]
                if member.isreg() and member_problem(member.name) is None and prefix != last:
                    keys += 1
                    last = prefix
    except (tarfile.TarError, EOFError, OSError) as err:
        log.warning("shard %s is unreadable after %d samples (%s); counting those", path, keys, err)
    return keys


def _as_sources(sources: Any, split: str) -> list[ShardSource]:
    if isinstance(sources, ShardSource):
        return [sources]
    if isinstance(sources, str | os.PathLike):
        return [ShardSource(sources, split)]
    items = list(sources)
    if items and all(isinstance(s, str | os.PathLike) and str(s).endswith(".tar") for s in items):
        return [ShardSource(tuple(str(s) for s in items), split)]
    return [s if isinstance(s, ShardSource) else ShardSource(s, split) for s in items]


# ------------------------------------------------------------------------------------ epoch plan


def _seed(*parts: Any) -> int:
    """A 63-bit seed from any parts, the same in every process (unlike ``hash``)."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little") >> 1


def _rng(*parts: Any) -> random.Random:
    return random.Random(_seed(*parts))


def batch_sizes(samples: int, batches: int, batch_size: int) -> list[int]:
    """Sizes of ``batches`` batches holding ``samples`` samples: full ones first, the rest split evenly.

    With fewer samples than batches every batch holds one sample and the missing ones are padding.
    """
    if samples <= batches:
        return [1] * batches
    for full in range(min(samples // batch_size, batches), -1, -1):
        rest, parts = samples - full * batch_size, batches - full
        if (parts == 0 and rest == 0) or (parts > 0 and parts <= rest <= parts * batch_size):
            sizes = [batch_size] * full
            if parts:
                sizes += [rest // parts + (1 if i < rest % parts else 0) for i in range(parts)]
            return sizes
    raise ValueError(f"cannot put {samples} samples into {batches} batches of at most {batch_size}")


@dataclass(frozen=True)
class SlotPlan:
    """What one slot (rank x worker) reads in one epoch: shard ranges and batch sizes."""

    segments: tuple[tuple[int, int, int], ...]  # (shard index, first sample, end sample)
    sizes: tuple[int, ...]

    @property
    def planned(self) -> int:
        return sum(stop - start for _, start, stop in self.segments)


def slot_batches(
    total: int,
    *,
    num_slots: int,
    batch_size: int,
    drop_last: bool = False,
    samples_per_epoch: int | None = None,
    resampled: bool = False,
) -> int:
    """Batches every slot yields per epoch (the same for all slots)."""
    if total == 0:
        raise ValueError("the shards hold no samples")
    if resampled:
        return math.ceil((samples_per_epoch or total) / (num_slots * batch_size))
    if drop_last:
        full = (total // num_slots) // batch_size
        if full == 0:
            raise ValueError(
                f"drop_last: {total} samples over {num_slots} ranks x workers "
                f"give no full batch of {batch_size}"
            )
        return full
    return math.ceil(math.ceil(total / num_slots) / batch_size)


def plan_epoch(
    counts: Sequence[int],
    *,
    num_slots: int,
    batch_size: int,
    epoch: int,
    seed: int,
    shuffle: bool,
    drop_last: bool = False,
    samples_per_epoch: int | None = None,
    resampled: bool = False,
) -> list[SlotPlan]:
    """Cut one epoch into ``num_slots`` slot plans with equal batch counts (see the module docstring)."""
    total = sum(counts)
    per_slot = slot_batches(
        total,
        num_slots=num_slots,
        batch_size=batch_size,
        drop_last=drop_last,
        samples_per_epoch=samples_per_epoch,
        resampled=resampled,
    )
    if resampled or drop_last:
        sizes = (batch_size,) * per_slot
    if resampled:
        return [SlotPlan((), sizes) for _ in range(num_slots)]
    order = list(range(len(counts)))
    if shuffle:
        _rng(seed, epoch, "shards").shuffle(order)
    offsets = list(itertools.accumulate((counts[i] for i in order), initial=0))
    plans = []
    for slot in range(num_slots):
        lo, hi = (slot * total) // num_slots, ((slot + 1) * total) // num_slots
        segments = []
        position = bisect.bisect_right(offsets, lo) - 1
        while position < len(order) and offsets[position] < hi:
            begin, end = offsets[position], offsets[position + 1]
            if end > lo:
                segments.append((order[position], max(lo, begin) - begin, min(hi, end) - begin))
            position += 1
        if not drop_last:
            sizes = tuple(batch_sizes(hi - lo, per_slot, batch_size))
        plans.append(SlotPlan(tuple(segments), sizes))
    return plans


# --------------------------------------------------------------------------------------- counters


class _Counters:
    """A worker's skip counters; ``active`` is off while a resumed worker fast-forwards its stream."""

    def __init__(self, cursor: WorkerCursor, max_fraction: float, min_samples: int) -> None:
        self.cursor = cursor
        self.max_fraction = max_fraction
        self.min_samples = min_samples
        self.active = True

    def good(self) -> None:
        self.cursor.seen += 1

    def bad(self, shard: str, key: str, reason: str, samples: int = 1) -> None:
        if not self.active:
            return
        self.cursor.seen += samples
        self.cursor.skipped += samples
        log.warning("skipped %d sample(s) in shard %s at key %r: %s", samples, shard, key, reason)
        seen, skipped = self.cursor.seen, self.cursor.skipped
        if seen >= self.min_samples and skipped > self.max_fraction * seen:
            raise SkipRateError(
                f"skipped {skipped} of {seen} samples ({skipped / seen:.1%}), more than "
                f"max_skip_fraction={self.max_fraction} (checked after min_samples_for_skip_check="
                f"{self.min_samples}); last: shard {shard} key {key!r}: {reason}"
            )


# ---------------------------------------------------------------------------------------- dataset


def resolve_node() -> tuple[int, int]:
    """(rank, world size): from torch.distributed when initialised, else ``RANK``/``WORLD_SIZE``."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


class ShardDataset(IterableDataset):
    """Batches from one or more shard sources, split by rank and DataLoader worker (module docstring).

    Iterate it through :class:`ShardLoader` (or :func:`make_pipeline`), which hands it the epoch and
    the resume position and keeps the position current; iterating it directly reads ``self.epoch``
    from the start.

    Args:
        sources: a shard folder / ``index.json`` / tar path(s), a :class:`ShardSource`, or a list of
            them (each folder a source; a list of ``.tar`` paths is one source).
        batch_size: samples per batch.
        split: split read from folder sources given as paths.
        shuffle_buffer: webdataset shuffle buffer (samples) after the shard order shuffle; 0 reads
            in order and does not shuffle shards either.
        resampled: draw shards with replacement (infinite stream cut into epochs).
        samples_per_epoch: epoch length in resampled mode (default: the sources' total).
        weights: per-source sampling weights (resampled mode only); default each source's ``weight``.
        seed: seed of everything random.
        transform: ``Sample -> Sample`` callable (e.g. :mod:`intern_data.shards.transforms`).
        collate_fn: list of samples -> batch (default :func:`collate_samples`).
        required_keys: sample keys the task needs; a sample without them counts as bad.
        drop_last: only full batches (then not every sample is seen each epoch).
        max_skip_fraction: skipped share of a worker's samples that stops the run.
        min_samples_for_skip_check: samples a worker reads before the share is checked.
        verify: check each shard's sha256 against the index before reading it (module docstring).
        max_pixels: images (and masks, depth maps) declaring more pixels are skipped as corrupt.
        defer_jpeg: leave the JPEGs this package encoded undecoded for a batched decoder on the training
            device (``decode_sample``'s ``defer_jpeg``); needs the :class:`~intern_data.shards.CropDraw`
            transform, whose draws take the size from the header.
        rank, world_size: this process's place in DDP; default from torch.distributed or the env,
            resolved when :class:`ShardLoader` starts an epoch.
    """

    def __init__(
        self,
        sources: Any,
        *,
        batch_size: int,
        split: str = "train",
        shuffle_buffer: int = 0,
        resampled: bool = False,
        samples_per_epoch: int | None = None,
        weights: Sequence[float] | None = None,
        seed: int = 0,
        transform: Transform | None = None,
        collate_fn: Collate | None = None,
        required_keys: Sequence[str] = (),
        drop_last: bool = False,
        max_skip_fraction: float = 0.01,
        min_samples_for_skip_check: int = 100,
        verify: bool = False,
        max_pixels: int = MAX_PIXELS,
        defer_jpeg: bool = False,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if defer_jpeg and not isinstance(transform, CropDraw):
            raise ValueError(f"defer_jpeg=True needs the CropDraw transform, got {transform!r}")
        self.sources = _as_sources(sources, split)
        if not self.sources:
            raise ValueError("no shard sources given")
        resolved = [source.resolve() for source in self.sources]
        self.shards: list[ShardInfo] = [s for shards, _ in resolved for s in shards]
        self.shard_source = [i for i, (shards, _) in enumerate(resolved) for _ in shards]
        self._num_samples = sum(s.count for s in self.shards)
        self.fingerprint = hash_strings([fp for _, fp in resolved])
        self.weights = list(weights) if weights is not None else [s.weight for s in self.sources]
        if (
            len(self.weights) != len(self.sources)
            or any(w < 0 for w in self.weights)
            or sum(self.weights) <= 0
        ):
            raise ValueError(
                f"need one non-negative weight per source ({len(self.sources)}), got {self.weights}"
            )
        if not resampled and len(set(self.weights)) > 1:
            raise ValueError(
                "source weights need resampled=True: a finite epoch reads every sample of every source once"
            )
        if rank is not None and world_size is not None and not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world size {world_size}")
        self.batch_size = batch_size
        self.shuffle_buffer = shuffle_buffer
        self.resampled = resampled
        self.samples_per_epoch = samples_per_epoch
        self.seed = seed
        self.transform = transform
        self.collate_fn = collate_fn or collate_samples
        self.required_keys = tuple(required_keys)
        self.drop_last = drop_last
        self.max_skip_fraction = max_skip_fraction
        self.min_samples_for_skip_check = min_samples_for_skip_check
        self.verify = verify
        self.max_pixels = max_pixels
        self.defer_jpeg = defer_jpeg
        self._verified: set[str] = set()
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self._start: dict[int, WorkerCursor] = {}
        self._emit_cursor = False

    # -- layout

    @property
    def num_samples(self) -> int:
        return self._num_samples

    def node(self) -> tuple[int, int]:
        if self.rank is not None and self.world_size is not None:
            return self.rank, self.world_size
        return resolve_node()

    def set_node(self, rank: int, world_size: int) -> None:
        """Fix rank and world size (the DataModule does this from the Trainer in ``setup``)."""
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world size {world_size}")
        self.rank, self.world_size = rank, world_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def plan(self, epoch: int, num_slots: int) -> list[SlotPlan]:
        return plan_epoch(
            [s.count for s in self.shards],
            num_slots=num_slots,
            batch_size=self.batch_size,
            epoch=epoch,
            seed=self.seed,
            shuffle=self.shuffle_buffer > 0,
            drop_last=self.drop_last,
            samples_per_epoch=self.samples_per_epoch,
            resampled=self.resampled,
        )

    def batches_per_worker(self, num_workers: int) -> int:
        """Batches each worker yields per epoch (the same for every worker of every rank)."""
        _, world_size = self.node()
        return slot_batches(
            self.num_samples,
            num_slots=world_size * max(num_workers, 1),
            batch_size=self.batch_size,
            drop_last=self.drop_last,
            samples_per_epoch=self.samples_per_epoch,
            resampled=self.resampled,
        )

    def layout(self, num_workers: int) -> dict[str, Any]:
        rank, world_size = self.node()
        return {
            "rank": rank,
            "world_size": world_size,
            "num_workers": max(num_workers, 1),
            "batch_size": self.batch_size,
            "resampled": self.resampled,
            "drop_last": self.drop_last,
            "shuffle_buffer": self.shuffle_buffer,
            "seed": self.seed,
            "fingerprint": self.fingerprint,
        }

    # -- iteration

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        rank, world_size = self.node()
        cursor = self._start.get(worker, WorkerCursor())
        slot = rank * num_workers + worker
        return self.iter_slot(slot, world_size * num_workers, self.epoch, cursor, worker, self._emit_cursor)

    def iter_slot(
        self,
        slot: int,
        num_slots: int,
        epoch: int,
        cursor: WorkerCursor | None = None,
        worker: int = 0,
        emit_cursor: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """The batches of one slot (``rank * num_workers + worker`` of ``num_slots``) in ``epoch``,
        continuing after ``cursor``; with ``emit_cursor`` each batch carries the worker's cursor under
        ``"__cursor__"``. Tests call this to simulate ranks and workers in one process."""
        plan = self.plan(epoch, num_slots)[slot]
        cursor = WorkerCursor(**vars(cursor)) if cursor is not None else WorkerCursor()
        counters = _Counters(cursor, self.max_skip_fraction, self.min_samples_for_skip_check)
        stream = self._slot_stream(plan, slot, epoch, counters)
        counters.active = False
        for _ in range(cursor.raw):  # fast-forward a resumed worker without decoding
            next(stream)
        counters.active = True
        in_worker = get_worker_info() is not None
        consecutive_bad = 0
        while cursor.batches < len(plan.sizes):
            samples: list[Sample] = []
            while len(samples) < plan.sizes[cursor.batches]:
                raw = next(stream)
                cursor.raw += 1
                padding = raw.get("__pad__", False)
                sample = self._decode(raw, counters, padding)
                if sample is None:
                    consecutive_bad += 1
                    if consecutive_bad > self.num_samples + 1:
                        raise SkipRateError("no readable sample left to fill the batches with")
                    continue
                consecutive_bad = 0
                sample = self._transform(sample, _seed(self.seed, epoch, slot, cursor.emitted), in_worker)
                sample[PAD_KEY] = padding
                cursor.emitted += 1
                cursor.padded += padding
                samples.append(sample)
            cursor.batches += 1
            batch = self.collate_fn(samples)
            if emit_cursor:
                batch[CURSOR_KEY] = {"worker": worker, **vars(cursor)}
            yield batch

    def scan(
        self, *, images: bool = True, keys: Collection[str] | None = None, cursor: WorkerCursor | None = None
    ) -> Iterator[Sample]:
        """Every sample once, in shard order, with the checks and skip counters of training but no
        shuffle, transform, batching or padding: for one-pass tools (split drawing, tokenizer, proposals).

        Args:
            images: decode images, masks and depth; False gives each sample's JSON fields only.
            keys: only the samples with these keys (the others are neither checked nor decoded).
            cursor: receives the counts (``seen``, ``skipped``).

        Raises:
            SkipRateError: more than ``max_skip_fraction`` of the samples are bad.
            ShardIntegrityError: (``verify``) a shard or key list differs from the index.
        """
        cursor = cursor if cursor is not None else WorkerCursor()
        counters = _Counters(cursor, self.max_skip_fraction, self.min_samples_for_skip_check)
        prefixes = {escape_key(key) for key in keys} if keys is not None else None
        for index, shard in enumerate(self.shards):
            for raw in self._read(index, 0, shard.count, counters):
                if prefixes is None or raw["__key__"] in prefixes:
                    sample = self._decode(raw, counters, False, images)
                    if sample is not None:
                        yield sample

    def _decode(
        self, raw: dict[str, Any], counters: _Counters, padding: bool, images: bool = True
    ) -> Sample | None:
        """The checked, decoded sample of ``raw`` (``images=False``: its JSON fields only), or None
        when it is bad (counted unless it is padding)."""
        shard = self.shards[raw["__shard__"]]
        try:
            if "__crc__" in raw and members_crc(raw) != raw["__crc__"]:
                raise SampleDecodeError(
                    f"sample {raw['__key__']!r}: members differ from those written (crc32 in the key list)"
                )
            verified = "__crc__" in raw  # and it matched: the bytes are those written
            sample = decode_sample(
                raw, max_pixels=self.max_pixels, images=images, verified=verified, defer_jpeg=self.defer_jpeg
            )
            if images:
                validate_sample(sample)
            if shard.label_space is not None:
                check_label_space(sample, shard.label_space)
            missing = [k for k in self.required_keys if k not in sample]
            if missing:
                raise SampleDecodeError(f"sample {sample['__key__']!r}: key(s) {missing} missing")
        except (SampleDecodeError, SampleError) as err:
            if not padding:
                counters.bad(shard.name, raw["__key__"], str(err))
            return None
        if not padding:
            counters.good()
        return sample

    def _transform(self, sample: Sample, seed: int, in_worker: bool) -> Sample:
        if self.transform is None:
            return sample
        # Only the CPU generator: torch.manual_seed would also queue lazy CUDA seeding, which records
        # a stack trace per call (slower than decoding a small JPEG).
        generator = torch.default_generator
        if in_worker:  # a worker's global RNG is its own
            generator.manual_seed(seed)
            return self.transform(sample)
        state = generator.get_state()
        try:
            generator.manual_seed(seed)
            return self.transform(sample)
        finally:
            generator.set_state(state)

    # -- raw sample streams

    def _read(self, shard_index: int, start: int, stop: int, counters: _Counters) -> Iterator[dict[str, Any]]:
        """Raw samples ``start:stop`` of one shard, by position in its key list (else in the tar).

        Foreign members and unlisted samples are counted (by the one range their place falls in) and
        skipped; listed samples the shard fails to deliver count as bad.
        """
        shard = self.shards[shard_index]
        if self.verify:
            self._verify(shard)
        listed = load_key_list(shard.key_list, shard.key_list_sha256) if shard.key_list else None
        got, key, position = 0, "<start>", 0  # position: the index of the next listed sample
        try:
            for raw in iter_tar_samples(shard.url):
                problem, at = raw.get(PROBLEM), position
                if problem is None and listed is not None:
                    at, raw["__crc__"] = listed.get(raw["__key__"], (-1, 0))
                    if at < position:
                        problem = "not in the key list" if at < 0 else "repeated, or out of key list order"
                if problem is not None:
                    if start <= position < stop or position == stop == shard.count:
                        counters.bad(shard.name, raw["__key__"], problem)
                    continue
                if at >= stop:
                    return
                key, position = raw["__key__"], at + 1
                if at >= start:
                    got += 1
                    yield {**raw, "__shard__": shard_index}
        except Exception as err:  # noqa: BLE001 - a truncated or unreadable tar ends the shard
            reason = f"tar unreadable after key {key!r} ({type(err).__name__}: {err})"
        else:
            reason = f"tar ends after key {key!r}"
        if got < stop - start:
            counters.bad(
                shard.name,
                key,
                f"{reason}; {stop - start - got} of samples {start}:{stop} missing",
                stop - start - got,
            )

    def _verify(self, shard: ShardInfo) -> None:
        """Check ``shard``'s sha256 against the index once per process (a missing file is left to
        :meth:`_read`, which counts its samples as missing)."""
        if shard.url in self._verified or not os.path.exists(shard.url):
            return
        if not shard.sha256:
            raise ShardIntegrityError(f"shard {shard.url} has no sha256 in an index to verify it by")
        digest = file_sha256(shard.url)
        if digest != shard.sha256:
            raise ShardIntegrityError(
                f"shard {shard.url} does not match the sha256 in its index.json ({digest[:12]}... against "
                f"{shard.sha256[:12]}...): it changed after it was written; restore it or rewrite the split"
            )
        self._verified.add(shard.url)

    def _slot_stream(
        self, plan: SlotPlan, slot: int, epoch: int, counters: _Counters
    ) -> Iterator[dict[str, Any]]:
        if self.resampled:
            stream = self._resampled(slot, epoch, counters)
        else:
            stream = itertools.chain.from_iterable(self._read(i, a, b, counters) for i, a, b in plan.segments)
        if self.shuffle_buffer > 0:
            rng = _rng(self.seed, epoch, slot, "buffer")
            stream = wds.shuffle(self.shuffle_buffer, self.shuffle_buffer, rng=rng)(stream)
        return itertools.chain(stream, self._padding(plan))

    def _resampled(self, slot: int, epoch: int, counters: _Counters) -> Iterator[dict[str, Any]]:
        def source_stream(source: int) -> Iterator[dict[str, Any]]:
            shards = [i for i, s in enumerate(self.shard_source) if s == source and self.shards[i].count]
            rng = _rng(self.seed, epoch, slot, "resample", source)
            empty = 0
            while True:
                index = rng.choice(shards)
                delivered = False
                for raw in self._read(index, 0, self.shards[index].count, counters):
                    delivered = True
                    yield raw
                empty = 0 if delivered else empty + 1
                if empty > 4 * len(shards):
                    raise SkipRateError(f"no readable shard in source {self.sources[source].path}")

        streams = [source_stream(i) for i in range(len(self.sources))]
        if len(streams) == 1:
            yield from streams[0]
            return
        # webdataset's RandomMix draws from the global `random` module; a seeded draw keeps runs reproducible.
        mix = _rng(self.seed, epoch, slot, "mix")
        while True:
            yield next(streams[mix.choices(range(len(streams)), weights=self.weights)[0]])

    def _padding(self, plan: SlotPlan) -> Iterator[dict[str, Any]]:
        """Repeats of the slot's own samples, then of any shard's, to fill batches after bad data."""
        quiet = _Counters(WorkerCursor(), 1.0, 0)
        quiet.active = False
        everything = tuple((i, 0, s.count) for i, s in enumerate(self.shards))
        while True:
            for index, start, stop in plan.segments + everything:
                for raw in self._read(index, start, stop, quiet):
                    yield {**raw, "__pad__": True}


# ----------------------------------------------------------------------------------------- loader


class ShardLoader(DataLoader):
    """A DataLoader over a :class:`ShardDataset` that knows its length and its position.

    Each ``iter()`` starts (or continues) the epoch of ``position``: the dataset gets the epoch, the
    rank and each worker's cursor before the workers start. Each batch's cursor is recorded in
    ``position`` as the batch is handed out, or, with ``keep_cursor=True``, left in the batch for the
    consumer to pass to :meth:`record` when it really uses the batch. ``len()`` is the batches per
    epoch on this rank, equal on every rank. Workers cannot be persistent: they must receive the
    position at every epoch. Starting an iterator draws the workers' base seed from the loader's own
    generator (seeded by the dataset's seed), never from torch's global one: the reader seeds every
    sample itself, and an extra ``iter()`` (Lightning makes one after resuming from an epoch-end
    checkpoint) then leaves the training's random numbers as an unbroken run has them.

    Args:
        dataset: the shard dataset (it batches; the DataLoader does not).
        num_workers, pin_memory, prefetch_factor, multiprocessing_context: as for ``DataLoader``.
        track_position: keep and advance ``position`` (training); otherwise every ``iter()`` reads
            epoch 0 from the start (evaluation).
        keep_cursor: leave ``"__cursor__"`` in the batches for :meth:`record`.
    """

    def __init__(
        self,
        dataset: ShardDataset,
        *,
        num_workers: int = 0,
        pin_memory: bool = False,
        prefetch_factor: int | None = None,
        multiprocessing_context: Any = None,
        track_position: bool = True,
        keep_cursor: bool = False,
        persistent_workers: bool = False,
    ) -> None:
        if persistent_workers:
            raise ValueError(
                "ShardLoader cannot use persistent workers: each epoch hands them the reader position"
            )
        super().__init__(
            dataset,
            batch_size=None,
            num_workers=num_workers,
            pin_memory=pin_memory,
            prefetch_factor=prefetch_factor if num_workers > 0 else None,
            multiprocessing_context=multiprocessing_context,
            generator=torch.Generator().manual_seed(dataset.seed),
        )
        self.track_position = track_position
        self.keep_cursor = keep_cursor and track_position
        self.position = ReaderPosition()

    def __len__(self) -> int:
        return max(self.num_workers, 1) * self.dataset.batches_per_worker(self.num_workers)

    def state_dict(self) -> dict[str, Any]:
        """The position as plain data (Lightning saves it with the loop state of a checkpoint).

        Under Lightning the position must advance when a batch reaches the training step, not when
        Lightning's fetcher reads it (one batch ahead): use ``keep_cursor=True`` and call
        :meth:`record` in ``on_before_batch_transfer``, as the DataModules of
        :mod:`intern_data.datamodules` do.
        """
        return self.position.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a saved position at the next ``iter()``."""
        self.position = ReaderPosition.from_state_dict(state)

    def record(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Take the cursor out of ``batch`` and advance ``position`` past it; return the batch."""
        cursor = batch.pop(CURSOR_KEY, None)
        if cursor is not None and self.track_position:
            cursor = dict(cursor)
            self.position.advance(cursor.pop("worker"), WorkerCursor.from_dict(cursor), len(self))
        return batch

    def _start_cursors(self, position: ReaderPosition, layout: dict[str, Any]) -> dict[int, WorkerCursor]:
        """Per-worker start cursors for ``position``: its own when saved by this rank with this layout,
        else (another rank's checkpoint) derived from the batch count, assuming no bad data."""
        saved = position.layout
        if position.batches == 0 or not saved:
            return {}
        same = {k: v for k, v in layout.items() if k != "rank"} == {
            k: v for k, v in saved.items() if k != "rank"
        }
        if not same:
            log.warning(
                "reader position was saved with %s, now %s: restarting epoch %d",
                saved,
                layout,
                position.epoch,
            )
            position.batches, position.workers = 0, {}
            return {}
        if saved.get("rank") == layout["rank"]:
            return dict(position.workers)
        workers = layout["num_workers"]
        rank, world_size = layout["rank"], layout["world_size"]
        plans = self.dataset.plan(position.epoch, world_size * workers)
        cursors = {}
        for worker in range(workers):
            done = position.batches // workers + (1 if worker < position.batches % workers else 0)
            emitted = sum(plans[rank * workers + worker].sizes[:done])
            cursors[worker] = WorkerCursor(raw=emitted, emitted=emitted, batches=done, seen=emitted)
        position.workers = cursors
        return dict(cursors)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        dataset: ShardDataset = self.dataset
        rank, world_size = dataset.node()
        dataset.set_node(rank, world_size)  # workers must not look it up again
        layout = dataset.layout(self.num_workers)
        position = self.position if self.track_position else ReaderPosition()
        start = self._start_cursors(position, layout)
        position.layout = layout
        dataset.set_epoch(position.epoch)
        dataset._start, dataset._emit_cursor = start, self.track_position
        try:
            iterator = super().__iter__()
        finally:
            dataset._start, dataset._emit_cursor = {}, False
        if not self.track_position:
            return iterator
        iterator = _round_robin(iterator, position.batches % layout["num_workers"], layout["num_workers"])
        return iterator if self.keep_cursor else map(self.record, iterator)


def _round_robin(
    iterator: Iterator[dict[str, Any]], first: int, num_workers: int
) -> Iterator[dict[str, Any]]:
    """Batches in the worker order of an uninterrupted run, starting with worker ``first``.

    A DataLoader always starts with worker 0; a run resumed after ``c`` batches must start with
    worker ``c % num_workers``. Holds back at most ``num_workers - 1`` batches.
    """
    if first == 0:
        yield from iterator
        return
    queues: dict[int, deque[dict[str, Any]]] = {w: deque() for w in range(num_workers)}
    expected = first
    for batch in iterator:
        queues[batch[CURSOR_KEY]["worker"]].append(batch)
        while queues[expected]:
            yield queues[expected].popleft()
            expected = (expected + 1) % num_workers
    while any(queues.values()):
        if queues[expected]:
            yield queues[expected].popleft()
        expected = (expected + 1) % num_workers


def make_pipeline(
    sources: Any,
    *,
    batch_size: int,
    num_workers: int = 0,
    pin_memory: bool = False,
    track_position: bool = True,
    **dataset_kwargs: Any,
) -> ShardLoader:
    """A :class:`ShardLoader` over a new :class:`ShardDataset` (``dataset_kwargs`` go to the dataset).

    Example::

        loader = make_pipeline("shards/coco", split="train", batch_size=64, num_workers=4,
                               shuffle_buffer=2000, transform=detection_transform(512),
                               collate_fn=detection_collate, required_keys=("boxes",))
    """
    dataset = ShardDataset(sources, batch_size=batch_size, **dataset_kwargs)
    return ShardLoader(dataset, num_workers=num_workers, pin_memory=pin_memory, track_position=track_position)
