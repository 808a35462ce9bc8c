"""Map a dataset's label space onto taxonomy concepts.

Each class name is resolved, in this order, by an explicit mapping entry (class name -> concept id,
or a name the taxonomy resolves), by a concept's main name, then by a synonym (case, ``_`` and ``-``
ignored). A name several concepts match is mapped to the first (main-name matches before synonym
matches, then taxonomy order) and reported as ambiguous; a name nothing matches is reported as
unmapped. ``strict=True`` turns either report into an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from intern_data.label_space import LabelSpace
from intern_data.labels.taxonomy import Taxonomy

if TYPE_CHECKING:
    from intern_data.labels.wordnet import WordNet


class LabelMappingError(ValueError):
    """Class names that could not be mapped (or were ambiguous) under ``strict=True``."""


@dataclass(frozen=True)
class LabelMapping:
    """A label space with one concept id (or None when unmapped) per class.

    Attributes:
        space: the dataset's label space.
        concepts: ``concepts[i]`` is the concept of class ``i``, None if it has none.
        ambiguous: class name -> every concept it matched (the first was taken).
        explicit: class names mapped by the explicit mapping.
    """

    space: LabelSpace
    concepts: tuple[str | None, ...]
    ambiguous: dict[str, tuple[str, ...]] = field(default_factory=dict)
    explicit: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.concepts) != len(self.space):
            raise ValueError(
                f"label space {self.space.name!r} has {len(self.space)} classes but "
                f"{len(self.concepts)} concepts were given"
            )

    @property
    def dataset(self) -> str:
        return self.space.name

    @property
    def unmapped(self) -> tuple[str, ...]:
        """Class names without a concept, in class order."""
        return tuple(n for n, c in zip(self.space.classes, self.concepts, strict=True) if c is None)

    def concept_of(self, class_name: str) -> str | None:
        return self.concepts[self.space.index(class_name)]

    def report(self) -> str:
        """One summary line, then one line per unmapped or ambiguous class."""
        mapped = len(self.space) - len(self.unmapped)
        lines = [
            f"{self.dataset}: {mapped}/{len(self.space)} classes mapped "
            f"({len(self.explicit)} explicitly), {len(self.unmapped)} unmapped, "
            f"{len(self.ambiguous)} ambiguous"
        ]
        lines += [f"  unmapped: {name!r}" for name in self.unmapped]
        lines += [
            f"  ambiguous: {name!r} -> {ids[0]} (also {', '.join(ids[1:])})"
            for name, ids in self.ambiguous.items()
        ]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "space": self.space.to_json(),
            "concepts": list(self.concepts),
            "ambiguous": {k: list(v) for k, v in self.ambiguous.items()},
            "explicit": list(self.explicit),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabelMapping:
        return cls(
            space=LabelSpace.from_json(data["space"]),
            concepts=tuple(data["concepts"]),
            ambiguous={k: tuple(v) for k, v in data.get("ambiguous", {}).items()},
            explicit=tuple(data.get("explicit", ())),
        )


def map_label_space(
    taxonomy: Taxonomy,
    space: LabelSpace,
    mapping: Mapping[str, str | None] | None = None,
    strict: bool = False,
    wordnet: WordNet | None = None,
) -> LabelMapping:
    """Map every class of ``space`` onto a concept of ``taxonomy``.

    Args:
        taxonomy: the concepts.
        space: the dataset's label space.
        mapping: explicit entries, class name -> concept id or a name the taxonomy resolves
            unambiguously; None marks a class as deliberately unmapped (e.g. ``"background"``).
        strict: raise instead of reporting unmapped or ambiguous classes.
        wordnet: if given, explicit entries may also name WordNet senses (``"crane.n.04"``), which
            must be in ``taxonomy``.

    Raises:
        KeyError: an explicit entry names a class not in ``space`` or a concept not in ``taxonomy``.
        LabelMappingError: with ``strict``, the report of what failed.
    """
    mapping = dict(mapping or {})
    unknown = sorted(set(mapping) - set(space.classes))
    if unknown:
        raise KeyError(f"the explicit mapping names classes not in label space {space.name!r}: {unknown}")
    concepts: list[str | None] = []
    ambiguous: dict[str, tuple[str, ...]] = {}
    for name in space.classes:
        if name in mapping:
            target = mapping[name]
            if target is None:
                concepts.append(None)
                continue
            try:
                concepts.append(_resolve(taxonomy, target, wordnet))
            except KeyError as err:
                raise KeyError(
                    f"{space.name}: explicit mapping {name!r} -> {target!r}: {err.args[0]}"
                ) from None
            continue
        found = taxonomy.find(name)
        concepts.append(found[0] if found else None)
        if len(found) > 1:
            ambiguous[name] = tuple(found)
    result = LabelMapping(space, tuple(concepts), ambiguous, tuple(n for n in space.classes if n in mapping))
    deliberately_unmapped = {n for n, t in mapping.items() if t is None}
    if strict and (set(result.unmapped) - deliberately_unmapped or result.ambiguous):
        raise LabelMappingError(result.report())
    return result


def _resolve(taxonomy: Taxonomy, target: str, wordnet: WordNet | None) -> str:
    try:
        return taxonomy.resolve(target)
    except KeyError:
        if wordnet is None or ".n." not in target:
            raise
    concept = wordnet.resolve(target)
    if concept not in taxonomy:
        raise KeyError(f"WordNet sense {target!r} ({concept}) is not in the taxonomy")
    return concept
