"""EDA text augmentation (Wei & Zou 2019) for Up-A-G's second text view.

One operation per call, drawn from those that can change the text: synonym replacement, random
swap, random deletion and (optionally) random insertion of a synonym. ``alpha`` sets how many words
an operation touches (``max(1, int(alpha * words))``; deletion drops each word with probability
``alpha``). Unlike the original, deletion always removes at least one word of a text with two or
more, so an augmented view almost always differs from the caption.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence

from intern_data.world import PALETTES, SUPERS, TEXTURES

OPERATIONS = ("synonym", "swap", "delete", "insert")
_PUNCTUATION = ",.;:!?"


def synonym_table(groups: Iterable[Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """Map each lower-cased word or phrase of a synonym group to the other members of its groups."""
    table: dict[str, dict[str, None]] = {}
    for group in groups:
        members = [word.lower() for word in group]
        for word in members:
            table.setdefault(word, {}).update(dict.fromkeys(m for m in members if m != word))
    return {word: tuple(others) for word, others in table.items() if others}


def world_synonyms() -> dict[str, tuple[str, ...]]:
    """Synonyms of the embedded world's captions: super-category names (singular and plural),
    texture words and colour words. A plural equal to its singular ("fish") is left out, so a
    singular is never replaced by a plural."""
    plurals = [(s.plural, *(f"{w}s" for w in s.words if w != s.name)) for s in SUPERS if s.plural != s.name]
    groups = [s.words for s in SUPERS] + plurals + [t.words for t in TEXTURES] + [p.words for p in PALETTES]
    return synonym_table(groups)


def _split_punctuation(word: str) -> tuple[str, str]:
    core = word.rstrip(_PUNCTUATION)
    return core, word[len(core) :]


class EDA:
    """Easy data augmentation of one caption: ``EDA()(text, random.Random(seed))``."""

    def __init__(
        self,
        synonyms: Mapping[str, Sequence[str]] | None = None,
        alpha: float = 0.1,
        operations: Sequence[str] = ("synonym", "swap", "delete"),
    ) -> None:
        unknown = set(operations) - set(OPERATIONS)
        if unknown or not operations:
            raise ValueError(f"operations must be a non-empty subset of {OPERATIONS}, got {operations}")
        table = world_synonyms() if synonyms is None else synonyms
        self.synonyms = {key.lower(): tuple(words) for key, words in table.items() if words}
        self.alpha = alpha
        self.operations = tuple(operations)
        self._longest = max((len(key.split()) for key in self.synonyms), default=1)

    def __call__(self, text: str, rng: random.Random) -> str:
        """An augmented copy of ``text``; a non-empty text never comes back empty."""
        words = text.split()
        spans = self._spans(words)
        possible = [
            op for op in self.operations if (bool(spans) if op in ("synonym", "insert") else len(words) > 1)
        ]
        if not possible:
            return text
        op = rng.choice(possible)
        count = max(1, int(self.alpha * len(words)))
        if op == "synonym":
            return " ".join(self._replace(words, spans, count, rng))
        if op == "insert":
            return " ".join(self._insert(words, spans, count, rng))
        if op == "swap":
            return " ".join(self._swap(words, count, rng))
        return " ".join(self._delete(words, rng))

    def _spans(self, words: list[str]) -> list[tuple[int, int, str]]:
        """Non-overlapping ``(start, stop, key)`` runs of words that have synonyms, longest match first."""
        spans, start = [], 0
        while start < len(words):
            for stop in range(min(len(words), start + self._longest), start, -1):
                key = _split_punctuation(" ".join(words[start:stop]))[0].lower()
                if key in self.synonyms:
                    spans.append((start, stop, key))
                    start = stop
                    break
            else:
                start += 1
        return spans

    def _replace(
        self, words: list[str], spans: list[tuple[int, int, str]], count: int, rng: random.Random
    ) -> list[str]:
        chosen = sorted(rng.sample(spans, min(count, len(spans))), reverse=True)
        out = list(words)
        for start, stop, key in chosen:  # right to left, so earlier indices stay valid
            tail = _split_punctuation(out[stop - 1])[1]
            out[start:stop] = (rng.choice(self.synonyms[key]) + tail).split()
        return out

    def _insert(
        self, words: list[str], spans: list[tuple[int, int, str]], count: int, rng: random.Random
    ) -> list[str]:
        out = list(words)
        for _ in range(count):
            key = rng.choice(spans)[2]
            position = rng.randint(0, len(out))
            out[position:position] = rng.choice(self.synonyms[key]).split()
        return out

    @staticmethod
    def _swap(words: list[str], count: int, rng: random.Random) -> list[str]:
        out = list(words)
        for _ in range(count):
            for _attempt in range(3):  # prefer a pair of different words, as the original does
                i, j = rng.sample(range(len(out)), 2)
                if out[i] != out[j]:
                    break
            out[i], out[j] = out[j], out[i]
        return out

    def _delete(self, words: list[str], rng: random.Random) -> list[str]:
        kept = [word for word in words if rng.random() >= self.alpha]
        if not kept:
            return [rng.choice(words)]
        if len(kept) == len(words):
            del kept[rng.randrange(len(kept))]
        return kept
