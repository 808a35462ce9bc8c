"""Captions from a small grammar with synonyms: attributes, counts, spatial and depth relations."""

import numpy as np

from .categories import FINES, PALETTES, SUPERS, TEXTURES
from .scene import Scene, Thing

_LEADS = ("a photo of ", "an image of ", "a picture showing ", "", "a rendering of ")
_SKETCH_LEADS = ("a sketch of ", "a drawing of ", "a pencil drawing of ")
_NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "many")


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[rng.integers(len(options))]


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _noun_phrase(rng: np.random.Generator, thing: Thing) -> str:
    cat = FINES[thing.fine]
    words = []
    if thing.scale < 0.9 and rng.random() < 0.7:
        words.append(_pick(rng, ("small", "little", "tiny")))
    elif thing.scale > 1.15 and rng.random() < 0.7:
        words.append(_pick(rng, ("large", "big")))
    if rng.random() < 0.75:
        words.append(_pick(rng, PALETTES[cat.palette].words))
    if rng.random() < 0.75:
        words.append(_pick(rng, TEXTURES[cat.texture].words))
    words.append(_pick(rng, cat.words if rng.random() < 0.75 else cat.super.words))
    return _article(" ".join(words))


def _relation(rng: np.random.Generator, scene: Scene, a: Thing, b: Thing) -> str:
    """How nearer object ``a`` relates to ``b``: hiding part of it, or beside it."""
    y0, y1, x0, x1 = b.window
    if (b.cover & (scene.instances[y0:y1, x0:x1] == scene.things.index(a))).any():
        return _pick(rng, ("in front of", "partly hiding", "before"))
    if a.cx < b.cx:
        return _pick(rng, ("to the left of", "left of", "beside"))
    return _pick(rng, ("to the right of", "right of", "next to"))


def _count_phrase(things: list[Thing]) -> str:
    counts: dict[int, int] = {}
    for thing in things:
        s = FINES[thing.fine].super_id
        counts[s] = counts.get(s, 0) + 1
    parts = [
        _article(SUPERS[s].name) if n == 1 else f"{_NUMBERS[min(n, 7)]} {SUPERS[s].plural}"
        for s, n in sorted(counts.items(), key=lambda kv: -kv[1])
    ]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def captions(rng: np.random.Generator, scene: Scene) -> list[str]:
    """Two captions of ``scene``: a detailed one (nearest three objects first) and a counting one.

    Only objects that got a box are mentioned; mostly hidden ones are not.
    """
    shown = sorted((t for t in scene.things if t.fine >= 0 and t.box is not None), key=lambda t: t.z)
    where = _pick(rng, scene.domain.phrases)
    lead = _pick(rng, _SKETCH_LEADS if scene.domain.sketch else _LEADS)
    if not shown:
        return [f"{lead}an empty scene {where}".strip(), f"nothing but the background {where}"]
    phrases = [_noun_phrase(rng, t) for t in shown[:3]]
    if len(phrases) == 2:
        body = f"{phrases[0]} {_relation(rng, scene, shown[0], shown[1])} {phrases[1]}"
    else:
        body = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    return [f"{lead}{body} {where}", f"{_count_phrase(shown)} {where}"]
