"""Build the GV-D taxonomy: WordNet's noun hierarchy plus concepts of our own (``labels build``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from intern_data.labels.taxonomy import Concept, Taxonomy
from intern_data.labels.wordnet import ID_PREFIX, load_wordnet


def build_taxonomy(
    wordnet_dir: str | Path | None = None,
    synsets: Iterable[str | int] | None = None,
    hyponyms: bool = False,
    extra: Iterable[Concept] = (),
    use_wordnet: bool = True,
    out: str | Path | None = None,
) -> Taxonomy:
    """The WordNet noun taxonomy (all of it, or a subset) extended by ``extra`` concepts.

    Args:
        wordnet_dir: WordNet database folder (see ``find_wordnet``).
        synsets: load only these synsets with their ancestors (``dog.n.01``, ``wn:n02084071``);
            the WordNet parents of ``extra`` concepts are added to them. None loads all nouns.
        hyponyms: with ``synsets``, also load all their descendants.
        extra: concepts to add (e.g. the embedded world's categories, or a dataset's labels that
            WordNet lacks); their parents may be WordNet ids or other extra concepts.
        use_wordnet: False builds from ``extra`` alone (no WordNet files needed).
        out: if given, save the taxonomy there as JSON.

    Raises:
        WordNetNotFoundError: WordNet is needed but not installed (names the Debian package).
        TaxonomyError: an extra concept repeats an id or has an unknown parent.
    """
    extra = list(extra)
    if use_wordnet:
        if synsets is not None:
            wanted = list(synsets)
            wanted += [p for c in extra for p in c.parents if p.startswith(ID_PREFIX)]
            taxonomy = load_wordnet(wordnet_dir, synsets=wanted, hyponyms=hyponyms)
        else:
            taxonomy = load_wordnet(wordnet_dir)
    else:
        taxonomy = Taxonomy()
    taxonomy.extend(extra)
    if out is not None:
        taxonomy.save(out)
    return taxonomy
