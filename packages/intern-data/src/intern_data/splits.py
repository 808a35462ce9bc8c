"""Percentage-shot and N-shot training subsets as reusable manifest files (GV-B, paper 9.1).

The paper's percentage-shot rule: for each class, shuffle that class's training instances with a
fixed seed and take the first p%, rounding down. We follow it exactly, so a class with fewer than
100/p instances gets **zero** (a 10% split of a 9-image class is empty); such classes are kept in
the manifest's per-class counts with 0 and listed by ``zero_classes`` and the statistics table. The
N-shot rule takes the first N of the same shuffle (all of a class with fewer than N).

Each class's shuffle depends only on the seed, the class label and the class's keys (sorted first),
so splits are nested (10% within 20% within ... 100%, 1-shot within 2-shot ...) and independent of
the order the items are given in. Rounding uses exact rational arithmetic (no float error at
``n * p / 100``).

A manifest is one JSON file: dataset, rule, seed, the selected keys (class by class, in shuffle
order), per-class counts of the selection and of the source, a SHA-256 of the keys and of the source
(key, label) list. ``load_or_make_split`` makes it once and afterwards reuses it, refusing with
:class:`SplitMismatchError` when the source data or the parameters differ; it never redraws
silently.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from intern_data.io import atomic_write_text

FORMAT = "intern-split"
VERSION = 1
PERCENTAGES = (10, 20, 40, 80, 100)
SHOTS = (1, 2, 4, 8)
STANDARD_RULES = tuple(f"{p}pct" for p in PERCENTAGES) + tuple(f"{n}shot" for n in SHOTS)


class SplitMismatchError(ValueError):
    """An existing manifest does not fit the request (other source data or other parameters)."""


@dataclass(frozen=True)
class SplitRule:
    """``percent`` (take the first ``value``% of each class, rounded down) or ``shot`` (first N)."""

    kind: str
    value: Fraction

    @classmethod
    def parse(cls, rule: str | SplitRule) -> SplitRule:
        """Read ``"10pct"``, ``"10%"``, ``"12.5pct"``, ``"4shot"`` or ``"4-shot"``."""
        if isinstance(rule, SplitRule):
            return rule
        text = str(rule).strip().lower()
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(%|pct|percent|-?shots?)", text)
        if match is None:
            raise ValueError(f"unknown split rule {rule!r} (use e.g. '10pct', '10%', '4shot')")
        number, unit = match.groups()
        if "shot" in unit:
            if "." in number or int(number) < 1:
                raise ValueError(f"an N-shot rule needs a whole N >= 1, got {rule!r}")
            return cls("shot", Fraction(int(number)))
        value = Fraction(number)
        if not 0 < value <= 100:
            raise ValueError(f"a percentage must be in (0, 100], got {rule!r}")
        return cls("percent", value)

    def __str__(self) -> str:
        number = f"{float(self.value):g}" if self.value.denominator != 1 else str(self.value.numerator)
        return f"{number}pct" if self.kind == "percent" else f"{number}shot"

    def take(self, n: int) -> int:
        """How many of a class's ``n`` instances the rule keeps."""
        if self.kind == "percent":
            return int(n * self.value // 100)
        return min(n, int(self.value))


@dataclass(frozen=True)
class SplitManifest:
    """A drawn subset of a dataset's training set (see the module docstring)."""

    dataset: str
    rule: str
    seed: int
    keys: tuple[str, ...]
    class_counts: dict[int, int]
    source_counts: dict[int, int]
    keys_hash: str
    source_hash: str

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def key_set(self) -> frozenset[str]:
        return frozenset(self.keys)

    @property
    def zero_classes(self) -> tuple[int, ...]:
        """Classes the rule left without a single instance."""
        return tuple(c for c, n in sorted(self.class_counts.items()) if n == 0)

    @property
    def short_classes(self) -> tuple[int, ...]:
        """(N-shot) classes with fewer than N instances in the source, so fewer than N selected."""
        rule = SplitRule.parse(self.rule)
        if rule.kind != "shot":
            return ()
        return tuple(c for c, n in sorted(self.source_counts.items()) if n < rule.value)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "dataset": self.dataset,
            "rule": self.rule,
            "seed": self.seed,
            "num_keys": len(self.keys),
            "keys_hash": self.keys_hash,
            "source_hash": self.source_hash,
            "class_counts": {str(c): n for c, n in sorted(self.class_counts.items())},
            "source_counts": {str(c): n for c, n in sorted(self.source_counts.items())},
            "zero_classes": list(self.zero_classes),
            "keys": list(self.keys),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], origin: str = "manifest") -> SplitManifest:
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise SplitMismatchError(
                f"{origin} is not a split manifest of format {FORMAT!r} version {VERSION} "
                f"(found {data.get('format')!r} version {data.get('version')!r})"
            )
        keys = tuple(data["keys"])
        manifest = cls(
            dataset=data["dataset"],
            rule=data["rule"],
            seed=int(data["seed"]),
            keys=keys,
            class_counts={int(c): int(n) for c, n in data["class_counts"].items()},
            source_counts={int(c): int(n) for c, n in data["source_counts"].items()},
            keys_hash=data["keys_hash"],
            source_hash=data["source_hash"],
        )
        if hash_keys(keys) != manifest.keys_hash or sum(manifest.class_counts.values()) != len(keys):
            raise SplitMismatchError(
                f"{origin} is damaged: its keys do not match its keys_hash or class counts"
            )
        return manifest

    def save(self, path: str | Path) -> Path:
        """Write the manifest as JSON, atomically (temporary file renamed into place)."""
        return atomic_write_text(path, json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> SplitManifest:
        path = Path(path)
        return cls.from_json(json.loads(path.read_text()), origin=str(path))


def hash_keys(keys: Sequence[str]) -> str:
    """SHA-256 of the keys in their order."""
    digest = hashlib.sha256()
    for key in keys:
        digest.update(key.encode("utf-8") + b"\n")
    return digest.hexdigest()


def hash_source(items: Iterable[tuple[str, int]]) -> str:
    """SHA-256 of the (key, label) pairs sorted by key: the same for any input order."""
    digest = hashlib.sha256()
    for key, label in sorted(items):
        digest.update(f"{key}\t{label}\n".encode())
    return digest.hexdigest()


def _group(items: Iterable[tuple[str, int]], num_classes: int | None) -> dict[int, list[str]]:
    by_class: dict[int, list[str]] = {}
    seen: set[str] = set()
    for key, label in items:
        if not isinstance(key, str) or not key:
            raise ValueError(f"sample keys must be non-empty strings, got {key!r}")
        if isinstance(label, bool) or not isinstance(label, int | np.integer) or label < 0:
            raise ValueError(f"sample {key!r}: labels must be non-negative ints, got {label!r}")
        if key in seen:
            raise ValueError(f"sample key {key!r} appears more than once")
        seen.add(key)
        by_class.setdefault(int(label), []).append(key)
    if num_classes is not None:
        too_big = [c for c in by_class if c >= num_classes]
        if too_big:
            raise ValueError(f"labels {sorted(too_big)[:5]} are >= num_classes={num_classes}")
        for c in range(num_classes):
            by_class.setdefault(c, [])
    return dict(sorted(by_class.items()))


def shuffled_class(keys: Sequence[str], label: int, seed: int) -> list[str]:
    """A class's keys, sorted, then shuffled by a generator seeded with ``(seed, label)``."""
    ordered = sorted(keys)
    order = np.random.default_rng([seed, label]).permutation(len(ordered))
    return [ordered[i] for i in order]


def make_split(
    items: Iterable[tuple[str, int]],
    rule: str | SplitRule,
    seed: int = 0,
    dataset: str = "",
    num_classes: int | None = None,
) -> SplitManifest:
    """Draw a subset of ``items`` by ``rule`` (percentage or N-shot).

    Args:
        items: the training set as (sample key, class label) pairs.
        rule: ``"10pct"``, ``"4shot"``, ... (see ``SplitRule.parse``).
        seed: the fixed shuffle seed.
        dataset: name recorded in the manifest.
        num_classes: if given, classes ``0..num_classes-1`` absent from ``items`` are recorded with
            zero instances.
    """
    items = list(items)
    parsed = SplitRule.parse(rule)
    by_class = _group(items, num_classes)
    keys: list[str] = []
    counts: dict[int, int] = {}
    for label, class_keys in by_class.items():
        take = parsed.take(len(class_keys))
        keys += shuffled_class(class_keys, label, seed)[:take]
        counts[label] = take
    return SplitManifest(
        dataset=dataset,
        rule=str(parsed),
        seed=int(seed),
        keys=tuple(keys),
        class_counts=counts,
        source_counts={c: len(k) for c, k in by_class.items()},
        keys_hash=hash_keys(keys),
        source_hash=hash_source(items),
    )


def make_percentage_split(
    items: Iterable[tuple[str, int]],
    percent: float,
    seed: int = 0,
    dataset: str = "",
    num_classes: int | None = None,
) -> SplitManifest:
    """The first ``percent``% (rounded down) of each class's seeded shuffle."""
    return make_split(items, f"{percent}pct", seed, dataset, num_classes)


def make_nshot_split(
    items: Iterable[tuple[str, int]],
    shots: int,
    seed: int = 0,
    dataset: str = "",
    num_classes: int | None = None,
) -> SplitManifest:
    """The first ``shots`` instances of each class's seeded shuffle (all of a smaller class)."""
    return make_split(items, f"{shots}shot", seed, dataset, num_classes)


def manifest_path(root: str | Path, dataset: str, rule: str | SplitRule, seed: int = 0) -> Path:
    """The conventional place of a manifest: ``<root>/<dataset>/<rule>-seed<seed>.json``."""
    return Path(root) / dataset / f"{SplitRule.parse(rule)}-seed{seed}.json"


def load_or_make_split(
    path: str | Path,
    items: Iterable[tuple[str, int]],
    rule: str | SplitRule,
    seed: int = 0,
    dataset: str = "",
    num_classes: int | None = None,
) -> SplitManifest:
    """Reuse the manifest at ``path`` if there is one, else draw it and save it there.

    Safe to call from every rank at once: the draw is deterministic and the file is written
    atomically, so concurrent writers write identical bytes.

    Raises:
        SplitMismatchError: the file exists but was made from other source data (source hash), for
            another dataset, rule or seed, or is damaged. It is never redrawn silently: delete the
            file (or choose another path) to draw anew.
    """
    path = Path(path)
    items = list(items)
    wanted_rule = str(SplitRule.parse(rule))
    if not path.exists():
        manifest = make_split(items, wanted_rule, seed, dataset, num_classes)
        manifest.save(path)
        return manifest
    manifest = SplitManifest.load(path)
    differences = [
        f"{name} {have!r} (asked for {want!r})"
        for name, have, want in (
            ("dataset", manifest.dataset, dataset),
            ("rule", manifest.rule, wanted_rule),
            ("seed", manifest.seed, int(seed)),
        )
        if have != want
    ]
    if differences:
        raise SplitMismatchError(
            f"split manifest {path} was made with {', '.join(differences)}; delete it or use another "
            "path to draw a different split"
        )
    source_hash = hash_source(items)
    if source_hash != manifest.source_hash:
        raise SplitMismatchError(
            f"the source data of {path} changed since the split was drawn (source hash "
            f"{manifest.source_hash[:12]}... now {source_hash[:12]}...; "
            f"{sum(manifest.source_counts.values())} samples then, {len(items)} now); refusing to redraw "
            "silently: delete the manifest to draw anew"
        )
    return manifest


def make_standard_splits(
    root: str | Path,
    items: Iterable[tuple[str, int]],
    dataset: str,
    seed: int = 0,
    rules: Sequence[str] = STANDARD_RULES,
    num_classes: int | None = None,
) -> list[SplitManifest]:
    """``load_or_make_split`` for every rule (default: 10/20/40/80/100% and 1/2/4/8-shot)."""
    items = list(items)
    return [
        load_or_make_split(manifest_path(root, dataset, r, seed), items, r, seed, dataset, num_classes)
        for r in rules
    ]


@dataclass(frozen=True)
class SplitStatistics:
    """One row of a Table-31-style table: class counts of the source and of the split."""

    dataset: str
    rule: str
    classes: int
    train_size: int
    split_size: int
    test_size: int | None
    avg: float
    min: int
    max: int
    zero_classes: tuple[int, ...]


def split_statistics(manifest: SplitManifest, test_size: int | None = None) -> SplitStatistics:
    """Per-class count statistics of ``manifest`` (average, minimum, maximum over all classes)."""
    counts = list(manifest.class_counts.values()) or [0]
    return SplitStatistics(
        dataset=manifest.dataset,
        rule=manifest.rule,
        classes=len(manifest.class_counts),
        train_size=sum(manifest.source_counts.values()),
        split_size=len(manifest),
        test_size=test_size,
        avg=sum(counts) / len(counts),
        min=min(counts),
        max=max(counts),
        zero_classes=manifest.zero_classes,
    )


def statistics_table(rows: Sequence[SplitStatistics]) -> str:
    """A Markdown table like the paper's Table 31, plus the split size and zero-count classes."""
    header = (
        "| Dataset | Classes | Train size | Test size | Split | Split size "
        "| avg | min | max | zero-count classes |\n"
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|"
    )
    lines = [header]
    for r in rows:
        test = f"{r.test_size:,}" if r.test_size is not None else "-"
        lines.append(
            f"| {r.dataset} | {r.classes:,} | {r.train_size:,} | {test} | {r.rule} | {r.split_size:,} | "
            f"{r.avg:,.1f} | {r.min:,} | {r.max:,} | {len(r.zero_classes)} |"
        )
    return "\n".join(lines)
