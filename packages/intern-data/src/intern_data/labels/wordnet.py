"""WordNet 3.0 noun hierarchy as :class:`~intern_data.labels.taxonomy.Concept` objects.

Reads the database files the Debian package ``wordnet-base`` installs in ``/usr/share/wordnet``
(``data.noun`` and ``index.noun``; format described in WordNet's ``wndb(5WN)``). Every noun synset
becomes a concept with id ``wn:n<8-digit offset>`` (``wn:n02084071`` is dog.n.01, the id ImageNet
uses), its first lemma as name, the other lemmas as synonyms (``_`` shown as a space), its
hypernyms (pointer ``@``) and instance hypernyms (``@i``) as parents, and its gloss as definition.

``data.noun`` offsets are byte offsets, so a subset (the synsets asked for plus their ancestors, and
optionally their hyponyms) is read by seeking, without parsing the whole 15 MB file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from intern_data.labels.taxonomy import Concept, Taxonomy, normalize_name

WORDNET_ENV = "INTERN_WORDNET_DIR"
DEFAULT_DIRS = (Path("/usr/share/wordnet"), Path("/usr/share/wordnet/dict"), Path("/usr/local/share/wordnet"))
PARENT_POINTERS = ("@", "@i")
CHILD_POINTERS = ("~", "~i")
ID_PREFIX = "wn:n"


class WordNetNotFoundError(FileNotFoundError):
    """The WordNet database files are not installed; the message says how to get them."""


def find_wordnet(wordnet_dir: str | Path | None = None) -> Path:
    """The folder holding WordNet's ``data.noun`` and ``index.noun``.

    Looks in ``wordnet_dir`` if given, else ``$INTERN_WORDNET_DIR``, else the Debian location.

    Raises:
        WordNetNotFoundError: no candidate folder has both files.
    """
    if wordnet_dir is not None:
        candidates = [Path(wordnet_dir)]
    elif os.environ.get(WORDNET_ENV):
        candidates = [Path(os.environ[WORDNET_ENV])]
    else:
        candidates = list(DEFAULT_DIRS)
    for folder in candidates:
        if (folder / "data.noun").is_file() and (folder / "index.noun").is_file():
            return folder
    looked = ", ".join(str(c) for c in candidates)
    raise WordNetNotFoundError(
        f"WordNet 3.0 database files (data.noun, index.noun) not found in {looked}; install the Debian "
        f"package `wordnet-base` (apt-get install wordnet-base), or point ${WORDNET_ENV} at a folder "
        "that holds them"
    )


def synset_id(offset: int | str) -> str:
    """The concept id of the noun synset at ``offset`` in data.noun: ``wn:n02084071``."""
    return f"{ID_PREFIX}{int(offset):08d}"


def synset_offset(concept_id: str) -> int:
    """The data.noun offset of a ``wn:n...`` concept id."""
    if not concept_id.startswith(ID_PREFIX) or not concept_id[len(ID_PREFIX) :].isdigit():
        raise ValueError(f"{concept_id!r} is not a WordNet noun concept id like 'wn:n02084071'")
    return int(concept_id[len(ID_PREFIX) :])


def _lemma_text(lemma: str) -> str:
    return lemma.replace("_", " ")


def parse_data_line(line: str) -> tuple[Concept, tuple[str, ...]]:
    """Parse one synset line of data.noun.

    Returns:
        The concept and the ids of its hyponyms (pointers ``~`` and ``~i``).

    Raises:
        ValueError: the line is not a noun synset line (the message shows its start).
    """
    data, _, gloss = line.partition(" | ")
    fields = data.split()
    try:
        offset, _lex_filenum, ss_type, w_cnt_hex = fields[:4]
        if ss_type != "n":
            raise ValueError(f"synset type {ss_type!r} is not a noun")
        w_cnt = int(w_cnt_hex, 16)
        lemmas = [_lemma_text(w) for w in fields[4 : 4 + 2 * w_cnt : 2]]
        pos = 4 + 2 * w_cnt
        p_cnt = int(fields[pos])
        pointers = [fields[pos + 1 + 4 * i : pos + 5 + 4 * i] for i in range(p_cnt)]
        if len(lemmas) != w_cnt or any(len(p) != 4 for p in pointers):
            raise ValueError("the line ends early")
    except (ValueError, IndexError) as err:
        raise ValueError(f"not a WordNet noun synset line ({err}): {line[:80]!r}") from None
    parents = tuple(synset_id(p[1]) for p in pointers if p[0] in PARENT_POINTERS and p[2] == "n")
    children = tuple(synset_id(p[1]) for p in pointers if p[0] in CHILD_POINTERS and p[2] == "n")
    unique = list(dict.fromkeys(lemmas))
    concept = Concept(
        id=synset_id(offset),
        name=unique[0],
        synonyms=tuple(unique[1:]),
        parents=parents,
        definition=gloss.strip(),
    )
    return concept, children


def _iter_data_lines(handle: BinaryIO) -> Iterator[str]:
    for raw in handle:
        if raw.startswith(b"  "):  # the licence header: lines start with two spaces
            continue
        yield raw.decode("utf-8").rstrip("\n")


class WordNet:
    """Read access to one WordNet database folder (noun part)."""

    def __init__(self, wordnet_dir: str | Path | None = None) -> None:
        self.folder = find_wordnet(wordnet_dir)
        self._index: dict[str, tuple[str, ...]] | None = None

    # -- index.noun ----------------------------------------------------------------------------------

    def _load_index(self) -> dict[str, tuple[str, ...]]:
        if self._index is None:
            index: dict[str, tuple[str, ...]] = {}
            with open(self.folder / "index.noun", encoding="utf-8") as handle:
                for line in handle:
                    if line.startswith("  "):
                        continue
                    fields = line.split()
                    # lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt offsets...
                    synset_cnt, p_cnt = int(fields[2]), int(fields[3])
                    offsets = fields[6 + p_cnt : 6 + p_cnt + synset_cnt]
                    index[fields[0]] = tuple(synset_id(o) for o in offsets)
            self._index = index
        return self._index

    def lookup(self, lemma: str) -> tuple[str, ...]:
        """Concept ids of the noun senses of ``lemma``, most frequent sense first (WordNet's order)."""
        return self._load_index().get(normalize_name(lemma).replace(" ", "_"), ())

    def resolve(self, ref: str | int) -> str:
        """A concept id from ``wn:n02084071``, ``02084071``, an int offset, or ``dog.n.01``.

        Raises:
            KeyError: an unknown lemma or a sense number past the lemma's senses.
        """
        if isinstance(ref, int) or ref.isdigit():
            return synset_id(ref)
        if ref.startswith(ID_PREFIX):
            synset_offset(ref)
            return ref
        lemma, dot, rest = ref.rpartition(".n.")
        if not dot or not rest.isdigit():
            raise KeyError(
                f"{ref!r} is not a WordNet noun synset (use 'dog.n.01', 'wn:n02084071' or an offset)"
            )
        senses = self.lookup(lemma)
        number = int(rest)
        if not 1 <= number <= len(senses):
            raise KeyError(f"WordNet has {len(senses)} noun senses of {lemma!r}; {ref!r} is not one of them")
        return senses[number - 1]

    # -- data.noun -----------------------------------------------------------------------------------

    def read(self, concept_id: str, handle: BinaryIO | None = None) -> tuple[Concept, tuple[str, ...]]:
        """The concept at ``concept_id`` and its hyponym ids, by seeking to the synset's offset."""
        offset = synset_offset(concept_id)
        if handle is None:
            with open(self.folder / "data.noun", "rb") as fresh:
                return self.read(concept_id, fresh)
        handle.seek(offset)
        line = handle.readline().decode("utf-8").rstrip("\n")
        concept, children = parse_data_line(line)
        if concept.id != concept_id:
            raise ValueError(f"data.noun has no synset at offset {offset} ({concept_id})")
        return concept, children

    def concepts(self) -> Iterator[Concept]:
        """Every noun synset of data.noun, in file order."""
        with open(self.folder / "data.noun", "rb") as handle:
            for line in _iter_data_lines(handle):
                if line.strip():
                    yield parse_data_line(line)[0]

    def closure(self, refs: Iterable[str | int], hyponyms: bool = False) -> list[Concept]:
        """The synsets ``refs`` with all their ancestors (and, with ``hyponyms``, all descendants
        together with the ancestors of those), read by seeking."""
        found: dict[str, Concept] = {}
        with open(self.folder / "data.noun", "rb") as handle:
            down = [self.resolve(r) for r in refs]
            up: list[str] = []
            seen_down: set[str] = set()
            while down:
                cid = down.pop()
                if cid in seen_down:
                    continue
                seen_down.add(cid)
                concept, children = self.read(cid, handle)
                found[cid] = concept
                up.extend(concept.parents)
                if hyponyms:
                    down.extend(children)
            while up:
                cid = up.pop()
                if cid not in found:
                    found[cid] = self.read(cid, handle)[0]
                    up.extend(found[cid].parents)
        return sorted(found.values(), key=lambda c: c.id)


def load_wordnet(
    wordnet_dir: str | Path | None = None,
    synsets: Iterable[str | int] | None = None,
    hyponyms: bool = False,
) -> Taxonomy:
    """The WordNet 3.0 noun hierarchy as a taxonomy.

    Args:
        wordnet_dir: folder with data.noun and index.noun (default: ``$INTERN_WORDNET_DIR`` or
            ``/usr/share/wordnet``).
        synsets: load only these synsets (``dog.n.01``, ``wn:n02084071`` or offsets) and their
            ancestors; None loads all 82,115 noun synsets.
        hyponyms: with ``synsets``, also load every descendant of them (and the descendants' other
            ancestors, so the result stays closed under parents).

    Raises:
        WordNetNotFoundError: the database is not installed (names the Debian package).
    """
    wordnet = WordNet(wordnet_dir)
    if synsets is None:
        return Taxonomy(wordnet.concepts())
    return Taxonomy(wordnet.closure(synsets, hyponyms=hyponyms))
