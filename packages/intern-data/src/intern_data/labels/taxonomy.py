"""Concepts and the taxonomy DAG of the GV-D label system (paper section 3).

A :class:`Concept` has a stable id (``wn:n02084071`` for a WordNet synset, any ``prefix:name`` for
others), a display name, synonyms and the ids of its parents. A :class:`Taxonomy` holds concepts as
a directed acyclic graph (a concept may have several parents) and answers the hierarchy questions the
rest of the data system asks: ancestors, descendants, ``is_a``, lowest common ancestor, and lookup
by name or synonym. It saves to and loads from one JSON file.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from intern_data.io import atomic_write_text

FORMAT = "intern-taxonomy"
VERSION = 1


def normalize_name(name: str) -> str:
    """The form names are matched in: lower case, ``_``/``-``/runs of spaces folded to one space."""
    return re.sub(r"[\s_\-]+", " ", name).strip().casefold()


@dataclass(frozen=True)
class Concept:
    """One visual concept.

    Attributes:
        id: unique id, e.g. ``"wn:n02084071"`` (WordNet noun synset at that data.noun offset).
        name: display name (``"dog"``).
        synonyms: other names of the same concept (``("domestic dog", "Canis familiaris")``).
        parents: ids of the concepts this one is a kind (or an instance) of.
        definition: optional gloss.
    """

    id: str
    name: str
    synonyms: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()
    definition: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.id or not isinstance(self.id, str):
            raise ValueError(f"a concept needs a non-empty string id, got {self.id!r}")
        if not self.name:
            raise ValueError(f"concept {self.id!r} needs a non-empty name")
        object.__setattr__(self, "synonyms", tuple(self.synonyms))
        object.__setattr__(self, "parents", tuple(dict.fromkeys(self.parents)))
        if self.id in self.parents:
            raise ValueError(f"concept {self.id!r} lists itself as a parent")

    @property
    def names(self) -> tuple[str, ...]:
        """The name followed by the synonyms."""
        return (self.name, *self.synonyms)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "name": self.name}
        if self.synonyms:
            data["synonyms"] = list(self.synonyms)
        if self.parents:
            data["parents"] = list(self.parents)
        if self.definition:
            data["definition"] = self.definition
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Concept:
        return cls(
            id=data["id"],
            name=data["name"],
            synonyms=tuple(data.get("synonyms", ())),
            parents=tuple(data.get("parents", ())),
            definition=data.get("definition", ""),
        )


class TaxonomyError(ValueError):
    """A taxonomy that is not a DAG over known concepts; the message names the concepts involved."""


class Taxonomy:
    """A DAG of :class:`Concept` objects, parents before children.

    ``add`` requires every parent to be present already, so a taxonomy built by ``add`` is always
    acyclic. ``Taxonomy(concepts)`` accepts concepts in any order and sorts them (raising
    :class:`TaxonomyError` on a missing parent or a cycle). Iteration follows insertion order, which
    lookups use to break ties.
    """

    def __init__(self, concepts: Iterable[Concept] = ()) -> None:
        self._concepts: dict[str, Concept] = {}
        self._children: dict[str, list[str]] = {}
        self._by_name: dict[str, list[str]] = {}
        self._by_synonym: dict[str, list[str]] = {}
        self._depth: dict[str, int] = {}
        self.extend(concepts)

    # -- building ----------------------------------------------------------------------------------

    def add(self, concept: Concept) -> Concept:
        """Add ``concept``; its parents must already be in the taxonomy and its id must be new."""
        if concept.id in self._concepts:
            raise TaxonomyError(f"concept {concept.id!r} is already in the taxonomy")
        missing = [p for p in concept.parents if p not in self._concepts]
        if missing:
            raise TaxonomyError(f"concept {concept.id!r} ({concept.name}) has unknown parents {missing}")
        self._concepts[concept.id] = concept
        self._children[concept.id] = []
        for parent in concept.parents:
            self._children[parent].append(concept.id)
        self._by_name.setdefault(normalize_name(concept.name), []).append(concept.id)
        for synonym in concept.synonyms:
            self._by_synonym.setdefault(normalize_name(synonym), []).append(concept.id)
        self._depth[concept.id] = 1 + max((self._depth[p] for p in concept.parents), default=-1)
        return concept

    def extend(self, concepts: Iterable[Concept]) -> None:
        """Add many concepts in any order (parents may come after children).

        Raises:
            TaxonomyError: a duplicate id, a parent that is neither here nor among ``concepts``, or a
                cycle (the message lists the concepts on it).
        """
        pending: dict[str, Concept] = {}
        for concept in concepts:
            if concept.id in self._concepts or concept.id in pending:
                raise TaxonomyError(f"concept {concept.id!r} is given twice")
            pending[concept.id] = concept
        waiting_on: dict[str, int] = {}
        dependants: dict[str, list[str]] = {}
        for cid, concept in pending.items():
            unknown = [p for p in concept.parents if p not in self._concepts and p not in pending]
            if unknown:
                raise TaxonomyError(f"concept {cid!r} ({concept.name}) has unknown parents {unknown}")
            open_parents = [p for p in concept.parents if p in pending]
            waiting_on[cid] = len(open_parents)
            for parent in open_parents:
                dependants.setdefault(parent, []).append(cid)
        ready = deque(cid for cid, n in waiting_on.items() if n == 0)
        while ready:
            cid = ready.popleft()
            self.add(pending[cid])
            for child in dependants.get(cid, ()):
                waiting_on[child] -= 1
                if waiting_on[child] == 0:
                    ready.append(child)
        stuck = [cid for cid, n in waiting_on.items() if n > 0]
        if stuck:
            raise TaxonomyError(
                f"the parent links of {len(stuck)} concepts form a cycle: {sorted(stuck)[:10]}"
            )

    # -- access --------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._concepts)

    def __contains__(self, concept_id: object) -> bool:
        return concept_id in self._concepts

    def __iter__(self) -> Iterator[Concept]:
        return iter(self._concepts.values())

    def __getitem__(self, concept_id: str) -> Concept:
        try:
            return self._concepts[concept_id]
        except KeyError:
            raise KeyError(f"concept {concept_id!r} is not in the taxonomy ({len(self)} concepts)") from None

    @property
    def ids(self) -> list[str]:
        return list(self._concepts)

    def parents(self, concept_id: str) -> tuple[str, ...]:
        return self[concept_id].parents

    def children(self, concept_id: str) -> tuple[str, ...]:
        self[concept_id]
        return tuple(self._children[concept_id])

    def roots(self) -> list[str]:
        """Concepts without parents, in insertion order."""
        return [c.id for c in self if not c.parents]

    def depth(self, concept_id: str) -> int:
        """Length of the longest path from a root down to the concept (a root has depth 0)."""
        self[concept_id]
        return self._depth[concept_id]

    # -- hierarchy -----------------------------------------------------------------------------------

    def ancestors(self, concept_id: str, include_self: bool = False) -> set[str]:
        """All concepts reachable by following parent links."""
        return self._closure(concept_id, lambda cid: self._concepts[cid].parents, include_self)

    def descendants(self, concept_id: str, include_self: bool = False) -> set[str]:
        """All concepts reachable by following child links."""
        return self._closure(concept_id, lambda cid: self._children[cid], include_self)

    def _closure(self, concept_id: str, step: Any, include_self: bool) -> set[str]:
        self[concept_id]
        seen = {concept_id}
        stack = [concept_id]
        while stack:
            for nxt in step(stack.pop()):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        if not include_self:
            seen.discard(concept_id)
        return seen

    def is_a(self, concept_id: str, other_id: str) -> bool:
        """Whether ``concept_id`` is ``other_id`` or one of its descendants (``is_a(dog, animal)``)."""
        self[other_id]
        return concept_id == other_id or other_id in self.ancestors(concept_id)

    def common_ancestors(self, a: str, b: str) -> set[str]:
        """Concepts both ``a`` and ``b`` are (each counts as its own ancestor)."""
        return self.ancestors(a, include_self=True) & self.ancestors(b, include_self=True)

    def lowest_common_ancestors(self, a: str, b: str) -> list[str]:
        """The common ancestors none of whose descendants is also a common ancestor.

        In a DAG there may be several; they are returned deepest first (``depth``), then by id.
        """
        common = self.common_ancestors(a, b)
        lowest = [c for c in common if not any(p in common for p in self._children[c])]
        return sorted(lowest, key=lambda c: (-self._depth[c], c))

    def lowest_common_ancestor(self, a: str, b: str) -> str | None:
        """The deepest lowest common ancestor (ties broken by id), or None if ``a``, ``b`` share none."""
        lowest = self.lowest_common_ancestors(a, b)
        return lowest[0] if lowest else None

    def path_to_root(self, concept_id: str) -> list[str]:
        """One chain ``[concept, parent, ..., root]`` following the first parent at each step."""
        path = [concept_id]
        while self[path[-1]].parents:
            path.append(self[path[-1]].parents[0])
        return path

    # -- lookup --------------------------------------------------------------------------------------

    def find(self, name: str, synonyms: bool = True) -> list[str]:
        """Ids of concepts called ``name`` (case, ``_`` and ``-`` ignored).

        Concepts whose main name matches come first, then those with a matching synonym; each group
        in insertion order.
        """
        key = normalize_name(name)
        found = list(self._by_name.get(key, ()))
        if synonyms:
            found += [c for c in self._by_synonym.get(key, ()) if c not in found]
        return found

    def resolve(self, ref: str) -> str:
        """The id of ``ref``, given as an id or as an unambiguous name or synonym.

        Raises:
            KeyError: nothing matches, or a name matches several concepts (they are listed).
        """
        if ref in self._concepts:
            return ref
        found = self.find(ref)
        if not found:
            raise KeyError(f"no concept has the id, name or synonym {ref!r}")
        by_name = self.find(ref, synonyms=False)
        if len(by_name) == 1:
            return by_name[0]
        if len(found) == 1:
            return found[0]
        options = ", ".join(f"{c} ({self[c].name})" for c in found[:8])
        raise KeyError(f"{ref!r} names several concepts: {options}; give an id")

    def subset(self, concept_ids: Iterable[str]) -> Taxonomy:
        """A new taxonomy with ``concept_ids`` and all their ancestors, in this one's order."""
        keep: set[str] = set()
        for cid in concept_ids:
            keep |= self.ancestors(cid, include_self=True)
        return Taxonomy(c for c in self if c.id in keep)

    # -- files ---------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "concepts": [c.to_json() for c in self]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Taxonomy:
        if data.get("format") != FORMAT:
            raise TaxonomyError(f"not a taxonomy file (format {data.get('format')!r}, expected {FORMAT!r})")
        if data.get("version") != VERSION:
            raise TaxonomyError(f"taxonomy file version {data.get('version')!r} is not {VERSION}")
        return cls(Concept.from_json(c) for c in data["concepts"])

    def save(self, path: str | Path) -> Path:
        """Write the taxonomy as JSON (atomically: a temporary file renamed into place)."""
        text = json.dumps(self.to_json(), ensure_ascii=False, indent=None, separators=(",", ":"))
        return atomic_write_text(path, text)

    @classmethod
    def load(cls, path: str | Path) -> Taxonomy:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"no taxonomy file at {path}; make one with `python -m intern_data labels build`"
            )
        return cls.from_json(json.loads(path.read_text()))


def format_concept(taxonomy: Taxonomy, ref: str, max_children: int = 10) -> str:
    """A few lines describing one concept (``python -m intern_data labels show``).

    Args:
        taxonomy: where to look.
        ref: an id, or an unambiguous name or synonym.
        max_children: how many children to list by name.
    """
    concept = taxonomy[taxonomy.resolve(ref)]

    def named(cid: str) -> str:
        return f"{cid} ({taxonomy[cid].name})"

    children = taxonomy.children(concept.id)
    shown = ", ".join(named(c) for c in children[:max_children])
    if len(children) > max_children:
        shown += f", ... ({len(children) - max_children} more)"
    lines = [
        f"{concept.id}: {concept.name}",
        f"  synonyms:    {', '.join(concept.synonyms) or '-'}",
        f"  parents:     {', '.join(named(p) for p in concept.parents) or '- (root)'}",
        f"  children:    {shown or '-'}",
        f"  descendants: {len(taxonomy.descendants(concept.id))}",
        f"  path:        {' > '.join(taxonomy[c].name for c in reversed(taxonomy.path_to_root(concept.id)))}",
    ]
    if concept.definition:
        lines.insert(1, f"  definition:  {concept.definition}")
    return "\n".join(lines)
