"""Background domains: what surrounds the objects and how the camera renders it.

Upstream datasets draw from the photo-like domains ``studio``, ``meadow``, ``indoor`` and ``desert``;
downstream GV-B tasks from shifted ones (``night``, ``underwater``, ``fog``, ``sketch``) so that
transfer crosses a change of style, palette and image statistics.
"""

from dataclasses import dataclass

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class Domain:
    """Backdrop, ground and camera look of one domain; colours are RGB in [0, 1]."""

    name: str
    backdrop: str  # "sky" (depth invalid above the horizon), "wall" (at a fixed distance) or "water"
    ground: str  # ground pattern: "grass", "sand", "tiles" or "plain"
    top: RGB  # sky/wall/water colour at the top of the image
    horizon: RGB  # ... and at the horizon
    ground_a: RGB  # the two colours the ground pattern mixes
    ground_b: RGB
    haze_rgb: RGB = (0.75, 0.8, 0.85)
    haze: float = 0.01  # extinction per metre (at night: how fast the camera's light falls off)
    gain: RGB = (1.0, 1.0, 1.0)  # light colour and strength
    gamma: float = 1.0
    noise: float = 0.02  # largest noise standard deviation (fraction of full scale)
    blur: float = 0.8  # largest blur sigma in pixels at 64 px
    caustics: bool = False
    sketch: float = 0.0  # > 0: a pencil sketch, colours mixed this much with the paper colour
    phrases: tuple[str, ...] = ()


DOMAINS: dict[str, Domain] = {
    d.name: d
    for d in (
        Domain(
            name="studio",
            backdrop="wall",
            ground="plain",
            top=(0.82, 0.80, 0.76),
            horizon=(0.70, 0.68, 0.64),
            ground_a=(0.55, 0.53, 0.50),
            ground_b=(0.62, 0.60, 0.57),
            haze=0.0,
            phrases=("in a studio", "against a plain backdrop"),
        ),
        Domain(
            name="meadow",
            backdrop="sky",
            ground="grass",
            top=(0.35, 0.55, 0.90),
            horizon=(0.75, 0.85, 0.95),
            ground_a=(0.25, 0.50, 0.15),
            ground_b=(0.40, 0.62, 0.22),
            phrases=("on a meadow", "in a grassy field", "on the grass"),
        ),
        Domain(
            name="indoor",
            backdrop="wall",
            ground="tiles",
            top=(0.72, 0.66, 0.58),
            horizon=(0.62, 0.56, 0.50),
            ground_a=(0.45, 0.35, 0.28),
            ground_b=(0.70, 0.65, 0.58),
            haze=0.0,
            phrases=("indoors", "in a room", "on a tiled floor"),
        ),
        Domain(
            name="desert",
            backdrop="sky",
            ground="sand",
            top=(0.45, 0.65, 0.92),
            horizon=(0.90, 0.85, 0.75),
            ground_a=(0.80, 0.65, 0.42),
            ground_b=(0.90, 0.78, 0.55),
            haze=0.015,
            phrases=("in the desert", "on sand dunes"),
        ),
        Domain(
            name="night",
            backdrop="sky",
            ground="grass",
            top=(0.02, 0.03, 0.10),
            horizon=(0.10, 0.12, 0.25),
            ground_a=(0.10, 0.20, 0.10),
            ground_b=(0.18, 0.28, 0.15),
            haze_rgb=(0.02, 0.03, 0.08),
            haze=0.15,
            gain=(0.75, 0.8, 1.0),
            gamma=1.2,
            noise=0.06,
            phrases=("at night", "in the dark"),
        ),
        Domain(
            name="underwater",
            backdrop="water",
            ground="sand",
            top=(0.02, 0.15, 0.35),
            horizon=(0.10, 0.45, 0.55),
            ground_a=(0.55, 0.60, 0.45),
            ground_b=(0.70, 0.72, 0.55),
            haze_rgb=(0.05, 0.35, 0.45),
            haze=0.16,
            gain=(0.65, 0.95, 1.0),
            noise=0.03,
            blur=1.2,
            caustics=True,
            phrases=("underwater", "on the sea floor"),
        ),
        Domain(
            name="fog",
            backdrop="sky",
            ground="grass",
            top=(0.80, 0.80, 0.82),
            horizon=(0.86, 0.86, 0.88),
            ground_a=(0.35, 0.42, 0.30),
            ground_b=(0.45, 0.50, 0.38),
            haze_rgb=(0.86, 0.86, 0.88),
            haze=0.22,
            noise=0.03,
            phrases=("in thick fog", "on a foggy field"),
        ),
        Domain(
            name="sketch",
            backdrop="wall",
            ground="plain",
            top=(0.95, 0.93, 0.88),
            horizon=(0.92, 0.90, 0.85),
            ground_a=(0.85, 0.82, 0.76),
            ground_b=(0.90, 0.88, 0.82),
            haze=0.0,
            noise=0.015,
            sketch=0.3,
            phrases=("in a pencil sketch", "drawn on paper"),
        ),
    )
}
UPSTREAM_DOMAINS = ("studio", "meadow", "indoor", "desert")
DOWNSTREAM_DOMAINS = ("night", "underwater", "fog", "sketch")
