"""Encode a :data:`~intern_data.schema.Sample` into webdataset tar members and decode it back.

One sample is a group of tar members sharing a prefix (webdataset's convention, ``{prefix}.{ext}``):

==============  =============================================================================
``json``        ``key``, ``source``, ``text``, ``label``, ``label_space``, ``boxes``,
                ``box_labels``, ``proposals`` (present ones only), ``image_kept`` (true when the
                image member is the source file) and ``members``: the other extensions of this
                sample, so a member lost from the tar is detected
``jpg``/``png`` ``image``: the source file's bytes (``image_format="keep"``), JPEG (``quality``,
                default 95) or lossless PNG; 1 or 3 channels
``mask.png``    ``mask``: 8-bit PNG when every value is <= 255, else 16-bit PNG (exact)
``depth.npy``   ``depth``: float32 ``.npy`` (exact), or
``depth.png``   16-bit PNG in millimetres (``depth_format="png16"``: 1 mm steps, <= 65.535 m)
==============  =============================================================================

Boxes and proposals live in the JSON: a float32 goes through a Python float and back bit for bit, and
a tar member per array would cost a 512-byte header plus padding. Everything but a JPEG image decodes
back exactly. Encoding is deterministic (same sample, same bytes), which resumable writing and content
hashes rely on. ``keep`` stores a sample's ``__image_bytes__`` as they are when they are a PNG or a grey
or colour JPEG (:func:`~intern_data.imaging.kept_format`), and encodes any other image (BMP, WebP, a
CMYK JPEG, an array without a file) as lossless PNG.

Keys may hold any characters but members are grouped by the text before the first dot of the file
name (webdataset's convention), so the prefix escapes ``%`` and ``.`` (``%25``, ``%2E``); the JSON keeps
the real key. A member whose name could not have been written here (a dot or ``..`` in the prefix, an
absolute path, an extension not in the table, not a regular file) is reported, never grouped.

Images and planes are decoded by :mod:`intern_data.imaging` (torchvision for JPEG, and for PNG whose
bytes a key list's crc32 vouches for, unless kept from a source file; Pillow for any other PNG; a pixel
limit checked on the header first), so corrupt bytes raise instead of crashing the process.
"""

from __future__ import annotations

import io
import json
import struct
import tarfile
import zlib
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
import webdataset as wds
from torch import Tensor
from torchvision.io import encode_jpeg, encode_png

from intern_data.imaging import MAX_PIXELS, ImageDecodeError, decode_image, jpeg_shape, kept_format
from intern_data.schema import IMAGE_BYTES, Sample

IMAGE_FORMATS = ("keep", "jpg", "png")
DEPTH_FORMATS = ("npy", "png16")
MEMBER_EXTENSIONS = frozenset({"json", "jpg", "png", "mask.png", "depth.npy", "depth.png"})
PROBLEM = "__problem__"
_JSON_FIELDS = ("source", "text", "label", "label_space")
_PNG16_MAX = 65535


class SampleDecodeError(ValueError):
    """A tar sample that cannot be decoded: a member is missing or its bytes are corrupt."""


def escape_key(key: str) -> str:
    """The tar member prefix of ``key``: ``%`` and ``.`` escaped so webdataset groups members right."""
    return key.replace("%", "%25").replace(".", "%2E")


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data and the CRC-32 of type and data (PNG spec, section 5.3)."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


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
    header = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + png_chunk(b"IEND", b"")
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


def _encode_image(sample: Sample, image_format: str, quality: int) -> tuple[str, bytes, bool]:
    """The image member's extension and bytes, and whether they are the source file's (``keep``)."""
    if image_format == "keep":
        data = sample.get(IMAGE_BYTES)
        ext = kept_format(data) if data is not None else None
        if ext is not None:
            return ext, data, True
        image_format = "png"
    image = sample["image"].contiguous()
    if image_format == "jpg":
        return "jpg", encode_jpeg(image, quality=quality).numpy().tobytes(), False
    return "png", encode_png(image, compression_level=6).numpy().tobytes(), False


def encode_sample(
    sample: Sample, *, image_format: str = "jpg", quality: int = 95, depth_format: str = "npy"
) -> dict[str, bytes | str]:
    """Encode a (validated) sample as webdataset members: ``{"__key__": prefix, ext: bytes, ...}``.

    Args:
        sample: a sample that passes :func:`~intern_data.schema.validate_sample`.
        image_format: ``"keep"`` (the source file's PNG or JPEG bytes, else lossless PNG), ``"jpg"``
            (lossy, ``quality``) or ``"png"`` (lossless).
        quality: JPEG quality, 1-100.
        depth_format: ``"npy"`` (float32, exact) or ``"png16"`` (uint16 millimetres).
    """
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {IMAGE_FORMATS}, got {image_format!r}")
    if depth_format not in DEPTH_FORMATS:
        raise ValueError(f"depth_format must be one of {DEPTH_FORMATS}, got {depth_format!r}")
    ext, data, kept = _encode_image(sample, image_format, quality)
    members: dict[str, bytes] = {ext: data}
    if "mask" in sample:
        members["mask.png"] = _encode_mask(sample["mask"])
    if "depth" in sample:
        ext, data = _encode_depth(sample["depth"], depth_format)
        members[ext] = data
    meta: dict[str, Any] = {"key": sample["__key__"], "members": sorted(members)}
    meta.update({name: sample[name] for name in _JSON_FIELDS if name in sample})
    if kept:
        meta["image_kept"] = True
    for name in ("boxes", "box_labels", "proposals"):
        if name in sample:
            meta[name] = sample[name].tolist()
    members["json"] = _json_bytes(meta)
    return {"__key__": escape_key(sample["__key__"]), **members}


def members_crc(members: Mapping[str, Any]) -> int:
    """crc32 over a sample's members (extension names and bytes, in name order; ``__`` keys left out),
    as the shard's key list records it."""
    crc = 0
    for ext in sorted(k for k in members if not k.startswith("__")):
        crc = zlib.crc32(members[ext], zlib.crc32(ext.encode() + b"\0", crc))
    return crc


def _decode_png_plane(data: bytes, max_pixels: int = MAX_PIXELS, verified: bool = False) -> Tensor:
    return decode_image(data, "plane", max_pixels, verified=verified)[0]


def _decode_npy(data: bytes, max_pixels: int) -> np.ndarray:
    """A ``.npy`` array, its declared size checked against ``max_pixels`` before it is allocated."""
    buffer = io.BytesIO(data)
    version = np.lib.format.read_magic(buffer)
    if version == (1, 0):
        shape, _, _ = np.lib.format.read_array_header_1_0(buffer)
    else:
        shape, _, _ = np.lib.format.read_array_header_2_0(buffer)
    if int(np.prod(shape)) > max_pixels:
        raise ImageDecodeError(f"array declares shape {shape}, over the limit max_pixels={max_pixels}")
    buffer.seek(0)
    return np.load(buffer, allow_pickle=False)


def decode_sample(
    raw: dict[str, Any],
    *,
    max_pixels: int = MAX_PIXELS,
    images: bool = True,
    verified: bool = False,
    defer_jpeg: bool = False,
) -> Sample:
    """Decode the members of one tar sample (as :func:`iter_tar_samples` gives them) to a Sample.

    Args:
        raw: the sample's members by extension, with ``__key__`` (the prefix).
        max_pixels: images, planes and depth arrays declaring more pixels are corrupt.
        images: decode ``image``, ``mask`` and ``depth``; False gives the JSON's fields only (cheap).
        verified: the members matched their crc32 in the shard's key list (faster decoding of the PNGs
            this codec encoded, :func:`intern_data.imaging.decode_image`).
        defer_jpeg: a verified JPEG this codec encoded is not decoded: ``image`` is a placeholder of the
            shape its header declares (no pixels: a zero-stride view) and ``IMAGE_BYTES`` its bytes, for
            a batched decoder (:mod:`intern_data.shards.batched`). Its bytes are those an encoder wrote
            from a whole image, so they decode; anything else is decoded here as usual.

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
            if ext in meta["members"] and images:
                current = ext
                kept = meta.get("image_kept", False)  # an outside file: Pillow, as for unverified bytes
                if defer_jpeg and ext == "jpg" and verified and not kept:
                    shape = jpeg_shape(raw[ext], max_pixels)
                    sample["image"] = torch.empty((), dtype=torch.uint8).expand(shape)
                    sample[IMAGE_BYTES] = bytes(raw[ext])
                else:
                    sample["image"] = decode_image(
                        raw[ext], "image", max_pixels, verified=verified and not kept
                    )
        if not any(ext in meta["members"] for ext in ("jpg", "png")):
            raise ValueError("no image member listed")
        if "boxes" in meta:
            current = "json"
            sample["boxes"] = torch.tensor(meta["boxes"], dtype=torch.float32).reshape(-1, 4)
            sample["box_labels"] = torch.tensor(meta["box_labels"], dtype=torch.int64).reshape(-1)
        if "proposals" in meta:
            sample["proposals"] = torch.tensor(meta["proposals"], dtype=torch.float32).reshape(-1, 4)
        if not images:
            return sample
        if "mask.png" in meta["members"]:
            current = "mask.png"
            sample["mask"] = _decode_png_plane(raw["mask.png"], max_pixels, verified).to(torch.int64)
        if "depth.npy" in meta["members"]:
            current = "depth.npy"
            depth = _decode_npy(raw["depth.npy"], max_pixels)
            sample["depth"] = torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32))
        elif "depth.png" in meta["members"]:
            current = "depth.png"
            depth = _decode_png_plane(raw["depth.png"], max_pixels, verified)
            sample["depth"] = depth.to(torch.float32) / 1000.0
    except Exception as err:  # noqa: BLE001 - any decoder failure means corrupt bytes
        raise SampleDecodeError(
            f"sample {key!r}: member {current!r} is corrupt ({type(err).__name__}: {err})"
        ) from None
    return sample


def member_problem(name: str) -> str | None:
    """Why a tar member name could not have been written by this codec, or None for a plain one."""
    folder, _, base = name.rpartition("/")
    prefix, dot, ext = base.partition(".")
    if not dot or not prefix:
        return f"member {name!r} has no '<key>.<extension>' name"
    if name.startswith("/") or "." in folder or (folder and not all(folder.split("/"))):
        return f"member {name!r} is not a plain sample key (absolute, '..' or an empty part)"
    if ext not in MEMBER_EXTENSIONS:
        return f"member {name!r} has an unexpected extension {ext!r}"
    return None


def iter_tar_samples(url: str) -> Iterator[dict[str, Any]]:
    """The raw samples of one tar file, in order: consecutive members sharing a prefix, grouped.

    Each sample is ``{"__key__": prefix, "__url__": url, ext: bytes, ...}``. A member that could not
    have been written here (:func:`member_problem`, a repeated extension, not a regular file) is not
    grouped: it comes as ``{"__key__": its name, "__url__": url, "__problem__": why}``, in its place.

    Args:
        url: a local path (or anything ``webdataset.gopen`` opens).

    Raises:
        tarfile.TarError, OSError: the tar cannot be read (empty, not a tar, truncated, missing).
    """
    current: dict[str, Any] | None = None
    with wds.gopen(url, "rb") as stream, tarfile.open(fileobj=stream, mode="r|*") as tar:
        for member in tar:
            tar.members = []  # a stream keeps every header otherwise
            problem = member_problem(member.name) if member.isreg() else f"member {member.name!r} is no file"
            prefix, _, ext = member.name.partition(".") if problem is None else (member.name, "", "")
            if problem is None and current is not None and prefix == current["__key__"] and ext in current:
                problem = f"member {member.name!r} appears twice"
            if problem is not None:
                yield {"__key__": member.name, "__url__": url, PROBLEM: problem}
                continue
            if current is None or prefix != current["__key__"]:
                if current is not None:
                    yield current
                current = {"__key__": prefix, "__url__": url}
            current[ext] = tar.extractfile(member).read()  # type: ignore[union-attr]
    if current is not None:
        yield current
