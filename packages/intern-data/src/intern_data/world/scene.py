"""Scenes: objects placed on the ground in front of a camera, drawn far to near with a depth test.

Every object rests on (or, for fish, floats above) the ground plane at a depth ``z``; its pixel size
is ``focal * size / z``, so size, height in the image and depth agree. The surface of an object bulges
towards the camera by up to half its size. A pixel belongs to the nearest object covering it, and
the depth map, instance map and image all come from that one depth test.

Box rule: an object gets a box (the xyxy extent of its visible pixels, pixel-edge coordinates) when
at least ``MIN_VISIBLE`` of its in-image silhouette is visible and at least ``MIN_PIXELS`` pixels;
more occluded objects keep their mask pixels but get no box.
"""

from dataclasses import dataclass, field

import numpy as np

from .categories import FINES, PALETTES, SUPERS, TEXTURES, Palette
from .domains import Domain
from .render import (
    F32,
    POLAR_SHAPES,
    Camera,
    background,
    finish,
    hsv,
    part_paint,
    pixel_centres,
    silhouette,
    texture,
)

MIN_VISIBLE = 0.3
MIN_PIXELS = 4


@dataclass(eq=False)
class Thing:
    """One object in a scene; ``fine`` is its fine category id, or -1 for clutter (rocks, sticks, tufts)."""

    fine: int
    shape: str
    part: int
    texture: str
    primary: np.ndarray
    secondary: np.ndarray
    size_m: float
    scale: float  # instance size relative to its category's typical size
    angle: float
    aspect: float
    flip: bool
    freq: float
    phase: np.ndarray
    z: float = 0.0
    cx: float = 0.0
    cy: float = 0.0
    radius: float = 0.0
    window: tuple[int, int, int, int] = (0, 0, 0, 0)  # y0, y1, x0, x1
    cover: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))  # silhouette in window
    surface: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), F32))  # depth in window
    visible: int = 0
    box: tuple[float, float, float, float] | None = None


@dataclass
class Scene:
    """A rendered scene: uint8 3 x H x W image, depth (metres, 0 = sky or open water), instance ids
    (-1 = background; otherwise an index into ``things``, which are sorted far to near)."""

    domain: Domain
    camera: Camera
    image: np.ndarray
    depth: np.ndarray
    instances: np.ndarray
    things: list[Thing]


def _colours(rng: np.random.Generator, pal: Palette) -> tuple[np.ndarray, np.ndarray]:
    h = pal.hue + rng.normal(0, 0.02)
    s, v = pal.sat * rng.uniform(0.85, 1.1), pal.val * rng.uniform(0.85, 1.1)
    second = {
        "light": (h, s * 0.25, v * 1.2 + 0.2),
        "dark": (h, s, v * 0.4),
        "complement": (h + 0.5, s * 0.8, v),
    }
    return hsv(h, s, v), hsv(*second[pal.secondary])


def category_thing(rng: np.random.Generator, fine: int) -> Thing:
    """An unplaced instance of fine category ``fine`` with its sampled nuisances."""
    cat = FINES[fine]
    sup = SUPERS[cat.super_id]
    primary, secondary = _colours(rng, PALETTES[cat.palette])
    scale = rng.uniform(0.8, 1.25)
    return Thing(
        fine=fine,
        shape=sup.name,
        part=cat.part,
        texture=TEXTURES[cat.texture].name,
        primary=primary,
        secondary=secondary,
        size_m=sup.size_m * scale,
        scale=scale,
        angle=rng.uniform(-sup.max_tilt, sup.max_tilt),
        aspect=rng.uniform(0.85, 1.18),
        flip=bool(rng.random() < 0.5),
        freq=1.5 * rng.uniform(0.85, 1.15),
        phase=rng.random(2),
    )


def clutter_thing(rng: np.random.Generator) -> Thing:
    """An unplaced piece of clutter: a rock, a stick or a tuft of grass."""
    shape = ("rock", "stick", "tuft")[rng.integers(3)]
    hue = {"rock": 0.08, "stick": 0.07, "tuft": 0.3}[shape]
    primary = hsv(hue + rng.normal(0, 0.03), rng.uniform(0.1, 0.6), rng.uniform(0.25, 0.6))
    size = {"rock": 0.18, "stick": 0.3, "tuft": 0.2}[shape] * rng.uniform(0.7, 1.4)
    return Thing(
        fine=-1,
        shape=shape,
        part=0,
        texture="spotted" if rng.random() < 0.3 else "solid",
        primary=primary,
        secondary=primary * F32(0.6),
        size_m=size,
        scale=1.0,
        angle=rng.uniform(-np.pi, np.pi),
        aspect=rng.uniform(0.9, 1.1),
        flip=False,
        freq=2.0,
        phase=rng.random(2),
    )


def _lift(rng: np.random.Generator, thing: Thing) -> float:
    """Height of the object's centre above its ground contact, in radii (floating things are higher)."""
    return 1.2 + rng.uniform(0, 1.5) if thing.fine >= 0 and FINES[thing.fine].super.floats else 0.85


def _place(thing: Thing, cam: Camera, z: float, cx: float, lift: float) -> None:
    """Put ``thing`` at depth ``z`` and column ``cx``, its centre ``lift`` radii above its ground row."""
    thing.z, thing.cx = z, cx
    thing.radius = cam.focal * thing.size_m / z
    thing.cy = cam.ground_row(z) - thing.radius * lift


def _draw(thing: Thing, k: int, rgb: np.ndarray, zbuf: np.ndarray, instances: np.ndarray, light: np.ndarray):
    """Rasterise ``thing`` inside its window, depth-tested against the objects drawn so far."""
    size = rgb.shape[1]
    r = thing.radius
    reach = r * 1.25 + 1
    y0, y1 = max(int(thing.cy - reach), 0), min(int(thing.cy + reach) + 1, size)
    x0, x1 = max(int(thing.cx - reach), 0), min(int(thing.cx + reach) + 1, size)
    thing.window = (y0, y1, x0, x1)
    if y1 <= y0 or x1 <= x0:
        return
    centres = pixel_centres(size)
    dy = centres[y0:y1, None] - F32(thing.cy)
    dx = centres[None, x0:x1] - F32(thing.cx)
    a = thing.aspect**0.5
    c, s = np.cos(thing.angle) / r, np.sin(thing.angle) / r
    flip = -1.0 if thing.flip else 1.0
    u = dx * F32(flip * c / a) + dy * F32(flip * s / a)
    v = dy * F32(c * a) - dx * F32(s * a)
    r2 = u * u + v * v
    rho = np.sqrt(r2)
    theta = np.arctan2(v, u) if thing.shape in POLAR_SHAPES else None
    alpha = silhouette(thing.shape, thing.part, u, v, rho, theta) * F32(-r) + F32(0.5)
    np.minimum(np.maximum(alpha, 0, out=alpha), 1, out=alpha)
    weight = texture(thing.texture, u, v, rho, thing.freq, thing.phase)
    paint = part_paint(thing.shape, u, v, rho)
    if paint is not None:
        weight = paint.astype(F32) if weight is None else np.maximum(weight, paint)
    shade = dx * F32(-0.15 * light[0] / r) + (1 - dy * F32(0.15 * light[1] / r))
    if weight is None:
        colour = shade * thing.primary
    else:
        colour = (thing.primary + (thing.secondary - thing.primary) * weight) * shade
    surface = F32(thing.z) - F32(0.5 * thing.size_m) * np.sqrt(np.maximum(1 - r2, 0))
    zw = zbuf[y0:y1, x0:x1]
    front = surface < zw
    win = rgb[:, y0:y1, x0:x1]
    colour -= win
    colour *= alpha * front
    win += colour
    thing.cover = alpha >= 0.5
    thing.surface = surface
    own = thing.cover & front
    np.copyto(zw, surface, where=own)
    np.copyto(instances[y0:y1, x0:x1], np.int16(k), where=own)


def _find_boxes(things: list[Thing], instances: np.ndarray) -> None:
    """Count each object's visible pixels and give it a box if it passes the box rule."""
    for k, thing in enumerate(things):
        if thing.fine < 0:
            continue
        y0, y1, x0, x1 = thing.window
        vis = instances[y0:y1, x0:x1] == k
        thing.visible = int(np.count_nonzero(vis))
        if thing.visible < max(MIN_PIXELS, MIN_VISIBLE * np.count_nonzero(thing.cover)):
            continue
        rows, cols = np.flatnonzero(vis.any(axis=1)), np.flatnonzero(vis.any(axis=0))
        thing.box = (
            float(x0 + cols[0]),
            float(y0 + rows[0]),
            float(x0 + cols[-1] + 1),
            float(y0 + rows[-1] + 1),
        )


def make_camera(rng: np.random.Generator, size: int, domain: Domain) -> Camera:
    """A random camera: horizon row, height and, for wall backdrops, the wall distance."""
    wall = rng.uniform(6.0, 10.0) if domain.backdrop == "wall" else None
    return Camera(size, size * rng.uniform(0.22, 0.48), rng.uniform(0.6, 1.3), 0.9 * size, wall)


def compose(
    rng: np.random.Generator,
    size: int,
    domain: Domain,
    fines: list[int],
    main: bool,
    n_clutter: int,
) -> Scene:
    """Render a scene of ``domain`` holding objects of ``fines`` and ``n_clutter`` pieces of clutter.

    With ``main`` the first object is the subject of a classification image: near, large
    (two fifths to two thirds of the image across) and central, the camera height solved so that it
    rests on the ground, and the other objects are distractors 1.6-3.5 times farther. Otherwise
    objects spread over the ground between the nearest visible distance and three times farther.
    """
    cam = make_camera(rng, size, domain)
    things = [category_thing(rng, f) for f in fines]
    far = (cam.wall - 0.5) if cam.wall is not None else 25.0
    if main and things:
        subject, lift = things[0], _lift(rng, things[0])
        radius = size * rng.uniform(0.2, 0.32)
        z = cam.focal * subject.size_m / radius
        ground = size * rng.uniform(0.42, 0.62) + lift * radius
        cam = Camera(size, cam.horizon, (ground - cam.horizon) * z / cam.focal, cam.focal, cam.wall)
        _place(subject, cam, z, size * rng.uniform(0.3, 0.7), lift)
        rest = things[1:]
    else:
        rest = things
    near = cam.height * cam.focal / (size - cam.horizon)
    for thing in rest:
        z = things[0].z * rng.uniform(1.6, 3.5) if main else near * np.exp(rng.uniform(0.05, np.log(3)))
        _place(thing, cam, min(z, far), size * rng.uniform(0.08, 0.92), _lift(rng, thing))
    for _ in range(n_clutter):
        thing = clutter_thing(rng)
        _place(thing, cam, min(near * np.exp(rng.uniform(0, np.log(6))), far), size * rng.uniform(0, 1), 0.85)
        things.append(thing)
    things.sort(key=lambda t: -t.z)

    rgb, depth = background(rng, domain, cam)
    zbuf = np.full((size, size), np.inf, F32)
    instances = np.full((size, size), -1, np.int16)
    angle = rng.uniform(0, 2 * np.pi)
    light = np.array([np.cos(angle), np.sin(angle)], F32)
    for k, thing in enumerate(things):
        _draw(thing, k, rgb, zbuf, instances, light)
    _find_boxes(things, instances)
    depth = np.where(instances >= 0, zbuf, depth).astype(F32)
    return Scene(domain, cam, finish(rng, rgb, depth, domain), depth, instances, things)
