"""Data configs to shards: the world cache, packaged readers, shard folders, DataModules; world concepts."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
import torch

from intern_data.labels import build_taxonomy
from intern_data.labels.wordnet import WordNet
from intern_data.labels.world import world_concept_id, world_concepts
from intern_data.shards import load_index
from intern_data.shards.codec import decode_sample, iter_tar_samples
from intern_data.shards.index import split_shards
from intern_data.sources import DataConfigError, build_datamodule, prepare_shards
from intern_data.world import FINES, SUPERS, cache_folder, generate, world_shards

SIZES = {"train": 24, "val": 8}


def world_config(tmp_path: Path, name: str = "world_seg", task: str = "segmentation") -> dict:
    return {
        "name": name, "source": "world", "task": task, "splits": ["train", "val"], "seed": 3,
        "img_size": 32, "sizes": SIZES, "cache_dir": str(tmp_path / "cache"),
    }  # fmt: skip


def test_world_cache_holds_the_generated_samples_exactly(tmp_path: Path) -> None:
    folder = prepare_shards(world_config(tmp_path))
    assert folder == cache_folder("world_seg", tmp_path / "cache", seed=3, img_size=32, sizes=SIZES)
    index = load_index(folder)
    assert {s: index["splits"][s]["count"] for s in ("train", "val")} == SIZES
    read = [
        decode_sample(raw) for shard in split_shards(folder, "val") for raw in iter_tar_samples(shard.url)
    ]
    made = list(generate("world_seg", "val", SIZES["val"], seed=3, img_size=32))
    assert [s["__key__"] for s in read] == [s["__key__"] for s in made]
    for got, want in zip(read, made, strict=True):
        assert torch.equal(got["image"], want["image"])  # PNG: lossless
        assert torch.equal(got["mask"], want["mask"])
        assert torch.allclose(got["depth"], want["depth"])


def test_world_cache_is_reused_and_keyed_by_settings(tmp_path: Path) -> None:
    folder = world_shards("world_cls_fine", tmp_path, ["train"], sizes={"train": 12}, img_size=32)
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert world_shards("world_cls_fine", tmp_path, ["train"], sizes={"train": 12}, img_size=32) == folder
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps
    other = world_shards("world_cls_fine", tmp_path, ["train"], sizes={"train": 12}, img_size=32, seed=1)
    assert other != folder
    with pytest.raises(ValueError, match="has no split 'dev'"):
        world_shards("world_cls_fine", tmp_path, ["dev"])


def test_packaged_reader_source_writes_shards_once(tmp_path: Path) -> None:
    data = {
        "name": "digits", "source": "reader", "task": "classification", "reader": "digits", "root": None,
        "options": {}, "splits": ["train", "test"], "shards_dir": str(tmp_path / "d"),
    }  # fmt: skip
    folder = prepare_shards(data)
    index = load_index(folder)
    assert index["splits"]["train"]["count"] + index["splits"]["test"]["count"] == 1797
    assert prepare_shards(data) == folder


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"source": "ftp"}, "data.source is 'ftp'; choose from world, reader, shards"),
        ({"source": "shards", "root": None}, "needs data.root"),
        ({"cache_dir": None}, "needs data.cache_dir"),
        ({"source": "shards", "root": "/nowhere"}, r"shard folder /nowhere \(data.root\) has no split"),
    ],
)
def test_bad_data_config_names_the_field(tmp_path: Path, change: dict, message: str) -> None:
    with pytest.raises(DataConfigError, match=message):
        prepare_shards({**world_config(tmp_path), **change})


def test_datamodule_follows_the_task(tmp_path: Path) -> None:
    data = world_config(tmp_path, "world_det_a", "detection")
    module = build_datamodule(data, prepare_shards(data), batch_size=4, num_workers=0, img_size=32)
    batch = next(iter(module.train_dataloader()))
    assert batch["image"].shape == (4, 3, 32, 32)
    assert len(batch["targets"]) == 4 and "boxes" in batch["targets"][0]
    with pytest.raises(DataConfigError, match="data.task is 'video'"):
        build_datamodule({**data, "task": "video"}, tmp_path)
    with pytest.raises(DataConfigError, match="data.batch_augment must be .* got True for task 'detection'"):
        build_datamodule({**data, "batch_augment": True}, tmp_path)
    with pytest.raises(
        DataConfigError, match="data.decode_on_device must be .* only with data.batch_augment"
    ):
        build_datamodule({**data, "decode_on_device": True}, tmp_path)


def test_world_categories_live_in_the_label_system() -> None:
    concepts = world_concepts(WordNet())
    assert len(concepts) == len(SUPERS) + len(FINES) + 6
    taxonomy = build_taxonomy(synsets=[], extra=concepts)
    fish = taxonomy[world_concept_id("fish")]
    assert "sea creature" in fish.synonyms
    ancestors = taxonomy.ancestors(world_concept_id(FINES[3 * 6].name))
    assert world_concept_id("fish") in ancestors
    assert WordNet().resolve("animal.n.01") in ancestors


def _make_cache(root: str) -> None:
    world_shards("world_cls_fine", root, ["train"], sizes={"train": 40}, img_size=32)


def test_concurrent_processes_make_one_world_cache(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_make_cache, args=(str(tmp_path),)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    folder = cache_folder("world_cls_fine", tmp_path, img_size=32, sizes={"train": 40})
    assert load_index(folder)["splits"]["train"]["count"] == 40
