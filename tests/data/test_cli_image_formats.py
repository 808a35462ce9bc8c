"""``python -m intern_data shard --image-format``: source PNG and JPEG files are stored as they are
(``keep``, the default), other images as lossless PNG; ``jpg`` / ``png`` re-encode every image."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.io import encode_jpeg, encode_png

from intern_data.readers import open_reader
from intern_data.schema import IMAGE_BYTES, SampleError
from intern_data.shards import ShardDataset, write_shards
from intern_data.shards.codec import iter_tar_samples

PIXELS = np.random.default_rng(0).integers(0, 256, (12, 16, 4), dtype=np.uint8)


def _pillow(array: np.ndarray, mode: str | None, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, fmt)
    return buffer.getvalue()


def _image_folder(root: Path) -> dict[str, bytes]:
    """``root/train/cat/``: an RGB PNG, a JPEG, a 16-bit grey PNG, a CMYK JPEG and a BMP, by stem."""
    rgb = torch.from_numpy(PIXELS[..., :3].copy()).permute(2, 0, 1).contiguous()
    files = {
        "a.png": encode_png(rgb).numpy().tobytes(),
        "b.jpg": encode_jpeg(rgb, quality=90).numpy().tobytes(),
        "c.png": _pillow(PIXELS[..., 0].astype(np.uint16) * 257, None, "PNG"),
        "d.jpg": _pillow(PIXELS, "CMYK", "JPEG"),
        "e.bmp": _pillow(PIXELS[..., :3], "RGB", "BMP"),
    }
    (root / "train" / "cat").mkdir(parents=True)
    for name, data in files.items():
        (root / "train" / "cat" / name).write_bytes(data)
    return {name.split(".")[0]: data for name, data in files.items()}


def _members(out: Path) -> dict[str, dict[str, bytes]]:
    """The tar members of every stored sample, by the sample's stem."""
    return {
        raw["__key__"].rsplit("/", 1)[-1]: raw
        for tar in sorted(out.glob("*.tar"))
        for raw in iter_tar_samples(str(tar))
    }


def _expand(image: torch.Tensor) -> torch.Tensor:
    return image.expand(3, -1, -1) if image.shape[0] == 1 else image


def test_default_keeps_png_and_jpeg_bytes_and_pixels(tmp_path: Path, python_m: Callable[..., Any]) -> None:
    root, out = tmp_path / "folder", tmp_path / "out"
    sources = _image_folder(root)
    run = python_m("intern_data", "shard", "image_folder", str(root), "--out", str(out), "--split", "train")
    assert run.returncode == 0, run.stderr
    members = _members(out)
    assert {stem: sorted(set(m) - {"__key__", "__url__", "json"}) for stem, m in members.items()} == {
        "a": ["png"], "b": ["jpg"], "c": ["png"], "d": ["png"], "e": ["png"]
    }  # fmt: skip
    for stem, ext in (("a", "png"), ("b", "jpg"), ("c", "png")):
        assert members[stem][ext] == sources[stem]
    for stem in ("d", "e"):  # CMYK JPEG and BMP: encoded as lossless PNG
        assert members[stem]["png"] != sources[stem]

    decoded = {
        s["__key__"]: _expand(s["image"]) for s in ShardDataset(out, split="train", batch_size=1).scan()
    }
    for sample in open_reader("image_folder", root, "train"):
        assert torch.equal(decoded[sample["__key__"]], sample["image"]), sample["__key__"]
    index = json.loads((out / "index.json").read_text())
    entry = index["splits"]["train"]
    assert entry["settings"]["image_format"] == "keep"
    assert entry["stored_formats"] == {"jpg": 1, "png": 4}

    again = python_m("intern_data", "shard", "image_folder", str(root), "--out", str(out), "--split", "train")
    assert again.returncode == 0 and json.loads((out / "index.json").read_text()) == index  # rescanned alike


def test_image_format_jpg_reencodes_every_image(tmp_path: Path, python_m: Callable[..., Any]) -> None:
    root, out = tmp_path / "folder", tmp_path / "out"
    sources = _image_folder(root)
    folder = ["shard", "image_folder", str(root), "--split", "train"]
    assert python_m("intern_data", *folder, "--out", str(out), "--image-format", "jpg").returncode == 0
    members = _members(out)
    assert all("jpg" in m and "png" not in m for m in members.values())
    assert members["b"]["jpg"] != sources["b"]
    entry = json.loads((out / "index.json").read_text())["splits"]["train"]
    assert entry["settings"]["image_format"] == "jpg" and entry["stored_formats"] == {"jpg": 5}


def _seg_folder(root: Path) -> np.ndarray:
    """``root/train/images/x.jpg`` and its label ``root/train/labels/x.png`` (classes 0..2 and 255)."""
    label = np.array([0, 1, 2, 255], dtype=np.uint8)[np.arange(12 * 16).reshape(12, 16) % 4]
    (root / "train" / "images").mkdir(parents=True)
    (root / "train" / "labels").mkdir(parents=True)
    (root / "train" / "images" / "x.jpg").write_bytes(_pillow(PIXELS[..., :3], "RGB", "JPEG"))
    (root / "train" / "labels" / "x.png").write_bytes(_pillow(label, "L", "PNG"))
    return label


def test_seg_png_label_stays_lossless_and_bad_yaml_option_is_one_line(
    tmp_path: Path, python_m: Callable[..., Any]
) -> None:
    root = tmp_path / "seg"
    label = _seg_folder(root)
    args = ["shard", "seg_png", str(root), "--split", "train", "--option", "classes=[a, b, c]"]
    for value in ("{split}/images", "{split}"):  # not YAML; YAML but a mapping {split: null}
        bad = python_m("intern_data", *args, "--out", str(tmp_path / "bad"), "--option", f"image_dir={value}")
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1
        assert f"""--option 'image_dir="{value}"'""" in bad.stderr and "Traceback" not in bad.stderr
        assert not (tmp_path / "bad").exists()

    folders = ["--option", 'image_dir="{split}/images"', "--option", 'label_dir="{split}/labels"']
    for image_format in ("keep", "jpg"):
        out = tmp_path / image_format
        run = python_m("intern_data", *args, *folders, "--out", str(out), "--image-format", image_format)
        assert run.returncode == 0, run.stderr
        (sample,) = ShardDataset(out, split="train", batch_size=1).scan()
        assert torch.equal(sample["mask"], torch.from_numpy(label).long())
        (members,) = _members(out).values()
        assert "mask.png" in members
        if image_format == "keep":
            assert members["jpg"] == (root / "train" / "images" / "x.jpg").read_bytes()


def test_writer_refuses_image_bytes_of_another_size(tmp_path: Path) -> None:
    image = torch.zeros(3, 4, 4, dtype=torch.uint8)
    sample = {
        "__key__": "k",
        "source": "s",
        "image": image,
        IMAGE_BYTES: encode_png(image[:, :2]).numpy().tobytes(),
    }
    with pytest.raises(SampleError, match=r"'k': key '__image_bytes__' declares 4x2 but the image is 4x4"):
        write_shards([sample], tmp_path, "s", "train", image_format="keep")
