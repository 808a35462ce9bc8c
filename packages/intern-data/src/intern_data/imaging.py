"""Image decoding that cannot crash the process, with a pixel limit checked before decoding.

torchvision's ``decode_png`` (0.29) ends the process with SIGSEGV on some corrupt PNGs (a libpng
error such as ``bad adaptive filter value``), so PNG and every format but JPEG are decoded with
Pillow, which raises instead. JPEG stays with torchvision's ``decode_jpeg`` (libjpeg-turbo, faster
than Pillow on small images), whose libjpeg errors are raised as exceptions. Bytes already
``verified`` (their crc32 matched a shard's key list: exactly what torchvision's encoder wrote) are
not corrupt, so a verified PNG goes to ``decode_png``, which is 1.7x faster than Pillow at 32 px.

The size a PNG (IHDR) or JPEG (SOF) header declares is read before anything is decoded, so a
decompression bomb (a small file declaring a huge image) is refused without allocating it; other
formats are checked on the size Pillow reads from their header, before ``load()``. Every failure is
an :class:`ImageDecodeError` saying what is wrong; the caller adds which file or sample it was.
"""

from __future__ import annotations

import io
import re
import struct
import warnings
from typing import Literal

import numpy as np
import torch
from PIL import Image, PngImagePlugin
from torch import Tensor
from torchvision.io import ImageReadMode, decode_jpeg, decode_png

MAX_PIXELS = 100_000_000
"""Default pixel limit (width x height) of one image: larger ones are refused before decoding."""

Mode = Literal["image", "rgb", "plane"]
"""``image``: uint8, 1 or 3 channels as stored (alpha dropped, palette expanded, 16 bit -> high byte);
``rgb``: uint8, 3 channels; ``plane``: one channel as stored, uint8 or uint16, palette kept as indices."""

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8"
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I")


class ImageDecodeError(ValueError):
    """Bytes that are not a decodable image, or an image over the pixel limit."""


def image_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` declared by a PNG or JPEG header; None for other formats.

    Raises:
        ImageDecodeError: a PNG or JPEG whose header is damaged.
    """
    if data[:8] == _PNG_SIGNATURE:
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise ImageDecodeError("PNG without an IHDR header")
        return struct.unpack(">II", data[16:24])
    if data[:2] == _JPEG_SOI:
        return _jpeg_frame(data)[:2]
    return None


def kept_format(data: bytes) -> str | None:
    """``"png"`` or ``"jpg"`` when ``data`` may be stored as it is: a PNG, or a grey or colour JPEG (not
    a 4-component CMYK one, which ``image`` mode would decode to other colours); None for anything else.

    Raises:
        ImageDecodeError: a PNG or JPEG whose header is damaged.
    """
    if data[:8] == _PNG_SIGNATURE:
        return "png"
    if data[:2] == _JPEG_SOI and _jpeg_frame(data)[2] in (1, 3):
        return "jpg"
    return None


def _jpeg_frame(data: bytes) -> tuple[int, int, int]:
    """``(width, height, components)`` of a JPEG's frame header (SOF)."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise ImageDecodeError(f"JPEG marker expected at byte {i}")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
        elif marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
        elif marker in (0xD9, 0xDA):  # end of image or image data before a frame header
            break
        elif marker in _JPEG_SOF:
            if i + 10 > len(data):
                break
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height, data[i + 9]
        else:
            i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    raise ImageDecodeError("JPEG without a frame header (SOF) before its image data")


def jpeg_shape(data: bytes, max_pixels: int = MAX_PIXELS) -> tuple[int, int, int]:
    """``(channels, height, width)`` a JPEG decodes to, from its frame header alone.

    Raises:
        ImageDecodeError: not a JPEG, a damaged header, over ``max_pixels``, or neither grey nor colour.
    """
    if data[:2] != _JPEG_SOI:
        raise ImageDecodeError("not a JPEG")
    width, height, components = _jpeg_frame(data)
    check_pixels(width, height, max_pixels)
    if components not in (1, 3):
        raise ImageDecodeError(f"JPEG with {components} components (grey or colour expected)")
    return components, height, width


def check_pixels(width: int, height: int, max_pixels: int) -> None:
    """Raise :class:`ImageDecodeError` when ``width x height`` is over ``max_pixels``."""
    if width * height > max_pixels:
        raise ImageDecodeError(
            f"image declares {width}x{height} = {width * height} pixels, "
            f"over the limit max_pixels={max_pixels}"
        )


def decode_image(
    data: bytes, mode: Mode = "image", max_pixels: int = MAX_PIXELS, *, verified: bool = False
) -> Tensor:
    """Decode image bytes (JPEG, PNG, or any format Pillow reads) to a C x H x W tensor (see :data:`Mode`);
    ``verified``: the bytes matched a checksum of what this package's encoder wrote (module docstring).

    Raises:
        ImageDecodeError: the bytes are not a decodable image, the image is over ``max_pixels``, or
            (``plane``) it has more than one channel.
    """
    size = image_size(data)
    if size is not None:
        check_pixels(*size, max_pixels)
    if data[:2] == _JPEG_SOI or (verified and data[:8] == _PNG_SIGNATURE):
        image = _decode_with_torchvision(data, mode)
    else:
        image = _decode_with_pillow(data, mode, max_pixels)
    return _channels(image, mode)


def _decode_with_torchvision(data: bytes, mode: Mode) -> Tensor:
    decode = decode_jpeg if data[:2] == _JPEG_SOI else decode_png
    try:
        return decode(
            torch.frombuffer(bytearray(data), dtype=torch.uint8),
            mode=ImageReadMode.RGB if mode == "rgb" else ImageReadMode.UNCHANGED,
        )
    except RuntimeError as err:
        what = re.sub(r"^\w+, \S+:\d+, ", "", str(err))  # torchvision's "<function>, <file>:<line>, "
        raise ImageDecodeError(f"cannot decode image ({what})") from None


def _decode_with_pillow(data: bytes, mode: Mode, max_pixels: int) -> Tensor:
    try:
        with _open(data) as img:
            check_pixels(*img.size, max_pixels)
            array = _array(img, mode)
    except ImageDecodeError:
        raise
    except Exception as err:  # noqa: BLE001 - Pillow raises many types for corrupt bytes
        raise ImageDecodeError(f"cannot decode image ({type(err).__name__}: {err})") from None
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    return torch.from_numpy(array.copy())


def _open(data: bytes) -> Image.Image:
    """Pillow's image over ``data``, header read only; the pixel limit is ours, not Pillow's."""
    if data[:8] == _PNG_SIGNATURE:
        return PngImagePlugin.PngImageFile(io.BytesIO(data))  # Image.open would apply Pillow's own limit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(io.BytesIO(data))


def _array(img: Image.Image, mode: Mode) -> np.ndarray:
    """The pixels of ``img`` as an H x W (x C) array in the layout ``mode`` asks for."""
    if img.mode in _SIXTEEN_BIT:
        array = np.asarray(img)
        if mode == "plane":
            if array.min() < 0 or array.max() > 65535:
                raise ImageDecodeError(f"pixel values of mode {img.mode} do not fit 16 bits")
            return array.astype(np.uint16)
        return (array.astype(np.uint32) >> 8).astype(np.uint8)  # a 16-bit image: keep the high byte
    if mode == "plane":
        if img.mode not in ("L", "P", "1"):
            raise ImageDecodeError(
                f"must be a single-channel (grey or palette) image, got mode {img.mode} "
                f"({len(img.getbands())} channels)"
            )
        return np.asarray(img.convert("L") if img.mode == "1" else img)
    if mode == "image" and img.mode in ("L", "LA", "1"):
        return np.asarray(img.convert("L"))
    return np.asarray(img if img.mode == "RGB" else img.convert("RGB"))


def _channels(image: Tensor, mode: Mode) -> Tensor:
    """1 or 3 channels for ``image``, 3 for ``rgb``, exactly 1 for ``plane``."""
    channels = image.shape[0]
    if mode == "plane":
        if channels != 1:
            raise ImageDecodeError(
                f"must be a single-channel (grey or palette) image, got {channels} channels"
            )
        return image
    if channels in (2, 4):  # grey or colour with alpha
        image = image[: channels - 1]
    if mode == "rgb" and image.shape[0] == 1:
        image = image.expand(3, -1, -1).contiguous()
    return image
