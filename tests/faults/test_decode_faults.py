"""Corrupt images and decompression bombs: a counted skip or a one-line error naming the file, never a
crashed process; paths in a dataset's own files that leave its folder are refused."""

from __future__ import annotations

import json
import logging
import multiprocessing
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torchvision.io import encode_jpeg, encode_png

from intern_data.cli import main
from intern_data.datamodules import ClassificationShardDataModule
from intern_data.imaging import ImageDecodeError, decode_image
from intern_data.readers import ImageTextReader, ReaderError, VocReader
from intern_data.shards import SkipRateError

from .conftest import SAMPLES, bomb_png, flip, read_all, rewrite_tar, snapshot


def _read_through_datamodule(folder: Path, out: Path) -> None:
    """A forked child's work: every training batch of the folder through the DataModule; the batch count
    and the warnings logged on the way are written to ``out`` and ``out``.log."""
    torch.set_num_threads(1)  # a forked process: no OpenMP pool of the parent's
    logging.getLogger().addHandler(logging.FileHandler(f"{out}.log"))
    logging.getLogger().setLevel(logging.WARNING)
    module = ClassificationShardDataModule(
        str(folder), batch_size=4, num_workers=0, img_size=16, val_split=None,
        max_skip_fraction=0.5, min_samples_for_skip_check=1,
    )  # fmt: skip
    module.setup("fit")
    out.write_text(str(len(list(module.train_dataloader()))))


def test_a_flipped_png_member_is_skipped_in_a_datamodule_not_a_segfault(shards: Callable[..., Path]) -> None:
    """The issue's reproduction, in a forked process: torchvision's decode_png ended it with SIGSEGV.
    Without key lists (a folder from before them) the flipped bytes reach the decoder."""
    folder = shards("png", legacy=True)
    rewrite_tar(
        folder / "toy-train-000001.tar", lambda name, data: flip(data) if name == "s00007.png" else data
    )
    out = folder.parent / "batches"
    child = multiprocessing.get_context("fork").Process(target=_read_through_datamodule, args=(folder, out))
    child.start()
    child.join(timeout=120)
    timed_out = child.is_alive()
    child.kill()
    child.join()
    assert not timed_out, "the reading process did not finish within 120 s"
    assert child.exitcode == 0, f"the reading process ended with {child.exitcode} (-11: SIGSEGV)"
    assert out.read_text() == "3"
    log = Path(f"{out}.log").read_text()
    assert "skipped 1 sample(s) in shard toy-train-000001.tar at key 's00007'" in log


def test_a_bomb_header_is_refused_before_decoding() -> None:
    start = time.perf_counter()
    with pytest.raises(ImageDecodeError, match=r"20000x20000 = 400000000 pixels, over the limit max_pixels="):
        decode_image(bomb_png())
    assert time.perf_counter() - start < 0.5
    image = torch.zeros(3, 20, 30, dtype=torch.uint8)
    for data in (encode_png(image).numpy().tobytes(), encode_jpeg(image).numpy().tobytes()):
        assert decode_image(data, max_pixels=600).shape == (3, 20, 30)
        with pytest.raises(ImageDecodeError, match="20 = 600 pixels|30x20 = 600"):
            decode_image(data, max_pixels=599)


def test_a_bomb_member_and_the_pixel_limit_in_the_reader(
    shards: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    folder = shards("png", legacy=True)
    rewrite_tar(
        folder / "toy-train-000000.tar", lambda name, data: bomb_png() if name == "s00002.png" else data
    )
    keys, counts = read_all(folder)
    assert "s00002" not in keys and counts["skipped"] == 1
    assert "at key 's00002'" in caplog.text and "over the limit max_pixels=100000000" in caplog.text
    with pytest.raises(SkipRateError, match="no readable sample left"):  # every image over the limit
        read_all(folder, max_pixels=24 * 32 - 1, max_skip_fraction=1.0)
    assert caplog.text.count("pixels, over the limit max_pixels=767") == SAMPLES


def _image_folder(root: Path) -> dict[str, Path]:
    """``root/train/cat/``: a good PNG, a PNG with flipped bytes, a bomb PNG, a truncated JPEG."""
    folder = root / "train" / "cat"
    folder.mkdir(parents=True)
    image = torch.randint(0, 256, (3, 24, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    png, jpg = encode_png(image).numpy().tobytes(), encode_jpeg(image).numpy().tobytes()
    files = {"good": "a.png", "flipped": "b.png", "bomb": "c.png", "truncated": "d.jpg"}
    paths = {what: folder / name for what, name in files.items()}
    paths["good"].write_bytes(png)
    paths["flipped"].write_bytes(flip(png))
    paths["bomb"].write_bytes(bomb_png())
    paths["truncated"].write_bytes(jpg[: len(jpg) // 2])
    return paths


def test_shard_cli_stops_at_a_corrupt_image_naming_it_or_skips_and_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, out = tmp_path / "folder", tmp_path / "out"
    paths = _image_folder(root)
    before = snapshot(tmp_path)
    assert main(["shard", "image_folder", str(root), "--out", str(out), "--split", "train"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"{paths['flipped']}: cannot decode image" in error
    assert not list(out.glob("*.tar")) and not (out / "index.json").exists()
    assert set(snapshot(tmp_path)) - set(before) <= {
        "out/.folder-train.lock",
        "out/.folder-train.writing.json",
    }

    args = ["shard", "image_folder", str(root), "--out", str(out), "--split", "train", "--skip-corrupt"]
    assert main(args) == 0
    assert "1 samples in 1 shards, 3 corrupt skipped" in capsys.readouterr().out
    assert json.loads((out / "index.json").read_text())["splits"]["train"]["count"] == 1
    assert main([*args[:-1], "--max-pixels", "100"]) == 2
    assert f"{paths['good']}: cannot decode image (image declares 32x24" in capsys.readouterr().err


def test_readers_name_each_corrupt_file_they_skip(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from intern_data.readers import ImageFolderReader

    paths = _image_folder(tmp_path)
    reader = ImageFolderReader(tmp_path, "train", skip_corrupt=True)
    assert [s["__key__"] for s in reader] == ["train/cat/a"] and reader.skipped == 3
    assert reader.skipped_files == [paths["flipped"], paths["bomb"], paths["truncated"]]
    assert "over the limit max_pixels" in caplog.text and "truncated" in caplog.text


def test_a_coco_file_name_leaving_the_dataset_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, out = tmp_path / "data" / "coco", tmp_path / "out"
    (root / "annotations").mkdir(parents=True)
    (root / "val").mkdir()
    image = torch.zeros(3, 8, 8, dtype=torch.uint8)
    secret = tmp_path / "x.jpg"  # where ../../../x.jpg from root/val leads
    secret.write_bytes(encode_jpeg(image).numpy().tobytes())
    (root / "val" / "a.jpg").write_bytes(secret.read_bytes())
    images = [
        {"id": i, "file_name": name, "width": 8, "height": 8}
        for i, name in enumerate(["a.jpg", "../../../x.jpg"])
    ]
    annotation = {"images": images, "annotations": [], "categories": [{"id": 1, "name": "thing"}]}
    (root / "annotations" / "instances_val.json").write_text(json.dumps(annotation))
    before = snapshot(tmp_path)
    assert main(["shard", "coco", str(root), "--out", str(out), "--split", "val"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "instances_val.json: images[1]: path '../../../x.jpg' leaves" in error
    assert snapshot(tmp_path) == before and not out.exists()


def test_voc_and_table_paths_leaving_the_dataset_are_refused(tmp_path: Path) -> None:
    voc = tmp_path / "VOC2007"
    (voc / "ImageSets" / "Main").mkdir(parents=True)
    (voc / "Annotations").mkdir()
    (voc / "ImageSets" / "Main" / "train.txt").write_text("../../outside\n")
    with pytest.raises(ReaderError, match=r"train.txt: path '../../outside.xml' leaves"):
        VocReader(voc, "train")
    table = tmp_path / "pairs" / "train.csv"
    table.parent.mkdir()
    table.write_text("path,caption\nok.jpg,fine\n/etc/passwd,a file\n")
    with pytest.raises(ReaderError, match=r"train.csv:3: path '/etc/passwd' leaves"):
        ImageTextReader(tmp_path / "pairs", "train")
