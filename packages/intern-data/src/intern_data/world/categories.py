"""The world's category hierarchy: super-categories, fine categories and their attributes.

Six super-categories each own one silhouette family and six fine categories. Inside a super-category
the fine categories differ by a part variant (``part`` 0/1: e.g. five petals against eight), a texture
pattern and a colour palette, each one of two values. Fine category 0 is the base combination and
1-3 each change exactly one attribute of it, so telling the upstream (seen) categories 0-3 apart
needs all three attributes; 4-5 are new combinations (two or three changes) that only downstream
tasks use, so features that encode the attributes transfer to them. Palettes and textures are shared
across super-categories, so only the silhouette names a super-category.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from math import pi


@dataclass(frozen=True)
class Palette:
    """A colour distribution: primary HSV (hue jittered per instance) and how the secondary colour is made."""

    name: str
    hue: float
    sat: float
    val: float
    secondary: str  # "light" (pale tint), "dark" (deep shade) or "complement" (opposite hue)
    words: tuple[str, ...]


@dataclass(frozen=True)
class Texture:
    """A surface pattern drawn in the object's own (rotating) frame; ``words`` are caption synonyms."""

    name: str
    words: tuple[str, ...]


@dataclass(frozen=True)
class SuperCategory:
    """A coarse category: one silhouette family with two part variants, and its caption synonyms."""

    name: str
    words: tuple[str, ...]
    plural: str
    size_m: float  # typical half-size in metres
    max_tilt: float  # rotation range in radians: upright things tilt little
    floats: bool  # floats above the ground (fish) instead of resting on it


@dataclass(frozen=True)
class FineCategory:
    """A fine category: its super-category and the attribute combination that defines it."""

    id: int
    name: str
    super_id: int
    part: int
    texture: int
    palette: int
    seen: bool  # used by the upstream datasets (fine categories 0-3 of each super-category)

    @property
    def super(self) -> SuperCategory:
        return SUPERS[self.super_id]

    @property
    def words(self) -> tuple[str, ...]:
        return (self.name, f"{self.name} {self.super.name}")


PALETTES: tuple[Palette, ...] = (
    Palette("crimson", 0.985, 0.80, 0.85, "light", ("red", "crimson", "scarlet")),
    Palette("amber", 0.085, 0.85, 0.92, "dark", ("orange", "amber")),
    Palette("lime", 0.24, 0.70, 0.80, "dark", ("green", "lime")),
    Palette("teal", 0.48, 0.75, 0.70, "light", ("teal", "turquoise", "cyan")),
    Palette("cobalt", 0.62, 0.75, 0.85, "complement", ("blue", "cobalt")),
    Palette("plum", 0.80, 0.55, 0.70, "light", ("purple", "plum", "violet")),
)

TEXTURES: tuple[Texture, ...] = (
    Texture("solid", ("plain", "solid-coloured", "uniform")),
    Texture("striped", ("striped", "banded")),
    Texture("spotted", ("spotted", "dotted", "speckled")),
    Texture("checkered", ("checkered", "chequered", "tiled")),
    Texture("ringed", ("ringed", "concentric-patterned")),
    Texture("graded", ("two-tone", "fading", "graded")),
)

SUPERS: tuple[SuperCategory, ...] = (
    SuperCategory("flower", ("flower", "blossom", "bloom"), "flowers", 0.40, pi, False),
    SuperCategory("gem", ("gem", "gemstone", "crystal"), "gems", 0.35, pi, False),
    SuperCategory("ring", ("ring", "hoop", "loop"), "rings", 0.40, pi, False),
    SuperCategory("fish", ("fish", "sea creature"), "fish", 0.45, 0.5, True),
    SuperCategory("tower", ("tower", "tall building", "citadel"), "towers", 0.50, 0.25, False),
    SuperCategory("spinner", ("spinner", "rotor", "turbine"), "spinners", 0.40, pi, False),
)

_FINE_NAMES = (
    ("daisy", "aster", "poppy", "lotus", "orchid", "zinnia"),
    ("opal", "beryl", "topaz", "garnet", "zircon", "onyx"),
    ("bangle", "halo", "torus", "quoit", "grommet", "washer"),
    ("carp", "perch", "bream", "trout", "pike", "roach"),
    ("spire", "belfry", "minaret", "pagoda", "steeple", "keep"),
    ("pinwheel", "whirligig", "propeller", "windvane", "impeller", "fan"),
)
# (part, which of the super's two textures, which of its two palettes) for fine categories 0-5.
_DESIGN = ((0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 1), (1, 1, 0))
FINES_PER_SUPER = len(_DESIGN)


def _fine_categories() -> tuple[FineCategory, ...]:
    """Super-category ``s`` uses textures ``s``, ``s + 2`` and palettes ``s``, ``s + 1`` (mod 6)."""
    fines = []
    for s, names in enumerate(_FINE_NAMES):
        textures = (s % len(TEXTURES), (s + 2) % len(TEXTURES))
        palettes = (s % len(PALETTES), (s + 1) % len(PALETTES))
        for j, (part, t, p) in enumerate(_DESIGN):
            fines.append(FineCategory(len(fines), names[j], s, part, textures[t], palettes[p], seen=j < 4))
    return tuple(fines)


FINES: tuple[FineCategory, ...] = _fine_categories()  # fine id = super id * 6 + index within the super


def fines_of(super_ids: Iterable[int], which: Iterable[int] = range(FINES_PER_SUPER)) -> tuple[int, ...]:
    """Fine ids of ``super_ids``, taking the ``which``-th fine categories of each (0-3 seen, 4-5 new)."""
    which = tuple(which)
    return tuple(s * FINES_PER_SUPER + j for s in super_ids for j in which)
