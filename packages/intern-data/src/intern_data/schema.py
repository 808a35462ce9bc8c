"""The one sample schema of GV-D, shared by every reader, shard and task (docs/architecture.md).

A sample is a plain ``dict``. Keys that do not apply are absent, never ``None``:

=============  ==========================================================
``__key__``     unique id within its dataset (str)
``source``      dataset name (str)
``image``       uint8 tensor, C x H x W (C = 3, or 1 for grey scans)
``text``        captions (list of str)
``label``       class index (int) in ``label_space``
``label_space`` name of the label space of ``label``/``box_labels``/``mask`` (str)
``boxes``       float32 N x 4, xyxy in pixels
``box_labels``  int64 N, one class per box
``mask``        int64 H x W, class per pixel, 255 = ignore
``depth``       float32 H x W, metres, 0 = invalid
``proposals``   float32 M x 4 xyxy unsupervised region proposals (Up-A-L)
=============  ==========================================================

A reader of image files adds ``__image_bytes__``: the file's bytes, which decode to ``image`` (the
shard writer may store them instead of encoding ``image`` again); code that changes ``image`` drops it.
"""

from typing import Any, NoReturn

import torch
from torch import Tensor

from intern_data.imaging import ImageDecodeError, image_size
from intern_data.label_space import LabelSpace

Sample = dict[str, Any]

IGNORE_INDEX = 255
IMAGE_BYTES = "__image_bytes__"
REQUIRED_KEYS = ("__key__", "source", "image")
OPTIONAL_KEYS = (
    "text", "label", "label_space", "boxes", "box_labels", "mask", "depth", "proposals", IMAGE_BYTES
)  # fmt: skip
ALL_KEYS = REQUIRED_KEYS + OPTIONAL_KEYS


class SampleError(ValueError):
    """A sample that breaks the schema; the message names the sample and the key."""


def _fail(sample: Sample, key: str, problem: str) -> NoReturn:
    raise SampleError(f"sample {sample.get('__key__', '<no __key__>')!r}: key {key!r} {problem}")


def _check_tensor(sample: Sample, key: str, dtype: torch.dtype, ndim: int) -> Tensor:
    value = sample[key]
    if not isinstance(value, Tensor):
        _fail(sample, key, f"must be a tensor, got {type(value).__name__}")
    if value.dtype != dtype or value.ndim != ndim:
        _fail(
            sample,
            key,
            f"must be {dtype} with {ndim} dims, got {value.dtype} with shape {tuple(value.shape)}",
        )
    return value


def validate_sample(sample: Sample) -> Sample:
    """Check ``sample`` against the schema and return it unchanged; raise ``SampleError`` otherwise."""
    for key in REQUIRED_KEYS:
        if key not in sample:
            _fail(sample, key, "is missing")
    for key, value in sample.items():
        if key not in ALL_KEYS:
            _fail(sample, key, f"is not in the schema (known keys: {', '.join(ALL_KEYS)})")
        if value is None:
            _fail(sample, key, "is None; leave absent keys out instead")
    for key in ("__key__", "source"):
        if not isinstance(sample[key], str) or not sample[key]:
            _fail(sample, key, "must be a non-empty string")
    image = _check_tensor(sample, "image", torch.uint8, 3)
    if image.shape[0] not in (1, 3):
        _fail(sample, "image", f"must have 1 or 3 channels first (C x H x W), got shape {tuple(image.shape)}")
    height, width = image.shape[1:]
    if IMAGE_BYTES in sample:
        data = sample[IMAGE_BYTES]
        if not isinstance(data, bytes):
            _fail(sample, IMAGE_BYTES, f"must be the image file's bytes, got {type(data).__name__}")
        try:
            size = image_size(data)
        except ImageDecodeError as err:
            _fail(sample, IMAGE_BYTES, f"has a damaged header ({err})")
        if size is not None and size != (width, height):
            _fail(sample, IMAGE_BYTES, f"declares {size[0]}x{size[1]} but the image is {width}x{height}")
    if "text" in sample and not (
        isinstance(sample["text"], list) and all(isinstance(t, str) for t in sample["text"])
    ):
        _fail(sample, "text", "must be a list of strings")
    label = sample.get("label", 0)
    if not isinstance(label, int) or isinstance(label, bool) or label < 0:
        _fail(sample, "label", "must be a non-negative int")
    if any(k in sample for k in ("label", "box_labels", "mask")) and "label_space" not in sample:
        _fail(sample, "label_space", "is missing; labels need the name of their label space")
    if "boxes" in sample or "box_labels" in sample:
        for key in ("boxes", "box_labels"):
            if key not in sample:
                _fail(sample, key, "is missing; 'boxes' and 'box_labels' come together")
        boxes = _check_tensor(sample, "boxes", torch.float32, 2)
        labels = _check_tensor(sample, "box_labels", torch.int64, 1)
        if boxes.shape[-1] != 4 or boxes.shape[0] != labels.shape[0]:
            _fail(
                sample,
                "boxes",
                f"must be N x 4 with one label each, got {tuple(boxes.shape)} and {len(labels)}",
            )
        if bool((boxes[:, 2:] < boxes[:, :2]).any() or (boxes < 0).any()):
            _fail(sample, "boxes", "must be xyxy pixels with x1 >= x0, y1 >= y0 >= 0")
    for key, dtype in (("mask", torch.int64), ("depth", torch.float32)):
        if key in sample and _check_tensor(sample, key, dtype, 2).shape != (height, width):
            _fail(sample, key, f"must be H x W = {height} x {width}, got {tuple(sample[key].shape)}")
    if "proposals" in sample and _check_tensor(sample, "proposals", torch.float32, 2).shape[-1] != 4:
        _fail(sample, "proposals", "must be M x 4 xyxy")
    return sample


def check_label_space(sample: Sample, label_space: LabelSpace) -> None:
    """Raise ``SampleError`` when the sample's ``label``, ``box_labels`` or ``mask`` (255 aside) are not
    classes of ``label_space``, or it names another label space."""
    if not any(k in sample for k in ("label", "box_labels", "mask")):
        return
    key, name, n = sample["__key__"], label_space.name, len(label_space)
    if sample.get("label_space") != name:
        raise SampleError(f"sample {key!r}: label_space {sample.get('label_space')!r} is not {name!r}")
    if "label" in sample and sample["label"] >= n:
        raise SampleError(f"sample {key!r}: label {sample['label']} is outside label space {name!r} ({n})")
    boxes = sample.get("box_labels")
    if boxes is not None and len(boxes) and (int(boxes.max()) >= n or int(boxes.min()) < 0):
        raise SampleError(f"sample {key!r}: a box label is outside label space {name!r} ({n})")
    if "mask" in sample:
        values = sample["mask"][sample["mask"] != IGNORE_INDEX]
        if len(values) and (int(values.max()) >= n or int(values.min()) < 0):
            raise SampleError(
                f"sample {key!r}: mask values outside label space {name!r} ({n}) and {IGNORE_INDEX}"
            )
