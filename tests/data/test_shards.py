"""intern_data.shards: codec round trip, resumable writer and index, reader splitting, bad data, resume."""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import logging
import tarfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist

from intern_data.label_space import LabelSpace
from intern_data.schema import SampleError
from intern_data.shards import (
    ShardDataset,
    ShardLoader,
    ShardSource,
    ShardWriteError,
    SkipRateError,
    classification_transform,
    decode_sample,
    drop_padding,
    encode_sample,
    load_index,
    make_pipeline,
    write_shards,
)

from ..conftest import run_ranks

SPACE = LabelSpace("toy", ("a", "b", "c", "d", "e"))


def make_samples(
    n: int, *, seed: int = 0, source: str = "toy", prefix: str = "s"
) -> Iterator[dict[str, Any]]:
    """Small deterministic samples with every kind of supervision."""
    for i in range(n):
        g = torch.Generator().manual_seed(seed * 100_003 + i)
        h, w = 20 + i % 7, 24 + i % 5
        image = torch.randint(0, 256, (1 if i % 11 == 3 else 3, h, w), dtype=torch.uint8, generator=g)
        x0, y0 = float(i % 5), float(i % 3) + 0.25
        yield {
            "__key__": f"{prefix}{i:05d}",
            "source": source,
            "image": image,
            "text": [f"a picture {i}", f"sample number {i}"],
            "label": i % 5,
            "label_space": "toy",
            "boxes": torch.tensor([[x0, y0, x0 + 9.5, y0 + 7.0], [1.0, 1.0, 4.0, 5.0]]),
            "box_labels": torch.tensor([i % 5, (i + 1) % 5]),
            "mask": torch.where(
                torch.rand(h, w, generator=g) < 0.1, 255, torch.randint(0, 5, (h, w), generator=g)
            ),
            "depth": torch.rand(h, w, generator=g) * 10,
        }


def write(folder: Path, n: int, split: str = "train", **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("max_shard_count", 10)
    return write_shards(make_samples(n, **kwargs.pop("gen", {})), folder, "toy", split, SPACE, **kwargs)


def all_keys(loader_or_batches: Any) -> list[str]:
    return [key for batch in loader_or_batches for key in batch["__key__"]]


# ------------------------------------------------------------------------------------------ codec


def test_codec_round_trip_is_exact_except_jpeg_pixels() -> None:
    for sample in make_samples(12):
        sample["__key__"] = "img.2024%v1." + sample["__key__"]
        sample["proposals"] = torch.rand(3, 4) * 10
        sample["mask"][0, 0] = 1000  # needs the 16-bit PNG
        for image_format in ("png", "jpg"):
            members = encode_sample(sample, image_format=image_format)
            assert "." not in members["__key__"]
            assert members == encode_sample(sample, image_format=image_format)  # deterministic bytes
            back = decode_sample(members)
            assert back.keys() == sample.keys()
            for key, value in sample.items():
                if key == "image" and image_format == "jpg":
                    assert back[key].shape == value.shape and back[key].dtype == torch.uint8
                    assert (back[key].float() - value.float()).abs().mean() < 60  # noise survives JPEG badly
                elif isinstance(value, torch.Tensor):
                    assert back[key].dtype == value.dtype and torch.equal(back[key], value), key
                else:
                    assert back[key] == value, key


def test_codec_png16_depth_is_millimetre_exact_and_8bit_masks_stay_small() -> None:
    sample = next(make_samples(1))
    members = encode_sample(sample, depth_format="png16")
    back = decode_sample(members)
    assert (back["depth"] - sample["depth"]).abs().max() <= 0.0005 + 1e-6
    eight_bit = encode_sample(sample)["mask.png"]
    sample["mask"][0, 0] = 256
    assert len(encode_sample(sample)["mask.png"]) > len(eight_bit)
    assert torch.equal(decode_sample(encode_sample(sample))["mask"], sample["mask"])


# ----------------------------------------------------------------------------------------- writer


def test_index_records_counts_classes_shards_and_hashes(tmp_path: Path) -> None:
    write(tmp_path, 25)
    index = write(tmp_path, 7, split="val", gen={"seed": 1, "prefix": "v"})
    assert index["dataset"] == "toy" and index["label_space"] == SPACE.to_json()
    train = index["splits"]["train"]
    assert train["count"] == 25 and index["splits"]["val"]["count"] == 7
    assert [s["count"] for s in train["shards"]] == [10, 10, 5]
    assert [s["name"] for s in train["shards"]] == [f"toy-train-{i:06d}.tar" for i in range(3)]
    samples = list(make_samples(25))
    expected_labels = Counter(str(s["label"]) for s in samples)
    expected_boxes = Counter(str(c) for s in samples for c in s["box_labels"].tolist())
    expected_mask = Counter(str(c) for s in samples for c in torch.unique(s["mask"]).tolist() if c != 255)
    assert train["class_counts"] == {"label": expected_labels, "boxes": expected_boxes, "mask": expected_mask}
    assert train["fields"] == {
        "image": 25,
        "text": 25,
        "label": 25,
        "boxes": 25,
        "mask": 25,
        "depth": 25,
        "proposals": 0,
    }
    assert train["sources"] == {"toy": 25}
    for shard in train["shards"]:
        data = (tmp_path / shard["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == shard["sha256"] and len(data) == shard["bytes"]
    assert (
        train["content_hash"]
        == hashlib.sha256("\n".join(s["sha256"] for s in train["shards"]).encode()).hexdigest()
    )
    assert load_index(tmp_path) == json.loads((tmp_path / "index.json").read_text()) == index
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.writing.json"))


def test_shards_respect_max_bytes(tmp_path: Path) -> None:
    index = write(tmp_path, 30, max_shard_count=1000, max_shard_bytes=40_000)
    shards = index["splits"]["train"]["shards"]
    assert len(shards) > 2 and sum(s["count"] for s in shards) == 30
    assert all(s["bytes"] <= 40_000 for s in shards)


def test_writer_rejects_bad_samples(tmp_path: Path) -> None:
    sample = next(make_samples(1))
    with pytest.raises(SampleError, match="box_labels"):
        write_shards([{**sample, "box_labels": sample["box_labels"].float()}], tmp_path, "toy", "train")
    with pytest.raises(ValueError, match="outside label space"):
        write_shards([{**sample, "label": 7}], tmp_path / "b", "toy", "train", SPACE)


class Interrupt(Exception):
    pass


def interrupted(n: int, stop: int) -> Iterator[dict[str, Any]]:
    for i, sample in enumerate(make_samples(n)):
        if i == stop:
            raise Interrupt
        yield sample


def test_interrupted_write_resumes_to_byte_identical_shards(tmp_path: Path) -> None:
    reference = write(tmp_path / "ref", 45)
    out = tmp_path / "out"
    with pytest.raises(Interrupt):
        write_shards(interrupted(45, stop=33), out, "toy", "train", SPACE, max_shard_count=10)
    # Only complete shards carry a shard name; no index yet; the partial shard is gone.
    assert sorted(p.name for p in out.glob("*.tar")) == [f"toy-train-{i:06d}.tar" for i in range(3)]
    assert not (out / "index.json").exists() and not list(out.glob(".*.tmp"))
    (out / ".toy-train-000003.tar.tmp").write_bytes(b"left by a killed writer")
    calls = Counter()

    def counted() -> Iterator[dict[str, Any]]:
        for sample in make_samples(45):
            calls["samples"] += 1
            yield sample

    index = write_shards(counted(), out, "toy", "train", SPACE, max_shard_count=10)
    assert index == reference and calls["samples"] == 45
    for shard in reference["splits"]["train"]["shards"]:
        assert (out / shard["name"]).read_bytes() == (tmp_path / "ref" / shard["name"]).read_bytes()
    assert not list(out.glob(".*.tmp"))
    # A finished split rerun is only checked; a longer input is refused, every time.
    assert write_shards(make_samples(45), out, "toy", "train", SPACE, max_shard_count=10) == reference
    for _ in range(2):
        with pytest.raises(ShardWriteError, match="complete but the input goes on"):
            write_shards(make_samples(46), out, "toy", "train", SPACE, max_shard_count=10)


def test_resume_refuses_changed_input_or_settings(tmp_path: Path) -> None:
    with pytest.raises(Interrupt):
        write_shards(interrupted(30, stop=25), tmp_path, "toy", "train", SPACE, max_shard_count=10)
    with pytest.raises(ShardWriteError, match="not deterministic"):
        write_shards(
            make_samples(30, seed=0, prefix="x"), tmp_path, "toy", "train", SPACE, max_shard_count=10
        )
    with pytest.raises(ShardWriteError, match="overwrite=True"):
        write_shards(make_samples(30), tmp_path, "toy", "train", SPACE, max_shard_count=8)
    index = write_shards(make_samples(30), tmp_path, "toy", "train", SPACE, max_shard_count=8, overwrite=True)
    assert [s["count"] for s in index["splits"]["train"]["shards"]] == [8, 8, 8, 6]


# ----------------------------------------------------------------------------------------- reader


def test_reads_back_every_sample_exactly(tmp_path: Path) -> None:
    write(tmp_path, 23, image_format="png")
    dataset = ShardDataset(tmp_path, batch_size=4, rank=0, world_size=1, collate_fn=list)
    got = {s["__key__"]: s for batch in dataset for s in batch}
    for sample in make_samples(23):
        back = got[sample["__key__"]]
        assert all(
            torch.equal(back[k], v) if isinstance(v, torch.Tensor) else back[k] == v
            for k, v in sample.items()
        )


@pytest.mark.parametrize(
    ("n", "per_shard", "world", "workers", "batch"),
    [
        (23, 10, 3, 2, 4),  # 3 shards < 6 slots
        (9, 100, 4, 2, 2),  # one shard for 8 slots
        (57, 7, 2, 3, 5),
        (40, 10, 2, 2, 10),  # even split
    ],
)
def test_ranks_and_workers_see_each_sample_once_with_equal_batch_counts(
    tmp_path: Path, n: int, per_shard: int, world: int, workers: int, batch: int
) -> None:
    write(tmp_path, n, max_shard_count=per_shard)
    expected = sorted(s["__key__"] for s in make_samples(n))
    for epoch in (0, 1):
        keys, batches_per_rank = [], []
        for rank in range(world):
            dataset = ShardDataset(
                tmp_path, batch_size=batch, shuffle_buffer=8, seed=3, rank=rank, world_size=world
            )
            rank_batches = [
                b
                for w in range(workers)
                for b in dataset.iter_slot(rank * workers + w, world * workers, epoch)
            ]
            batches_per_rank.append(len(rank_batches))
            keys += all_keys(rank_batches)
            assert all(1 <= len(b["__key__"]) <= batch for b in rank_batches)
        assert sorted(keys) == expected
        assert len(set(batches_per_rank)) == 1


def test_dataloader_workers_split_a_single_shard(tmp_path: Path) -> None:
    write(tmp_path, 13, max_shard_count=100)
    keys, lengths = [], []
    for rank in range(2):
        loader = make_pipeline(
            tmp_path, batch_size=3, num_workers=2, rank=rank, world_size=2, shuffle_buffer=4
        )
        batches = list(loader)
        assert len(batches) == len(loader)
        lengths.append(len(batches))
        keys += all_keys(batches)
    assert sorted(keys) == sorted(s["__key__"] for s in make_samples(13))
    assert lengths[0] == lengths[1]


def _ddp_rank(rank: int, world_size: int, folder: str, init_file: str, out: str) -> None:
    """One gloo rank: read an epoch through 2 workers, all-reduce once per batch (a rank with fewer
    batches would leave the others waiting until the timeout), gather the keys on rank 0."""
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"file://{init_file}",
        rank=rank,
        world_size=world_size,
        timeout=datetime.timedelta(seconds=60),
    )
    try:
        loader = make_pipeline(
            folder, batch_size=3, num_workers=2, shuffle_buffer=4
        )  # rank from torch.distributed
        keys = []
        for batch in loader:
            dist.all_reduce(torch.ones(1))
            keys += batch["__key__"]
        gathered: list[Any] = [None] * world_size
        dist.all_gather_object(gathered, (len(loader), keys, loader.dataset.node()))
        if rank == 0:
            Path(out).write_text(json.dumps(gathered))
    finally:
        dist.destroy_process_group()


@pytest.mark.dist
def test_ddp_with_fewer_shards_than_ranks_times_workers_does_not_hang(tmp_path: Path) -> None:
    write(tmp_path / "shards", 17, max_shard_count=100)  # one shard, 2 ranks x 2 workers
    out = tmp_path / "out.json"
    run_ranks(_ddp_rank, (2, str(tmp_path / "shards"), str(tmp_path / "pg"), str(out)))
    gathered = json.loads(out.read_text())
    assert [node for _, _, node in gathered] == [[0, 2], [1, 2]]
    assert gathered[0][0] == gathered[1][0] == 4  # ceil(ceil(17 / 4) / 3) = 2 batches x 2 workers
    keys = [k for _, rank_keys, _ in gathered for k in rank_keys]
    assert sorted(keys) == sorted(s["__key__"] for s in make_samples(17))


def test_tar_paths_without_an_index_are_counted_from_headers(tmp_path: Path) -> None:
    write(tmp_path, 23)
    tars = sorted(str(p) for p in tmp_path.glob("*.tar"))
    dataset = ShardDataset(tars, batch_size=5, rank=0, world_size=1)
    assert [s.count for s in dataset.shards] == [10, 10, 3]
    assert sorted(all_keys(dataset)) == sorted(s["__key__"] for s in make_samples(23))
    braced = ShardDataset(
        str(tmp_path / "toy-train-{000000..000002}.tar"), batch_size=5, rank=0, world_size=1
    )
    assert braced.num_samples == 23


def test_shuffle_is_seeded_and_changes_each_epoch(tmp_path: Path) -> None:
    write(tmp_path, 30)
    orders = []
    for seed in (0, 0, 1):
        loader = make_pipeline(tmp_path, batch_size=5, shuffle_buffer=10, seed=seed, rank=0, world_size=1)
        orders.append([all_keys(loader), all_keys(loader)])
    assert orders[0] == orders[1] and orders[0] != orders[2]
    assert orders[0][0] != orders[0][1] and sorted(orders[0][0]) == sorted(orders[0][1])
    assert make_pipeline(tmp_path, batch_size=5, rank=0, world_size=1).position.epoch == 0


def test_resampled_epochs_and_weighted_mixing(tmp_path: Path) -> None:
    write_shards(make_samples(40, source="big"), tmp_path / "big", "big", "train", max_shard_count=10)
    write_shards(
        make_samples(20, seed=1, source="small", prefix="t"),
        tmp_path / "small",
        "small",
        "train",
        max_shard_count=10,
    )
    sources = [ShardSource(tmp_path / "big", weight=3.0), ShardSource(tmp_path / "small", weight=1.0)]
    with pytest.raises(ValueError, match="resampled=True"):
        ShardDataset(sources, batch_size=4)
    counts = []
    for rank in range(2):
        dataset = ShardDataset(
            sources, batch_size=8, resampled=True, samples_per_epoch=400, seed=5, rank=rank, world_size=2
        )
        batches = list(dataset)
        counts.append(len(batches))
        assert all(len(b["__key__"]) == 8 for b in batches)
        mix = Counter(s for b in batches for s in b["source"])
        assert 0.6 < mix["big"] / sum(mix.values()) < 0.9
        again = list(
            ShardDataset(
                sources, batch_size=8, resampled=True, samples_per_epoch=400, seed=5, rank=rank, world_size=2
            )
        )
        assert all_keys(again) == all_keys(batches)
    assert counts == [25, 25]


# --------------------------------------------------------------------------------------- bad data


def rewrite_tar(path: Path, edit: Any) -> None:
    """Rewrite a tar member by member; ``edit(name, data)`` returns new bytes or None to drop it."""
    with tarfile.open(path) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for member, data in members:
            data = edit(member.name, data)
            if data is not None:
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))


@pytest.mark.parametrize("damage", ["corrupt_image", "missing_member", "truncated_tar", "missing_tar"])
def test_bad_data_is_skipped_counted_and_logged(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, 40)
    shard = tmp_path / "toy-train-000001.tar"
    if damage == "corrupt_image":
        rewrite_tar(
            shard, lambda name, data: b"\xff\xd8garbage" + data[40:] if name == "s00013.jpg" else data
        )
        expect, lost = "s00013", 1
    elif damage == "missing_member":
        rewrite_tar(shard, lambda name, data: None if name == "s00015.mask.png" else data)
        expect, lost = "s00015", 1
    elif damage == "truncated_tar":
        data = shard.read_bytes()
        shard.write_bytes(data[: len(data) // 2])
        expect, lost = "toy-train-000001.tar", None
    else:
        shard.unlink()
        expect, lost = "toy-train-000001.tar", 10
    caplog.set_level(logging.WARNING, logger="intern_data.shards")
    batches = []
    for worker in range(2):
        dataset = ShardDataset(
            tmp_path, batch_size=4, rank=0, world_size=1, max_skip_fraction=0.5, min_samples_for_skip_check=1
        )
        batches.append(list(dataset.iter_slot(worker, 2, epoch=0, emit_cursor=True)))
    assert len(batches[0]) == len(batches[1]) == 5  # padding keeps the batch counts equal
    cursors = [b[-1]["__cursor__"] for b in batches]
    skipped = sum(c["skipped"] for c in cursors)
    assert sum(c["seen"] for c in cursors) == 40
    assert skipped == lost if lost is not None else 1 <= skipped < 10
    assert sum(c["padded"] for c in cursors) == skipped
    good = [k for b in batches for batch in b for k in batch["__key__"]]
    assert len(set(good)) == 40 - skipped
    assert "shard toy-train-000001.tar" in caplog.text and expect in caplog.text


def test_skip_rate_above_threshold_stops_with_a_clear_error(tmp_path: Path) -> None:
    write(tmp_path, 30)
    rewrite_tar(
        tmp_path / "toy-train-000000.tar", lambda name, data: data[:-30] if name.endswith(".jpg") else data
    )
    loader = make_pipeline(
        tmp_path, batch_size=4, rank=0, world_size=1, max_skip_fraction=0.2, min_samples_for_skip_check=8
    )
    with pytest.raises(SkipRateError, match=r"max_skip_fraction=0\.2.*toy-train-000000\.tar"):
        list(loader)
    # The share is checked as the samples come: 8 bad of the first 8 already stops a 0.5 threshold,
    # so the tolerant run only checks after all 30 (10 bad).
    tolerant = make_pipeline(
        tmp_path, batch_size=4, rank=0, world_size=1, max_skip_fraction=0.5, min_samples_for_skip_check=30
    )
    assert len(list(tolerant)) == len(tolerant) and tolerant.position.epoch == 1
    assert tolerant.position.counts() == {"seen": 30, "skipped": 10, "padded": 10}


# ----------------------------------------------------------------------------------------- resume


@pytest.mark.parametrize("workers", [0, 2])
def test_restored_position_gives_the_next_batch_of_an_uninterrupted_run(tmp_path: Path, workers: int) -> None:
    write(tmp_path, 44)
    rewrite_tar(
        tmp_path / "toy-train-000002.tar", lambda name, data: b"bad" if name == "s00021.jpg" else data
    )

    def loader() -> ShardLoader:
        return make_pipeline(
            tmp_path,
            batch_size=3,
            num_workers=workers,
            rank=0,
            world_size=1,
            shuffle_buffer=6,
            seed=2,
            transform=classification_transform(16, train=True),
            max_skip_fraction=0.5,
            min_samples_for_skip_check=1,
        )

    reference = loader()
    first_epoch = list(reference)
    second_epoch = list(reference)
    for consumed, epoch_batches in ((5, first_epoch), (len(first_epoch) - 1, first_epoch)):
        interrupted_run = loader()
        iterator = iter(interrupted_run)
        for _ in range(consumed):
            next(iterator)
        state = json.loads(json.dumps(interrupted_run.state_dict()))  # checkpoints hold plain data
        del iterator
        resumed = loader()
        resumed.load_state_dict(state)
        rest = list(resumed)
        assert len(rest) == len(epoch_batches) - consumed
        for got, want in zip(rest, epoch_batches[consumed:], strict=True):
            assert got["__key__"] == want["__key__"] and torch.equal(got["image"], want["image"])
        assert resumed.position.epoch == 1
        assert all_keys(resumed) == all_keys(second_epoch)


def test_another_ranks_checkpoint_resumes_by_batch_count(tmp_path: Path) -> None:
    """Lightning saves rank 0's DataModule state; rank 1 continues from the batch count alone."""
    write(tmp_path, 50)

    def loader(rank: int) -> ShardLoader:
        return make_pipeline(tmp_path, batch_size=4, num_workers=0, rank=rank, world_size=2, shuffle_buffer=5)

    rank0, rank1 = loader(0), loader(1)
    uninterrupted = [b["__key__"] for b in loader(1)]
    iterator = iter(rank0)
    for _ in range(3):
        next(iterator)
    rank1.load_state_dict(rank0.state_dict())
    assert [b["__key__"] for b in rank1] == uninterrupted[3:]


def test_padding_is_flagged_and_dropped_for_exact_evaluation(tmp_path: Path) -> None:
    write(tmp_path, 3)
    real: list[str] = []
    for rank in range(2):  # 3 samples over 2 ranks, batch 1: rank 0 reads 1 sample in 2 batches
        dataset = ShardDataset(str(tmp_path), batch_size=1, rank=rank, world_size=2)
        batches = list(ShardLoader(dataset, track_position=False))
        assert len(batches) == 2
        real += [key for batch in batches for key in drop_padding(batch)["__key__"]]
        flags = [flag for batch in batches for flag in batch["__pad__"]]
        assert sum(flags) == (1 if rank == 0 else 0)
    assert sorted(real) == ["s00000", "s00001", "s00002"]


def test_drop_padding_keeps_tensors_and_lists_aligned() -> None:
    batch = {
        "image": torch.arange(3).reshape(3, 1),
        "__key__": ["a", "b", "a"],
        "targets": [{"n": 0}, {"n": 1}, {"n": 2}],
        "__pad__": [False, False, True],
        "scalar": torch.tensor(1.0),
    }
    kept = drop_padding(batch)
    assert kept["image"].tolist() == [[0], [1]] and kept["__key__"] == ["a", "b"]
    assert kept["targets"] == [{"n": 0}, {"n": 1}] and kept["__pad__"] == [False, False]
    assert torch.equal(kept["scalar"], batch["scalar"])
