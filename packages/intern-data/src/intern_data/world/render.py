"""Vectorised numpy rasterisation: camera geometry, backgrounds, silhouettes, textures, camera effects.

Silhouettes are approximate signed distances in units of the object radius (negative inside), so an
object's coverage is anti-aliased by clipping ``0.5 - distance * radius``. Textures live in the
object's own rotated frame. Images are float32 channel-first (3 x H x W) in [0, 1], so per-pixel
maps broadcast over the colour axis cheaply. Nothing here loops over pixels.
"""

import colorsys
from dataclasses import dataclass
from functools import cache

import numpy as np

from .domains import Domain

MAX_DEPTH = 50.0  # metres; the ground is clipped here near the horizon
F32 = np.float32


@dataclass(frozen=True)
class Camera:
    """A pinhole camera looking horizontally over a ground plane.

    ``horizon`` is the horizon row in pixels, ``height`` the camera height in metres, ``focal`` the
    focal length in pixels; ``wall`` the distance of a fronto-parallel back wall in metres, if any.
    """

    size: int
    horizon: float
    height: float
    focal: float
    wall: float | None

    def ground_row(self, z: float) -> float:
        """Image row where the ground at distance ``z`` appears."""
        return self.horizon + self.height * self.focal / z


def hsv(h: float, s: float, v: float) -> np.ndarray:
    """One RGB colour in [0, 1], shaped 3 x 1 x 1, from hue (wrapping), saturation and value (clipped)."""
    rgb = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return np.array(rgb, F32).reshape(3, 1, 1)


def frac(x: np.ndarray) -> np.ndarray:
    """``x mod 1`` (much faster than ``np.mod`` on float32)."""
    return x - np.floor(x)


@cache
def pixel_centres(size: int) -> np.ndarray:
    """Pixel-centre coordinates 0.5 .. size - 0.5 (cached, do not modify)."""
    return np.arange(size, dtype=F32) + F32(0.5)


@cache
def _upsampler(size: int, cells: int) -> np.ndarray:
    """Bilinear interpolation matrix (size x cells) from a coarse grid to pixel centres."""
    pos = np.clip(pixel_centres(size) / size * (cells - 1), 0, cells - 1)
    lo = np.minimum(pos.astype(int), cells - 2)
    frac = pos - lo
    mat = np.zeros((size, cells), F32)
    mat[np.arange(size), lo] = 1 - frac
    mat[np.arange(size), lo + 1] = frac
    return mat


def smooth_noise(rng: np.random.Generator, size: int, cells: int = 5) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a random ``cells`` x ``cells`` grid upsampled bilinearly."""
    up = _upsampler(size, cells)
    return up @ rng.random((cells, cells), dtype=F32) @ up.T


# ---------------------------------------------------------------------------------------------------
# Silhouettes: (u, v, rho, theta) in the object frame, radius 1, v pointing down -> signed distance.


def _convex(u: np.ndarray, v: np.ndarray, pts: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Signed distance (exact inside, approximate outside) to a convex polygon given clockwise on screen."""
    sd = None
    for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1], strict=True):
        nx, ny = y1 - y0, x0 - x1
        norm = (nx * nx + ny * ny) ** 0.5
        d = (u - x0) * F32(nx / norm) + (v - y0) * F32(ny / norm)
        sd = d if sd is None else np.maximum(sd, d)
    return sd


def _norm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(a * a + b * b)


def _box(u: np.ndarray, v: np.ndarray, cu: float, cv: float, hu: float, hv: float) -> np.ndarray:
    qu, qv = np.abs(u - cu) - hu, np.abs(v - cv) - hv
    return _norm(np.maximum(qu, 0), np.maximum(qv, 0)) + np.minimum(np.maximum(qu, qv), 0)


def _lobes(rho: np.ndarray, theta: np.ndarray, k: int, depth: float) -> np.ndarray:
    return (rho - (1 - depth) - depth * np.cos(k * theta)) * F32(0.7)


def _polygon(rho: np.ndarray, theta: np.ndarray, n: int, radius: float) -> np.ndarray:
    sector = 2 * np.pi / n
    return rho * np.cos(frac(theta * F32(1 / sector)) * F32(sector) - F32(sector / 2)) - F32(
        radius * np.cos(np.pi / n)
    )


def _arms(rho: np.ndarray, theta: np.ndarray, k: int, width: float) -> np.ndarray:
    sector = 2 * np.pi / k
    t = frac(theta * F32(1 / sector) + F32(0.5)) * F32(sector) - F32(sector / 2)
    au, av = rho * np.cos(t), rho * np.sin(t)
    return np.minimum(_box(au, av, 0.5, 0.0, 0.5, width), rho - F32(0.32))


_TAIL = ((0.45, 0.0), (1.0, -0.5), (1.0, 0.5))
_NOTCH = ((0.72, 0.0), (1.05, -0.22), (1.05, 0.22))
_FIN = ((-0.5, -0.3), (0.1, -0.3), (-0.3, -0.72))
_ROOF = ((-0.52, -0.42), (0.0, -1.0), (0.52, -0.42))


POLAR_SHAPES = frozenset({"flower", "gem", "ring", "spinner", "tuft"})  # those that need the angle theta


def silhouette(
    shape: str, part: int, u: np.ndarray, v: np.ndarray, rho: np.ndarray, theta: np.ndarray | None
) -> np.ndarray:
    """Signed distance of super-category ``shape`` (or clutter ``rock``/``stick``/``tuft``), variant ``part``.

    ``theta`` (the polar angle) is only needed, and only computed, for ``POLAR_SHAPES``.
    """
    if shape == "flower":
        return _lobes(rho, theta, 5 if part == 0 else 8, 0.3)
    if shape == "gem":
        return _polygon(rho, theta, 3, 1.1) if part == 0 else _polygon(rho, theta, 6, 1.0)
    if shape == "ring":
        if part == 0:
            return np.maximum(rho - 1, F32(0.6) - rho)
        return np.maximum(np.maximum(rho - 1, F32(0.35) - rho), (F32(0.5) - np.abs(theta)) * rho)
    if shape == "fish":
        body = (_norm((u + F32(0.15)) * F32(1 / 0.7), v * F32(1 / 0.42)) - 1) * F32(0.42)
        tail = _convex(u, v, _TAIL)
        if part == 1:
            tail = np.maximum(tail, -_convex(u, v, _NOTCH))
            body = np.minimum(body, _convex(u, v, _FIN))
        return np.minimum(body, tail)
    if shape == "tower":
        body = _box(u, v, 0.0, 0.28, 0.38, 0.7)
        top = _convex(u, v, _ROOF) if part == 0 else _norm(u, v + F32(0.42)) - F32(0.4)
        return np.minimum(body, top)
    if shape == "spinner":
        return _arms(rho, theta, 4 if part == 0 else 3, 0.2)
    if shape == "rock":
        return (_norm(u, v * F32(1 / 0.6)) - 1) * F32(0.6)
    if shape == "stick":
        return _box(u, v, 0.0, 0.0, 1.0, 0.12)
    if shape == "tuft":
        return _lobes(rho, theta, 7, 0.55)
    raise ValueError(f"unknown shape {shape!r}")


def part_paint(shape: str, u: np.ndarray, v: np.ndarray, rho: np.ndarray) -> np.ndarray | None:
    """Where a fixed part takes the secondary colour (flower centre, fish eye), or None."""
    if shape == "flower":
        return rho < 0.28
    if shape == "fish":
        return _norm(u + F32(0.55), v + F32(0.08)) < 0.09
    return None


def texture(
    kind: str, u: np.ndarray, v: np.ndarray, rho: np.ndarray, freq: float, phase: np.ndarray
) -> np.ndarray | None:
    """Secondary-colour weight in [0, 1] of pattern ``kind`` (None: solid); ``phase``: 2 offsets in [0, 1)."""
    if kind == "solid":
        return None
    if kind == "striped":
        return (np.sin(F32(2 * np.pi * freq) * u + F32(2 * np.pi * phase[0])) > 0).astype(F32)
    if kind == "spotted":
        cu = frac(u * F32(freq * 1.3) + F32(phase[0])) - F32(0.5)
        cv = frac(v * F32(freq * 1.3) + F32(phase[1])) - F32(0.5)
        return (cu * cu + cv * cv < F32(0.08)).astype(F32)
    if kind == "checkered":
        cells = np.floor(u * F32(freq) + F32(phase[0])) + np.floor(v * F32(freq) + F32(phase[1]))
        return 2 * frac(cells * F32(0.5))  # the parity of the cell
    if kind == "ringed":
        return (np.sin(F32(2 * np.pi * freq) * rho + F32(2 * np.pi * phase[0])) > 0).astype(F32)
    if kind == "graded":
        return np.clip(F32(0.5) + F32(0.6) * u, 0, 1)
    raise ValueError(f"unknown texture {kind!r}")


# ---------------------------------------------------------------------------------------------------
# Backgrounds and camera effects.


def _jitter(rng: np.random.Generator, rgb: tuple[float, float, float], amount: float = 0.06) -> np.ndarray:
    return np.clip(np.asarray(rgb, F32) + rng.uniform(-amount, amount, 3).astype(F32), 0, 1).reshape(3, 1, 1)


def background(rng: np.random.Generator, domain: Domain, cam: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Backdrop and ground of ``domain`` seen by ``cam``: RGB (3 x H x W) and depth (H x W, metres).

    Rows whose centre lies below ``limit`` (the horizon, or the foot of the wall) show the ground
    at depth ``height * focal / (row - horizon)``; rows above show the backdrop (depth 0 for sky
    and open water, the wall distance for a wall).
    """
    size = cam.size
    rows = pixel_centres(size)[:, None]
    limit = cam.horizon if cam.wall is None else cam.ground_row(cam.wall)
    g0 = min(max(int(np.floor(limit - 0.5)) + 1, 0), size)  # first ground row
    rgb = np.empty((3, size, size), F32)
    depth = np.empty((size, size), F32)

    top, horizon = _jitter(rng, domain.top), _jitter(rng, domain.horizon)
    if g0 > 0:
        t = rows[:g0] * F32(1 / max(limit, 1.0))
        noise = smooth_noise(rng, size)[:g0] - F32(0.5)
        rgb[:, :g0] = top + (horizon - top) * t + noise * F32(0.12)
        depth[:g0] = 0.0 if cam.wall is None else cam.wall
    if g0 < size:
        z = np.minimum(F32(cam.height * cam.focal) / (rows[g0:] - F32(cam.horizon)), F32(MAX_DEPTH))
        gx = (pixel_centres(size) - F32(size / 2)) * (z / F32(cam.focal))  # ground coordinates, metres
        ph = rng.random(2, dtype=F32)
        if domain.ground == "grass":
            mix = F32(0.35) * (np.sin(z * F32(5.0) + ph[0] * 6) > 0) + F32(0.65) * rng.random(gx.shape, F32)
        elif domain.ground == "sand":
            mix = F32(0.5) + F32(0.5) * np.sin(F32(2.5) * z + F32(0.8) * np.sin(gx * F32(1.3) + ph[0] * 6))
        elif domain.ground == "tiles":
            mix = 2 * frac(F32(0.5) * (np.floor(gx / F32(0.6) + ph[0]) + np.floor(z / F32(0.6) + ph[1])))
        else:
            mix = smooth_noise(rng, size, 4)[g0:]
        ga, gb = _jitter(rng, domain.ground_a), _jitter(rng, domain.ground_b)
        rgb[:, g0:] = ga + (gb - ga) * mix
        depth[g0:] = z
    return rgb, depth


@cache
def _blur_matrix(size: int, sigma_tenths: int) -> np.ndarray:
    """Row-normalised Gaussian matrix (size x size): a 1-D blur that renormalises at the edges."""
    pos = np.arange(size, dtype=np.float64)
    w = np.exp(-0.5 * ((pos[:, None] - pos[None, :]) / (sigma_tenths / 10)) ** 2)
    return (w / w.sum(axis=1, keepdims=True)).astype(F32)


def finish(rng: np.random.Generator, rgb: np.ndarray, depth: np.ndarray, domain: Domain) -> np.ndarray:
    """Apply the domain's look and the camera's nuisances to ``rgb`` (in place); return uint8 3 x H x W.

    In order: caustics, depth haze, light colour and gamma, a small per-image colour shift, the
    sketch style, blur and sensor noise.
    """
    size = rgb.shape[1]
    if domain.caustics:
        ph = rng.random(2) * 6
        yy, xx = pixel_centres(size)[:, None], pixel_centres(size)
        wave = np.sin(
            xx * F32(0.35 * 64 / size) + F32(ph[0]) + np.sin(yy * F32(0.3 * 64 / size) + F32(ph[1]))
        )
        rgb *= F32(0.85) + F32(0.3) * wave * wave
    if domain.haze > 0:
        dist = np.where(depth > 0, depth, F32(MAX_DEPTH))
        keep = np.exp(dist * F32(-domain.haze * rng.uniform(0.7, 1.3)))
        haze = np.asarray(domain.haze_rgb, F32).reshape(3, 1, 1)
        rgb -= haze
        rgb *= keep
        rgb += haze
    shift = rng.uniform(0.9, 1.1, 3) * rng.uniform(0.85, 1.15) * np.asarray(domain.gain)
    rgb *= shift.astype(F32).reshape(3, 1, 1)
    np.clip(rgb, 0, 1, out=rgb)
    if domain.gamma != 1.0:
        rgb **= F32(domain.gamma)
    if domain.sketch:
        lum = rgb.mean(axis=0)
        edge = np.abs(np.diff(lum, axis=0, append=lum[-1:])) + np.abs(
            np.diff(lum, axis=1, append=lum[:, -1:])
        )
        rgb *= F32(1 - domain.sketch)
        rgb += F32(domain.sketch) * np.asarray(domain.top, F32).reshape(3, 1, 1)
        rgb *= np.clip(1 - F32(4.0) * edge, 0, 1)
    sigma = rng.uniform(0, domain.blur) * size / 64
    if sigma > 0.3:
        mat = _blur_matrix(size, round(sigma * 10))
        rgb = mat @ rgb @ mat.T
    noise = rng.random(rgb.shape, dtype=F32)
    noise -= F32(0.5)
    rgb += noise * F32(rng.uniform(0, domain.noise) * 12**0.5)  # uniform noise of that standard deviation
    rgb *= 255
    rgb += 0.5
    return np.clip(rgb, 0, 255, out=rgb).astype(np.uint8)
