"""Search queries from the label system (paper section 3, "obtaining new raw images").

For classification a query is one visual concept. For detection a query is two concepts: a common
concept (``dog``) with either a scene (``street``) or another object (``ball``). Synonym expansion
turns every query into one per combination of the concepts' names and synonyms. The paper also
translates queries (Chinese, Spanish, Dutch, Italian); no translator ships here, so pass ``expand``
(a word -> extra forms callable, e.g. a dictionary lookup) to add such forms.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from intern_data.labels.taxonomy import Taxonomy, normalize_name

QueryKind = Literal["classification", "detection"]


@dataclass(frozen=True)
class Query:
    """One search query: its text and the concepts it was made from (common concept first)."""

    text: str
    concepts: tuple[str, ...]
    kind: str

    def __str__(self) -> str:
        return self.text


def _names(
    taxonomy: Taxonomy,
    concept_id: str,
    synonyms: bool,
    max_synonyms: int | None,
    expand: Callable[[str], Iterable[str]] | None,
) -> list[str]:
    concept = taxonomy[concept_id]
    extra = list(concept.synonyms) if synonyms else []
    if max_synonyms is not None:
        extra = extra[:max_synonyms]
    names = [concept.name, *extra]
    if expand is not None:
        names += [form for name in list(names) for form in expand(name)]
    return list(dict.fromkeys(names))


def generate_queries(
    taxonomy: Taxonomy,
    concepts: Sequence[str],
    kind: QueryKind = "classification",
    *,
    scenes: Sequence[str] = (),
    partners: Sequence[str] | None = None,
    pairs_per_concept: int = 2,
    synonyms: bool = True,
    max_synonyms: int | None = None,
    expand: Callable[[str], Iterable[str]] | None = None,
    seed: int = 0,
) -> list[Query]:
    """Queries for ``concepts``, deterministic for a given ``seed``.

    Args:
        taxonomy: where concepts (and scenes, partners) are resolved.
        concepts: ids or unambiguous names of the concepts to search for.
        kind: ``classification`` (one concept per query) or ``detection`` (a concept with a partner).
        scenes: (detection) scene concepts a common concept may be paired with.
        partners: (detection) object concepts it may be paired with; default: the other ``concepts``.
        pairs_per_concept: (detection) partners drawn per concept, without replacement, from scenes
            plus partners, skipping the concept itself and concepts it is a kind of or that are a kind
            of it (``dog animal`` finds nothing new).
        synonyms: expand each query over every synonym of its concepts.
        max_synonyms: keep at most this many synonyms per concept.
        expand: extra forms of a name (translations), applied after synonym expansion.
        seed: seeds the partner draws.

    Returns:
        Queries in the order of ``concepts``, the main-name form of each first, without duplicates
        (compared case- and separator-insensitively).

    Raises:
        ValueError: an unknown ``kind``, a negative ``pairs_per_concept``, or a detection request with
            no partner to draw from.
        KeyError: a concept, scene or partner the taxonomy cannot resolve.
    """
    if kind not in ("classification", "detection"):
        raise ValueError(f"unknown query kind {kind!r} (choose from classification, detection)")
    ids = list(dict.fromkeys(taxonomy.resolve(c) for c in concepts))

    def names(cid: str) -> list[str]:
        return _names(taxonomy, cid, synonyms, max_synonyms, expand)

    combos: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
    if kind == "classification":
        combos = [((cid,), (name,)) for cid in ids for name in names(cid)]
    else:
        if pairs_per_concept < 0:
            raise ValueError(f"pairs_per_concept must be >= 0, got {pairs_per_concept}")
        scene_ids = [taxonomy.resolve(s) for s in scenes]
        partner_ids = [taxonomy.resolve(p) for p in partners] if partners is not None else ids
        pool = list(dict.fromkeys(scene_ids + partner_ids))
        if not pool:
            raise ValueError(
                "detection queries pair each concept with a scene or object: give scenes or partners"
            )
        rng = random.Random(seed)
        for cid in ids:
            related = taxonomy.ancestors(cid, include_self=True) | taxonomy.descendants(cid)
            options = [p for p in pool if p not in related]
            for partner in rng.sample(options, min(pairs_per_concept, len(options))):
                combos += [((cid, partner), pair) for pair in itertools.product(names(cid), names(partner))]

    queries: list[Query] = []
    seen: set[str] = set()
    for cids, words in combos:
        text = " ".join(words)
        key = normalize_name(text)
        if key not in seen:
            seen.add(key)
            queries.append(Query(text, cids, kind))
    return queries
