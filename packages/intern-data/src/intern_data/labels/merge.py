"""Label spaces for training on several datasets at once (paper 6.1, Table 15 (b)).

Three modes, each turning per-dataset label mappings into output heads plus, per dataset, a map
from its class index to a class index of its head:

``natural`` (the paper's default)
    One head per dataset, its classes exactly the dataset's; the index maps are the identity. No
    two datasets share an output.

``unified``
    One head, ``"unified"``, over the classes of all datasets. Classes of different datasets mapped
    to the *same concept id* become one class; everything else (different concepts, classes with no
    concept) stays a class of its own, named ``"<dataset>/<class>"`` when it has no concept.
    Hierarchy is *not* collapsed: ``dog`` (dataset A) and ``animal`` (dataset B) are two classes,
    so an image of a dog from B (labelled ``animal``) is a negative for ``dog`` under the one
    softmax over the whole space -- the label conflict the paper blames for unified's -0.8.
    ``overlaps`` lists such pairs. A sample's target is ``index_maps[dataset][label]``.

``partial`` (partially merged)
    The same merged class bank as ``unified`` (one shared output per equivalent concept), but every
    dataset keeps its own label space: its logits are the bank's outputs at
    ``index_maps[dataset]`` (in the dataset's class order) and its softmax runs over those only, so
    the target stays the dataset's own label. Equivalent classes share weights; classes of other
    datasets are never negatives. ``per_dataset_softmax`` is True for it (and for ``natural``).

Equivalence is exactly "mapped to the same concept id"; names alone never merge classes. A dataset
whose classes map two of its own classes onto one concept cannot be merged (ValueError).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from intern_data.label_space import LabelSpace
from intern_data.labels.mapping import LabelMapping
from intern_data.labels.taxonomy import Taxonomy

MergeMode = Literal["natural", "unified", "partial"]
MODES: tuple[str, ...] = ("natural", "unified", "partial")


@dataclass(frozen=True)
class MergedLabels:
    """The heads of a multi-dataset model and how each dataset's classes land on them.

    Attributes:
        mode: ``natural``, ``unified`` or ``partial``.
        spaces: the output heads (natural: one per dataset, same names; unified: ``"unified"``;
            partial: ``"partial"``, the shared class bank).
        head_of: dataset name -> name of the head its samples use.
        index_maps: dataset name -> tuple, entry ``i`` is the head class of dataset class ``i``.
        concepts: head name -> concept id per head class (None where the class has none).
        per_dataset_softmax: True when a dataset's loss covers only its own classes (natural,
            partial): take the head's logits at ``index_maps[dataset]`` and keep the dataset label.
            False (unified): one softmax over the whole head, target ``index_maps[dataset][label]``.
    """

    mode: str
    spaces: tuple[LabelSpace, ...]
    head_of: dict[str, str]
    index_maps: dict[str, tuple[int, ...]]
    concepts: dict[str, tuple[str | None, ...]]
    per_dataset_softmax: bool

    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(self.index_maps)

    def head(self, dataset: str) -> LabelSpace:
        """The label space of the head ``dataset``'s samples are trained on."""
        name = self._head_name(dataset)
        return next(s for s in self.spaces if s.name == name)

    def _head_name(self, dataset: str) -> str:
        try:
            return self.head_of[dataset]
        except KeyError:
            raise KeyError(
                f"dataset {dataset!r} is not merged here (datasets: {list(self.head_of)})"
            ) from None

    def target(self, dataset: str, label: int) -> int:
        """The training target of a sample of ``dataset`` with class ``label``."""
        self._head_name(dataset)
        return label if self.per_dataset_softmax else self.index_maps[dataset][label]

    def logit_index(self, dataset: str) -> tuple[int, ...]:
        """Head outputs whose softmax a sample of ``dataset`` is trained with, in the target's order."""
        self._head_name(dataset)
        if self.per_dataset_softmax:
            return self.index_maps[dataset]
        return tuple(range(len(self.head(dataset))))

    def overlaps(self, taxonomy: Taxonomy) -> list[tuple[str, str, str]]:
        """Pairs of classes of one head where one concept is a kind of the other.

        Returns:
            ``(head, narrower class, broader class)`` triples, in head class order.
        """
        found = []
        for space in self.spaces:
            concepts = self.concepts[space.name]
            index = {c: i for i, c in enumerate(concepts) if c is not None and c in taxonomy}
            for i, concept in enumerate(concepts):
                if concept is None or concept not in taxonomy:
                    continue
                for ancestor in sorted(taxonomy.ancestors(concept) & index.keys(), key=index.__getitem__):
                    found.append((space.name, space.classes[i], space.classes[index[ancestor]]))
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "spaces": [s.to_json() for s in self.spaces],
            "head_of": dict(self.head_of),
            "index_maps": {k: list(v) for k, v in self.index_maps.items()},
            "concepts": {k: list(v) for k, v in self.concepts.items()},
            "per_dataset_softmax": self.per_dataset_softmax,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MergedLabels:
        return cls(
            mode=data["mode"],
            spaces=tuple(LabelSpace.from_json(s) for s in data["spaces"]),
            head_of=dict(data["head_of"]),
            index_maps={k: tuple(v) for k, v in data["index_maps"].items()},
            concepts={k: tuple(v) for k, v in data["concepts"].items()},
            per_dataset_softmax=data["per_dataset_softmax"],
        )


def merge_label_spaces(mappings: Sequence[LabelMapping], mode: MergeMode = "natural") -> MergedLabels:
    """Build the heads of a multi-dataset model in ``mode`` (see the module docstring).

    Args:
        mappings: one per dataset (``map_label_space``), in the order their classes are enumerated
            into merged heads. Dataset names must differ.
        mode: ``natural``, ``unified`` or ``partial``.

    Raises:
        ValueError: an unknown mode, a repeated dataset, or (unified/partial) a dataset mapping two
            of its classes onto one concept.
    """
    if mode not in MODES:
        raise ValueError(f"unknown merge mode {mode!r} (choose from {', '.join(MODES)})")
    names = [m.dataset for m in mappings]
    if len(set(names)) != len(names):
        raise ValueError(
            f"datasets are given more than once: {sorted({n for n in names if names.count(n) > 1})}"
        )
    if mode == "natural":
        return MergedLabels(
            mode=mode,
            spaces=tuple(m.space for m in mappings),
            head_of={m.dataset: m.dataset for m in mappings},
            index_maps={m.dataset: tuple(range(len(m.space))) for m in mappings},
            concepts={m.dataset: m.concepts for m in mappings},
            per_dataset_softmax=True,
        )

    for m in mappings:
        mapped = [c for c in m.concepts if c is not None]
        if len(set(mapped)) != len(mapped):
            doubled = {c for c in mapped if mapped.count(c) > 1}
            clash = [n for n, c in zip(m.space.classes, m.concepts, strict=True) if c in doubled]
            raise ValueError(
                f"dataset {m.dataset!r} maps several classes onto one concept "
                f"({clash} -> {sorted(doubled)}); they cannot be merged: fix the mapping"
            )

    keys: list[tuple[str, str]] = []  # ("concept", id) or ("own", "dataset/class")
    first_name: dict[tuple[str, str], str] = {}
    slot: dict[tuple[str, str], int] = {}
    index_maps: dict[str, tuple[int, ...]] = {}
    for m in mappings:
        index = []
        for name, concept in zip(m.space.classes, m.concepts, strict=True):
            key = ("concept", concept) if concept is not None else ("own", f"{m.dataset}/{name}")
            if key not in slot:
                slot[key] = len(keys)
                keys.append(key)
                first_name[key] = name if concept is not None else key[1]
            index.append(slot[key])
        index_maps[m.dataset] = tuple(index)

    proposed = [first_name[k] for k in keys]
    classes = [
        f"{name} [{key[1]}]" if key[0] == "concept" and proposed.count(name) > 1 else name
        for name, key in zip(proposed, keys, strict=True)
    ]
    head = "unified" if mode == "unified" else "partial"
    return MergedLabels(
        mode=mode,
        spaces=(LabelSpace(head, tuple(classes)),),
        head_of=dict.fromkeys(names, head),
        index_maps=index_maps,
        concepts={head: tuple(k[1] if k[0] == "concept" else None for k in keys)},
        per_dataset_softmax=mode == "partial",
    )
