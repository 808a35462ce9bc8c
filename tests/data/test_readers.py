"""intern_data.readers: the real-format readers on small fixtures each test writes into tmp_path."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.io import encode_jpeg, write_png

from intern_data.readers import (
    READERS,
    CocoReader,
    CorruptSampleError,
    DepthPngReader,
    ImageFolderReader,
    ImageTextReader,
    INatJsonReader,
    MissingDataError,
    ReaderError,
    SegPngReader,
    UnknownReaderError,
    VocReader,
    open_reader,
)
from intern_data.readers.base import make_key
from intern_data.schema import IGNORE_INDEX, validate_sample

# ---------------------------------------------------------------------------------------- helpers


def _image(h: int, w: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 256, (3, h, w), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def _png(path: Path, image: torch.Tensor) -> torch.Tensor:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_png(image, str(path))
    return image


def _jpg(path: Path, image: torch.Tensor) -> torch.Tensor:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_jpeg(image, quality=95).numpy().tobytes())
    return image


def _png16(path: Path, values: np.ndarray) -> None:
    """A 16-bit grey PNG (torchvision encodes 8-bit only), written with zlib."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    h, w = values.shape
    rows = b"".join(b"\0" + values[r].astype(">u2").tobytes() for r in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _all_valid(reader) -> list[dict]:
    samples = list(reader)
    for sample in samples:
        validate_sample(sample)
        assert sample["source"] == reader.source
    keys = [s["__key__"] for s in samples]
    assert len(set(keys)) == len(keys) and all("." not in k for k in keys)
    return samples


# ------------------------------------------------------------------------------------ registry


def test_registry_names_every_reader() -> None:
    assert set(READERS) == {
        "image_folder",
        "inat_json",
        "coco",
        "voc",
        "seg_png",
        "depth_png",
        "image_text",
        "fashion_mnist",
        "digits",
        "lfw",
    }
    assert all(cls.reader_name == name for name, cls in READERS.items())


def test_open_reader_unknown_name_lists_known(tmp_path: Path) -> None:
    with pytest.raises(UnknownReaderError, match=r"unknown reader 'cocoo'.*coco, depth_png"):
        open_reader("cocoo", tmp_path, "train")


def test_make_key_drops_extension_and_dots() -> None:
    assert make_key("train", "n0144/img.v2.JPEG") == "train/n0144/img_v2"
    assert make_key("val", "/abs/x.jpg") == "val/abs/x"
    assert make_key("val", "city/a.b", drop_extension=False) == "val/city/a_b"


# --------------------------------------------------------------------------------- image_folder


def _image_folder(root: Path) -> dict[str, torch.Tensor]:
    written = {}
    for split, cls, name, seed in [
        ("train", "zebra", "a.png", 1), ("train", "ant", "b.png", 2), ("train", "ant", "sub/c.png", 3),
        ("val", "ant", "d.png", 4), ("val", "moth", "e.png", 5),
    ]:  # fmt: skip
        written[f"{split}/{cls}/{name}"] = _png(root / split / cls / name, _image(6, 7, seed))
    (root / "train" / "ant" / "notes.txt").write_text("not an image")
    return written


def test_image_folder_sorted_classes_from_all_splits(tmp_path: Path) -> None:
    written = _image_folder(tmp_path / "dogs")
    reader = open_reader("image_folder", tmp_path / "dogs", "train")
    assert reader.label_space.classes == ("ant", "moth", "zebra")
    assert reader.label_space.name == reader.source == "dogs"
    samples = _all_valid(reader)
    assert [(s["__key__"], s["label"]) for s in samples] == [
        ("train/ant/b", 0), ("train/ant/sub/c", 0), ("train/zebra/a", 2),
    ]  # fmt: skip
    assert torch.equal(samples[2]["image"], written["train/zebra/a.png"])
    val = ImageFolderReader(tmp_path / "dogs", "val")
    assert [s["label"] for s in val] == [0, 1]
    assert [s["__key__"] for s in reader] == [s["__key__"] for s in samples]


def test_image_folder_corrupt_image_raises_or_is_skipped(tmp_path: Path) -> None:
    _image_folder(tmp_path)
    bad = tmp_path / "train" / "ant" / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(CorruptSampleError, match="broken.png"):
        list(ImageFolderReader(tmp_path, "train"))
    reader = ImageFolderReader(tmp_path, "train", skip_corrupt=True)
    assert len(list(reader)) == 3 and len(reader) == 4
    assert reader.skipped == 1 and reader.skipped_files == [bad]


def test_image_folder_errors_name_the_folder(tmp_path: Path) -> None:
    _image_folder(tmp_path)
    with pytest.raises(MissingDataError, match="test"):
        ImageFolderReader(tmp_path, "test")
    with pytest.raises(ReaderError, match="zebra"):
        ImageFolderReader(tmp_path, "train", classes=["ant", "moth"])


# ------------------------------------------------------------------------------------ inat_json


def _inat(root: Path, split: str = "train") -> None:
    images = [{"id": 10 + i, "file_name": f"{split}/{c}/{i}.jpg"} for i, c in enumerate(["x", "y", "x"])]
    for i, image in enumerate(images):
        _jpg(root / image["file_name"], _image(8, 8, i))
    data = {
        "images": images,
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 9},
            {"id": 2, "image_id": 11, "category_id": 2},
            {"id": 3, "image_id": 12, "category_id": 9},
        ],
        "categories": [{"id": 9, "name": "Quercus robur"}, {"id": 2, "name": "Apis mellifera"}],
    }
    (root / f"{split}.json").write_text(json.dumps(data))


def test_inat_json_labels_follow_category_ids(tmp_path: Path) -> None:
    _inat(tmp_path)
    reader = open_reader("inat_json", tmp_path, "train", source="inat21")
    assert reader.label_space.classes == ("Apis mellifera", "Quercus robur")
    samples = _all_valid(reader)
    assert [(s["__key__"], s["label"]) for s in samples] == [
        ("train/train/x/0", 1), ("train/train/x/2", 1), ("train/train/y/1", 0),
    ]  # fmt: skip
    assert all(s["label_space"] == "inat21" for s in samples)


def test_inat_json_herbarium_layout_and_unlabelled_test_split(tmp_path: Path) -> None:
    _jpg(tmp_path / "test" / "images" / "0.jpg", _image(5, 5, 0))
    meta = {"images": [{"id": 1, "file_name": "images/0.jpg"}], "categories": [{"id": 0, "name": "a"}]}
    (tmp_path / "test" / "metadata.json").write_text(json.dumps(meta))
    (sample,) = _all_valid(INatJsonReader(tmp_path, "test"))
    assert "label" not in sample and sample["image"].shape == (3, 5, 5)


def test_inat_json_bad_annotations_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(MissingDataError, match=r"train\.json"):
        INatJsonReader(tmp_path, "train")
    _inat(tmp_path)
    path = tmp_path / "train.json"
    data = json.loads(path.read_text())
    data["annotations"][1]["category_id"] = 77
    path.write_text(json.dumps(data))
    with pytest.raises(ReaderError, match=r"train\.json.*category_id 77, not in the categories list"):
        INatJsonReader(tmp_path, "train")


# ----------------------------------------------------------------------------------------- coco


def _coco(root: Path) -> dict:
    for name, (h, w) in {"a.jpg": (20, 30), "b.jpg": (10, 10), "c.jpg": (12, 16)}.items():
        _jpg(root / "val2017" / name, _image(h, w, len(name)))
    data = {
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 30, "height": 20},
            {"id": 2, "file_name": "b.jpg", "width": 10, "height": 10},
            {"id": 3, "file_name": "c.jpg", "width": 16, "height": 12},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 18, "bbox": [2.5, 3.0, 10.0, 5.5], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [0.0, 0.0, 4.0, 4.0], "iscrowd": 0},
            {"id": 3, "image_id": 1, "category_id": 1, "bbox": [5.0, 5.0, 20.0, 10.0], "iscrowd": 1},
            {"id": 4, "image_id": 2, "category_id": 44, "bbox": [6.0, 7.0, 8.0, 8.0], "iscrowd": 0},
            {"id": 5, "image_id": 2, "category_id": 44, "bbox": [3.0, 3.0, 0.0, 2.0]},
        ],
        "categories": [{"id": 44, "name": "bottle"}, {"id": 1, "name": "person"}, {"id": 18, "name": "dog"}],
    }
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(data))
    return data


def test_coco_boxes_are_xywh_converted_to_xyxy(tmp_path: Path) -> None:
    _coco(tmp_path)
    reader = open_reader("coco", tmp_path, "val2017")
    assert reader.label_space.classes == ("person", "dog", "bottle")  # category id order 1, 18, 44
    a, b, c = _all_valid(reader)
    assert a["__key__"] == "val2017/a" and a["image"].shape == (3, 20, 30)
    expected = torch.tensor([[2.5, 3.0, 2.5 + 10.0, 3.0 + 5.5], [0.0, 0.0, 4.0, 4.0]])
    assert torch.equal(a["boxes"], expected) and a["box_labels"].tolist() == [1, 0]
    # b: [6, 7, 8, 8] reaches x=14, y=15 on a 10x10 image -> clipped; the zero-width box is dropped
    assert torch.equal(b["boxes"], torch.tensor([[6.0, 7.0, 10.0, 10.0]])) and b["box_labels"].tolist() == [2]
    assert c["boxes"].shape == (0, 4) and c["box_labels"].shape == (0,)
    assert reader.box_stats == {"crowd": 1, "clipped": 1, "empty": 1, "kept": 3}


def test_coco_skip_empty_and_custom_annotation(tmp_path: Path) -> None:
    _coco(tmp_path)
    path = tmp_path / "annotations" / "instances_val2017.json"
    moved = tmp_path / "objects365_val.json"
    path.rename(moved)
    reader = CocoReader(tmp_path, "val2017", annotation=moved, skip_empty=True, source="objects365")
    assert [s["__key__"] for s in _all_valid(reader)] == ["val2017/a", "val2017/b"]
    assert reader.label_space.name == "objects365"


def test_coco_errors(tmp_path: Path) -> None:
    with pytest.raises(MissingDataError, match="instances_val2017.json"):
        CocoReader(tmp_path, "val2017")
    data = _coco(tmp_path)
    data["annotations"][0]["category_id"] = 5
    path = tmp_path / "annotations" / "instances_val2017.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ReaderError, match=r"instances_val2017\.json: annotations\[0\].*category_id 5"):
        CocoReader(tmp_path, "val2017")
    data = _coco(tmp_path)
    data["images"][2]["width"] = 17  # c.jpg is 16 wide
    path.write_text(json.dumps(data))
    reader = CocoReader(tmp_path, "val2017", skip_corrupt=True)
    assert len(list(reader)) == 2 and reader.skipped_files == [tmp_path / "val2017" / "c.jpg"]


# ------------------------------------------------------------------------------------------ voc


def _voc_xml(objects: list[tuple[str, int, tuple[int, int, int, int]]], w: int, h: int) -> str:
    objs = "".join(
        f"<object><name>{n}</name><difficult>{d}</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
        f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for n, d, b in objects
    )
    return (
        f"<annotation><size><width>{w}</width><height>{h}</height><depth>3</depth></size>{objs}</annotation>"
    )


def _voc(root: Path) -> None:
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "Annotations").mkdir()
    (root / "ImageSets" / "Main" / "val.txt").write_text("000005\n000007\n")
    _jpg(root / "JPEGImages" / "000005.jpg", _image(24, 32, 5))
    _jpg(root / "JPEGImages" / "000007.jpg", _image(16, 16, 7))
    (root / "Annotations" / "000005.xml").write_text(
        _voc_xml(
            [("chair", 0, (3, 4, 10, 12)), ("person", 1, (1, 1, 32, 24)), ("dog", 0, (20, 2, 40, 9))], 32, 24
        )
    )
    (root / "Annotations" / "000007.xml").write_text(_voc_xml([("tvmonitor", 1, (2, 2, 5, 5))], 16, 16))


def test_voc_boxes_and_difficult_left_out_by_default(tmp_path: Path) -> None:
    _voc(tmp_path)
    reader = open_reader("voc", tmp_path, "val")
    assert len(reader.label_space) == 20 and reader.label_space.name == "voc"
    first, second = _all_valid(reader)
    assert first["__key__"] == "val/000005"
    # 1-based inclusive -> 0-based edges; the dog box is clipped at x = 32
    assert torch.equal(first["boxes"], torch.tensor([[2.0, 3.0, 10.0, 12.0], [19.0, 1.0, 32.0, 9.0]]))
    assert first["box_labels"].tolist() == [8, 11]  # chair, dog
    assert second["boxes"].shape == (0, 4)
    assert reader.box_stats == {"difficult": 2, "clipped": 1, "kept": 2}


def test_voc_include_difficult(tmp_path: Path) -> None:
    _voc(tmp_path)
    first, second = _all_valid(VocReader(tmp_path, "val", include_difficult=True))
    assert first["box_labels"].tolist() == [8, 14, 11]  # chair, person (difficult), dog
    assert torch.equal(first["boxes"][1], torch.tensor([0.0, 0.0, 32.0, 24.0]))
    assert second["box_labels"].tolist() == [19]


def test_voc_errors_name_the_file(tmp_path: Path) -> None:
    _voc(tmp_path)
    with pytest.raises(MissingDataError, match=r"Main/train\.txt"):
        VocReader(tmp_path, "train")
    (tmp_path / "Annotations" / "000007.xml").write_text(_voc_xml([("unicorn", 0, (2, 2, 5, 5))], 16, 16))
    with pytest.raises(ReaderError, match=r"000007\.xml: object 'unicorn' is not one of the classes"):
        VocReader(tmp_path, "val")
    (tmp_path / "Annotations" / "000007.xml").write_text("<annotation><size>")
    with pytest.raises(ReaderError, match=r"000007\.xml: not valid XML"):
        VocReader(tmp_path, "val")


# -------------------------------------------------------------------------------------- seg_png


def test_seg_png_folder_keeps_ignore_pixels(tmp_path: Path) -> None:
    label = torch.tensor([[[0, 1, 2], [255, 2, 255]]], dtype=torch.uint8)
    image = _png(tmp_path / "images" / "train" / "s1.png", _image(2, 3, 0))
    _png(tmp_path / "labels" / "train" / "s1.png", label)
    reader = open_reader("seg_png", tmp_path, "train", classes=["bg", "road", "car"], source="toy")
    (sample,) = _all_valid(reader)
    assert sample["mask"].dtype == torch.int64 and sample["label_space"] == "toy"
    assert torch.equal(sample["mask"], label[0].long()) and torch.equal(sample["image"], image)
    assert int((sample["mask"] == IGNORE_INDEX).sum()) == 2


def test_seg_png_value_outside_classes_is_corrupt(tmp_path: Path) -> None:
    _png(tmp_path / "images" / "train" / "s1.jpg", _image(2, 2, 0))  # any extension is found
    _png(tmp_path / "labels" / "train" / "s1.png", torch.tensor([[[0, 7], [1, 1]]], dtype=torch.uint8))
    with pytest.raises(CorruptSampleError, match=r"s1\.png: values \[7\]"):
        list(SegPngReader(tmp_path, "train", classes=["a", "b"]))
    with pytest.raises(ReaderError, match="needs classes"):
        SegPngReader(tmp_path, "train")


def test_seg_png_cityscapes_label_ids_to_train_ids(tmp_path: Path) -> None:
    city = tmp_path / "leftImg8bit" / "val" / "bonn"
    _png(city / "bonn_000001_000019_leftImg8bit.png", _image(2, 4, 1))
    label_ids = torch.tensor([[[7, 26, 0, 33], [255, 8, 4, 24]]], dtype=torch.uint8)
    _png(tmp_path / "gtFine" / "val" / "bonn" / "bonn_000001_000019_gtFine_labelIds.png", label_ids)
    _png(tmp_path / "gtFine" / "val" / "bonn" / "bonn_000001_000019_gtFine_color.png", _image(2, 4, 2))
    reader = SegPngReader(tmp_path, "val", layout="cityscapes")
    (sample,) = _all_valid(reader)
    assert reader.source == "cityscapes" and len(reader.label_space) == 19
    assert sample["__key__"] == "val/bonn/bonn_000001_000019"
    assert sample["mask"].tolist() == [[0, 13, 255, 18], [255, 1, 255, 11]]


def test_seg_png_ade20k_reduces_zero_label(tmp_path: Path) -> None:
    _jpg(tmp_path / "images" / "validation" / "ADE_val_00000001.jpg", _image(2, 3, 0))
    _png(tmp_path / "annotations" / "validation" / "ADE_val_00000001.png",
         torch.tensor([[[0, 1, 150], [3, 0, 2]]], dtype=torch.uint8))  # fmt: skip
    reader = SegPngReader(tmp_path, "validation", layout="ade20k")
    (sample,) = _all_valid(reader)
    assert len(reader.label_space) == 150 and reader.label_space.classes[:3] == ("wall", "building", "sky")
    assert sample["mask"].tolist() == [[255, 0, 149], [2, 255, 1]]


def test_seg_png_voc_palette_labels_read_as_indices(tmp_path: Path) -> None:
    pil = pytest.importorskip("PIL.Image")
    (tmp_path / "ImageSets" / "Segmentation").mkdir(parents=True)
    (tmp_path / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000033\n")
    _jpg(tmp_path / "JPEGImages" / "2007_000033.jpg", _image(2, 3, 0))
    indices = np.array([[0, 1, 15], [255, 20, 0]], dtype=np.uint8)
    img = pil.fromarray(indices, mode="P")
    img.putpalette([v for i in range(256) for v in (i, (i * 7) % 256, (i * 13) % 256)])
    (tmp_path / "SegmentationClass").mkdir()
    img.save(tmp_path / "SegmentationClass" / "2007_000033.png")
    (sample,) = _all_valid(SegPngReader(tmp_path, "val", layout="voc"))
    assert sample["mask"].tolist() == indices.astype(np.int64).tolist()


# ------------------------------------------------------------------------------------ depth_png


def test_depth_png_kitti_scale_and_invalid_zero(tmp_path: Path) -> None:
    stored = np.array([[0, 256, 2560], [65535, 128, 0]], dtype=np.uint16)
    _png16(tmp_path / "train" / "depth" / "0000000005.png", stored)
    _png(tmp_path / "train" / "image" / "0000000005.png", _image(2, 3, 0))
    reader = open_reader("depth_png", tmp_path, "train", scale="kitti", source="kitti")
    (sample,) = _all_valid(reader)
    assert sample["depth"].dtype == torch.float32
    assert sample["depth"].tolist() == [[0.0, 1.0, 10.0], [65535 / 256, 0.5, 0.0]]
    nyu = DepthPngReader(tmp_path, "train", scale="nyu")
    assert next(iter(nyu))["depth"][0, 2].item() == pytest.approx(2.56)
    assert next(iter(DepthPngReader(tmp_path, "train", scale=100)))["depth"][0, 1].item() == pytest.approx(
        2.56
    )


def test_depth_png_pairs_file(tmp_path: Path) -> None:
    _png16(tmp_path / "gt" / "drive_1" / "0005.png", np.full((3, 2), 1000, dtype=np.uint16))
    _jpg(tmp_path / "raw" / "drive_1" / "0005.jpg", _image(3, 2, 1))
    (tmp_path / "eigen_test.txt").write_text(
        "raw/drive_1/0005.jpg gt/drive_1/0005.png 518.8579\nraw/drive_1/0006.jpg None 518.8579\n"
    )
    (sample,) = _all_valid(DepthPngReader(tmp_path, "test", scale="nyu", pairs="eigen_{split}.txt"))
    assert sample["__key__"] == "test/gt/drive_1/0005" and torch.all(sample["depth"] == 1.0)


def test_depth_png_needs_scale_and_matching_sizes(tmp_path: Path) -> None:
    _png16(tmp_path / "train" / "depth" / "a.png", np.ones((2, 2), dtype=np.uint16))
    _png(tmp_path / "train" / "image" / "a.png", _image(3, 3, 0))
    with pytest.raises(ReaderError, match="needs scale="):
        DepthPngReader(tmp_path, "train")
    with pytest.raises(CorruptSampleError, match=r"depth/a\.png: depth is \(2, 2\)"):
        list(DepthPngReader(tmp_path, "train", scale="kitti"))


# ----------------------------------------------------------------------------------- image_text


def test_image_text_folder_lines_are_captions(tmp_path: Path) -> None:
    image = _png(tmp_path / "train" / "0001.png", _image(4, 4, 0))
    (tmp_path / "train" / "0001.txt").write_text("a red cube\n\n a blue ball \n")
    _jpg(tmp_path / "train" / "0002.jpg", _image(4, 4, 1))
    (tmp_path / "train" / "0002.txt").write_text("grass")
    a, b = _all_valid(open_reader("image_text", tmp_path, "train"))
    assert a["text"] == ["a red cube", "a blue ball"] and torch.equal(a["image"], image)
    assert (b["__key__"], b["text"]) == ("train/0002", ["grass"])
    _jpg(tmp_path / "train" / "0003.jpg", _image(4, 4, 2))
    with pytest.raises(ReaderError, match=r"0003\.jpg: no caption file 0003\.txt"):
        ImageTextReader(tmp_path, "train")
    reader = ImageTextReader(tmp_path, "train", skip_uncaptioned=True)
    assert len(reader) == 2 and reader.uncaptioned == 1


def test_image_text_csv_with_header_groups_captions(tmp_path: Path) -> None:
    _jpg(tmp_path / "imgs" / "x.jpg", _image(4, 4, 0))
    _jpg(tmp_path / "imgs" / "y.jpg", _image(4, 4, 1))
    rows = [
        "id,caption,filepath",
        '1,"a dog, running",imgs/y.jpg',
        "2,a cat,imgs/x.jpg",
        "3,a puppy,imgs/y.jpg",
    ]
    (tmp_path / "val.csv").write_text("\n".join(rows) + "\n")
    y, x = _all_valid(ImageTextReader(tmp_path, "val"))
    assert (y["__key__"], y["text"]) == ("val/imgs/y", ["a dog, running", "a puppy"])
    assert x["text"] == ["a cat"]


def test_image_text_tsv_without_header(tmp_path: Path) -> None:
    _jpg(tmp_path / "pics" / "p.jpg", _image(4, 4, 0))
    table = tmp_path / "pairs.tsv"
    table.write_text("p.jpg\ta photo of a lake\n")
    (sample,) = _all_valid(ImageTextReader(tmp_path, "train", table=table, image_root=tmp_path / "pics"))
    assert sample["text"] == ["a photo of a lake"]
    table.write_text("p.jpg\n")
    with pytest.raises(ReaderError, match=r"pairs\.tsv:1: expected a path and a caption"):
        ImageTextReader(tmp_path, "train", table=table)


def test_bmp_images_are_read_with_pillow(tmp_path: Path) -> None:
    pil = pytest.importorskip("PIL.Image")
    pixels = _image(3, 4, 9)
    (tmp_path / "train" / "cat").mkdir(parents=True)
    pil.fromarray(pixels.permute(1, 2, 0).numpy()).save(tmp_path / "train" / "cat" / "x.bmp")
    (sample,) = _all_valid(ImageFolderReader(tmp_path, "train"))
    assert torch.equal(sample["image"], pixels)
