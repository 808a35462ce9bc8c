"""Encode a :data:`~intern_data.schema.Sample` into webdataset tar members and decode it back.

One sample is a group of tar members sharing a prefix (webdataset's convention, ``{prefix}.{ext}``):

==============  =============================================================================
``json``        ``key``, ``source``, ``text``, ``label``, ``label_space``, ``boxes``,
                ``box_labels``, ``proposals`` (present ones only) and ``members``: the other
                extensions of this sample, so a member lost from the tar is detected
``jpg``/``png`` ``image``: JPEG (``quality``, default 95) or lossless PNG; 1 or 3 channels
``mask.png``    ``mask``: 8-bit PNG when every value is <= 255, else 16-bit PNG (exact)
``depth.npy``   ``depth``: float32 ``.npy`` (exact), or
``depth.png``   16-bit PNG in millimetres (``depth_format="png16"``: 1 mm steps, <= 65.535 m)
==============  =============================================================================

Boxes and proposals live in the JSON: a float32 goes through a Python float and back bit for bit, and
a tar member per array would cost a 512-byte header plus padding. Everything but a JPEG image decodes
back exactly. Encoding is deterministic (same sample, same bytes), which resumable writing and content
hashes rely on.

Keys may hold any characters but webdataset groups members by the text before the first dot of the
file name, so the prefix escapes ``%`` and ``.`` (``%25``, ``%2E``); the JSON keeps the real key.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import webdataset as wds
from torch import Tensor
from torchvision.io import ImageReadMode, decode_jpeg, decode_png, encode_jpeg, encode_png
from webdataset.tariterators import group_by_keys, tar_file_iterator

from intern_data.schema import Sample

IMAGE_FORMATS = ("jpg", "png")
DEPTH_FORMATS = ("npy", "png16")
_JSON_FIELDS = ("source", "text", "label", "label_space")
_PNG16_MAX = 65535


class SampleDecodeError(ValueError):
    """A tar sample that cannot be decoded: a member is missing or its bytes are corrupt."""


def escape_key(key: str) -> str:
    """The tar member prefix of ``key``: ``%`` and ``.`` escaped so webdataset groups members right."""
    return key.replace("%", "%25").replace(".", "%2E")


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encode_png16(array: np.ndarray) -> bytes:
    """Encode a 2-D uint16 array as a 16-bit greyscale PNG.

    Written by hand because ``torchvision.io.encode_png`` takes uint8 only; ``decode_png`` reads the
    result back as uint16. Rows are unfiltered and zlib level 6, so the bytes are deterministic.
    """
    if array.ndim != 2 or array.dtype != np.uint16:
        raise ValueError(f"encode_png16 needs a 2-D uint16 array, got {array.dtype} {array.shape}")
    height, width = array.shape
    rows = np.zeros((height, 1 + 2 * width), dtype=np.uint8)
    rows[:, 1:] = array.astype(">u2").view(np.uint8).reshape(height, 2 * width)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + chunk(b"IEND", b"")
    )


def _encode_mask(mask: Tensor) -> bytes:
    if mask.numel() and (int(mask.min()) < 0 or int(mask.max()) > _PNG16_MAX):
        raise ValueError(f"mask values must lie in 0..{_PNG16_MAX}, got {int(mask.min())}..{int(mask.max())}")
    if mask.numel() == 0 or int(mask.max()) <= 255:
        return encode_png(mask.to(torch.uint8)[None], compression_level=6).numpy().tobytes()
    return encode_png16(mask.numpy().astype(np.uint16))


def _encode_depth(depth: Tensor, depth_format: str) -> tuple[str, bytes]:
    if depth_format == "npy":
        buffer = io.BytesIO()
        np.save(buffer, depth.numpy().astype(np.float32), allow_pickle=False)
        return "depth.npy", buffer.getvalue()
    millimetres = torch.round(depth.double() * 1000.0)
    if bool(((millimetres < 0) | (millimetres > _PNG16_MAX)).any()):
        raise ValueError(f"depth_format='png16' stores 0..{_PNG16_MAX / 1000} m; use depth_format='npy'")
    return "depth.png", encode_png16(millimetres.numpy().astype(np.uint16))


def encode_sample(
    sample: Sample, *, image_format: str = "jpg", quality: int = 95, depth_format: str = "npy"
) -> dict[str, bytes | str]:
    """Encode a (validated) sample as webdataset members: ``{"__key__": prefix, ext: bytes, ...}``.

    Args:
        sample: a sample that passes :func:`~intern_data.schema.validate_sample`.
        image_format: ``"jpg"`` (lossy, ``quality``) or ``"png"`` (lossless).
        quality: JPEG quality, 1-100.
        depth_format: ``"npy"`` (float32, exact) or ``"png16"`` (uint16 millimetres).
    """
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {IMAGE_FORMATS}, got {image_format!r}")
    if depth_format not in DEPTH_FORMATS:
        raise ValueError(f"depth_format must be one of {DEPTH_FORMATS}, got {depth_format!r}")
    image = sample["image"].contiguous()
    members: dict[str, bytes] = {}
    if image_format == "jpg":
        members["jpg"] = encode_jpeg(image, quality=quality).numpy().tobytes()
    else:
        members["png"] = encode_png(image, compression_level=6).numpy().tobytes()
    if "mask" in sample:
        members["mask.png"] = _encode_mask(sample["mask"])
    if "depth" in sample:
        ext, data = _encode_depth(sample["depth"], depth_format)
        members[ext] = data
    meta: dict[str, Any] = {"key": sample["__key__"], "members": sorted(members)}
    meta.update({name: sample[name] for name in _JSON_FIELDS if name in sample})
    for name in ("boxes", "box_labels", "proposals"):
        if name in sample:
            meta[name] = sample[name].tolist()
    members["json"] = _json_bytes(meta)
    return {"__key__": escape_key(sample["__key__"]), **members}


def _buffer(data: bytes) -> Tensor:
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def decode_image_bytes(data: bytes, ext: str) -> Tensor:
    """Decode JPEG or PNG bytes to a uint8 C x H x W tensor with torchvision, keeping 1 or 3 channels."""
    decode = decode_jpeg if ext == "jpg" else decode_png
    image = decode(_buffer(data), mode=ImageReadMode.UNCHANGED)
    if image.shape[0] == 4:  # RGBA PNG from elsewhere
        image = image[:3]
    elif image.shape[0] == 2:  # grey + alpha
        image = image[:1]
    return image


def _decode_png_plane(data: bytes) -> Tensor:
    plane = decode_png(_buffer(data), mode=ImageReadMode.UNCHANGED)
    if plane.shape[0] != 1:
        raise ValueError(f"expected a one-channel PNG, got {plane.shape[0]} channels")
    return plane[0]


def decode_sample(raw: dict[str, Any]) -> Sample:
    """Decode the members of one tar sample (as webdataset's ``group_by_keys`` gives them) to a Sample.

    Raises:
        SampleDecodeError: a member is missing or cannot be decoded; the message names the key.
    """
    prefix = raw.get("__key__", "<unknown>")
    if "json" not in raw:
        raise SampleDecodeError(f"sample {prefix!r}: member 'json' is missing")
    try:
        meta = json.loads(raw["json"])
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SampleDecodeError(f"sample {prefix!r}: member 'json' is corrupt ({err})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("key"), str) or "members" not in meta:
        raise SampleDecodeError(f"sample {prefix!r}: member 'json' lacks 'key' or 'members'")
    key = meta["key"]
    missing = [ext for ext in meta["members"] if ext not in raw]
    if missing:
        raise SampleDecodeError(f"sample {key!r}: member(s) {missing} missing")
    sample: Sample = {"__key__": key}
    sample.update({name: meta[name] for name in _JSON_FIELDS if name in meta})
    current = "json"
    try:
        for ext in ("jpg", "png"):
            if ext in meta["members"]:
                current = ext
                sample["image"] = decode_image_bytes(raw[ext], ext)
        if "image" not in sample:
            raise ValueError("no image member listed")
        if "boxes" in meta:
            current = "json"
            sample["boxes"] = torch.tensor(meta["boxes"], dtype=torch.float32).reshape(-1, 4)
            sample["box_labels"] = torch.tensor(meta["box_labels"], dtype=torch.int64).reshape(-1)
        if "proposals" in meta:
            sample["proposals"] = torch.tensor(meta["proposals"], dtype=torch.float32).reshape(-1, 4)
        if "mask.png" in meta["members"]:
            current = "mask.png"
            sample["mask"] = _decode_png_plane(raw["mask.png"]).to(torch.int64)
        if "depth.npy" in meta["members"]:
            current = "depth.npy"
            depth = np.load(io.BytesIO(raw["depth.npy"]), allow_pickle=False)
            sample["depth"] = torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32))
        elif "depth.png" in meta["members"]:
            current = "depth.png"
            sample["depth"] = _decode_png_plane(raw["depth.png"]).to(torch.float32) / 1000.0
    except Exception as err:  # noqa: BLE001 - any decoder failure means corrupt bytes
        raise SampleDecodeError(
            f"sample {key!r}: member {current!r} is corrupt ({type(err).__name__}: {err})"
        ) from None
    return sample


def iter_tar_samples(url: str, handler: Any = None) -> Iterator[dict[str, Any]]:
    """The raw samples (member bytes grouped by prefix) of one tar file, in order, with webdataset.

    Args:
        url: a local path (or anything ``webdataset.gopen`` opens).
        handler: webdataset exception handler for member-level errors; by default errors propagate.
    """
    handler = handler or wds.reraise_exception
    with wds.gopen(url, "rb") as stream:
        files = ({**item, "__url__": url} for item in tar_file_iterator(stream, handler=handler))
        yield from group_by_keys(files, handler=handler)
