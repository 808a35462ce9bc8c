"""The embedded world's categories as concepts of the label system, under WordNet's noun hierarchy.

Super-categories hang under a WordNet synset (``world:fish`` under ``fish.n.01``), fine categories
under their super-category, texture patterns under ``design.n.04`` (a decorative pattern). Ids are
``world:<name>``; the caption words are the synonyms, so queries and label mapping use them.
"""

from __future__ import annotations

from intern_data.labels.taxonomy import Concept
from intern_data.labels.wordnet import WordNet
from intern_data.world.categories import FINES, SUPERS, TEXTURES

WORLD_PREFIX = "world:"
SUPER_SYNSETS = {
    "flower": "flower.n.01",
    "gem": "gem.n.02",
    "ring": "ring.n.02",
    "fish": "fish.n.01",
    "tower": "tower.n.01",
    "spinner": "turbine.n.01",
}
"""Super-category -> the WordNet synset it is a kind of."""
TEXTURE_SYNSET = "design.n.04"


def world_concept_id(name: str) -> str:
    """The concept id of a world category or texture called ``name``."""
    return WORLD_PREFIX + name.replace(" ", "_")


def world_concepts(wordnet: WordNet | None = None) -> list[Concept]:
    """Concepts of the world's super-categories, fine categories and textures.

    With ``wordnet`` the top-level concepts get WordNet parents (pass them as ``extra`` to
    ``build_taxonomy``); without, they are roots (``build_taxonomy(extra=..., use_wordnet=False)``).
    """

    def parents(sense: str) -> tuple[str, ...]:
        return (wordnet.resolve(sense),) if wordnet is not None else ()

    supers = [
        Concept(
            world_concept_id(s.name),
            s.name,
            tuple(w for w in s.words if w != s.name),
            parents(SUPER_SYNSETS[s.name]),
        )
        for s in SUPERS
    ]
    fines = [
        Concept(world_concept_id(f.name), f.name, parents=(world_concept_id(f.super.name),)) for f in FINES
    ]
    textures = [
        Concept(
            world_concept_id(t.name),
            t.name,
            tuple(w for w in t.words if w != t.name),
            parents(TEXTURE_SYNSET),
        )
        for t in TEXTURES
    ]
    return supers + fines + textures
